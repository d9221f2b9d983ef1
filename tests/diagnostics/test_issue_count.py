import numpy as np
import pytest
from hand_tables import memorised_tables, unsure_table

from elr_tf.diagnostics import issue_count

# Given labels 0, 0, 0, 1, 1, 1. Per-class thresholds: class 0 mean of
# P[:3, 0] = (0.9 + 0.8 + 0.1) / 3 = 0.6; class 1 mean of P[3:, 1] =
# (0.7 + 0.8 + 0.3) / 3 = 0.6.
PROBS = np.array(
    [
        [0.9, 0.1],  # label 0, confidently 0
        [0.8, 0.2],  # label 0, confidently 0
        [0.1, 0.9],  # label 0, confidently 1 -> off-diagonal
        [0.3, 0.7],  # label 1, confidently 1
        [0.2, 0.8],  # label 1, confidently 1
        [0.7, 0.3],  # label 1, confidently 0 -> off-diagonal
    ]
)
LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_confident_joint_by_hand():
    np.testing.assert_array_equal(issue_count.confident_joint(PROBS, LABELS), [[2, 1], [1, 2]])


def test_example_above_no_threshold_is_not_counted():
    probs = np.vstack([PROBS, [0.55, 0.45]])  # label 0; below both thresholds
    labels = np.append(LABELS, 0)
    # Thresholds: class 0 (0.9 + 0.8 + 0.1 + 0.55) / 4 = 0.5875; class 1 0.6.
    joint = issue_count.confident_joint(probs, labels)
    np.testing.assert_array_equal(joint, [[2, 1], [1, 2]])
    # The estimate is the off-diagonal, not scaled up for the uncounted row.
    np.testing.assert_array_equal(issue_count.estimate_issue_counts(probs, labels), [1, 1])


def test_above_several_thresholds_counts_the_most_probable():
    probs = np.array([[0.5, 0.5, 0.0], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]])
    # Thresholds 0.5 (label 0), 0.6 (label 1), 0.8 (label 2): row 0 reaches
    # class 0 only; the argmax among classes above threshold wins.
    joint = issue_count.confident_joint(probs, np.array([0, 1, 2]))
    np.testing.assert_array_equal(joint, np.eye(3, dtype=int))


def test_clean_table_estimates_nothing_and_a_flipped_class_is_found():
    # Rows that put 7/8 on their true class (exact in binary floating point,
    # so the thresholds are exactly 7/8): the estimate is exact.
    true = np.repeat(np.arange(3), 100)
    probs = np.full((300, 3), 1 / 16)
    probs[np.arange(300), true] = 7 / 8
    assert issue_count.estimate_issue_counts(probs, true).sum() == 0
    noisy = true.copy()
    noisy[:20] = 1  # 20 examples of class 0 labelled 1
    noisy[100:105] = 2  # 5 of class 1 labelled 2
    np.testing.assert_array_equal(issue_count.estimate_issue_counts(probs, noisy), [0, 20, 5])


def test_flag_top_takes_the_highest_scores_and_never_nan():
    scores = np.array([0.1, 0.9, 0.5, np.nan, 0.8, 0.5, 0.7])
    np.testing.assert_array_equal(
        issue_count.flag_top(scores, 3), [False, True, False, False, True, False, True]
    )
    # Ties keep position order; never more than the known scores.
    assert issue_count.flag_top(scores, 4)[2] and not issue_count.flag_top(scores, 4)[5]
    assert (
        issue_count.flag_top(scores, 99).sum() == 6 and issue_count.flag_top(scores, 0).sum() == 0
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes >= 2.*shape=\\(6,\\)"):
        issue_count.confident_joint(PROBS[:, 0], LABELS)
    with pytest.raises(ValueError, match="labels.*\\[0, 2\\).*max=2"):
        issue_count.estimate_issue_counts(PROBS, np.array([0, 0, 0, 1, 1, 2]))


def test_pair_counts_are_the_joint_off_its_diagonal():
    # Three classes; rows put 7/8 on one class (thresholds exactly 7/8).
    true = np.repeat(np.arange(3), 100)
    probs = np.full((300, 3), 1 / 16)
    probs[np.arange(300), true] = 7 / 8
    noisy = true.copy()
    noisy[:20] = 1  # 20 zeros labelled 1: pair (given 1, suggested 0)
    noisy[100:105] = 2  # 5 ones labelled 2: pair (given 2, suggested 1)
    pairs = issue_count.estimate_pair_counts(probs, noisy)
    np.testing.assert_array_equal(pairs, [[0, 0, 0], [20, 0, 0], [0, 5, 0]])
    per_label = issue_count.estimate_issue_counts(probs, noisy)
    np.testing.assert_array_equal(pairs.sum(axis=1), per_label)


def test_prune_by_pair_spends_each_budget_inside_its_pair():
    # Label 0 for all six; scores p_1 - p_0 and p_2 - p_0 worked out by hand:
    #   row 0: 0.6-0.2=+0.4 (for 1), 0.2-0.2=0.0 (for 2)
    #   row 1: 0.1-0.3=-0.2,          0.6-0.3=+0.3
    #   row 2: 0.5-0.3=+0.2,          0.2-0.3=-0.1
    #   row 3: 0.1-0.8=-0.7,          0.1-0.8=-0.7
    #   row 4: 0.2-0.4=-0.2,          0.4-0.4=0.0
    #   row 5: 0.45-0.1=+0.35,        0.45-0.1=+0.35
    probs = np.array(
        [
            [0.2, 0.6, 0.2],
            [0.3, 0.1, 0.6],
            [0.3, 0.5, 0.2],
            [0.8, 0.1, 0.1],
            [0.4, 0.2, 0.4],
            [0.1, 0.45, 0.45],
        ]
    )
    labels = np.zeros(6, int)
    budgets = np.array([[0, 2, 1], [0, 0, 0], [0, 0, 0]])
    # Pair (0, 1) takes rows 0 and 5; pair (0, 2) takes row 5 (0.35 > 0.3), which
    # is already flagged: two flags for a budget of three.
    flagged = issue_count.prune_by_pair(probs, labels, budgets)
    np.testing.assert_array_equal(flagged, [True, False, False, False, False, True])
    budgets[0, 2] = 2  # now rows 5 and 1 for class 2
    np.testing.assert_array_equal(
        issue_count.prune_by_pair(probs, labels, budgets), [True, True, False, False, False, True]
    )
    with pytest.raises(ValueError, match="pair_counts"):
        issue_count.prune_by_pair(probs, labels, np.ones((2, 2)))


def test_calibration_spreads_the_unconfident_over_their_label_row():
    probs = np.vstack([PROBS, [0.55, 0.45]])  # label 0; confident of no class
    labels = np.append(LABELS, 0)
    # Row 0 counts (2, 1) of its 4 examples: scaled by 4 / 3 to (2.67, 1.33),
    # rounded; row 1 already counts its 3.
    joint = issue_count.confident_joint(probs, labels, calibrate=True)
    np.testing.assert_array_equal(joint, [[3, 1], [1, 2]])
    pairs = issue_count.estimate_pair_counts(probs, labels, calibrate=True)
    np.testing.assert_array_equal(pairs, [[0, 1], [1, 0]])
    # A label row with no confident example stays zero.
    lonely = issue_count.confident_joint(
        np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.4, 0.3, 0.3]]), [0, 1, 2], calibrate=True
    )
    np.testing.assert_array_equal(lonely[2], [0, 0, 1])


