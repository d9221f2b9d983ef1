"""Finding the wrong labels from an ELR run (ELR-SPEC §4).

The target table `T` holds, for each training example, the temporal ensemble
of the network's predictions. ELR keeps the network from memorising wrong
labels, so for a mislabelled example `T[i]` keeps pointing at the true class
and away from the given label `y[i]`. With `P[i] = T[i] / sum(T[i])` (rows sum
to less than 1 early in training or with a large `beta`), the report holds,
per example:

- `table_class = argmax(P[i])`, the label the run suggests;
- `margin = max_{k != y} P[i, k] - P[i, y]`, in `[-1, 1]`; positive when
  another class beats the given label;
- `aum`: the given label's logit margin averaged over training (the area
  under the margin of Pleiss et al. 2020), when the model tracked it
  (`ELRModel(track_margins=True)`, the default);
- `score`, the ranking score (higher: more likely wrong), one of the
  registered `scores.SCORES` (`"combined"` by default when margins are known,
  `"self_confidence"` otherwise);
- `flagged`, by one of `FLAG_RULES`. All but `"argmax"` start from an
  estimate of how many examples are wrong, per (given label, suggested
  class) pair, from the rows themselves (the confident joint of Northcutt
  et al. 2021, `issue_count.pair_budgets`). `"pairs"` (default) spends each pair's
  count on the examples of that given label whose row most favours that
  class over the label (`issue_count.prune_by_pair`), then the rest of the
  estimate on the highest scores; `"estimate"` flags the estimated number
  of the highest scores; `"argmax"` flags `table_class != y`.

When the model kept the table averaged over training
(`track_table_mean=True`, the default), `T` is that average: a network
that begins to memorise moves its final table toward the wrong labels,
and the average keeps the epochs before. With `embeddings=` (the network's
features of the audited examples, one forward pass: `neighbours.embeddings`),
every row `P[i]` is the mean of the normalised table row and the share of
each label among the example's nearest neighbours in that embedding
(`neighbours.neighbour_label_shares`). The count reads the neighbours
unless the run memorised or a sixth of the rows are confident of no class
(`issue_count.pair_budgets`).

`find_label_issues` returns the report ranked, most suspicious first.

An all-zero row means the example was never trained on (a validation id, an
id outside `num_train`, or one never drawn by class-balanced sampling): it is
kept in the report as **unseen** (`table_class=-1`, scores NaN, never
flagged) and left out of the count estimate and the detection metrics, which
count it in `num_unseen`.

With synthetic noise the true labels are known, and `LabelAudit.metrics()`
measures the flags (precision, recall, F1), the ranking score (AUROC,
average precision) and the estimated number of wrong labels beside the true
one. `audit_callback.AuditCallback` logs the same figures every epoch.

Example:

```python
report = elr_tf.find_label_issues(model, data.train.labels, ids=data.train.ids,
                                  true_labels=data.train.true_labels)
report.ids[:20]        # the 20 most suspicious ids
report.ids[report.flagged]
report.to_csv("audit.csv")
report.metrics()   # {"precision": ..., "auroc": ..., "num_estimated": ...}
```
"""

import csv
import dataclasses

import numpy as np

from elr_tf.checks import int_vector, one_of
from elr_tf.diagnostics import confusions, issue_count, scores, tables
from elr_tf.diagnostics import neighbours as neighbours_lib
from elr_tf.diagnostics.ranking import detection_metrics

CSV_COLUMNS = ("id", "label", "table_class", "score", "margin", "flagged")
MARGIN_COLUMNS = ("aum",)
TRUTH_COLUMNS = ("true_label", "is_noisy")
METRIC_NAMES = ("precision", "recall", "f1", "auroc", "auprc")
SCORES = tuple(scores.SCORES)
FLAG_RULES = ("pairs", "estimate", "argmax")
TABLES = ("auto", "averaged", "final")
# Array fields of a `LabelAudit` that describe the whole set, not one example.
_WHOLE_SET_FIELDS = ("pair_counts",)


