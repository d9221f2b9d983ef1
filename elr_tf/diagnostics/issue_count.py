"""How many labels are wrong: an estimate from the run's own predictions.

A ranking score orders the suspects; it does not say where to stop. The
confident joint of Northcutt, Jiang and Chuang ("Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021, §3.1) counts, for
every pair (given label `y`, class `j`), the examples labelled `y` that are
*confidently* of class `j`: whose probability of `j` reaches the average
probability of `j` among the examples labelled `j` (a per-class threshold,
so that classes the model is less sure of still count). Its off-diagonal
entries estimate the wrong labels.

Here the probabilities are the rows of the ELR target table (normalised),
an in-sample temporal ensemble; cleanlab uses out-of-sample probabilities
from cross-validation instead. An in-sample table misleads the count in
opposite ways, and `pair_budgets` chooses its rows by what the run shows
(docs/label_issues.md, "Counting"):

- **A weak network over-counts.** Hard clean examples of look-alike classes
  sit confidently in the other class (Fashion-MNIST with `mini_cnn`: the
  table disagrees with a fifth of the clean labels). The neighbours' label
  shares beside the table pull them back, and the counts are used as they
  are, not calibrated to the given-label totals (the paper's eq. 2), which
  would spread the unconfident examples, mostly clean ones, over the pairs.
- **A memorising network under-counts.** When the network learns the wrong
  labels (ResNet-9 on CIFAR-10N: by the last epoch the table's count is
  40% below the count of the table averaged over the epochs), the final
  table and the neighbours in its embedding side with them. The count then
  comes from the averaged table alone, calibrated: the examples that are
  confident of no class are spread over the pairs of their given label.
- **Many unplaced examples under-count.** The uncalibrated joint takes
  every example confident of no class for clean. Where the noise follows
  the images (annotators, instance-dependent noise), those ambiguous
  examples are wrong more often than the confident ones, and when they
  are a sixth of the set or more (`UNPLACED`) the count is calibrated
  too, from the table alone.
"""

import collections

import numpy as np

from elr_tf.checks import int_vector

# The share of the averaged table's count that the final table must have
# lost for a run to count as memorising (`pair_budgets`). Measured: -0.04 to
# 0.11 on the Fashion-MNIST grid (14 runs), 0.41 to 0.76 on CIFAR-10N's three
# label sets (6 runs; docs/label_issues.md).
MEMORISED = 0.2

# The share of examples confident of no class (`unplaced`) from which
# `pair_budgets` calibrates the count of a run that did not memorise.
# Measured on the averaged table (docs/label_issues.md, "Counting"): 0.00
# to 0.15 on the Fashion-MNIST grid's symmetric and asymmetric settings
# (10 runs), 0.18 to 0.24 on its instance-dependent ones (4), 0.17 and
# 0.26 on all 50,000 of CIFAR-10N worst and random1 trained with
# augmentation, where it was chosen, and 0.30 on aggre, trained after.
UNPLACED = 1 / 6

# What `pair_budgets` returns.
Budgets = collections.namedtuple("Budgets", ["pair_counts", "lost", "unplaced", "source"])


def confident_joint(probs, labels, calibrate=False):
    """Counts `C[y, j]` of examples labelled `y` that are confidently class `j`.

    Args:
        probs: float `[n, C]` rows summing to 1 (e.g. a normalised target
            table).
        labels: int `[n]` given labels in `[0, C)`.
        calibrate: scale every row `y` to the number of examples labelled
            `y` (Northcutt et al., eq. 2), rounded; a row with no confident
            example stays zero.

    Returns:
        int64 `[C, C]` counts; without `calibrate`, examples with no class
        above its threshold are counted nowhere. An example above the
        threshold of several classes counts for the most probable of them.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.45, 0.55]])
    >>> confident_joint(probs, np.array([0, 0, 1, 1]), calibrate=True)
    array([[2, 0],
           [0, 2]])
    """
    probs, labels = _check(probs, labels)
    num_classes = probs.shape[1]
    above = _above_thresholds(probs, labels)
    confident = above.any(axis=1)
    best = np.where(above, probs, -np.inf).argmax(axis=1)
    joint = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(joint, (labels[confident], best[confident]), 1)
    if calibrate:
        given = np.bincount(labels, minlength=num_classes)
        rows = joint.sum(axis=1, keepdims=True)
        joint = np.rint(joint * (given[:, None] / np.maximum(rows, 1))).astype(np.int64)
    return joint


