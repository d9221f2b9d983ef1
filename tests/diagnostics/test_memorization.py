import csv
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf
from elr_tf.diagnostics import memorization

try:
    import matplotlib  # noqa: F401

    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False
needs_matplotlib = pytest.mark.skipif(
    not HAS_MATPLOTLIB, reason="matplotlib (requirements.txt) draws memorization.png"
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fractions_hand_values():
    true = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1])
    labels = np.array([0, 0, 1, 2, 0, 1, 2, 1, 0])
    predictions = np.array([0, 1, 1, 1, 0, 0, 2, 0, 0])
    # Clean (label == true): ids 0, 1, 2, 6 -> predicted right 0, 2, 6.
    # Wrong labels: 3 (pred true), 4 (memorised), 5 (other), 7 (true),
    # 8 (memorised).
    fractions = memorization.memorization_fractions(predictions, labels, true)
    assert fractions == pytest.approx(
        {
            "mem_clean_correct": 3 / 4,
            "mem_clean_wrong": 1 / 4,
            "mem_noisy_true": 2 / 5,
            "mem_noisy_memorized": 2 / 5,
            "mem_noisy_other": 1 / 5,
        }
    )


def test_fractions_ignore_unknown_truth_and_empty_groups_are_nan():
    fractions = memorization.memorization_fractions([0, 1, 1], [0, 1, 0], [0, 1, -1])
    assert fractions["mem_clean_correct"] == 1.0
    for key in memorization.NOISY_KEYS:
        assert math.isnan(fractions[key])


def _noisy_blobs(n=200, noise_rate=0.4, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 3, n)
    x = (np.eye(3, 4)[true] * 3.0 + rng.normal(size=(n, 4))).astype("float32")
    labels = true.copy()
    flip = rng.random(n) < noise_rate
    labels[flip] = (true[flip] + rng.integers(1, 3, flip.sum())) % 3
    return x, labels, true


