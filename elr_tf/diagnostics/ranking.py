"""Detection and ranking metrics of label-error finders.

Precision, recall and F1 of a set of flags; AUROC and average precision of a
ranking score. Plain NumPy, so that any finder (the ELR table, cleanlab, a
training-dynamics score) is measured by the same code.
"""

import math

import numpy as np


def detection_metrics(flagged, scores, positives):
    """Precision, recall and F1 of `flagged`; AUROC and AP of `scores`.

    Args:
        flagged: bool `[n]` predictions.
        scores: float `[n]` ranking scores (higher: more likely positive).
        positives: bool `[n]` ground truth (wrong labels).

    Returns:
        dict with `precision`, `recall`, `f1`, `auroc`, `auprc`,
        `num_examples`, `num_noisy`, `num_flagged`. See
        `LabelAudit.metrics` for the undefined cases.
    """
    flagged = np.asarray(flagged, bool)
    positives = np.asarray(positives, bool)
    true_positives = np.count_nonzero(flagged & positives)
    num_flagged = np.count_nonzero(flagged)
    num_positive = np.count_nonzero(positives)
    precision = true_positives / num_flagged if num_flagged else 0.0
    recall = true_positives / num_positive if num_positive else math.nan
    if math.isnan(recall):
        f1 = math.nan
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auroc": roc_auc(scores, positives),
        "auprc": average_precision(scores, positives),
        "num_examples": int(len(positives)),
        "num_noisy": int(num_positive),
        "num_flagged": int(num_flagged),
    }


def roc_auc(scores, positives):
    """Area under the ROC curve, ties counted as half.

    Equals the probability that a random positive scores above a random
    negative, plus half the probability of a tie (Mann-Whitney U with
    mid-ranks). NaN unless both classes are present.
    """
    scores, positives = _check_ranking(scores, positives)
    num_positive = np.count_nonzero(positives)
    num_negative = len(positives) - num_positive
    if num_positive == 0 or num_negative == 0:
        return math.nan
    ranks = _mid_ranks(scores)
    rank_sum = ranks[positives].sum()
    u = rank_sum - num_positive * (num_positive + 1) / 2.0
    return float(u / (num_positive * num_negative))


def average_precision(scores, positives):
    """Average precision (area under the precision-recall curve).

    `sum_k (R_k - R_{k-1}) P_k` over the distinct score thresholds taken in
    decreasing order, tied scores entering together (scikit-learn's
    `average_precision_score` definition, no interpolation). NaN without
    positives.
    """
    scores, positives = _check_ranking(scores, positives)
    num_positive = np.count_nonzero(positives)
    if num_positive == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = np.cumsum(positives[order])
    # The last position of each run of equal scores: one threshold each.
    ends = np.flatnonzero(np.diff(sorted_scores, append=-np.inf) != 0)
    true_positives = hits[ends]
    precision = true_positives / (ends + 1)
    recall_steps = np.diff(true_positives, prepend=0) / num_positive
    return float(np.sum(recall_steps * precision))


def _check_ranking(scores, positives):
    scores = np.asarray(scores, np.float64).reshape(-1)
    positives = np.asarray(positives, bool).reshape(-1)
    if len(scores) != len(positives):
        raise ValueError(
            "`scores` and `positives` must have the same length. Received: "
            f"{len(scores)} and {len(positives)}"
        )
    if np.isnan(scores).any():
        raise ValueError("`scores` must not contain NaN (drop unseen examples first).")
    return scores, positives


def _mid_ranks(values):
    # 1-based ranks in increasing order; tied values share the mean rank.
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.diff(sorted_values, prepend=-np.inf) != 0)
    ends = np.append(starts[1:], len(values))
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks
