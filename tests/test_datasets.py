"""Tests for elr_tf.datasets: loaders, stable ids and the tf.data pipelines."""

import dataclasses
import gzip
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from file_layouts import write_clothing1m, write_image, write_lines, write_webvision

from elr_tf import datasets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --------------------------------------------------------------------------
# Helpers that write tiny data sets.

_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}


def _write_idx(path, array, compress=True):
    array = np.asarray(array)
    dtype = np.dtype(np.uint8) if array.dtype == np.uint8 else np.dtype(">i4")
    header = bytes([0, 0, _IDX_CODES[dtype], array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(dtype).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def _write_tiny_fashion(directory, n_train=60, n_test=20, size=28):
    """Images of example k are filled with k + 1; labels are k % 10."""
    os.makedirs(directory, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        values = np.arange(1, n + 1, dtype=np.uint8)
        images = np.broadcast_to(values[:, None, None], (n, size, size))
        _write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return str(directory)


def _eager_and_mapped(fn, *args):
    """Runs `fn` eagerly and inside `Dataset.map` (STYLE.md rule 7)."""
    eager = fn(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return eager, mapped


def _one_epoch(ds):
    ids, labels, images = [], [], []
    for (x, i), y in ds:
        images.append(x.numpy())
        ids.append(i.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(ids), np.concatenate(labels)


def _denormalize(images, data):
    return np.rint((images * np.array(data.std) + np.array(data.mean)) * 255)


@pytest.fixture
def tiny(tmp_path):
    return datasets.load_dataset("fashion_mnist", _write_tiny_fashion(tmp_path / "fmnist"))


@pytest.fixture(scope="module")
def real_fashion():
    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        pytest.skip(
            f"{datasets.FASHION_MNIST_DIR} missing (Debian package "
            "dataset-fashion-mnist not installed)"
        )
    return datasets.load_dataset("fashion_mnist")


# --------------------------------------------------------------------------
# Fashion-MNIST and IDX files.


def test_fashion_mnist_real_files(real_fashion):
    data = real_fashion
    assert (data.num_classes, data.image_shape, data.num_examples) == (
        10,
        (28, 28, 1),
        60000,
    )
    assert len(data.train) + len(data.val) == 60000
    assert len(data.test) == 10000
    assert data.train.images.shape == (54000, 28, 28, 1)
    assert data.train.images.dtype == np.uint8
    assert data.test.labels.min() == 0 and data.test.labels.max() == 9
    # 90/10 per class: Fashion-MNIST has 6000 training images per class.
    np.testing.assert_array_equal(np.bincount(data.train.labels), [5400] * 10)
    np.testing.assert_array_equal(np.bincount(data.val.labels), [600] * 10)
    ids = np.concatenate([data.train.ids, data.val.ids])
    np.testing.assert_array_equal(np.sort(ids), np.arange(60000))
    assert not np.intersect1d(data.train.ids, data.val.ids).size
    np.testing.assert_array_equal(data.train.true_labels, data.train.labels)
    assert data.augment == "fashion_mnist"


def test_fashion_mnist_split_is_seeded(real_fashion):
    again = datasets.load_dataset("fashion_mnist", split_seed=0)
    other = datasets.load_dataset("fashion_mnist", split_seed=1)
    np.testing.assert_array_equal(again.val.ids, real_fashion.val.ids)
    assert not np.array_equal(other.val.ids, real_fashion.val.ids)
    # Ids are raw positions: the same id has the same image in every split.
    table = {int(i): k for k, i in enumerate(other.train.ids)}
    for k, example_id in enumerate(real_fashion.train.ids[:50]):
        if int(example_id) in table:
            np.testing.assert_array_equal(
                real_fashion.train.images[k],
                other.train.images[table[int(example_id)]],
            )


def test_fashion_mnist_num_train(real_fashion):
    data = datasets.load_dataset("fashion_mnist", num_train=1000, split_seed=3)
    assert len(data.train) + len(data.val) == 1000
    np.testing.assert_array_equal(np.bincount(data.train.labels), [90] * 10)
    np.testing.assert_array_equal(np.bincount(data.val.labels), [10] * 10)
    assert data.num_examples == 60000  # The table keeps the raw id space.
    assert data.train.ids.max() > 1000  # Raw positions, not 0..999.
    full_labels = real_fashion.labels_by_id()
    np.testing.assert_array_equal(data.train.labels, full_labels[data.train.ids])
    np.testing.assert_array_equal(data.val.labels, full_labels[data.val.ids])


def test_read_idx_tiny_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", images)
    np.testing.assert_array_equal(datasets._read_idx(tmp_path / "a.gz"), images)
    values = np.array([[-1, 70000], [5, 0]], dtype=np.int32)
    _write_idx(tmp_path / "b", values, compress=False)
    result = datasets._read_idx(tmp_path / "b")
    np.testing.assert_array_equal(result, values)
    assert result.shape == (2, 2)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.gz"):
        datasets._read_idx(tmp_path / "missing.gz")
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="Not an IDX file: .*magic"):
        datasets._read_idx(tmp_path / "magic")
    _write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8), compress=False)
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="short.*truncated or corrupt"):
        datasets._read_idx(tmp_path / "short")
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")
    (tmp_path / "broken.gz").write_bytes(good[:-6])
    with pytest.raises(ValueError, match="broken.gz"):
        datasets._read_idx(tmp_path / "broken.gz")


def test_fashion_mnist_tiny_idx(tiny):
    assert (len(tiny.train), len(tiny.val), len(tiny.test)) == (50, 10, 20)
    assert tiny.num_examples == 60
    # Image of id k is filled with k + 1, so ids and images agree.
    np.testing.assert_array_equal(tiny.train.images[:, 0, 0, 0], tiny.train.ids + 1)
    np.testing.assert_array_equal(tiny.train.labels, tiny.train.ids % 10)


def test_fashion_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*--data_dir"):
        datasets.load_dataset("fashion_mnist", tmp_path)


def test_fashion_mnist_from_prepared_tfds(tmp_path):
    with (
        tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE),
        mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True),
    ):
        data = datasets.load_dataset("fashion_mnist", tmp_path)
    assert data.image_shape == (28, 28, 1)
    assert len(data.train) + len(data.val) == 30 == data.num_examples


