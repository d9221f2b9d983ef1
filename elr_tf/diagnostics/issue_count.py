"""How many labels are wrong: an estimate from the run's own predictions.

A ranking score orders the suspects; it does not say where to stop. The
confident joint of Northcutt, Jiang and Chuang ("Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021, §3.1) counts, for
every pair (given label `y`, true class `j`), the examples that are
*confidently* of class `j`: whose probability of `j` reaches the average
probability of `j` among the examples labelled `j` (a per-class threshold,
so that classes the model is less sure of still count). Rows are then
calibrated to the number of examples with each given label, and the
off-diagonal mass of row `y` estimates how many examples labelled `y` are
wrong.

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

    The confident joint's rows are rescaled to the number of examples with
    that label (calibration, Northcutt et al. 2021, eq. 2); the estimate
    for label `y` is the off-diagonal mass of row `y`, rounded.

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
    probs, labels = _check(probs, labels)
    joint = confident_joint(probs, labels).astype(np.float64)
    given = np.bincount(labels, minlength=probs.shape[1]).astype(np.float64)
    totals = joint.sum(axis=1)
    scale = np.divide(given, totals, out=np.zeros_like(given), where=totals > 0)
    calibrated = joint * scale[:, None]
    off_diagonal = calibrated.sum(axis=1) - np.diag(calibrated)
    return np.rint(off_diagonal).astype(np.int64)


def flag_per_class(scores, labels, counts):
    """Flags, within each given label `y`, the `counts[y]` highest scores.

    Args:
        scores: float `[n]` (higher: more suspicious; NaN never flagged).
        labels: int `[n]` given labels.
        counts: int `[C]` how many to flag per given label.

    Returns:
        bool `[n]`. Ties are broken by position (earlier first).
    """
    scores = np.asarray(scores, np.float64)
    labels = int_vector("labels", labels, len(scores))
    flagged = np.zeros(len(scores), bool)
    for y, count in enumerate(np.asarray(counts)):
        members = np.flatnonzero((labels == y) & ~np.isnan(scores))
        if count <= 0 or not members.size:
            continue
        order = members[np.argsort(-scores[members], kind="stable")]
        flagged[order[: int(count)]] = True
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
