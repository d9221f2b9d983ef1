"""`NonFiniteGuard`: stop training at the first NaN or infinity, and say where.

Keras's `TerminateOnNaN` looks at the loss only and lets the epoch's other
callbacks run (checkpoints included). A network can turn its weights and the
target table into NaN while the loss stays finite (a ReLU network on NaN
inputs), so this guard also checks every weight and every target table at
the end of each epoch, and it raises instead of stopping, so that the
callbacks after it (checkpoints, `CSVLogger`) never record the bad epoch.
"""

import math

import keras
import numpy as np
import tensorflow as tf


class NonFiniteGuard(keras.callbacks.Callback):
    """Raises `FloatingPointError` at the first non-finite loss, weight or table.

    Checks the logged loss after every batch and, at the end of every epoch,
    every floating-point weight of the model (target tables included: they
    are weights of `ELRModel` and `ELRPlusModel`) in one compiled reduction.
    Place it before callbacks that save state (`BackupAndRestore`,
    `ModelCheckpoint`, `CSVLogger`): they then never see a bad epoch.

    Args:
        advice: text appended to the error, e.g. where the last good
            checkpoint is.

    Example:

    ```python
    model.fit(ds, epochs=10, callbacks=[elr_tf.callbacks.NonFiniteGuard(),
                                        keras.callbacks.BackupAndRestore("backup")])
    ```
    """

    def __init__(self, advice=""):
        super().__init__()
        self.advice = advice
        self._epoch = 0
        self._batch = 0
        self._all_finite = None

    @property
    def position(self):
        """`(epoch, step)`, both 1-based, of the batch being trained or last trained."""
        return self._epoch + 1, self._batch + 1

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._batch = batch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(
                f"Non-finite training loss ({float(loss)}) at epoch {self._epoch + 1}, "
                f"step {batch + 1}."
            )

    def on_epoch_end(self, epoch, logs=None):
        variables = [w for w in self.model.weights if tf.as_dtype(w.dtype).is_floating]
        if self._all_finite is None:
            self._all_finite = tf.function(
                lambda: tf.reduce_all(
                    [tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in variables]
                )
            )
        if bool(self._all_finite()):
            return
        bad = [w.path for w in variables if not np.isfinite(keras.ops.convert_to_numpy(w)).all()]
        self._fail(
            f"Non-finite values after epoch {epoch + 1} in {len(bad)} weights, e.g. "
            f"{', '.join(bad[:3])}."
        )

    def _fail(self, message):
        raise FloatingPointError(f"{message} Training stopped. {self.advice}".rstrip())
