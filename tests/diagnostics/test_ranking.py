"""Tests for elr_tf.diagnostics.ranking: detection and ranking metrics."""

import itertools
import math

import numpy as np
import pytest

from elr_tf.diagnostics import ranking


def _brute_force_auroc(scores, positives):
    pos, neg = scores[positives], scores[~positives]
    wins = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


def _brute_force_average_precision(scores, positives):
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= threshold
        recall = np.count_nonzero(chosen & positives) / np.count_nonzero(positives)
        precision = np.count_nonzero(chosen & positives) / np.count_nonzero(chosen)
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def test_ranking_metrics_hand_values_with_ties():
    scores = np.array([0.5, 0.5, 0.2])
    positives = np.array([True, False, True])
    # AUROC: (.5 vs .5) tie -> 1/2, (.2 vs .5) lost -> 0; mean 1/4.
    assert ranking.roc_auc(scores, positives) == pytest.approx(0.25)
    # Threshold .5: P=1/2, R=1/2; threshold .2: P=2/3, R=1.
    assert ranking.average_precision(scores, positives) == pytest.approx(0.25 + 1 / 3)
    perfect = np.array([0.9, 0.8, 0.1])
    assert ranking.roc_auc(perfect, [True, True, False]) == 1.0
    assert ranking.average_precision(perfect, [True, True, False]) == 1.0
    all_tied = np.ones(4)
    assert ranking.roc_auc(all_tied, [True, False, False, True]) == 0.5
    assert ranking.average_precision(all_tied, [True, False, False, False]) == 0.25


def test_ranking_metrics_match_brute_force_on_random_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        scores = rng.integers(0, 5, n) / 4.0  # few distinct values: many ties
        positives = rng.random(n) < 0.4
        positives[0], positives[1] = True, False
        assert ranking.roc_auc(scores, positives) == pytest.approx(
            _brute_force_auroc(scores, positives)
        )
        assert ranking.average_precision(scores, positives) == pytest.approx(
            _brute_force_average_precision(scores, positives)
        )


def test_ranking_metrics_match_scikit_learn_when_installed():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is optional")
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 7, 300) / 6.0
    positives = rng.random(300) < 0.3
    assert ranking.roc_auc(scores, positives) == pytest.approx(
        metrics.roc_auc_score(positives, scores)
    )
    assert ranking.average_precision(scores, positives) == pytest.approx(
        metrics.average_precision_score(positives, scores)
    )


def test_undefined_metrics_are_nan():
    result = ranking.detection_metrics([False, False], [0.1, 0.2], [False, False])
    assert result["precision"] == 0.0
    for name in ("recall", "f1", "auroc", "auprc"):
        assert math.isnan(result[name]), name
    assert math.isnan(ranking.roc_auc([0.1, 0.2], [True, True]))
