"""Helpers shared by the data tests."""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from file_layouts import write_image

from elr_tf.data import ExampleSet, NoisyData


def eager_and_mapped(fn, *args):
    """Runs `fn` eagerly and inside `Dataset.map` (STYLE.md rule 7)."""
    eager = fn(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return eager, mapped


def one_epoch(ds):
    ids, labels, features = [], [], []
    for (x, i), y in ds:
        features.append(x.numpy())
        ids.append(i.numpy())
        labels.append(y.numpy())
    return np.concatenate(features), np.concatenate(ids), np.concatenate(labels)


def denormalize(images, data):
    return np.rint((images * np.array(data.std) + np.array(data.mean)) * 255)


def tiny_data():
    rng = np.random.default_rng(0)
    n = 40
    train = ExampleSet(
        ids=np.arange(n),
        labels=rng.integers(0, 4, n),
        features=rng.integers(0, 255, (n, 8, 8, 1)).astype("uint8"),
    )
    return NoisyData(
        name="fashion_mnist",
        train=train,
        val=train,
        test=train,
        num_classes=4,
        image_shape=(8, 8, 1),
        num_examples=n,
        mean=(0.5,),
        std=(0.25,),
        augment="fashion_mnist",
    )


def mocked():
    return tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE)


def write_any_image(path, height, width, fmt, value=60):
    """Writes a PNG or JPEG file; `fmt="grey"` writes a one-channel PNG."""
    if fmt == "grey":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tf.io.write_file(
            path, tf.io.encode_png(tf.fill([height, width, 1], tf.constant(value, tf.uint8)))
        )
    else:
        write_image(path, height, width, value, fmt)


def truncate_jpeg(path):
    """Writes a file with a valid JPEG header whose data is cut off."""
    encoded = tf.io.encode_jpeg(tf.fill([40, 40, 3], tf.constant(9, tf.uint8))).numpy()
    with open(path, "wb") as f:
        f.write(encoded[: len(encoded) // 2])


# The maps are written here by hand: the data sources own the real ones.
# CIFAR-10: truck -> automobile, bird -> airplane, cat <-> dog, deer -> horse.
CIFAR10_MAP = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}
# CIFAR-100: the next class of the same superclass of 5, circularly.
CIFAR100_MAP = {c: (c // 5) * 5 + (c + 1) % 5 for c in range(100)}
