"""Tests for elr_tf.data.sources: load_dataset on every data set, ids kept."""

import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from data_helpers import (
    denormalize,
    mocked,
    one_epoch,
)
from file_layouts import (
    write_clothing1m,
    write_lines,
    write_tiny_fashion,
    write_webvision,
)

from elr_tf.data import load_dataset, make_eval_dataset, make_train_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fashion_mnist_real_files(real_fashion):
    data = real_fashion
    assert (data.num_classes, data.image_shape, data.num_examples) == (
        10,
        (28, 28, 1),
        60000,
    )
    assert len(data.train) + len(data.val) == 60000
    assert len(data.test) == 10000
    assert data.train.features.shape == (54000, 28, 28, 1)
    assert data.train.features.dtype == np.uint8
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
    again = load_dataset("fashion_mnist", split_seed=0)
    other = load_dataset("fashion_mnist", split_seed=1)
    np.testing.assert_array_equal(again.val.ids, real_fashion.val.ids)
    assert not np.array_equal(other.val.ids, real_fashion.val.ids)
    # Ids are raw positions: the same id has the same image in every split.
    table = {int(i): k for k, i in enumerate(other.train.ids)}
    for k, example_id in enumerate(real_fashion.train.ids[:50]):
        if int(example_id) in table:
            np.testing.assert_array_equal(
                real_fashion.train.features[k],
                other.train.features[table[int(example_id)]],
            )


def test_fashion_mnist_num_train(real_fashion):
    data = load_dataset("fashion_mnist", num_train=1000, split_seed=3)
    assert len(data.train) + len(data.val) == 1000
    np.testing.assert_array_equal(np.bincount(data.train.labels), [90] * 10)
    np.testing.assert_array_equal(np.bincount(data.val.labels), [10] * 10)
    assert data.num_examples == 60000  # The table keeps the raw id space.
    assert data.train.ids.max() > 1000  # Raw positions, not 0..999.
    full_labels = real_fashion.labels_by_id()
    np.testing.assert_array_equal(data.train.labels, full_labels[data.train.ids])
    np.testing.assert_array_equal(data.val.labels, full_labels[data.val.ids])


def test_fashion_mnist_tiny_idx(tiny):
    assert (len(tiny.train), len(tiny.val), len(tiny.test)) == (50, 10, 20)
    assert tiny.num_examples == 60
    # Image of id k is filled with k + 1, so ids and images agree.
    np.testing.assert_array_equal(tiny.train.features[:, 0, 0, 0], tiny.train.ids + 1)
    np.testing.assert_array_equal(tiny.train.labels, tiny.train.ids % 10)


def test_fashion_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*--data_dir"):
        load_dataset("fashion_mnist", tmp_path)


def test_fashion_mnist_from_prepared_tfds(tmp_path):
    with (
        tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE),
        mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True),
    ):
        data = load_dataset("fashion_mnist", tmp_path)
    assert data.image_shape == (28, 28, 1)
    assert len(data.train) + len(data.val) == 30 == data.num_examples


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_mocked(tmp_path, name, num_classes):
    with mocked():
        data = load_dataset(name, tmp_path)
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
    with mocked():
        data = load_dataset(name, tmp_path, cifar_n_label=choice)
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
        load_dataset("cifar10_n", cifar_n_label="x")
    with pytest.raises(ValueError, match="noisy100.*cifar_n_label='worst'"):
        load_dataset("cifar100_n", cifar_n_label="worst")
    with pytest.raises(ValueError, match="applies only to cifar100_n, cifar10_n"):
        load_dataset("cifar10", cifar_n_label="worst")


def test_cifar_not_prepared(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"(?s)not prepared.*tfds build cifar10.*--data_dir"
    ):
        load_dataset("cifar10", tmp_path)


