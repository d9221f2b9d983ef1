"""Tests for elr_tf.data.augment, each op eagerly and inside Dataset.map."""

import os

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import (
    eager_and_mapped,
)
from file_layouts import (
    write_image,
)

from elr_tf.data import augment

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pad_crop_flip_hand_values():
    image = tf.reshape(tf.range(1, 10, dtype=tf.int32), [1, 3, 3, 1])
    images = tf.repeat(image, 4, axis=0)
    # span 3: dy = r % 3, dx = (r // 3) % 3, flip = (r // 9) % 2.
    random = tf.constant([0, 4, 13, 8], tf.int64)
    expected = np.array(
        [
            [[0, 0, 0], [0, 1, 2], [0, 4, 5]],  # top-left crop of the padded
            [[1, 2, 3], [4, 5, 6], [7, 8, 9]],  # centre crop: identity
            [[3, 2, 1], [6, 5, 4], [9, 8, 7]],  # centre crop, flipped
            [[5, 6, 0], [8, 9, 0], [0, 0, 0]],  # bottom-right crop
        ]
    )
    eager, mapped = eager_and_mapped(lambda x, r: augment.pad_crop_flip(x, r, 1), images, random)
    np.testing.assert_array_equal(eager[..., 0], expected)
    np.testing.assert_array_equal(mapped[..., 0], expected)


def test_normalize_hand_values():
    images = tf.constant([[[[0, 255]]]], tf.uint8)  # [1, 1, 1, 2]
    eager, mapped = eager_and_mapped(
        lambda x: augment.normalize(x, (0.5, 0.0), (0.25, 0.5)), images
    )
    for result in (eager, mapped):
        assert result.dtype == tf.float32
        np.testing.assert_allclose(result.numpy().ravel(), [-2.0, 2.0])


def test_load_resize_and_crops(tmp_path):
    path = str(tmp_path / "img.png")
    write_image(path, 20, 30, 100, "png")
    eager, mapped = eager_and_mapped(lambda p: augment.load_image(p, 10), path)
    for result in (eager, mapped):
        assert tuple(result.shape) == (10, 15, 3)  # Shorter side 20 -> 10.
        np.testing.assert_allclose(result.numpy(), 100.0, atol=1e-3)

    image = tf.reshape(tf.range(10 * 15 * 3, dtype=tf.float32), [10, 15, 3])
    eager, mapped = eager_and_mapped(lambda x: augment.center_crop(x, (8, 8)), image)
    np.testing.assert_array_equal(eager, image[1:9, 3:11])
    np.testing.assert_array_equal(mapped, image[1:9, 3:11])

    seed = tf.constant([7, 3], tf.int64)
    eager, mapped = eager_and_mapped(
        lambda x, s: augment.random_crop_flip(x, (8, 8), s), image, seed
    )
    np.testing.assert_array_equal(eager, mapped)
    assert tuple(eager.shape) == (8, 8, 3)
    # The crop is a window of the image, possibly mirrored.
    windows = [image[y : y + 8, x : x + 8].numpy() for y in range(3) for x in range(8)]
    result = eager.numpy()
    assert any(np.array_equal(result, w) or np.array_equal(result, w[:, ::-1]) for w in windows)


def test_load_image_corrupt_file_names_it(tmp_path):
    path = str(tmp_path / "bad.jpg")
    with open(path, "wb") as f:
        f.write(b"<html>not an image</html>")
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad.jpg"):
        augment.load_image(path, 8)
    ds = tf.data.Dataset.from_tensors(path).map(lambda p: augment.load_image(p, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad.jpg"):
        next(iter(ds))
