import keras
import numpy as np
import pytest
import tensorflow as tf
from hand_tables import frozen_run

import elr_tf
from elr_tf.margin_tracker import MarginTracker, label_margin


def test_label_margin_hand_values():
    logits = tf.constant([[2.0, 0.5, 1.0], [0.0, 3.0, -1.0], [1.0, 1.0, 0.0]])
    margins = label_margin(logits, tf.constant([0, 0, 1]))
    # 2 - 1; 0 - 3 (another class wins); a tie gives 0.
    np.testing.assert_allclose(margins.numpy(), [1.0, -3.0, 0.0])


def test_label_margin_inside_a_graph_and_in_float16():
    fn = tf.function(label_margin)
    logits = tf.constant([[1.0, 4.0]], tf.float16)
    np.testing.assert_allclose(fn(logits, tf.constant([1])).numpy(), [3.0])


def test_running_mean_over_updates():
    tracker = MarginTracker(num_examples=4)
    tracker.update(tf.constant([0, 2]), tf.constant([[2.0, 0.0], [0.0, 1.0]]), tf.constant([0, 0]))
    tracker.update(tf.constant([2]), tf.constant([[3.0, 0.0]]), tf.constant([0]))
    means = tracker.means().numpy()
    # id 0: one update of +2; id 2: (-1 + 3) / 2; ids 1, 3 never seen.
    np.testing.assert_allclose(means[[0, 2]], [2.0, 1.0])
    assert np.isnan(means[[1, 3]]).all()
    np.testing.assert_array_equal(tracker.counts().numpy(), [1, 0, 2, 0])
    np.testing.assert_allclose(tracker(tf.constant([2, 0])).numpy(), [1.0, 2.0])


def test_bad_ids_and_sizes():
    with pytest.raises(ValueError, match="num_examples.*Received: num_examples=0"):
        MarginTracker(num_examples=0)
    tracker = MarginTracker(num_examples=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_examples=2"):
        tracker.update(tf.constant([2]), tf.constant([[1.0, 0.0]]), tf.constant([0]))


def test_get_config_round_trip():
    tracker = MarginTracker(num_examples=5, validate_ids=False, name="m")
    clone = MarginTracker.from_config(tracker.get_config())
    assert (clone.num_examples, clone.validate_ids, clone.name) == (5, False, "m")


def test_elr_model_tracks_margins_of_its_own_logits_in_fit(seed):
    # The network never changes, so after any number of epochs each id's
    # mean margin is the margin of the fixed logits.
    model, x, y = frozen_run(40, 5, 3)
    expected = label_margin(model.backbone(x), y).numpy()
    np.testing.assert_allclose(model.average_margins.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.margin_tracker.counts().numpy(), np.full(40, 3.0))


def test_margins_can_be_turned_off_and_survive_saving(tmp_path, seed):
    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    off = elr_tf.ELRModel(backbone, num_examples=6, num_classes=3, track_margins=False)
    assert off.average_margins is None and off.margin_tracker is None
    with pytest.raises(ValueError, match="track_margins.*Received: track_margins=1"):
        elr_tf.ELRModel(backbone, num_examples=6, num_classes=3, track_margins=1)

    model = elr_tf.ELRModel(backbone, num_examples=6, num_classes=3)
    model.margin_tracker.sums.assign(np.arange(12, dtype="float32").reshape(6, 2))
    model.compile(optimizer="sgd")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.margin_tracker.sums.numpy(), model.margin_tracker.sums)
