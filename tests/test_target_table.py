import keras
import numpy as np
import pytest
import tensorflow as tf

from elr_tf.target_table import TargetTable


def test_update_hand_values_and_untouched_rows():
    table = TargetTable(num_examples=4, num_classes=2, beta=0.5)
    rows = table.update(tf.constant([1, 3]), tf.constant([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(rows.numpy(), [[0.5, 0.0], [0.0, 0.5]])
    rows = table.update(tf.constant([3]), tf.constant([[1.0, 0.0]]))
    np.testing.assert_allclose(rows.numpy(), [[0.5, 0.25]])
    np.testing.assert_allclose(table.table.numpy(), [[0, 0], [0.5, 0], [0, 0], [0.5, 0.25]])


def test_update_inside_tf_function_reads_before_writing():
    table = TargetTable(num_examples=3, num_classes=2, beta=0.7)

    @tf.function(jit_compile=True)
    def step(ids, est):
        return table.update(ids, est)

    first = step(tf.constant([2]), tf.constant([[0.2, 0.8]]))
    second = step(tf.constant([2]), tf.constant([[0.2, 0.8]]))
    np.testing.assert_allclose(first.numpy(), [[0.06, 0.24]], rtol=1e-6)
    np.testing.assert_allclose(second.numpy(), [[0.102, 0.408]], rtol=1e-6)
    np.testing.assert_allclose(table.read([2]).numpy(), second.numpy())


def test_table_is_float32_non_trainable_weight_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        table = TargetTable(num_examples=5, num_classes=3)
        assert table.table.dtype == "float32"
        assert table.trainable_weights == []
        assert len(table.non_trainable_weights) == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("bad_id", [-1, 4])
def test_out_of_range_ids_raise_naming_index(bad_id):
    table = TargetTable(num_examples=4, num_classes=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="index"):
        table.update(tf.constant([0, bad_id]), tf.ones([2, 2]) / 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_examples=0, num_classes=2), "num_examples"),
        (dict(num_examples=3.5, num_classes=2), "num_examples"),
        (dict(num_examples=3, num_classes=1), "num_classes"),
        (dict(num_examples=3, num_classes=2, beta=1.0), "beta"),
        (dict(num_examples=3, num_classes=2, beta=-0.1), "beta"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TargetTable(**kwargs)


def test_get_config_round_trip():
    table = TargetTable(num_examples=7, num_classes=3, beta=0.9, name="t")
    clone = TargetTable.from_config(table.get_config())
    assert (clone.num_examples, clone.num_classes, clone.beta) == (7, 3, 0.9)
    assert clone.table.shape == (7, 3)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_storage_halves_memory_and_returns_stored_rows(dtype):
    table = TargetTable(num_examples=4, num_classes=3, beta=0.7, storage_dtype=dtype)
    assert table.table.dtype == dtype
    estimate = tf.constant([[0.1234567, 0.3333333, 0.5432100]])
    rows = table.update(tf.constant([2]), estimate)
    assert rows.dtype == tf.float32
    np.testing.assert_allclose(rows.numpy(), 0.3 * estimate.numpy(), rtol=1e-2)
    # What `update` returns is exactly what the table holds.
    np.testing.assert_array_equal(table.read([2]).numpy(), rows.numpy())


def test_host_placement_puts_table_on_cpu():
    table = TargetTable(num_examples=4, num_classes=2, placement="host")
    assert "CPU" in table.table.value.device
    rows = table.update(tf.constant([0]), tf.constant([[0.5, 0.5]]))
    np.testing.assert_allclose(rows.numpy(), [[0.15, 0.15]])


def test_host_placement_refused_under_multi_replica_strategy(mirrored):
    with mirrored(2).scope():
        with pytest.raises(ValueError, match="placement='host'"):
            TargetTable(num_examples=4, num_classes=2, placement="host")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(storage_dtype="int8"), "storage_dtype"),
        (dict(placement="gpu"), "placement"),
    ],
)
def test_bad_storage_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TargetTable(num_examples=3, num_classes=2, **kwargs)


def test_storage_options_round_trip_in_config():
    table = TargetTable(num_examples=3, num_classes=2, storage_dtype="bfloat16", placement="host")
    clone = TargetTable.from_config(table.get_config())
    assert (clone.storage_dtype, clone.placement) == ("bfloat16", "host")


def test_mean_of_normalised_rows_over_updates():
    table = TargetTable(num_examples=3, num_classes=2, beta=0.5, track_mean=True)
    assert table.means() is not None and table.mean_sums.shape == (3, 3)
    table.update(tf.constant([0, 2]), tf.constant([[1.0, 0.0], [0.0, 1.0]]))
    table.update(tf.constant([0]), tf.constant([[0.0, 1.0]]))
    # Row 0: [0.5, 0] scaled to [1, 0], then [0.25, 0.5] scaled to [1/3, 2/3];
    # row 1 never updated stays zero; row 2: [0, 0.5] scaled to [0, 1].
    np.testing.assert_allclose(table.means().numpy(), [[2 / 3, 1 / 3], [0, 0], [0, 1]], rtol=1e-6)
    np.testing.assert_array_equal(table.mean_sums.numpy()[:, 2], [2, 0, 1])
    assert TargetTable(num_examples=3, num_classes=2).means() is None


def test_mean_inside_xla_and_in_low_precision_storage():
    table = TargetTable(num_examples=2, num_classes=2, storage_dtype="bfloat16", track_mean=True)
    step = tf.function(table.update, jit_compile=True)
    for _ in range(3):
        step(tf.constant([1]), tf.constant([[0.25, 0.75]]))
    assert table.mean_sums.dtype == "float32"
    np.testing.assert_allclose(table.means().numpy()[1], [0.25, 0.75], rtol=1e-2)


def test_track_mean_is_refused_unless_a_bool_and_round_trips():
    with pytest.raises(ValueError, match="track_mean.*Received: track_mean='yes'"):
        TargetTable(num_examples=2, num_classes=2, track_mean="yes")
    table = TargetTable(num_examples=2, num_classes=2, track_mean=True)
    clone = TargetTable.from_config(table.get_config())
    assert clone.track_mean and clone.mean_sums is not None