def test_load_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist.*webvision.*name='mnist'"):
        load_dataset("mnist")
    bad = [
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
        ({"num_train": 0}, "num_train=0"),
        ({"split_seed": -1}, "split_seed=-1"),
        ({"image_size": 16}, "image_size=16"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            load_dataset("fashion_mnist", tmp_path, **kwargs)
    directory = write_tiny_fashion(tmp_path / "f")
    with pytest.raises(ValueError, match="at most the training set size 60"):
        load_dataset("fashion_mnist", directory, num_train=61)
    with pytest.raises(ValueError, match="data_dir=None"):
        load_dataset("clothing1m")


def test_clothing1m(tmp_path, seed):
    keys = write_clothing1m(tmp_path)
    data = load_dataset("clothing1m", tmp_path, image_size=16)
    assert data.num_classes == 14 and data.image_shape == (16, 16, 3)
    assert data.resize_size == 18 and data.augment == "large"
    assert (len(data.train), len(data.val), len(data.test)) == (28, 7, 7)
    assert data.num_examples == 28 and not data.val_from_train
    np.testing.assert_array_equal(data.train.ids, np.arange(28))
    np.testing.assert_array_equal(data.train.labels, np.arange(28) % 14)
    np.testing.assert_array_equal(data.train.true_labels, [1, 2, 3, 4, 5] + [-1] * 23)
    assert data.train.paths[3] == os.path.join(str(tmp_path), keys["train"][3])

    ds = make_train_dataset(data, 8, seed=seed)
    (images, ids), labels = next(iter(ds))
    assert images.shape == (8, 16, 16, 3) and images.dtype == tf.float32
    np.testing.assert_array_equal(labels, data.train.labels[ids.numpy()])

    balanced = make_train_dataset(data, 14, seed=seed, balanced_batches=2)
    _, ids, labels = one_epoch(balanced)
    np.testing.assert_array_equal(np.bincount(labels), [2] * 14)

    eval_ds = make_eval_dataset(data.test, data, 4, with_ids=True)
    images, ids, labels = one_epoch(eval_ds)
    assert images.shape == (7, 16, 16, 3)
    np.testing.assert_array_equal(ids, np.arange(7))
    # Constant images stay constant through resize and centre crop.
    first = denormalize(images[0], data)
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
    data = load_dataset("clothing1m", tmp_path / "c1m", image_size=16)
    expected = os.path.join(str(tmp_path / "c1m"), keys["train"][4][len("images/") :])
    assert data.train.paths[4] == expected and os.path.isfile(expected)
    images, _ = next(iter(make_eval_dataset(data.val, data, 7)))
    assert images.shape == (7, 16, 16, 3)


def test_webvision(tmp_path, seed):
    write_webvision(tmp_path)
    data = load_dataset("webvision", tmp_path, image_size=(16, 16))
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

    (images, ids), labels = next(iter(make_train_dataset(data, 4, seed=seed)))
    assert images.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(labels, data.train.labels[ids.numpy()])
    images, labels = next(iter(make_eval_dataset(ilsvrc, data, 4)))
    assert images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(labels, [3, 4])


def test_noisy_labels_npy(tmp_path, tiny):
    directory = write_tiny_fashion(tmp_path / "f2")
    table = (np.arange(60) * 7 + 3) % 10
    np.save(tmp_path / "noisy.npy", table)
    data = load_dataset("fashion_mnist", directory, noisy_labels_file=tmp_path / "noisy.npy")
    np.testing.assert_array_equal(data.train.labels, table[data.train.ids])
    np.testing.assert_array_equal(data.val.labels, table[data.val.ids])
    # The split is made before relabelling, and true labels are kept.
    np.testing.assert_array_equal(data.val.ids, tiny.val.ids)
    np.testing.assert_array_equal(data.train.true_labels, data.train.ids % 10)
    assert data.label_source.startswith("file:")

    np.save(tmp_path / "short.npy", table[:59])
    with pytest.raises(
        ValueError, match=r"short.npy \(a label per training example\). must have length 60"
    ):
        load_dataset("fashion_mnist", directory, noisy_labels_file=tmp_path / "short.npy")


def test_noisy_labels_csv(tmp_path):
    directory = write_tiny_fashion(tmp_path / "f")
    rows = [f"{i},{(i + 1) % 10}" for i in range(60)]
    csv_path = tmp_path / "noisy.csv"
    write_lines(str(csv_path), ["id,label"] + rows)
    data = load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
    np.testing.assert_array_equal(data.train.labels, (data.train.ids + 1) % 10)
    write_lines(str(csv_path), rows)  # No header.
    data = load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
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
            load_dataset("fashion_mnist", directory, noisy_labels_file=csv_path)
    write_lines(str(tmp_path / "labels.txt"), rows)
    with pytest.raises(ValueError, match="must end in .npy or .csv"):
        load_dataset("fashion_mnist", directory, noisy_labels_file=tmp_path / "labels.txt")
