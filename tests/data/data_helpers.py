"""Helpers shared by the data tests."""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from elr_tf.data import ExampleSet, NoisyData


def eager_and_mapped(fn, *args):
    """Runs `fn` eagerly and inside `Dataset.map` (STYLE.md rule 7)."""
    eager = fn(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return eager, mapped


def one_epoch(ds):
    ids, labels, images = [], [], []
    for (x, i), y in ds:
        images.append(x.numpy())
        ids.append(i.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(ids), np.concatenate(labels)


def denormalize(images, data):
    return np.rint((images * np.array(data.std) + np.array(data.mean)) * 255)


def tiny_data():
    rng = np.random.default_rng(0)
    n = 40
    train = ExampleSet(
        ids=np.arange(n),
        labels=rng.integers(0, 4, n),
        images=rng.integers(0, 255, (n, 8, 8, 1)).astype("uint8"),
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