@dataclasses.dataclass(frozen=True, eq=False)
class LabelAudit:
    """Per-example verdicts on the given labels; one entry per audited id.

    Attributes:
        ids: int64 `[n]` stable ids (rows of the target table).
        labels: int64 `[n]` given (possibly noisy) labels.
        table_class: int64 `[n]` `argmax(T[i])`, the suggested label; -1
            for unseen examples.
        score: float64 `[n]` the ranking score `score_name`; NaN when unseen.
        margin: float64 `[n]` best other class minus the given label's
            share of the row; NaN when unseen.
        flagged: bool `[n]` suspected wrong labels.
        seen: bool `[n]` False for all-zero (never trained) rows.
        true_labels: int64 `[n]` clean labels (-1: unknown), or None.
        aum: float64 `[n]` averaged logit margin of the given label, or None
            when the model did not track it.
        score_name: which of `SCORES` `score` is.
        flag_rule: which of `FLAG_RULES` set `flagged`.
        num_estimated: the estimated number of wrong labels among the seen
            examples (from the table's confident joint).
        pair_counts: int64 `[C, C]` the estimate per (given label,
            suggested label) pair, zero on the diagonal; it sums to
            `num_estimated`.
        neighbours: how many embedding neighbours voted in each row (0:
            the table alone).
        table: `"averaged"` (the table averaged over training) or
            `"final"`: which table the rows come from.
        count_lost: `issue_count.count_lost` of the final against the
            averaged table, or None when only one table was given.
        unplaced: the share of the seen examples confident of no class
            in the table the count reads (`issue_count.unplaced`).
        count_source: what `pair_counts` were counted from (see
            `issue_count.pair_budgets`).
    """

    ids: np.ndarray
    labels: np.ndarray
    table_class: np.ndarray
    score: np.ndarray
    margin: np.ndarray
    flagged: np.ndarray
    seen: np.ndarray
    true_labels: np.ndarray | None = None
    aum: np.ndarray | None = None
    score_name: str = "self_confidence"
    flag_rule: str = "argmax"
    num_estimated: int | None = None
    pair_counts: np.ndarray | None = None
    neighbours: int = 0
    table: str = "final"
    count_lost: float | None = None
    unplaced: float | None = None
    count_source: str = "table"

    def __len__(self):
        return len(self.ids)

    @property
    def is_noisy(self):
        """bool `[n]`: given label differs from a known true label."""
        if self.true_labels is None:
            raise ValueError(
                "The true labels are unknown: pass `true_labels` to `find_label_issues`."
            )
        return (self.true_labels >= 0) & (self.labels != self.true_labels)

    def ranked(self):
        """Returns a copy sorted by decreasing score (most suspicious first).

        Unseen examples come last; ties keep id order.
        """
        key = np.where(self.seen, -np.nan_to_num(self.score, nan=0.0), np.inf)
        return self._take(np.lexsort((self.ids, key)))

    def by_id(self):
        """Returns a copy sorted by id (to join with data kept in id order)."""
        return self._take(np.argsort(self.ids, kind="stable"))

    def true_pair_counts(self):
        """int64 `[C, C]`: the seen examples given label `a` whose true label is `b != a`.

        The truth beside `pair_counts`; needs the true labels.
        """
        if self.pair_counts is None:
            raise ValueError(
                "This report has no `pair_counts` to set the truth beside: make it "
                "with `find_label_issues`."
            )
        use = self.seen & (self.true_labels >= 0) & self.is_noisy
        return confusions.true_pair_counts(
            self.labels[use], self.true_labels[use], len(self.pair_counts)
        )

    def metrics(self):
        """Detection metrics against the true labels.

        Computed over the seen examples whose true label is known. Positives
        are the wrong labels. Undefined figures are NaN (recall, F1, AUROC
        and average precision without wrong labels; AUROC without clean
        ones); precision is 0 when nothing is flagged.

        Returns:
            dict with `precision`, `recall`, `f1` (of `flagged`), `auroc`,
            `auprc` (average precision of `score`), and the counts
            `num_examples`, `num_noisy`, `num_flagged`, `num_unseen` and
            `num_estimated` (the run's own estimate of the wrong labels);
            with `pair_counts`, `pair_error`, their distance from the true
            counts per pair as a fraction of the wrong labels
            (`confusions.pair_count_error`).
        """
        noisy = self.is_noisy
        use = self.seen & (self.true_labels >= 0)
        result = detection_metrics(self.flagged[use], self.score[use], noisy[use])
        result["num_unseen"] = int(np.count_nonzero(~self.seen))
        result["num_estimated"] = self.num_estimated
        if self.pair_counts is not None:
            result["pair_error"] = confusions.pair_count_error(
                self.pair_counts, self.true_pair_counts()
            )
        return result

    def to_csv(self, path, class_names=None):
        """Writes one row per example, in the current order.

        Columns: `id,label,table_class,score,margin,flagged`, plus `aum` when
        the margins were tracked, plus `true_label,is_noisy` when true labels
        are known (`is_noisy` empty where the true label is -1), plus
        `label_name,table_class_name` (and `true_label_name`) when
        `class_names` are given. Unseen rows have `table_class=-1` (no
        name) and `nan` scores.

        Args:
            path: output file.
            class_names: optional sequence of class names, indexed by label.
        """
        with_truth = self.true_labels is not None
        with_aum = self.aum is not None
        columns = CSV_COLUMNS + (MARGIN_COLUMNS if with_aum else ())
        columns += TRUTH_COLUMNS if with_truth else ()
        if class_names is not None:
            class_names = [str(name) for name in class_names]
            columns += ("label_name", "table_class_name")
            columns += ("true_label_name",) if with_truth else ()

        def name(index):
            return class_names[index] if 0 <= index < len(class_names) else ""

        noisy = self.is_noisy if with_truth else None
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for k in range(len(self)):
                row = [
                    int(self.ids[k]),
                    int(self.labels[k]),
                    int(self.table_class[k]),
                    f"{self.score[k]:.6g}",
                    f"{self.margin[k]:.6g}",
                    int(self.flagged[k]),
                ]
                if with_aum:
                    row.append(f"{self.aum[k]:.6g}")
                if with_truth:
                    known = self.true_labels[k] >= 0
                    row += [int(self.true_labels[k]), int(noisy[k]) if known else ""]
                if class_names is not None:
                    row += [name(int(self.labels[k])), name(int(self.table_class[k]))]
                    row += [name(int(self.true_labels[k]))] if with_truth else []
                writer.writerow(row)

    def _take(self, order):
        values = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            per_example = isinstance(value, np.ndarray) and field.name not in _WHOLE_SET_FIELDS
            values[field.name] = value[order] if per_example else value
        return LabelAudit(**values)