def unplaced(probs, labels):
    """The share of examples confident of no class (`confident_joint`'s thresholds).

    The uncalibrated joint counts them nowhere, that is, as clean;
    calibrating spreads them over the pairs of their given label.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.45, 0.55]])
    >>> unplaced(probs, np.array([0, 0, 1, 1]))  # rows 2 and 4
    0.5
    """
    probs, labels = _check(probs, labels)
    return float(1.0 - _above_thresholds(probs, labels).any(axis=1).mean()) if len(labels) else 0.0


def estimate_issue_counts(probs, labels):
    """Estimated number of wrong labels among the examples of each given label.

    The off-diagonal counts of the confident joint: for label `y`, the
    examples labelled `y` that are confidently of another class.

    Args:
        probs: float `[n, C]` rows summing to 1.
        labels: int `[n]` given labels.

    Returns:
        int64 `[C]` estimated wrong labels per given label; their sum is the
        estimated total.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]])
    >>> estimate_issue_counts(probs, np.array([0, 0, 1, 1]))
    array([0, 1])
    """
    joint = confident_joint(probs, labels)
    return joint.sum(axis=1) - np.diag(joint)


def estimate_pair_counts(probs, labels, calibrate=False):
    """Estimated wrong labels per (given label, suggested class) pair.

    The confident joint with its diagonal set to zero: entry `[y, j]`
    counts the examples labelled `y` that are confidently of class `j`.

    Args:
        probs: float `[n, C]` rows summing to 1.
        labels: int `[n]` given labels.
        calibrate: calibrate the joint first (`confident_joint`).

    Returns:
        int64 `[C, C]`, zero on the diagonal; its sum is the estimated total
        and its row sums are `estimate_issue_counts`.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    >>> estimate_pair_counts(probs, np.array([0, 0, 1, 1]))
    array([[0, 1],
           [1, 0]])
    """
    joint = confident_joint(probs, labels, calibrate)
    np.fill_diagonal(joint, 0)
    return joint


def count_lost(final, averaged, labels):
    """How much of the averaged table's count the final table has lost.

    `1 - count(final) / count(averaged)`, each the confident joint's
    off-diagonal total: about 0 for a run whose table settled, toward 1
    for one that came to agree with the wrong labels it once contradicted.
    0 when the averaged table counts nothing.

    Example:

    >>> averaged = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.8, 0.2]])
    >>> final = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.9, 0.1]])
    >>> count_lost(final, averaged, np.array([0, 0, 1, 1]))
    0.5
    """
    before = estimate_pair_counts(averaged, labels).sum()
    after = estimate_pair_counts(final, labels).sum()
    return float(1.0 - after / before) if before else 0.0


def pair_budgets(table, labels, voted=None, final=None):
    """The per-pair counts of wrong labels, and where they were counted from.

    Args:
        table: float `[n, C]` normalised rows of the table the finder reads
            (the averaged table when the run kept it).
        labels: int `[n]` given labels.
        voted: optional `[n, C]` rows with the neighbours' votes mixed in.
        final: optional `[n, C]` normalised rows of the final table, when
            `table` is the averaged one.

    Returns:
        `Budgets(pair_counts, lost, unplaced, source)`: int64 `[C, C]`
        budgets; `count_lost(final, table, labels)` (None without
        `final`); `unplaced(table, labels)`; and where the counts come
        from: the calibrated confident joint of `table` alone
        (`"averaged table, calibrated"`, or `"table, calibrated"` without
        `final`) when the run memorised (`lost` reaches `MEMORISED`) or
        `unplaced` reaches `UNPLACED`; else the confident joint of `voted`
        (`"table + neighbours"`) or of `table` (`"table"`) as it is.
    """
    lost = None if final is None else count_lost(final, table, labels)
    share = unplaced(table, labels)
    if (lost is not None and lost >= MEMORISED) or share >= UNPLACED:
        calibrated = estimate_pair_counts(table, labels, calibrate=True)
        source = "averaged table, calibrated" if final is not None else "table, calibrated"
        return Budgets(calibrated, lost, share, source)
    if voted is not None:
        return Budgets(estimate_pair_counts(voted, labels), lost, share, "table + neighbours")
    return Budgets(estimate_pair_counts(table, labels), lost, share, "table")