def _model(n):
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = elr_tf.ELRModel(backbone, num_examples=n, num_classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def _check_groups_sum_to_one(row):
    assert sum(row[k] for k in memorization.CLEAN_KEYS) == pytest.approx(1.0)
    assert sum(row[k] for k in memorization.NOISY_KEYS) == pytest.approx(1.0)


@needs_matplotlib
def test_monitor_with_arrays_logs_and_writes(tmp_path, seed):
    x, labels, true = _noisy_blobs()
    monitor = memorization.MemorizationMonitor(
        x, labels, true, max_examples=150, output_dir=str(tmp_path), title="blobs"
    )
    csv_path = tmp_path / "metrics.csv"
    history = _model(len(x)).fit(
        elr_tf.with_index(x, labels, batch_size=50, seed=0),
        epochs=3,
        verbose=0,
        callbacks=[monitor, keras.callbacks.CSVLogger(str(csv_path))],
    )
    assert len(monitor.history) == 3 and len(monitor.ids) == 150
    for key in memorization.KEYS:
        assert len(history.history[key]) == 3
    for row in monitor.history:
        _check_groups_sum_to_one(row)
    # Blobs are separable: by epoch 3 most wrong labels are predicted right.
    assert monitor.history[-1]["mem_noisy_true"] > 0.5
    assert (tmp_path / "memorization.png").stat().st_size > 10_000
    rows = memorization.read_memorization_csv(tmp_path / "memorization.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    with open(csv_path) as f:
        assert "mem_noisy_memorized" in next(csv.reader(f))


def test_monitor_with_ordered_dataset_subsample_and_append(tmp_path, seed):
    x, labels, true = _noisy_blobs(n=120)
    ids = np.arange(len(x))
    ordered = tf.data.Dataset.from_tensor_slices(((x, ids), labels)).batch(32)
    monitor = memorization.MemorizationMonitor(
        ordered, true_labels=true, max_examples=70, seed=3, batch_size=16, output_dir=tmp_path
    )
    model = _model(len(x))
    train_ds = elr_tf.with_index(x, labels, batch_size=40, seed=0)
    model.fit(train_ds, epochs=2, verbose=0, callbacks=[monitor])
    subset = monitor.ids
    assert len(subset) == 70 and np.all(np.diff(subset) > 0)
    # The same fractions as computed by hand from a prediction of the subset.
    predictions = model.predict(x[subset], verbose=0).argmax(-1)
    expected = memorization.memorization_fractions(predictions, labels[subset], true[subset])
    assert monitor.history[-1] == pytest.approx({"epoch": 1, **expected})

    # A resumed run continues the CSV, replacing re-trained epochs.
    resumed = memorization.MemorizationMonitor(
        ordered, true_labels=true, output_dir=tmp_path, append=True
    )
    model.fit(train_ds, initial_epoch=1, epochs=3, verbose=0, callbacks=[resumed])
    rows = memorization.read_memorization_csv(tmp_path / "memorization.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[0] == pytest.approx(monitor.history[0], rel=1e-5)


@needs_matplotlib
def test_from_examples_monitors_a_known_truth_subset(tmp_path, seed):
    from elr_tf.data import ExampleSet, NoisyData, make_train_dataset

    rng = np.random.default_rng(0)
    n = 60
    true = rng.integers(0, 3, n)
    true[:10] = -1  # unknown clean labels are never monitored
    labels = np.where(rng.random(n) < 0.3, (np.maximum(true, 0) + 1) % 3, np.maximum(true, 0))
    ids = np.arange(100, 100 + n)  # ids need not be positions
    train = ExampleSet(
        ids=ids,
        labels=labels,
        true_labels=true,
        features=rng.integers(0, 255, (n, 6, 6, 1)).astype("uint8"),
    )
    data = NoisyData(
        name="fashion_mnist",
        train=train,
        val=train,
        test=train,
        num_classes=3,
        image_shape=(6, 6, 1),
        num_examples=200,
        mean=(0.5,),
        std=(0.25,),
        augment="fashion_mnist",
    )
    monitor = memorization.MemorizationMonitor.from_examples(
        train, data, max_examples=30, batch_size=8, output_dir=tmp_path
    )
    backbone = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model = elr_tf.ELRModel(backbone, num_examples=200, num_classes=3)
    model.compile(optimizer="sgd")
    model.fit(make_train_dataset(data, 16, seed=0), epochs=1, verbose=0, callbacks=[monitor])
    assert len(monitor.ids) == 30 and set(monitor.ids) <= set(ids[10:])
    _check_groups_sum_to_one(monitor.history[0])
    assert (tmp_path / "memorization.csv").exists() and (tmp_path / "memorization.png").exists()
    with pytest.raises(ValueError, match="no known true labels"):
        memorization.MemorizationMonitor.from_examples(
            ExampleSet(ids=ids, labels=labels, features=train.features), data
        )


def test_monitor_argument_errors():
    x, labels, true = _noisy_blobs(n=10)
    with pytest.raises(ValueError, match="true_labels` is required"):
        memorization.MemorizationMonitor(x, labels)
    with pytest.raises(ValueError, match="true_labels` must have one entry.*Received: length 9"):
        memorization.MemorizationMonitor(x, labels, true[:9])
    with pytest.raises(ValueError, match="max_examples.*Received: max_examples=0"):
        memorization.MemorizationMonitor(x, labels, true, max_examples=0)


def _fake_run(path, memorised):
    os.makedirs(path)
    history = [
        {
            "epoch": e,
            "mem_clean_correct": 0.5 + 0.1 * e,
            "mem_clean_wrong": 0.5 - 0.1 * e,
            "mem_noisy_true": 0.6 - memorised * e,
            "mem_noisy_memorized": 0.2 + memorised * e,
            "mem_noisy_other": 0.2,
        }
        for e in range(4)
    ]
    memorization.write_memorization_csv(os.path.join(path, "memorization.csv"), history)


@needs_matplotlib
def test_plot_script_overlays_two_runs(tmp_path):
    _fake_run(tmp_path / "ce", memorised=0.1)
    _fake_run(tmp_path / "elr", memorised=0.0)
    out = tmp_path / "fig.png"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "plot_memorization.py"),
            f"--runs={tmp_path / 'ce'},{tmp_path / 'elr'}",
            "--labels=CE,ELR",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.stat().st_size > 10_000
