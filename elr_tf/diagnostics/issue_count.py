"""How many labels are wrong: an estimate from the run's own predictions.

A ranking score orders the suspects; it does not say where to stop. The
confident joint of Northcutt, Jiang and Chuang ("Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021, §3.1) counts, for
every pair (given label `y`, class `j`), the examples labelled `y` that are
*confidently* of class `j`: whose probability of `j` reaches the average
probability of `j` among the examples labelled `j` (a per-class threshold,
so that classes the model is less sure of still count). Its off-diagonal
entries estimate the wrong labels.

The counts are used as they are, not calibrated to the given-label totals
(the paper's eq. 2): calibration scales each row up by the examples that
are confident of no class, and on Fashion-MNIST, where the unconfident ones
are mostly clean examples of look-alike classes (shirt, T-shirt, pullover,
coat), that inflated the estimate further above the true count.

Here the probabilities are the rows of the ELR target table (normalised),
an in-sample temporal ensemble that ELR keeps from memorising the noise;
cleanlab uses out-of-sample probabilities from cross-validation instead.
"""

import numpy as np

from elr_tf.checks import int_vector


def confident_joint(probs, labels):
    """Counts `C[y, j]` of examples labelled `y` that are confidently class `j`.

    Args:
        probs: float `[n, C]` rows summing to 1 (e.g. a normalised target
            table).
        labels: int `[n]` given labels in `[0, C)`.

    Returns:
        int64 `[C, C]` counts; examples with no class above its threshold
        are counted nowhere. An example above the threshold of several
        classes counts for the most probable of them.
    """
    probs, labels = _check(probs, labels)
    num_classes = probs.shape[1]
    thresholds = np.full(num_classes, np.inf)
    for j in range(num_classes):
        members = labels == j
        if members.any():
            thresholds[j] = probs[members, j].mean()
    above = probs >= thresholds[None, :]
    confident = above.any(axis=1)
    best = np.where(above, probs, -np.inf).argmax(axis=1)
    joint = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(joint, (labels[confident], best[confident]), 1)
    return joint


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


def estimate_pair_counts(probs, labels):
    """Estimated wrong labels per (given label, suggested class) pair.

    The confident joint with its diagonal set to zero: entry `[y, j]`
    counts the examples labelled `y` that are confidently of class `j`.

    Args:
        probs: float `[n, C]` rows summing to 1.
        labels: int `[n]` given labels.

    Returns:
        int64 `[C, C]`, zero on the diagonal; its sum is the estimated total
        and its row sums are `estimate_issue_counts`.

    Example:

    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    >>> estimate_pair_counts(probs, np.array([0, 0, 1, 1]))
    array([[0, 1],
           [1, 0]])
    """
    joint = confident_joint(probs, labels)
    np.fill_diagonal(joint, 0)
    return joint


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
