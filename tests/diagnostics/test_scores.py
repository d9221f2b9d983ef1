import numpy as np
import pytest

from elr_tf.diagnostics import scores

# Three examples, two classes; the last was never trained on.
SHARES = np.array([[0.8, 0.2], [0.3, 0.7], [0.0, 0.0]])
LABELS = np.array([0, 0, 1])
SEEN = np.array([True, True, False])
AUM = np.array([2.0, -1.0, np.nan])
STATS = scores.Statistics(SHARES, LABELS, SEEN, AUM)


def test_self_confidence_and_margin_by_hand():
    np.testing.assert_allclose(scores.compute("self_confidence", STATS), [0.2, 0.7, np.nan])
    np.testing.assert_allclose(scores.compute("margin", STATS), [-0.6, 0.4, np.nan])


def test_aum_and_combined_by_hand():
    np.testing.assert_allclose(scores.compute("aum", STATS), [-2.0, 1.0, np.nan])
    # Both scores rank example 1 above example 0: ranks 1 and 0 each.
    np.testing.assert_allclose(scores.compute("combined", STATS), [0.0, 1.0, np.nan])


def test_unit_ranks_share_ties_and_keep_nan():
    ranks = scores.unit_ranks(np.array([3.0, 1.0, 1.0, np.nan, 5.0]))
    np.testing.assert_allclose(ranks, [2 / 3, 1 / 6, 1 / 6, np.nan, 1.0])


def test_a_score_that_needs_margins_names_them():
    without = scores.Statistics(SHARES, LABELS, SEEN)
    for name, score in scores.SCORES.items():
        if score.needs_margins:
            with pytest.raises(ValueError, match=f"score='{name}'.*track_margins"):
                scores.compute(name, without)
        else:
            assert scores.compute(name, without).shape == (3,)


def test_describe_lists_every_score():
    text = scores.describe()
    assert all(f"{name} (" in text for name in scores.SCORES)
