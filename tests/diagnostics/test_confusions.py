import dataclasses

import numpy as np
import pytest

from elr_tf.diagnostics import confusions, find_label_issues


def test_true_pair_counts_by_hand():
    labels = [0, 0, 1, 1, 2, 2, 2]
    true = [0, 1, 1, 2, 0, 0, -1]  # one 1 labelled 0, one 2 labelled 1, two 0s labelled 2
    np.testing.assert_array_equal(
        confusions.true_pair_counts(labels, true, 3), [[0, 1, 0], [0, 0, 1], [2, 0, 0]]
    )
    with pytest.raises(ValueError, match="true_labels.*num_classes=3"):
        confusions.true_pair_counts([0], [3], 3)


def test_pair_count_error_by_hand():
    true = [[0, 10, 0], [10, 0, 0], [0, 0, 0]]  # 20 wrong labels, a symmetric pair
    # Right in total, but 4 dog->cat labels are counted as cat->dog: off by 4 on
    # each side of the pair, 8 of 20.
    assert confusions.pair_count_error([[0, 14, 0], [6, 0, 0], [0, 0, 0]], true) == 0.4
    # The diagonal is not a pair and does not count.
    assert confusions.pair_count_error([[5, 10, 0], [10, 9, 0], [0, 0, 3]], true) == 0.0
    # Missing 5 and inventing 5 elsewhere: 10 of 20.
    assert confusions.pair_count_error([[0, 5, 5], [10, 0, 0], [0, 0, 0]], true) == 0.5
    assert np.isnan(confusions.pair_count_error(np.zeros((3, 3)), np.zeros((3, 3))))
    with pytest.raises(ValueError, match="one shape.*\\(2, 2\\) and \\(3, 3\\)"):
        confusions.pair_count_error(np.zeros((2, 2)), true)
    with pytest.raises(ValueError, match="true_counts.*non-negative"):
        confusions.pair_count_error(np.zeros((3, 3)), -np.ones((3, 3)))


def test_audit_pair_counts_survive_ranking_and_match_the_truth_where_exact():
    # Rows put 7/8 on their true class: the estimate is exact, pair by pair.
    true = np.repeat(np.arange(3), 50)
    table = np.full((150, 3), 1 / 16)
    table[np.arange(150), true] = 7 / 8
    labels = true.copy()
    labels[:6] = 2  # six 0s labelled 2
    labels[50:53] = 0  # three 1s labelled 0
    report = find_label_issues(table, labels, true_labels=true)
    expected = [[0, 3, 0], [0, 0, 0], [6, 0, 0]]
    np.testing.assert_array_equal(report.pair_counts, expected)
    np.testing.assert_array_equal(report.by_id().pair_counts, expected)  # not reordered
    np.testing.assert_array_equal(report.true_pair_counts(), expected)
    assert report.num_estimated == 9
    assert report.metrics()["pair_error"] == 0.0
    bare = dataclasses.replace(report, pair_counts=None)
    with pytest.raises(ValueError, match="no `pair_counts`"):
        bare.true_pair_counts()
    pairs = find_label_issues(table, labels, true_labels=true, flag="pairs")
    np.testing.assert_array_equal(np.sort(pairs.ids[pairs.flagged]), [0, 1, 2, 3, 4, 5, 50, 51, 52])
    assert confusions.top_pairs(report.pair_counts, ["a", "b", "c"], 5) == [
        ("c", "a", 6),
        ("a", "b", 3),
    ]


def test_plot_confusions_writes_a_png_and_refuses_bad_counts(tmp_path):
    counts = np.array([[5, 2], [7, 9]])
    path = tmp_path / "confusions.png"
    confusions.plot_confusions(counts, path, class_names=["cat", "dog"], true_counts=counts.T)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="`true_counts` must have the shape"):
        confusions.plot_confusions(counts, path, true_counts=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="`class_names` must name the 2 classes"):
        confusions.plot_confusions(counts, path, class_names=["cat"])
    with pytest.raises(ValueError, match="`pair_counts` must be non-negative"):
        confusions.plot_confusions(-counts, path)
