"""Per-example rows written by sample id, on one device and across replicas."""

import numpy as np
import pytest
import tensorflow as tf

from elr_tf.rows import accumulate_rows, check_ids, row_means, write_rows


def test_check_ids_flattens_to_int64_and_names_the_bound():
    ids = check_ids(tf.constant([[1], [2]], tf.int32), num_examples=3)
    assert ids.dtype == tf.int64
    np.testing.assert_array_equal(ids, [1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be < num_examples=3"):
        check_ids(tf.constant([3]), num_examples=3)


def test_write_rows_hand_values_and_cast_to_the_variable_dtype():
    variable = tf.Variable(tf.zeros([4, 2], tf.bfloat16))
    write_rows(variable, tf.constant([3, 0], tf.int64), tf.constant([[1.0, 2.0], [0.5, 0.25]]))
    np.testing.assert_array_equal(
        tf.cast(variable, tf.float32), [[0.5, 0.25], [0, 0], [0, 0], [1.0, 2.0]]
    )


@pytest.mark.parametrize("sizes", [(3, 1), (2, 0)])
def test_uneven_replica_batches_reach_every_copy(mirrored, sizes):
    # Replica r writes ids `starts[r] ...` with rows `[id, 10 * id]`; the
    # padding of the shorter replica must write no stray row.
    strategy = mirrored(2)
    starts = (0, sizes[0])
    with strategy.scope():
        variable = tf.Variable(
            tf.fill([6, 2], -1.0), aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
        )

    def local_ids(context):
        r = context.replica_id_in_sync_group
        return tf.range(starts[r], starts[r] + sizes[r], dtype=tf.int64)

    ids = strategy.experimental_distribute_values_from_function(local_ids)

    @tf.function
    def step(ids):
        def write(ids):
            rows = tf.stack([tf.cast(ids, tf.float32), 10.0 * tf.cast(ids, tf.float32)], -1)
            write_rows(variable, ids, rows)

        strategy.run(write, args=(ids,))

    step(ids)
    written = sum(sizes)
    expected = np.full([6, 2], -1.0, "float32")
    expected[:written] = np.stack([np.arange(written), 10 * np.arange(written)], -1)
    for copy in strategy.experimental_local_results(variable):
        np.testing.assert_array_equal(copy.numpy(), expected)


def test_accumulate_rows_sums_and_counts_and_row_means():
    sums = tf.Variable(tf.zeros([3, 3]))
    accumulate_rows(sums, tf.constant([0, 2], tf.int64), tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    accumulate_rows(sums, tf.constant([2], tf.int64), tf.constant([[5.0, 0.0]]))
    np.testing.assert_array_equal(sums.numpy(), [[1, 2, 1], [0, 0, 0], [8, 4, 2]])
    means = row_means(sums).numpy()
    np.testing.assert_array_equal(means[[0, 2]], [[1, 2], [4, 2]])
    assert np.isnan(means[1]).all()
    np.testing.assert_array_equal(row_means(sums, empty=0.0).numpy()[1], [0, 0])
