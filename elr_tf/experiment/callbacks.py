"""Callbacks of the training program (the method's own are in `elr_tf.callbacks`)."""

import time

import keras


class TestEvaluation(keras.callbacks.Callback):
    """Adds clean test top-1/top-5 accuracy (and extra test sets) to the logs.

    Runs before `CSVLogger`/`TensorBoard` in the callback list so they
    record it.
    """

    def __init__(self, test_sets):
        super().__init__()
        self.test_sets = test_sets

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix, dataset in self.test_sets.items():
            result = self.model.evaluate(dataset, verbose=0, return_dict=True)
            logs[f"{prefix}_accuracy"] = result["accuracy"]
            logs[f"{prefix}_top5"] = result["top5"]


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch's training part."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.seconds.append(elapsed)
        if logs is not None:
            logs["seconds"] = elapsed


class EpochClock(keras.callbacks.Callback):
    """Sets the data pipeline's epoch variable at the start of each epoch.

    The training data's shuffle and augmentation are drawn from
    `(seed, epoch)`, so a resumed run reads exactly the batches an
    uninterrupted run would have read.
    """

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)
