"""The per-example target table of ELR, updated by sample id."""

import keras
import tensorflow as tf

from elr_tf import checks, losses
from elr_tf.rows import accumulate_rows, check_ids, row_means, write_rows

# Storage precisions of the table. bfloat16/float16 halve its memory (a
# WebVision-1000 table, 2.4M x 1000, is 9.6 GB in float32); the ensemble
# arithmetic is always float32.
STORAGE_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="elr_tf")
class TargetTable(keras.layers.Layer):
    """A `[num_examples, num_classes]` table of temporally ensembled targets.

    Row `i` holds the running average of the network's (clipped, renormalised)
    predictions for the training example whose stable id is `i`
    (ELR-SPEC §1, step 3). The table is a non-trainable float32 weight, so it
    is saved by `model.save()`, `save_weights()`, `BackupAndRestore` and
    `tf.train.Checkpoint` together with the network, and it is created in the
    distribution strategy's scope when the model is.

    Distributed training: under `MirroredStrategy` (and
    `MultiWorkerMirroredStrategy`) every replica sees a different slice of the
    batch; `update` writes the rows of the whole global batch to every copy
    of the table (see `elr_tf.rows.write_rows`).

    With `track_mean=True` the layer also keeps, per row, the mean over all
    its updates of the row scaled to sum to 1: every example is updated once
    per epoch, so this is the table averaged over the epochs of training
    (`means()`). The final table of a run that has begun to memorise has
    moved toward the wrong labels; the average keeps the epochs before, and
    the label finder counts the wrong labels from it (docs/label_issues.md).
    It costs a second `[num_examples, num_classes + 1]` float32 weight.

    Args:
        num_examples: number of rows; ids must lie in `[0, num_examples)`.
        num_classes: number of columns.
        beta: temporal-ensembling momentum in `[0, 1)`.
        storage_dtype: `"float32"` (default), or `"bfloat16"`/`"float16"` to
            halve the table's memory; arithmetic stays float32.
        placement: None (with the model) or `"host"`: keep the table in host
            memory (single-replica training only), so a table larger than
            accelerator memory still works; each step moves only the batch's
            rows.
        validate_ids: check ids at run time (raises `InvalidArgumentError`
            naming the bad id). XLA drops run-time checks, so under
            `jit_compile=True` ids are not checked inside the step.
        track_mean: also keep the mean of every row over its updates.
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    >>> table = TargetTable(num_examples=4, num_classes=2, beta=0.5)
    >>> rows = table.update(tf.constant([1, 3]), tf.constant([[1., 0.], [0., 1.]]))
    >>> rows.numpy()
    array([[0.5, 0. ],
           [0. , 0.5]], dtype=float32)

    References:
        Liu et al., "Early-Learning Regularization Prevents Memorization of
        Noisy Labels", NeurIPS 2020, eq. (9).
    """

    def __init__(
        self,
        num_examples,
        num_classes,
        beta=0.7,
        validate_ids=True,
        storage_dtype="float32",
        placement=None,
        track_mean=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(
                f"`storage_dtype` must be one of {STORAGE_DTYPES}. "
                f"Received: storage_dtype={storage_dtype!r}"
            )
        if placement not in (None, "host"):
            raise ValueError(
                f"`placement` must be None or 'host'. Received: placement={placement!r}"
            )
        if placement == "host" and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise ValueError(
                "`placement='host'` keeps one table in host memory, which a "
                "multi-replica strategy would mirror onto every device; use "
                "`storage_dtype='bfloat16'` to halve the table there instead. "
                f"Received: placement={placement!r} under "
                f"{type(tf.distribute.get_strategy()).__name__}"
            )
        checks.positive_int("num_examples", num_examples)
        if checks.positive_int("num_classes", num_classes) < 2:
            raise ValueError(
                f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
            )
        checks.number_in("beta", beta, 0.0, 1.0, high_open=True)
        if not isinstance(track_mean, bool):
            raise ValueError(
                f"`track_mean` must be True or False. Received: track_mean={track_mean!r}"
            )
        self.num_examples = num_examples
        self.num_classes = num_classes
        self.beta = float(beta)
        self.validate_ids = validate_ids
        self.storage_dtype = storage_dtype
        self.placement = placement
        self.track_mean = track_mean
        with tf.device("/cpu:0" if placement == "host" else None):
            self.table = self._row_weight(num_classes, storage_dtype, "targets")
            # Sums of the normalised rows, then the number of updates.
            self.mean_sums = (
                self._row_weight(num_classes + 1, "float32", "mean_sums") if track_mean else None
            )
        self.built = True

    def _row_weight(self, width, dtype, name):
        return self.add_weight(
            shape=(self.num_examples, width),
            initializer="zeros",
            dtype=dtype,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name=name,
        )

    def _variable(self):
        # The backend `tf.Variable` (a `MirroredVariable` under a strategy):
        # `tf.gather` and `scatter_update` on it touch only the batch's rows,
        # never the whole (possibly huge) table.
        return self.table.value

    def _check_ids(self, ids):
        return check_ids(ids, self.num_examples) if self.validate_ids else ids

    def values(self):
        """The whole `[num_examples, num_classes]` table as a float32 tensor."""
        return tf.cast(tf.convert_to_tensor(self.table), tf.float32)

    def read(self, ids):
        """Returns the rows `T[ids]` as a float32 tensor."""
        ids = self._check_ids(tf.cast(tf.reshape(ids, [-1]), tf.int64))
        return tf.cast(tf.gather(self._variable(), ids), tf.float32)

    def update(self, ids, estimates):
        """Ensembles `estimates` into rows `ids` and returns the new rows.

        Must run inside the training step (replica context under a strategy).

        Args:
            ids: int `[batch]` stable sample ids of this replica's examples.
            estimates: float32 `[batch, num_classes]`, typically
                `losses.target_estimate(probs)`.

        Returns:
            The updated rows for `ids` (this replica's examples), ordered like
            `ids`. They are computed from the rows read before the write, so
            they are exactly what the table now holds for these ids.
        """
        ids = self._check_ids(tf.cast(tf.reshape(ids, [-1]), tf.int64))
        estimates = tf.stop_gradient(tf.cast(estimates, tf.float32))
        variable = self._variable()
        new_rows = losses.ensemble_targets(
            tf.cast(tf.gather(variable, ids), tf.float32), estimates, self.beta
        )
        # Rows are stored in `storage_dtype`; what this step returns is what
        # the table now holds (rounded the same way).
        new_rows = tf.cast(tf.cast(new_rows, self.storage_dtype), tf.float32)
        write_rows(variable, ids, new_rows)
        if self.mean_sums is not None:
            totals = tf.reduce_sum(new_rows, axis=-1, keepdims=True)
            accumulate_rows(self.mean_sums.value, ids, new_rows / totals)
        return new_rows

    def means(self):
        """float32 `[num_examples, num_classes]`: every row averaged over its updates.

        Each update's row is scaled to sum to 1 before it is averaged; rows
        never updated are zero (as in the table). None unless the layer was
        built with `track_mean=True`.
        """
        if self.mean_sums is None:
            return None
        return row_means(self.mean_sums, empty=0.0)

    def call(self, ids):
        return self.read(ids)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_examples=self.num_examples,
            num_classes=self.num_classes,
            beta=self.beta,
            validate_ids=self.validate_ids,
            storage_dtype=self.storage_dtype,
            placement=self.placement,
            track_mean=self.track_mean,
        )
        return config
