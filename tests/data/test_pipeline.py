"""Tests for elr_tf.data.pipeline: training and evaluation tf.data pipelines."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import (
    denormalize,
    one_epoch,
    tiny_data,
)
from file_layouts import (
    write_clothing1m,
    write_tiny_fashion,
)

from elr_tf.data import find_unreadable_images, load_dataset, make_eval_dataset, make_train_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_train_dataset_structure_and_ids(tiny, seed):
    ds = make_train_dataset(tiny, 16, seed=seed, augment=False)
    (images_spec, ids_spec), labels_spec = ds.element_spec
    assert images_spec.dtype == tf.float32 and images_spec.shape[1:] == (28, 28, 1)
    assert ids_spec.dtype == tf.int64 and labels_spec.dtype == tf.int64
    assert ds.cardinality() == 4  # 50 examples, batches of 16.
    images, ids, labels = one_epoch(ds)
    np.testing.assert_array_equal(np.sort(ids), tiny.train.ids)  # Each once.
    np.testing.assert_array_equal(labels, tiny.labels_by_id()[ids])
    # Without augmentation the image is exactly that of its id, normalised.
    np.testing.assert_array_equal(denormalize(images, tiny)[:, 0, 0, 0], ids + 1)
    assert not np.array_equal(ids, np.sort(ids))  # Shuffled.


def test_train_dataset_augmentation_keeps_ids(tiny, seed):
    ds = make_train_dataset(tiny, 16, seed=seed, drop_remainder=True)
    images, ids, labels = one_epoch(ds)
    assert images.shape == (48, 28, 28, 1) and ds.cardinality() == 3
    np.testing.assert_array_equal(labels, tiny.labels_by_id()[ids])
    pixels = denormalize(images, tiny)[..., 0]
    # Shifted copies of a constant image: every pixel is the id's value or
    # zero padding, and some padding shows (with 81 shifts, almost surely).
    for pixel, example_id in zip(pixels, ids):
        assert set(np.unique(pixel)) <= {0, example_id + 1}
        assert (pixel == example_id + 1).sum() >= 24 * 24
    assert (pixels == 0).any()


def test_train_dataset_determinism_and_reshuffle(tiny):
    first = make_train_dataset(tiny, 16, seed=3)
    second = make_train_dataset(tiny, 16, seed=3)
    epoch_a, epoch_b = one_epoch(first), one_epoch(second)
    for a, b in zip(epoch_a, epoch_b):
        np.testing.assert_array_equal(a, b)
    next_epoch = one_epoch(first)
    assert not np.array_equal(next_epoch[1], epoch_a[1])  # New order.
    np.testing.assert_array_equal(np.sort(next_epoch[1]), tiny.train.ids)
    other_seed = one_epoch(make_train_dataset(tiny, 16, seed=4))
    assert not np.array_equal(other_seed[1], epoch_a[1])
    unshuffled = make_train_dataset(tiny, 16, seed=3, shuffle=False)
    np.testing.assert_array_equal(one_epoch(unshuffled)[1], tiny.train.ids)


def test_balanced_batches(tiny, seed):
    # Unbalanced labels: class 0 has 23 examples, classes 1-9 have 3 each
    # (fewer than their quota of 6, so they are drawn with repetition).
    labels = np.concatenate([np.zeros(23, int), np.repeat(np.arange(1, 10), 3)])
    data = dataclasses.replace(tiny, train=tiny.train.with_labels(labels))
    ds = make_train_dataset(data, 20, seed=seed, balanced_batches=3)
    assert ds.cardinality() == 3
    epochs = []
    for _ in range(2):
        batches = list(ds)
        assert len(batches) == 3
        images, ids, labels_seen = one_epoch(batches)
        assert images.shape[0] == 60
        np.testing.assert_array_equal(np.bincount(labels_seen), [6] * 10)
        np.testing.assert_array_equal(labels_seen, data.labels_by_id()[ids])
        epochs.append(ids)
    assert not np.array_equal(epochs[0], epochs[1])  # Resampled each epoch.


def test_eval_dataset(tiny):
    ds = make_eval_dataset(tiny.test, tiny, 8)
    images_spec, labels_spec = ds.element_spec
    assert images_spec.shape[1:] == (28, 28, 1) and labels_spec.dtype == tf.int64
    images = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_array_equal(denormalize(images, tiny)[:, 0, 0, 0], tiny.test.ids + 1)
    with_ids = make_eval_dataset(tiny.val, tiny, 4, with_ids=True)
    _, ids, labels = one_epoch(with_ids)
    np.testing.assert_array_equal(ids, tiny.val.ids)  # In order.
    np.testing.assert_array_equal(labels, tiny.val.labels)


def test_pipeline_bad_arguments(tiny):
    with pytest.raises(ValueError, match="batch_size=0"):
        make_train_dataset(tiny, 0, seed=0)
    with pytest.raises(ValueError, match="seed='a'"):
        make_train_dataset(tiny, 8, seed="a")
    with pytest.raises(ValueError, match="balanced_batches=0"):
        make_train_dataset(tiny, 8, seed=0, balanced_batches=0)
    with pytest.raises(ValueError, match="NoisyData.*ExampleSet"):
        make_train_dataset(tiny.train, 8, seed=0)
    with pytest.raises(ValueError, match="example_set.*NoisyData"):
        make_eval_dataset(tiny, tiny, 8)


def test_find_unreadable_images(tmp_path):
    keys = write_clothing1m(tmp_path)
    data = load_dataset("clothing1m", tmp_path, image_size=16)
    assert find_unreadable_images(data.val) == []
    # A valid JPEG header followed by a cut-off body: the decoder's own error
    # cannot name the file, the scan can.
    truncated = os.path.join(tmp_path, keys["train"][3])
    encoded = tf.io.encode_jpeg(tf.fill([40, 40, 3], tf.constant(9, tf.uint8))).numpy()
    with open(truncated, "wb") as f:
        f.write(encoded[: len(encoded) // 2])
    empty = os.path.join(tmp_path, keys["train"][7])
    open(empty, "wb").close()
    assert find_unreadable_images(data.train) == [truncated, empty]
    with pytest.raises(ValueError, match="file-backed ExampleSet"):
        find_unreadable_images(data)


def test_clothing1m_corrupt_image_named(tmp_path):
    keys = write_clothing1m(tmp_path)
    with open(os.path.join(tmp_path, keys["val"][2]), "wb") as f:
        f.write(b"")
    data = load_dataset("clothing1m", tmp_path, image_size=16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=keys["val"][2]):
        list(make_eval_dataset(data.val, data, 4))


def test_benchmark_script_runs(tmp_path):
    directory = write_tiny_fashion(tmp_path / "f")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "benchmarks", "benchmark_input.py"),
            f"--data_dir={directory}",
            "--batch_size=8",
            "--steps=10",
            "--warmup_steps=2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "80 images (10 batches of 8" in result.stdout
    assert "images/s" in result.stdout


@pytest.mark.parametrize("balanced", [None, 3])
def test_epoch_variable_makes_each_epoch_a_function_of_seed_and_epoch(balanced):
    data = tiny_data()
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = make_train_dataset(data, 8, seed=5, epoch=epoch, balanced_batches=balanced)

    def read():
        return [(x.numpy(), i.numpy()) for (x, i), _ in ds]

    first = read()
    epoch.assign(1)
    second = read()
    epoch.assign(0)
    again = read()
    # A fresh pipeline (as after a restart) at epoch 1 reads epoch 1's batches.
    fresh_epoch = tf.Variable(1, dtype=tf.int64)
    fresh = make_train_dataset(data, 8, seed=5, epoch=fresh_epoch, balanced_batches=balanced)
    fresh_second = [(x.numpy(), i.numpy()) for (x, i), _ in fresh]
    ids = lambda batches: np.concatenate([i for _, i in batches])  # noqa: E731
    np.testing.assert_array_equal(ids(first), ids(again))
    assert not np.array_equal(ids(first), ids(second))
    np.testing.assert_array_equal(ids(second), ids(fresh_second))
    for (xa, _), (xb, _) in zip(second, fresh_second):
        np.testing.assert_array_equal(xa, xb)
    if balanced is None:
        assert sorted(ids(first)) == list(range(40))
    else:
        assert len(ids(first)) == 24