def test_count_lost_measures_what_the_final_table_gave_up():
    _, labels, averaged, final = memorised_tables()
    assert issue_count.estimate_pair_counts(averaged, labels).sum() == 20
    assert issue_count.count_lost(final, averaged, labels) == pytest.approx(0.75)
    assert issue_count.count_lost(averaged, averaged, labels) == 0.0
    clean = np.repeat([0, 1], 100)
    assert issue_count.count_lost(averaged, averaged, clean) == 0.0  # counts nothing


def test_pair_budgets_count_from_the_averaged_table_when_the_run_memorised():
    _, labels, averaged, final = memorised_tables()
    # Neighbours that vote with the learnt flips hide all 20.
    voted = (final + np.eye(2)[labels]) / 2
    pairs, lost, unplaced, source = issue_count.pair_budgets(
        averaged, labels, voted=voted, final=final
    )
    assert (lost, unplaced, source) == (pytest.approx(0.75), 0.0, "averaged table, calibrated")
    np.testing.assert_array_equal(pairs, [[0, 0], [20, 0]])
    # A run whose table settled (nothing lost) counts from the votes.
    pairs, lost, _, source = issue_count.pair_budgets(averaged, labels, voted=voted, final=averaged)
    assert (lost, source) == (0.0, "table + neighbours")
    np.testing.assert_array_equal(pairs, issue_count.estimate_pair_counts(voted, labels))
    # Without a final table to compare: the table (or the votes) as before.
    pairs, lost, _, source = issue_count.pair_budgets(averaged, labels)
    assert (lost, source) == (None, "table")
    np.testing.assert_array_equal(pairs, [[0, 0], [20, 0]])


def test_unplaced_is_the_share_confident_of_no_class():
    probs, labels = unsure_table()
    assert issue_count.unplaced(probs, labels) == pytest.approx(15 / 80)
    assert issue_count.unplaced(probs[:0], labels[:0]) == 0.0
    # The uncalibrated joint counts the unplaced rows nowhere.
    assert issue_count.confident_joint(probs, labels).sum() == 80 - 15


def test_pair_budgets_calibrate_when_a_sixth_is_unplaced():
    probs, labels = unsure_table()
    # The table takes its 15 unplaced rows for clean: 5 of the 10 flips.
    np.testing.assert_array_equal(issue_count.estimate_pair_counts(probs, labels), [[0, 0], [5, 0]])
    # 0.1875 >= UNPLACED: the calibrated joint spreads them, 5 * 40 / 35.
    budgets = issue_count.pair_budgets(probs, labels, voted=probs)
    assert issue_count.UNPLACED == pytest.approx(1 / 6)
    assert (budgets.unplaced, budgets.source) == (pytest.approx(0.1875), "table, calibrated")
    np.testing.assert_array_equal(budgets.pair_counts, [[0, 0], [6, 0]])
    # Beside a final table that lost nothing: the averaged table, calibrated.
    budgets = issue_count.pair_budgets(probs, labels, voted=probs, final=probs)
    assert (budgets.lost, budgets.source) == (0.0, "averaged table, calibrated")
    # With the clean 0s placed, 5 of 80 (below a sixth) are unplaced: the
    # votes count as they are.
    probs[30:40] = [0.9, 0.1]
    budgets = issue_count.pair_budgets(probs, labels, voted=probs)
    assert (budgets.unplaced, budgets.source) == (pytest.approx(5 / 80), "table + neighbours")
    np.testing.assert_array_equal(budgets.pair_counts, [[0, 0], [5, 0]])
