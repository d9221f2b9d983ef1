"""Tests for elr_tf.experiment.callbacks: periodic diagnostics and the epoch line."""

import io

import keras
import numpy as np
import tensorflow as tf

from elr_tf.experiment import callbacks as program_callbacks
from elr_tf.experiment.callbacks import EpochLine, PeriodicDiagnostics


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        logs["diagnostic"] = float(epoch)

    def on_train_end(self, logs=None):
        self.events.append("end")


def _fit(callbacks, epochs, initial_epoch=0):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 2), "float32")
    history = model.fit(
        x, x, epochs=epochs, initial_epoch=initial_epoch, verbose=0, callbacks=callbacks
    )
    return history.history


def test_diagnostics_run_first_every_kth_and_last_epoch_and_are_timed():
    recorder = _Recorder()
    history = _fit([PeriodicDiagnostics([recorder], every=3, epochs=7)], epochs=7)
    assert recorder.epochs == [0, 2, 5, 6]
    assert recorder.events == ["begin", "end"]
    assert len(history["extras_seconds"]) == 7 and min(history["extras_seconds"]) >= 0


def test_a_resumed_fit_runs_the_diagnostics_on_its_first_epoch():
    recorder = _Recorder()
    _fit([PeriodicDiagnostics([recorder], every=5, epochs=9)], epochs=9, initial_epoch=6)
    assert recorder.epochs == [6, 8]


def test_epoch_line_is_one_concise_line():
    stream = io.StringIO()
    line = EpochLine(epochs=3, stream=stream)
    line.on_epoch_end(
        1,
        {
            "loss": 0.5,
            "accuracy": 0.75,
            "test_accuracy": 0.7,
            "seconds": 2.25,
            "ce": 0.4,
            "audit_f1": 0.9,
        },
    )
    assert stream.getvalue() == "epoch 2/3  loss 0.5000  acc 0.7500  test acc 0.7000  2.2 s\n"


def test_test_evaluation_reads_the_subset_until_the_last_epoch():
    # The subset holds one example the model gets right; the whole set adds
    # three it gets wrong, so the logged accuracy tells which set was read.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(2, name="top5")],
    )
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], "float32")
    y = np.array([0, 1, 1, 1])
    subset = tf.data.Dataset.from_tensor_slices((x[:1], y[:1])).batch(4)
    whole = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    evaluation = program_callbacks.TestEvaluation({"test": subset}, {"test": whole}, epochs=3)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[evaluation])
    assert history.history["test_accuracy"] == [1.0, 1.0, 0.25]