def find_label_issues(
    model_or_table,
    labels,
    ids=None,
    true_labels=None,
    score=None,
    flag="pairs",
    margins=None,
    embeddings=None,
    neighbours=neighbours_lib.DEFAULT_NEIGHBOURS,
    table="auto",
    mean_table=None,
):
    """Ranks the training labels by how likely each is wrong, and flags some.

    One training run gives everything: the target table and, when the model
    tracked them, the averaged logit margins. With `embeddings` (one
    forward pass, `neighbours_lib.embeddings`), each example's row is the
    mean of its normalised table row and the label shares among its
    `neighbours` nearest audited neighbours in the network's embedding
    (`neighbours_lib.neighbour_label_shares`), a second opinion that a
    flip the network learnt cannot sway.

    Args:
        model_or_table: an `ELRModel` or `ELRPlusModel` (its tables are
            averaged; its `average_margins` are used when tracked), or a
            `[num_examples, C]` array or tensor.
        labels: int `[n]` given labels of `ids`; with `ids=None`, one label
            per table row (negative: unused id, dropped).
        ids: int `[n]` table rows to audit, or None for all rows.
        true_labels: optional int `[n]` clean labels aligned with `labels`
            (-1: unknown); they only enable `metrics()`.
        score: one of `SCORES`; None takes `"combined"` when margins are
            known and `"self_confidence"` otherwise.
        flag: `"pairs"` (default: each (given, suggested) pair flags its
            own estimated count, and the rest of the estimate goes to the
            highest scores), `"estimate"` (the estimated number of wrong
            labels, highest scores first) or `"argmax"` (`table_class !=
            label`).
        margins: float `[num_examples]` averaged margins by id, for a table
            source (or to override a model's).
        embeddings: optional float `[n, d]` embeddings aligned with
            `labels` (with `ids=None`, one per table row).
        neighbours: how many neighbours vote when `embeddings` are given.
        table: `"averaged"` (the table averaged over training: the model's
            `mean_target_tables`, or `mean_table`), `"final"` (the table
            as training left it, as the finder read it before the average
            was kept) or `"auto"` (averaged when there is one).
        mean_table: float `[num_examples, C]` the table averaged over
            training, for a table source (or to override a model's).

    Returns:
        A `LabelAudit` ranked most suspicious first (`report.ids[:k]` are
        the `k` top suspects), with `score`, `flagged` and `num_estimated`.

    Example:

    ```python
    report = elr_tf.find_label_issues(model, y_train)
    report.ids[report.flagged]   # the ids to relabel or drop
    ```
    """
    one_of("flag", flag, FLAG_RULES)
    if margins is None:
        margins = getattr(model_or_table, "average_margins", None)
    if score is None:
        score = "combined" if margins is not None else "self_confidence"
    one_of("score", score, SCORES)
    one_of("table", table, TABLES)
    final = tables.final_table(model_or_table)
    averaged = tables.mean_table(model_or_table, mean_table, final.shape)
    if table == "averaged" and averaged is None:
        raise ValueError(
            "`table='averaged'` needs the table averaged over training: a model built "
            "with `track_table_mean=True`, or `mean_table=`. Received neither."
        )
    if table == "final" and mean_table is not None:
        raise ValueError(
            "`mean_table` is the averaged table, which `table='final'` does not read. "
            "Received both: pass one, or table='auto'."
        )
    if table == "final":
        averaged = None
    elif table == "averaged" and not (tables.shares(final)[1] <= tables.shares(averaged)[1]).all():
        raise ValueError(
            "`table='averaged'` needs an averaged row for every trained example. Received "
            "an averaged table with empty rows where the final table has values (was the "
            "table written without training?)."
        )
    return _verdicts(
        final,
        averaged,
        labels,
        ids,
        true_labels,
        score=score,
        flag=flag,
        margins=margins,
        embeddings=embeddings,
        neighbours=neighbours,
    ).ranked()