# --------------------------------------------------------------------------
# CIFAR family through the real tfds builders, with mocked data.


def _mocked():
    return tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE)


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_mocked(tmp_path, name, num_classes):
    with _mocked():
        data = datasets.load_dataset(name, tmp_path)
    assert data.num_classes == num_classes
    assert data.image_shape == (32, 32, 3) and data.augment == "cifar"
    assert len(data.train) + len(data.val) == 40 == data.num_examples
    assert len(data.test) == 40
    # Per-class split: val holds round(10%) of each class.
    counts = np.bincount(data.labels_by_id(), minlength=num_classes)
    expected_val = np.floor(0.1 * counts + 0.5).astype(int)
    np.testing.assert_array_equal(np.bincount(data.val.labels, minlength=num_classes), expected_val)
    np.testing.assert_array_equal(data.train.true_labels, data.train.labels)


@pytest.mark.parametrize(
    "name,choice,field",
    [
        ("cifar10_n", "aggre", "aggre_label"),
        ("cifar10_n", "random1", "random_label1"),
        ("cifar10_n", "random2", "random_label2"),
        ("cifar10_n", "random3", "random_label3"),
        ("cifar10_n", "worst", "worse_label"),
        ("cifar10_n", None, "worse_label"),
        ("cifar100_n", "noisy100", "noise_label"),
        ("cifar100_n", None, "noise_label"),
    ],
)
def test_cifar_n_label_sets(tmp_path, name, choice, field):
    with _mocked():
        data = datasets.load_dataset(name, tmp_path, cifar_n_label=choice)
        raw = tfds.builder(name).as_dataset(split="train", shuffle_files=False)
        raw = next(iter(tfds.as_numpy(raw.batch(100))))
    # Mocked ids are not "train_00042" strings, so ids are read positions.
    np.testing.assert_array_equal(data.labels_by_id(), raw[field])
    true = np.full(data.num_examples, -1)
    for example_set in (data.train, data.val):
        true[example_set.ids] = example_set.true_labels
    np.testing.assert_array_equal(true, raw["label"])
    default = {"cifar10_n": "worst", "cifar100_n": "noisy100"}[name]
    assert data.label_source == f"{name}:{choice or default}"


