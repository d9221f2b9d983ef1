"""Label-issue scores: how likely each given label is wrong (higher: more likely).

A score is a function of the per-example statistics a run gathered
(`Statistics`: the normalised target-table rows and, when tracked, the
averaged logit margins) registered in `SCORES` with its help text. Adding a
score is one function and one entry here; `find_label_issues`, the program's
`--audit_score` flag and its help text all read the registry.

Example:

```python
stats = Statistics(shares, labels, seen, aum=None)
values = compute("self_confidence", stats)   # 1 - P[i, y]
```
"""

import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Statistics:
    """What a score may read, for `n` audited examples.

    Attributes:
        shares: float64 `[n, C]` target-table rows normalised to sum to 1
            (all zero for unseen examples).
        labels: int64 `[n]` given labels.
        seen: bool `[n]` False for examples never trained on.
        aum: float64 `[n]` averaged logit margin of the given label (NaN
            when unseen), or None when the model did not track margins.
    """

    shares: np.ndarray
    labels: np.ndarray
    seen: np.ndarray
    aum: np.ndarray | None = None

    @property
    def given(self):
        """float64 `[n]`: the given label's share `P[i, y]`."""
        return self.shares[np.arange(len(self.labels)), self.labels]

    @property
    def margin(self):
        """float64 `[n]`: best other class's share minus the given label's; NaN unseen."""
        others = self.shares.copy()
        others[np.arange(len(self.labels)), self.labels] = -np.inf
        return np.where(self.seen, others.max(axis=1) - self.given, np.nan)


@dataclasses.dataclass(frozen=True)
class Score:
    """A registered score: `compute(stats) -> float64 [n]` (NaN where unseen)."""

    compute: Callable
    help: str
    needs_margins: bool = False


def self_confidence(stats):
    """`1 - P[i, y]` (Northcutt et al., JAIR 2021)."""
    return np.where(stats.seen, 1.0 - stats.given, np.nan)


def table_margin(stats):
    """`max_{k != y} P[i, k] - P[i, y]`, in `[-1, 1]`."""
    return stats.margin


def negative_aum(stats):
    """`-AUM`: the negated averaged logit margin (Pleiss et al., NeurIPS 2020)."""
    return -stats.aum


def combined(stats):
    """Mean of the ranks of `self_confidence` and `-AUM`, each scaled to `[0, 1]`."""
    return (unit_ranks(self_confidence(stats)) + unit_ranks(negative_aum(stats))) / 2.0


SCORES = {
    "combined": Score(
        combined, "ranks of self-confidence and averaged logit margin", needs_margins=True
    ),
    "margin": Score(table_margin, "best other class minus the label in the table"),
    "self_confidence": Score(self_confidence, "1 - table share of the label"),
    "aum": Score(negative_aum, "averaged logit margin, negated", needs_margins=True),
}


def compute(name, stats):
    """The values of score `name` on `stats`; ValueError if it needs absent margins."""
    score = SCORES[name]
    if score.needs_margins and stats.aum is None:
        raise ValueError(
            f"`score={name!r}` needs the averaged margins: a model built with "
            "`track_margins=True`, or `margins=`. Received neither."
        )
    return score.compute(stats)


def describe():
    """`name (help), ...` of every score, for help texts."""
    return ", ".join(f"{name} ({score.help})" for name, score in SCORES.items())


def unit_ranks(values):
    """Mean ranks (ties share theirs) scaled to `[0, 1]`, NaN kept.

    Scores on different scales can then be averaged.
    """
    result = np.full(len(values), np.nan)
    known = ~np.isnan(values)
    if known.any():
        _, inverse, counts = np.unique(values[known], return_inverse=True, return_counts=True)
        mean_ranks = np.cumsum(counts) - counts + (counts - 1) / 2.0
        result[known] = mean_ranks[inverse] / max(np.count_nonzero(known) - 1, 1)
    return result
