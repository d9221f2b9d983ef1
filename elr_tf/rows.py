"""Per-example rows of a variable, written by sample id across replicas.

`TargetTable` and `MarginTracker` each keep one row per training example in
a non-trainable `[num_examples, width]` variable and rewrite the batch's
rows every step. They need the same things, which live here: ids checked
against the table's size, a write that stays correct when every replica of
a distribution strategy holds a different slice of the batch, and running
sums (`accumulate_rows`, `row_means`) for the statistics averaged over
training.
"""

import tensorflow as tf

from elr_tf import checks


def check_ids(ids, num_examples):
    """Flattens `ids` to int64 `[batch]`; fails at run time outside `[0, num_examples)`."""
    ids = tf.cast(tf.reshape(ids, [-1]), tf.int64)
    return checks.assert_in_range("`index` (sample id)", ids, "num_examples", num_examples)


def write_rows(variable, ids, rows):
    """Writes `rows` to `variable[ids]` for the whole global batch.

    Under `MirroredStrategy` (and `MultiWorkerMirroredStrategy`) a scatter
    by local ids alone would either update one replica's copy only
    (aggregation `NONE`) or keep only the first replica's rows
    (`ONLY_FIRST_REPLICA`), both silently wrong. Inside a replica context
    with several replicas, every replica's `(ids, rows)` are therefore
    all-gathered first, so each copy of a variable with `ONLY_FIRST_REPLICA`
    aggregation receives the same full update. Rows are cast to the
    variable's dtype.

    Args:
        variable: a `[num_examples, width]` backend `tf.Variable` (mirrored
            or not).
        ids: int64 `[batch]` this replica's ids.
        rows: `[batch, width]` this replica's new rows.

    Example:

    >>> variable = tf.Variable(tf.zeros([3, 2]))
    >>> write_rows(variable, tf.constant([2], tf.int64), tf.constant([[1.0, 2.0]]))
    >>> variable.numpy()
    array([[0., 0.],
           [0., 0.],
           [1., 2.]], dtype=float32)
    """
    all_ids, all_rows = ids, rows
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        all_ids, all_rows = _gather_from_replicas(context, ids, rows)
    with tf.control_dependencies([rows]):
        variable.scatter_update(tf.IndexedSlices(tf.cast(all_rows, variable.dtype), all_ids))


def _gather_from_replicas(context, ids, rows):
    """All-gathers `(ids, rows)` of every replica, whatever their batch sizes.

    Collective gathers need equal shapes, but the last batch of an epoch
    splits unevenly (or leaves a replica empty). Each replica pads to the
    largest local batch; padded slots are then rewritten as copies of the
    first real `(id, row)` pair, so the scatter writes that row twice with the
    same value and no stray row is touched.
    """
    size = tf.shape(ids)[0]
    sizes = context.all_gather(size[None], axis=0)
    longest = tf.reduce_max(sizes)
    pad = longest - size
    ids = tf.pad(ids, [[0, pad]])
    rows = tf.pad(rows, [[0, pad], [0, 0]])
    all_ids = context.all_gather(ids, axis=0)
    all_rows = context.all_gather(rows, axis=0)
    # Slot j of replica r holds a real example iff j < sizes[r].
    all_valid = tf.reshape(tf.range(longest)[None, :] < sizes[:, None], [-1])
    first = tf.argmax(tf.cast(all_valid, tf.int32), output_type=tf.int32)
    all_ids = tf.where(all_valid, all_ids, all_ids[first])
    all_rows = tf.where(all_valid[:, None], all_rows, all_rows[first][None, :])
    return all_ids, all_rows


def accumulate_rows(variable, ids, values):
    """Adds `values` to the running sums of rows `ids` and counts the update.

    `variable` is `[num_examples, width + 1]` float32: the sums of every
    value written to a row so far, then how many there were (`row_means`
    reads the means). The write goes through `write_rows`, so every
    replica's copy receives the whole global batch.

    Args:
        variable: the backend `tf.Variable` of the sums (mirrored or not).
        ids: int64 `[batch]` this replica's ids (distinct within the batch).
        values: float `[batch, width]` this replica's values.

    Example:

    >>> sums = tf.Variable(tf.zeros([2, 2]))
    >>> accumulate_rows(sums, tf.constant([1], tf.int64), tf.constant([[3.0]]))
    >>> accumulate_rows(sums, tf.constant([1], tf.int64), tf.constant([[5.0]]))
    >>> row_means(sums).numpy()
    array([[nan],
           [ 4.]], dtype=float32)
    """
    values = tf.cast(values, tf.float32)
    added = tf.concat([values, tf.ones_like(values[:, :1])], axis=-1)
    write_rows(variable, ids, tf.gather(variable, ids) + added)


def row_means(sums, empty=float("nan")):
    """float32 `[num_examples, width]` means of `accumulate_rows` sums.

    Rows never updated hold `empty`.
    """
    sums = tf.convert_to_tensor(sums)
    counts = sums[:, -1:]
    return tf.where(counts > 0, sums[:, :-1] / tf.maximum(counts, 1.0), empty)