def _verdicts(
    final, averaged, labels, ids, true_labels, score, flag, margins, embeddings=None, neighbours=0
):
    num_rows, num_classes = final.shape
    labels = int_vector("labels", labels)
    if true_labels is not None:
        true_labels = int_vector("true_labels", true_labels, len(labels))
    if ids is None:
        if len(labels) != num_rows:
            raise ValueError(
                "With `ids=None`, `labels` must give one label per table row "
                f"({num_rows}). Received: len(labels)={len(labels)}"
            )
        keep = labels >= 0
        ids = np.flatnonzero(keep).astype(np.int64)
        labels = labels[keep]
        if true_labels is not None:
            true_labels = true_labels[keep]
        if embeddings is not None:
            embeddings = tables.check_embeddings(embeddings, len(keep))[keep]
    else:
        ids = int_vector("ids", ids, len(labels))
        if ids.size and (ids.min() < 0 or ids.max() >= num_rows):
            raise ValueError(
                f"`ids` must index table rows in [0, {num_rows}). Received: "
                f"min={ids.min()}, max={ids.max()}"
            )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` must be in [0, {num_classes}) (the table has {num_classes} "
            f"columns). Received: min={labels.min()}, max={labels.max()}"
        )
    aum = None
    if margins is not None:
        margins = tables.to_numpy(margins).astype(np.float64)
        if margins.shape != (num_rows,):
            raise ValueError(
                f"`margins` must hold one value per table row, shape ({num_rows},). "
                f"Received shape={margins.shape}"
            )
        aum = margins[ids]
    final_shares, seen = tables.shares(final[ids])
    if averaged is not None:
        averaged_shares, averaged_seen = tables.shares(averaged[ids])
        # A table written without training (assigned, or loaded from
        # elsewhere) has no average behind it: the final table stands alone.
        averaged = averaged if averaged_seen[seen].all() else None
    table_shares = final_shares if averaged is None else averaged_shares
    shares = table_shares.copy()
    if embeddings is not None:
        embeddings = tables.check_embeddings(embeddings, len(labels))
        voters = neighbours_lib.neighbour_label_shares(
            embeddings[seen], labels[seen], num_classes, k=neighbours
        )
        shares[seen] = (shares[seen] + voters) / 2.0
    budgets = issue_count.pair_budgets(
        table_shares[seen],
        labels[seen],
        voted=shares[seen] if embeddings is not None else None,
        final=final_shares[seen] if averaged is not None else None,
    )
    if aum is not None:
        aum = np.where(seen, aum, np.nan)
    stats = scores.Statistics(shares, labels, seen, aum)
    values = scores.compute(score, stats)
    table_class = np.where(seen, shares.argmax(axis=1), -1).astype(np.int64)
    pairs = budgets.pair_counts
    counts = pairs.sum(axis=1)
    if flag == "argmax":
        flagged = seen & (table_class != labels)
    elif flag == "pairs":
        flagged = np.zeros(len(labels), bool)
        flagged[seen] = issue_count.prune_by_pair(shares[seen], labels[seen], pairs)
        rest = int(pairs.sum()) - int(np.count_nonzero(flagged))
        flagged |= issue_count.flag_top(np.where(flagged, np.nan, values), rest)
    else:
        flagged = issue_count.flag_top(values, counts.sum())
    return LabelAudit(
        ids=ids,
        labels=labels,
        table_class=table_class,
        score=values,
        margin=stats.margin,
        flagged=flagged,
        seen=seen,
        true_labels=true_labels,
        aum=aum,
        score_name=score,
        flag_rule=flag,
        neighbours=int(neighbours) if embeddings is not None else 0,
        num_estimated=int(counts.sum()),
        pair_counts=pairs,
        table="final" if averaged is None else "averaged",
        count_lost=budgets.lost,
        unplaced=budgets.unplaced,
        count_source=budgets.source,
    )