def prune_by_pair(probs, labels, pair_counts):
    """Flags, for every pair `(y, j)`, the `pair_counts[y, j]` likeliest flips.

    Among the examples labelled `y`, those with the largest `p_j - p_y` (how
    much more the probabilities favour `j` than the given label) are the
    likeliest to be `j`s labelled `y`; each pair flags its own budget of
    them (the per-pair pruning of Northcutt et al., JAIR 2021, §3.2). An
    example picked by several pairs is flagged once, so fewer than
    `pair_counts.sum()` may be flagged. Where the noise is concentrated in
    a few pairs of look-alike classes, the budgets keep the flags in those
    pairs instead of spending them on the examples a ranking finds least
    likely overall.

    Args:
        probs: float `[n, C]` rows summing to 1.
        labels: int `[n]` given labels.
        pair_counts: `[C, C]` non-negative budgets (e.g.
            `estimate_pair_counts`); the diagonal is ignored.

    Returns:
        bool `[n]`.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.1, 0.9]])
    >>> prune_by_pair(probs, np.array([0, 0, 0, 1]), np.array([[0, 1], [0, 0]]))
    array([False,  True, False, False])
    """
    probs, labels = _check(probs, labels)
    num_classes = probs.shape[1]
    budgets = np.asarray(pair_counts)
    if budgets.shape != (num_classes, num_classes) or (budgets < 0).any():
        raise ValueError(
            f"`pair_counts` must be a non-negative [{num_classes}, {num_classes}] array. "
            f"Received shape={budgets.shape}"
        )
    flagged = np.zeros(len(labels), bool)
    for given in range(num_classes):
        members = np.flatnonzero(labels == given)
        for other in range(num_classes):
            budget = int(round(float(budgets[given, other])))
            if other == given or budget <= 0 or not members.size:
                continue
            excess = probs[members, other] - probs[members, given]
            flagged[members[np.argsort(-excess, kind="stable")[:budget]]] = True
    return flagged


def flag_top(scores, count):
    """Flags the `count` highest scores (NaN never; ties by position).

    Args:
        scores: float `[n]` (higher: more suspicious).
        count: how many to flag, at most the number of non-NaN scores.

    Returns:
        bool `[n]`.
    """
    scores = np.asarray(scores, np.float64)
    known = np.flatnonzero(~np.isnan(scores))
    order = known[np.argsort(-scores[known], kind="stable")]
    flagged = np.zeros(len(scores), bool)
    flagged[order[: max(int(count), 0)]] = True
    return flagged


def _above_thresholds(probs, labels):
    """bool `[n, C]`: `probs[i, j]` reaches the mean of `probs[:, j]` over the labelled `j`."""
    thresholds = np.full(probs.shape[1], np.inf)
    for j in range(probs.shape[1]):
        members = labels == j
        if members.any():
            thresholds[j] = probs[members, j].mean()
    return probs >= thresholds[None, :]


def _check(probs, labels):
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"`probs` must be a [n, num_classes >= 2] array. Received shape={probs.shape}"
        )
    labels = int_vector("labels", labels, len(probs))
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(
            f"`labels` must be in [0, {probs.shape[1]}). Received: min={labels.min()}, "
            f"max={labels.max()}"
        )
    return probs, labels
