"""Callbacks of the training program (the method's own are in `elr_tf.callbacks`)."""

import sys
import time

import keras


class TestEvaluation(keras.callbacks.Callback):
    """Adds clean test top-1/top-5 accuracy (and extra test sets) to the logs.

    Runs before `CSVLogger`/`TensorBoard` in the callback list so they
    record it.

    Args:
        test_sets: dict of log prefix to evaluation dataset.
        final_sets: optional dict like `test_sets` evaluated instead on the
            last epoch (e.g. the whole test sets when `test_sets` are
            subsets that keep the per-epoch cost down).
        epochs: the run's number of epochs (needed with `final_sets`).
    """

    def __init__(self, test_sets, final_sets=None, epochs=None):
        super().__init__()
        self.test_sets = test_sets
        self.final_sets = final_sets
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        last = self.final_sets is not None and epoch + 1 == self.epochs
        for prefix, dataset in (self.final_sets if last else self.test_sets).items():
            result = self.model.evaluate(dataset, verbose=0, return_dict=True)
            logs[f"{prefix}_accuracy"] = result["accuracy"]
            logs[f"{prefix}_top5"] = result["top5"]


class PeriodicDiagnostics(keras.callbacks.Callback):
    """Runs per-epoch diagnostics every `every` epochs, and times them.

    Test evaluation, the label audit and the memorisation monitor each read
    the whole test set or many training examples; on a small data set they
    can cost as much as the epoch. They run on the first epoch of each `fit`
    (so that `CSVLogger` sees every column), every `every`-th epoch and the
    last one; other epochs' rows hold NA for them. `extras_seconds` in the
    logs is what they cost that epoch.

    Args:
        callbacks: the diagnostic callbacks, run in order.
        every: positive int period, in epochs.
        epochs: the run's total number of epochs.
    """

    def __init__(self, callbacks, every, epochs):
        super().__init__()
        self.callbacks = list(callbacks)
        self.every = every
        self.epochs = epochs
        self._first = True

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        self._first = True
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        if self._first or (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            for callback in self.callbacks:
                callback.on_epoch_end(epoch, logs)
        self._first = False
        if logs is not None:
            logs["extras_seconds"] = time.perf_counter() - start

    def on_train_end(self, logs=None):
        for callback in self.callbacks:
            callback.on_train_end(logs)


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


class EpochLine(keras.callbacks.Callback):
    """Prints one concise line per epoch: loss, accuracy, test accuracy, seconds.

    The console form of a run outside a terminal (logs, CI), where a progress
    bar would print dozens of redrawn lines; every metric stays in
    `metrics.csv` and TensorBoard. Place it after the callbacks that add
    `test_accuracy` and `seconds` to the logs.
    """

    KEYS = (("loss", "loss"), ("accuracy", "acc"), ("test_accuracy", "test acc"))

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        parts += [f"{label} {logs[key]:.4f}" for key, label in self.KEYS if key in logs]
        if "seconds" in logs:
            parts.append(f"{logs['seconds']:.1f} s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)
