"""The table averaged over training: kept by the model, read by the finder."""

import keras
import numpy as np
import pytest
from hand_tables import LABELS, TABLE, by_id, frozen_run, memorised_tables, unsure_table

import elr_tf


def test_the_averaged_table_is_read_when_there_is_one():
    # The final table has learnt row 3's label (2); the averaged one has not.
    final = TABLE.copy()
    final[3] = [0.1, 0.1, 0.8]
    report = by_id(final, LABELS, mean_table=TABLE)
    assert report.table == "averaged"
    np.testing.assert_allclose(report.score, by_id(TABLE, LABELS).score)
    # The unseen/seen split follows the final table.
    assert report.seen.all()
    before = by_id(final, LABELS, table="final")
    assert before.table == "final" and before.count_lost is None
    assert before.table_class[3] == 2
    with pytest.raises(ValueError, match="mean_table.*table='final'. does not read"):
        by_id(final, LABELS, mean_table=TABLE, table="final")
    assert by_id(final, LABELS).table == "final"  # a bare table has no average
    with pytest.raises(ValueError, match="table='averaged'.*track_table_mean=True.*neither"):
        by_id(final, LABELS, table="averaged")
    with pytest.raises(ValueError, match="table.*Received: table='mean'"):
        by_id(final, LABELS, table="mean")
    with pytest.raises(ValueError, match="mean_table.*shape \\(6, 3\\).*shape=\\(2, 3\\)"):
        by_id(final, LABELS, mean_table=TABLE[:2])


def test_an_empty_average_leaves_the_final_table():
    # A table written without training has no average behind it.
    report = by_id(TABLE, LABELS, mean_table=np.zeros_like(TABLE))
    assert report.table == "final"
    np.testing.assert_allclose(report.score, by_id(TABLE, LABELS).score)
    with pytest.raises(ValueError, match="averaged row for every trained example"):
        by_id(TABLE, LABELS, mean_table=np.zeros_like(TABLE), table="averaged")


def test_a_memorised_run_counts_from_the_averaged_table():
    true, labels, averaged, final = memorised_tables()
    report = elr_tf.find_label_issues(final, labels, true_labels=true, mean_table=averaged)
    assert report.count_source == "averaged table, calibrated"
    assert report.count_lost == pytest.approx(0.75)
    assert report.num_estimated == 20 and report.metrics()["f1"] == 1.0
    before = elr_tf.find_label_issues(final, labels, true_labels=true, table="final")
    assert before.num_estimated == 5


def test_a_model_keeps_and_saves_its_averaged_table(tmp_path, seed):
    # The predictions never change, so every normalised row of the table,
    # and their average, is the prediction.
    model, x, y = frozen_run(24, 4, 3)
    backbone = model.backbone
    probs = elr_tf.losses.target_estimate(elr_tf.losses.clipped_softmax(backbone(x))).numpy()
    np.testing.assert_allclose(model.mean_target_table.numpy(), probs, rtol=1e-5)
    assert elr_tf.find_label_issues(model, y).table == "averaged"
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.mean_target_table, model.mean_target_table)
    off = elr_tf.ELRModel(backbone, num_examples=24, num_classes=3, track_table_mean=False)
    assert off.mean_target_table is None and off.mean_target_tables is None
    assert elr_tf.find_label_issues(off, y).table == "final"
    with pytest.raises(ValueError, match="track_table_mean.*Received: track_table_mean=1"):
        elr_tf.ELRModel(backbone, num_examples=24, num_classes=3, track_table_mean=1)


def test_a_report_says_how_many_rows_are_unplaced():
    probs, labels = unsure_table()
    true = labels.copy()
    true[70:80] = 0
    # A sixth or more confident of no class: the count is calibrated.
    report = elr_tf.find_label_issues(probs, labels, true_labels=true)
    assert report.unplaced == pytest.approx(0.1875)
    assert (report.count_source, report.num_estimated) == ("table, calibrated", 6)
    # Beside an averaged table that lost nothing to the final one.
    report = elr_tf.find_label_issues(probs, labels, true_labels=true, mean_table=probs)
    assert (report.count_lost, report.count_source) == (0.0, "averaged table, calibrated")
    assert report.metrics()["num_estimated"] == 6