def test_cifar_n_label_validation():
    with pytest.raises(ValueError, match="aggre.*worst.*Received: cifar_n_label='x'"):
        datasets.load_dataset("cifar10_n", cifar_n_label="x")
    with pytest.raises(ValueError, match="noisy100.*cifar_n_label='worst'"):
        datasets.load_dataset("cifar100_n", cifar_n_label="worst")
    with pytest.raises(ValueError, match="applies only to cifar10_n"):
        datasets.load_dataset("cifar10", cifar_n_label="worst")


def test_tfds_ids_give_raw_order():
    ids = [b"train_00002", b"train_00000", b"train_00001"]
    np.testing.assert_array_equal(datasets._parse_tfds_ids(ids), [2, 0, 1])
    assert datasets._parse_tfds_ids([b"train_00002", b"ab cd"]) is None
    assert datasets._parse_tfds_ids([b"train_00005"]) is None  # Not 0..n-1.


def test_cifar_not_prepared(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"(?s)not prepared.*tfds build cifar10.*--data_dir"
    ):
        datasets.load_dataset("cifar10", tmp_path)


def test_load_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist.*webvision.*name='mnist'"):
        datasets.load_dataset("mnist")
    bad = [
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
        ({"num_train": 0}, "num_train=0"),
        ({"split_seed": -1}, "split_seed=-1"),
        ({"image_size": 16}, "image_size=16"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            datasets.load_dataset("fashion_mnist", tmp_path, **kwargs)
    directory = _write_tiny_fashion(tmp_path / "f")
    with pytest.raises(ValueError, match="at most the training set size 60"):
        datasets.load_dataset("fashion_mnist", directory, num_train=61)
    with pytest.raises(ValueError, match="data_dir=None"):
        datasets.load_dataset("clothing1m")


def test_example_set_validation(tiny):
    example_set = tiny.train
    relabelled = example_set.with_labels(np.zeros(len(example_set), np.int32))
    assert relabelled.labels.dtype == np.int64 and not relabelled.labels.any()
    np.testing.assert_array_equal(relabelled.true_labels, example_set.true_labels)
    with pytest.raises(ValueError, match="length 50. Received: length=3"):
        example_set.with_labels([0, 1, 2])
    with pytest.raises(ValueError, match="integer array. Received: dtype=float"):
        example_set.with_labels(np.zeros(len(example_set)))
    with pytest.raises(ValueError, match="Exactly one of `images` and `paths`"):
        datasets.ExampleSet(ids=[0], labels=[0])
    with pytest.raises(ValueError, match="unique"):
        datasets.ExampleSet(ids=[1, 1], labels=[0, 0], paths=["a", "b"])


# --------------------------------------------------------------------------
# Transformations, each eagerly and inside Dataset.map.


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
    eager, mapped = _eager_and_mapped(lambda x, r: datasets._pad_crop_flip(x, r, 1), images, random)
    np.testing.assert_array_equal(eager[..., 0], expected)
    np.testing.assert_array_equal(mapped[..., 0], expected)


def test_normalize_hand_values():
    images = tf.constant([[[[0, 255]]]], tf.uint8)  # [1, 1, 1, 2]
    eager, mapped = _eager_and_mapped(
        lambda x: datasets._normalize(x, (0.5, 0.0), (0.25, 0.5)), images
    )
    for result in (eager, mapped):
        assert result.dtype == tf.float32
        np.testing.assert_allclose(result.numpy().ravel(), [-2.0, 2.0])


def test_load_resize_and_crops(tmp_path):
    path = str(tmp_path / "img.png")
    write_image(path, 20, 30, 100, "png")
    eager, mapped = _eager_and_mapped(lambda p: datasets._load_image(p, 10), path)
    for result in (eager, mapped):
        assert tuple(result.shape) == (10, 15, 3)  # Shorter side 20 -> 10.
        np.testing.assert_allclose(result.numpy(), 100.0, atol=1e-3)

    image = tf.reshape(tf.range(10 * 15 * 3, dtype=tf.float32), [10, 15, 3])
    eager, mapped = _eager_and_mapped(lambda x: datasets._center_crop(x, (8, 8)), image)
    np.testing.assert_array_equal(eager, image[1:9, 3:11])
    np.testing.assert_array_equal(mapped, image[1:9, 3:11])

    seed = tf.constant([7, 3], tf.int64)
    eager, mapped = _eager_and_mapped(
        lambda x, s: datasets._random_crop_flip(x, (8, 8), s), image, seed
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
        datasets._load_image(path, 8)
    ds = tf.data.Dataset.from_tensors(path).map(lambda p: datasets._load_image(p, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad.jpg"):
        next(iter(ds))


# --------------------------------------------------------------------------
# Training and evaluation pipelines.


def test_train_dataset_structure_and_ids(tiny, seed):
    ds = datasets.make_train_dataset(tiny, 16, seed=seed, augment=False)
    (images_spec, ids_spec), labels_spec = ds.element_spec
    assert images_spec.dtype == tf.float32 and images_spec.shape[1:] == (28, 28, 1)
    assert ids_spec.dtype == tf.int64 and labels_spec.dtype == tf.int64
    assert ds.cardinality() == 4  # 50 examples, batches of 16.
    images, ids, labels = _one_epoch(ds)
    np.testing.assert_array_equal(np.sort(ids), tiny.train.ids)  # Each once.
    np.testing.assert_array_equal(labels, tiny.labels_by_id()[ids])
    # Without augmentation the image is exactly that of its id, normalised.
    np.testing.assert_array_equal(_denormalize(images, tiny)[:, 0, 0, 0], ids + 1)
    assert not np.array_equal(ids, np.sort(ids))  # Shuffled.


def test_train_dataset_augmentation_keeps_ids(tiny, seed):
    ds = datasets.make_train_dataset(tiny, 16, seed=seed, drop_remainder=True)
    images, ids, labels = _one_epoch(ds)
    assert images.shape == (48, 28, 28, 1) and ds.cardinality() == 3
    np.testing.assert_array_equal(labels, tiny.labels_by_id()[ids])
    pixels = _denormalize(images, tiny)[..., 0]
    # Shifted copies of a constant image: every pixel is the id's value or
    # zero padding, and some padding shows (with 81 shifts, almost surely).
    for pixel, example_id in zip(pixels, ids):
        assert set(np.unique(pixel)) <= {0, example_id + 1}
        assert (pixel == example_id + 1).sum() >= 24 * 24
    assert (pixels == 0).any()


def test_train_dataset_determinism_and_reshuffle(tiny):
    first = datasets.make_train_dataset(tiny, 16, seed=3)
    second = datasets.make_train_dataset(tiny, 16, seed=3)
    epoch_a, epoch_b = _one_epoch(first), _one_epoch(second)
    for a, b in zip(epoch_a, epoch_b):
        np.testing.assert_array_equal(a, b)
    next_epoch = _one_epoch(first)
    assert not np.array_equal(next_epoch[1], epoch_a[1])  # New order.
    np.testing.assert_array_equal(np.sort(next_epoch[1]), tiny.train.ids)
    other_seed = _one_epoch(datasets.make_train_dataset(tiny, 16, seed=4))
    assert not np.array_equal(other_seed[1], epoch_a[1])
    unshuffled = datasets.make_train_dataset(tiny, 16, seed=3, shuffle=False)
    np.testing.assert_array_equal(_one_epoch(unshuffled)[1], tiny.train.ids)


def test_balanced_batches(tiny, seed):
    # Unbalanced labels: class 0 has 23 examples, classes 1-9 have 3 each
    # (fewer than their quota of 6, so they are drawn with repetition).
    labels = np.concatenate([np.zeros(23, int), np.repeat(np.arange(1, 10), 3)])
    data = dataclasses.replace(tiny, train=tiny.train.with_labels(labels))
    ds = datasets.make_train_dataset(data, 20, seed=seed, balanced_batches=3)
    assert ds.cardinality() == 3
    epochs = []
    for _ in range(2):
        batches = list(ds)
        assert len(batches) == 3
        images, ids, labels_seen = _one_epoch(batches)
        assert images.shape[0] == 60
        np.testing.assert_array_equal(np.bincount(labels_seen), [6] * 10)
        np.testing.assert_array_equal(labels_seen, data.labels_by_id()[ids])
        epochs.append(ids)
    assert not np.array_equal(epochs[0], epochs[1])  # Resampled each epoch.


def test_eval_dataset(tiny):
    ds = datasets.make_eval_dataset(tiny.test, tiny, 8)
    images_spec, labels_spec = ds.element_spec
    assert images_spec.shape[1:] == (28, 28, 1) and labels_spec.dtype == tf.int64
    images = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_array_equal(_denormalize(images, tiny)[:, 0, 0, 0], tiny.test.ids + 1)
    with_ids = datasets.make_eval_dataset(tiny.val, tiny, 4, with_ids=True)
    _, ids, labels = _one_epoch(with_ids)
    np.testing.assert_array_equal(ids, tiny.val.ids)  # In order.
    np.testing.assert_array_equal(labels, tiny.val.labels)


def test_pipeline_bad_arguments(tiny):
    with pytest.raises(ValueError, match="batch_size=0"):
        datasets.make_train_dataset(tiny, 0, seed=0)
    with pytest.raises(ValueError, match="seed='a'"):
        datasets.make_train_dataset(tiny, 8, seed="a")
    with pytest.raises(ValueError, match="balanced_batches=0"):
        datasets.make_train_dataset(tiny, 8, seed=0, balanced_batches=0)
    with pytest.raises(ValueError, match="NoisyData.*ExampleSet"):
        datasets.make_train_dataset(tiny.train, 8, seed=0)
    with pytest.raises(ValueError, match="example_set.*NoisyData"):
        datasets.make_eval_dataset(tiny, tiny, 8)


# --------------------------------------------------------------------------
# Clothing1M and mini-WebVision from generated image folders.


def test_clothing1m(tmp_path, seed):
    keys = write_clothing1m(tmp_path)
    data = datasets.load_dataset("clothing1m", tmp_path, image_size=16)
    assert data.num_classes == 14 and data.image_shape == (16, 16, 3)
    assert data.resize_size == 18 and data.augment == "large"
    assert (len(data.train), len(data.val), len(data.test)) == (28, 7, 7)
    assert data.num_examples == 28 and not data.val_from_train
    np.testing.assert_array_equal(data.train.ids, np.arange(28))
    np.testing.assert_array_equal(data.train.labels, np.arange(28) % 14)
    np.testing.assert_array_equal(data.train.true_labels, [1, 2, 3, 4, 5] + [-1] * 23)
    assert data.train.paths[3] == os.path.join(str(tmp_path), keys["train"][3])

    ds = datasets.make_train_dataset(data, 8, seed=seed)
    (images, ids), labels = next(iter(ds))
    assert images.shape == (8, 16, 16, 3) and images.dtype == tf.float32
    np.testing.assert_array_equal(labels, data.train.labels[ids.numpy()])

    balanced = datasets.make_train_dataset(data, 14, seed=seed, balanced_batches=2)
    _, ids, labels = _one_epoch(balanced)
    np.testing.assert_array_equal(np.bincount(labels), [2] * 14)

    eval_ds = datasets.make_eval_dataset(data.test, data, 4, with_ids=True)
    images, ids, labels = _one_epoch(eval_ds)
    assert images.shape == (7, 16, 16, 3)
    np.testing.assert_array_equal(ids, np.arange(7))
    # Constant images stay constant through resize and centre crop.
    first = _denormalize(images[0], data)
    np.testing.assert_allclose(first, 0.0, atol=1.0)


def test_clothing1m_reference_layout(tmp_path):
    # Lists in annotations/, class folders directly in data_dir.
    keys = write_clothing1m(tmp_path / "staging")
    os.makedirs(tmp_path / "c1m" / "annotations")
    for name in os.listdir(tmp_path / "staging"):
        source = tmp_path / "staging" / name
        if name.endswith(".txt"):
            os.rename(source, tmp_path / "c1m" / "annotations" / name)
    for folder in os.listdir(tmp_path / "staging" / "images"):
        os.rename(tmp_path / "staging" / "images" / folder, tmp_path / "c1m" / folder)
    data = datasets.load_dataset("clothing1m", tmp_path / "c1m", image_size=16)
    expected = os.path.join(str(tmp_path / "c1m"), keys["train"][4][len("images/") :])
    assert data.train.paths[4] == expected and os.path.isfile(expected)
    images, _ = next(iter(datasets.make_eval_dataset(data.val, data, 7)))
    assert images.shape == (7, 16, 16, 3)


def test_clothing1m_corrupt_image_named(tmp_path):
    keys = write_clothing1m(tmp_path)
    with open(os.path.join(tmp_path, keys["val"][2]), "wb") as f:
        f.write(b"")
    data = datasets.load_dataset("clothing1m", tmp_path, image_size=16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=keys["val"][2]):
        list(datasets.make_eval_dataset(data.val, data, 4))


def test_find_unreadable_images(tmp_path):
    keys = write_clothing1m(tmp_path)
    data = datasets.load_dataset("clothing1m", tmp_path, image_size=16)
    assert datasets.find_unreadable_images(data.val) == []
    # A valid JPEG header followed by a cut-off body: the decoder's own error
    # cannot name the file, the scan can.
    truncated = os.path.join(tmp_path, keys["train"][3])
    encoded = tf.io.encode_jpeg(tf.fill([40, 40, 3], tf.constant(9, tf.uint8))).numpy()
    with open(truncated, "wb") as f:
        f.write(encoded[: len(encoded) // 2])
    empty = os.path.join(tmp_path, keys["train"][7])
    open(empty, "wb").close()
    assert datasets.find_unreadable_images(data.train) == [truncated, empty]
    with pytest.raises(ValueError, match="file-backed ExampleSet"):
        datasets.find_unreadable_images(data)


def test_clothing1m_bad_files(tmp_path):
    write_clothing1m(tmp_path)
    os.remove(tmp_path / "clean_test_key_list.txt")
    with pytest.raises(FileNotFoundError, match="clean_test_key_list.txt"):
        datasets.load_dataset("clothing1m", tmp_path)
    write_lines(str(tmp_path / "clean_test_key_list.txt"), ["images/9/unknown.jpg"])
    with pytest.raises(ValueError, match="clean_test_key_list.txt:1: key"):
        datasets.load_dataset("clothing1m", tmp_path)
    write_lines(str(tmp_path / "noisy_label_kv.txt"), ["a.jpg 0", "b.jpg x"])
    with pytest.raises(ValueError, match="noisy_label_kv.txt:2: expected"):
        datasets.load_dataset("clothing1m", tmp_path)


def test_webvision(tmp_path, seed):
    write_webvision(tmp_path)
    data = datasets.load_dataset("webvision", tmp_path, image_size=(16, 16))
    assert data.num_classes == 50 and data.image_shape == (16, 16, 3)
    # Labels 60 and 55 are outside the first 50 classes and dropped.
    np.testing.assert_array_equal(data.train.labels, [0, 1, 2, 3, 49, 4, 0, 1])
    np.testing.assert_array_equal(data.train.ids, np.arange(8))
    assert data.num_examples == 8 and data.train.true_labels is None
    np.testing.assert_array_equal(data.val.labels, [0, 1, 2])
    for k, name in enumerate(["v0.jpg", "v1.jpg", "v3.jpg"]):
        assert data.val.paths[k] == os.path.join(str(tmp_path), "val_images_256", name)
    assert data.test is data.val
    ilsvrc = data.extra_tests["ilsvrc12"]
    np.testing.assert_array_equal(ilsvrc.labels, [3, 4])
    assert ilsvrc.paths[1] == os.path.join(
        str(tmp_path), "imagenet/val/ILSVRC2012_val_00000002.JPEG"
    )

    (images, ids), labels = next(iter(datasets.make_train_dataset(data, 4, seed=seed)))
    assert images.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(labels, data.train.labels[ids.numpy()])
    images, labels = next(iter(datasets.make_eval_dataset(ilsvrc, data, 4)))
    assert images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(labels, [3, 4])


# --------------------------------------------------------------------------
# noisy_labels_file.


def test_noisy_labels_npy(tmp_path, tiny):
    directory = _write_tiny_fashion(tmp_path / "f2")
    table = (np.arange(60) * 7 + 3) % 10
    np.save(tmp_path / "noisy.npy", table)
    data = datasets.load_dataset(
        "fashion_mnist", directory, noisy_labels_file=tmp_path / "noisy.npy"
    )
    np.testing.assert_array_equal(data.train.labels, table[data.train.ids])
    np.testing.assert_array_equal(data.val.labels, table[data.val.ids])
    # The split is made before relabelling, and true labels are kept.
    np.testing.assert_array_equal(data.val.ids, tiny.val.ids)
    np.testing.assert_array_equal(data.train.true_labels, data.train.ids % 10)
    assert data.label_source.startswith("file:")

    np.save(tmp_path / "short.npy", table[:59])
    with pytest.raises(ValueError, match="short.npy.*length num_examples=60"):
        datasets.load_dataset("fashion_mnist", directory, noisy_labels_file=tmp_path / "short.npy")


def test_noisy_labels_csv(tmp_path):
    directory = _write_tiny_fashion(tmp_path / "f")
    rows = [f"{i},{(i + 1) % 10}" for i in range(60)]
    csv_path = tmp_path / "noisy.csv"
    write_lines(str(csv_path), ["id,label"] + rows)
    data = datasets.load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
    np.testing.assert_array_equal(data.train.labels, (data.train.ids + 1) % 10)
    write_lines(str(csv_path), rows)  # No header.
    data = datasets.load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
    np.testing.assert_array_equal(data.val.labels, (data.val.ids + 1) % 10)

    cases = [
        (["id,label", "0,1", "1;2"], r"noisy.csv:3: expected 'id,label'"),
        (["0,1", "1,10"], r"noisy.csv:2: label must be in \[0, 10\)"),
        (["0,1", "60,1"], r"noisy.csv:2: id must be in \[0, 60\)"),
        (["0,1", "0,2"], r"noisy.csv:2: id 0 appears twice"),
        (rows[:-1], r"noisy.csv gives no label for 1"),
    ]
    for lines, message in cases:
        write_lines(str(csv_path), lines)
        with pytest.raises(ValueError, match=message):
            datasets.load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
    write_lines(str(tmp_path / "labels.txt"), rows)
    with pytest.raises(ValueError, match="must end in .npy or .csv"):
        datasets.load_dataset("fashion_mnist", directory, noisy_labels_file=tmp_path / "labels.txt")


def test_with_labels_by_id(tiny):
    table = tiny.labels_by_id()
    assert (table >= 0).all() and len(table) == 60
    noisy = tiny.with_labels_by_id((table + 1) % 10, label_source="sym")
    np.testing.assert_array_equal(noisy.val.labels, (tiny.val.labels + 1) % 10)
    assert noisy.label_source == "sym" and noisy.test is tiny.test
    with pytest.raises(ValueError, match=r"label in \[0, 10\)"):
        tiny.with_labels_by_id(table + 10)


# --------------------------------------------------------------------------
# Benchmark script.


def test_benchmark_script_runs(tmp_path):
    directory = _write_tiny_fashion(tmp_path / "f")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "benchmark_input.py"),
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


def _tiny_data():
    rng = np.random.default_rng(0)
    n = 40
    train = datasets.ExampleSet(
        ids=np.arange(n),
        labels=rng.integers(0, 4, n),
        images=rng.integers(0, 255, (n, 8, 8, 1)).astype("uint8"),
    )
    return datasets.NoisyData(
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


@pytest.mark.parametrize("balanced", [None, 3])
def test_epoch_variable_makes_each_epoch_a_function_of_seed_and_epoch(balanced):
    data = _tiny_data()
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = datasets.make_train_dataset(data, 8, seed=5, epoch=epoch, balanced_batches=balanced)

    def read():
        return [(x.numpy(), i.numpy()) for (x, i), _ in ds]

    first = read()
    epoch.assign(1)
    second = read()
    epoch.assign(0)
    again = read()
    # A fresh pipeline (as after a restart) at epoch 1 reads epoch 1's batches.
    fresh_epoch = tf.Variable(1, dtype=tf.int64)
    fresh = datasets.make_train_dataset(
        data, 8, seed=5, epoch=fresh_epoch, balanced_batches=balanced
    )
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
