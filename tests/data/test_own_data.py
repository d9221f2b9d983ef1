"""Tests for users' own data: `folder`, `csv` and `tfds:<name>` in load_dataset."""

import dataclasses
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import mocked, one_epoch, write_any_image
from file_layouts import write_lines, write_tiny_fashion

from elr_tf.data import (
    DATASET_NAMES,
    FASHION_MNIST_CLASS_NAMES,
    NoisyData,
    indexed_dataset,
    is_dataset_name,
    load_dataset,
    make_eval_dataset,
    make_train_dataset,
)

# Per class: (relative path, height, width, format). Mixed sizes, formats,
# extension cases, a nested folder and a grey PNG.
_FOLDER = {
    "dog": [("a.png", 12, 16, "png"), ("b.JPG", 20, 10, "jpg"), ("sub/c.jpeg", 12, 16, "jpg")],
    "cat": [("x.png", 20, 10, "png"), ("y.jpg", 12, 16, "jpg")],
    "emu": [("grey.PNG", 14, 9, "grey"), ("e1.png", 12, 16, "png"), ("e2.jpg", 20, 10, "jpg")],
}


def _write_folder(root, layout=_FOLDER):
    for class_name, files in layout.items():
        os.makedirs(os.path.join(root, class_name), exist_ok=True)
        for k, (name, height, width, fmt) in enumerate(files):
            write_any_image(os.path.join(root, class_name, name), height, width, fmt, 30 * k)
    return str(root)


def _truncate_jpeg(path):
    """Writes a file with a valid JPEG header whose data is cut off."""
    encoded = tf.io.encode_jpeg(tf.fill([40, 40, 3], tf.constant(9, tf.uint8))).numpy()
    with open(path, "wb") as f:
        f.write(encoded[: len(encoded) // 2])


def _all_paths(data):
    table = {}
    for example_set in (data.train, data.val):
        table.update(zip(example_set.ids.tolist(), example_set.paths.tolist()))
    return [table[i] for i in range(data.num_examples)]


def test_folder(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    write_lines(os.path.join(root, "dog", "notes.txt"), ["not an image"])
    data = load_dataset("folder", root, image_size=8, val_fraction=0.34)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.num_classes == 3 and data.num_examples == 8
    assert data.image_shape == (8, 8, 3) and data.resize_size == round(8 * 256 / 224)
    assert data.augment == "large" and data.mean == (0.5,) * 3 and data.std == (0.25,) * 3
    assert data.train.file_backed and data.train.true_labels is None
    # Ids are positions in the list: class by class, sorted by path.
    expected = [
        os.path.join(root, c, name)
        for c in ("cat", "dog", "emu")
        for name, *_ in sorted(_FOLDER[c])
    ]
    assert _all_paths(data) == expected
    np.testing.assert_array_equal(data.labels_by_id(), [0, 0, 1, 1, 1, 2, 2, 2])
    # 34% per class: one val example of each class; test is val.
    np.testing.assert_array_equal(np.bincount(data.val.labels), [1, 1, 1])
    assert data.test is data.val and data.val_from_train

    images, ids, labels = one_epoch(make_train_dataset(data, 5, seed=0))
    assert images.shape == (5, 8, 8, 3)
    np.testing.assert_array_equal(labels, data.labels_by_id()[ids])
    images, _ = next(iter(make_eval_dataset(data.test, data, 4)))
    assert images.shape == (3, 8, 8, 3)


def test_folder_default_size_num_train_and_labels_file(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    data = load_dataset("folder", root)
    assert data.image_shape == (64, 64, 3) and data.resize_size == 73
    subset = load_dataset("folder", root, num_train=6, val_fraction=0.0, split_seed=1)
    assert len(subset.train) == 6 and subset.num_examples == 8
    np.testing.assert_array_equal(np.bincount(subset.train.labels), [2, 2, 2])
    assert len(subset.test) == 0
    table = np.array([2, 2, 0, 0, 0, 1, 1, 1])
    np.save(tmp_path / "noisy.npy", table)
    relabelled = load_dataset("folder", root, noisy_labels_file=tmp_path / "noisy.npy")
    np.testing.assert_array_equal(relabelled.labels_by_id(), table)
    # The test set keeps the labels as given.
    np.testing.assert_array_equal(relabelled.test.labels, data.labels_by_id()[data.val.ids])


def test_indexed_dataset(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    train_ds, data = indexed_dataset("folder", root, batch_size=4, image_size=(6, 10), seed=3)
    (images, ids), labels = next(iter(train_ds))
    assert images.shape == (4, 6, 10, 3) and images.dtype == tf.float32
    np.testing.assert_array_equal(labels, data.labels_by_id()[ids.numpy()])
    assert data.class_names == ("cat", "dog", "emu")
    again = load_dataset("folder", root, split_seed=3)
    np.testing.assert_array_equal(again.val.ids, data.val.ids)


def test_folder_errors(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("folder", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="data_dir=None"):
        load_dataset("folder")
    flat = tmp_path / "flat"
    write_any_image(str(flat / "a.png"), 8, 8, "png")
    with pytest.raises(ValueError, match="flat has no class sub-folders"):
        load_dataset("folder", flat)

    root = _write_folder(tmp_path / "imgs")
    os.makedirs(os.path.join(root, "bee"))
    with pytest.raises(ValueError, match=r"1 class folders hold no image.*imgs/bee"):
        load_dataset("folder", root)
    with caplog.at_level(logging.WARNING):
        data = load_dataset("folder", root, skip_unreadable=True)
    assert data.class_names == ("cat", "dog", "emu")
    assert "dropped 1 class folders" in caplog.text and "bee" in caplog.text
    os.rmdir(os.path.join(root, "bee"))

    corrupt = os.path.join(root, "dog", "b.JPG")
    _truncate_jpeg(corrupt)
    with pytest.raises(ValueError, match=r"1 image files cannot be read.*dog/b.JPG"):
        load_dataset("folder", root)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        data = load_dataset("folder", root, skip_unreadable=True, val_fraction=0.0)
    assert "dropped 1 image files" in caplog.text and "b.JPG" in caplog.text
    assert data.num_examples == 7 and corrupt not in data.train.paths.tolist()
    np.testing.assert_array_equal(data.labels_by_id(), [0, 0, 1, 1, 2, 2, 2])


def _write_csv_images(root):
    for k, (name, height, width, fmt) in enumerate(
        [
            ("i/0.png", 12, 16, "png"),
            ("i/1.jpg", 20, 10, "jpg"),
            ("i/2.png", 9, 14, "grey"),
            ("i/3.png", 10, 10, "png"),
            ("i/4.jpg", 10, 12, "jpg"),
        ]
    ):
        write_any_image(os.path.join(root, name), height, width, fmt, 40 * k)


def test_csv_integer_and_name_labels(tmp_path):
    _write_csv_images(tmp_path)
    absolute = os.path.join(str(tmp_path), "i", "2.png")
    rows = ["i/0.png,0", "i/1.jpg,2", f"{absolute},2", "i/3.png, 2", "i/4.jpg,0"]
    write_lines(str(tmp_path / "a.csv"), ["path,label"] + rows)
    data = load_dataset("csv", tmp_path / "a.csv", image_size=8, val_fraction=0.0)
    # Integer labels: classes "0".."max"; label 1 has no example.
    assert data.class_names == ("0", "1", "2") and data.num_classes == 3
    np.testing.assert_array_equal(data.train.labels, [0, 2, 2, 2, 0])
    assert data.train.paths[0] == os.path.join(str(tmp_path), "i", "0.png")
    assert data.train.paths[2] == absolute and data.train.true_labels is None
    images, _, _ = one_epoch(make_train_dataset(data, 5, seed=0))
    assert images.shape == (5, 8, 8, 3)

    names = ["i/0.png,zebra", "i/1.jpg,ant", "i/2.png,zebra", "i/3.png,ant"]
    write_lines(str(tmp_path / "b.csv"), names)  # No header.
    data = load_dataset("csv", tmp_path / "b.csv", val_fraction=0.5)
    assert data.class_names == ("ant", "zebra")
    np.testing.assert_array_equal(data.labels_by_id(), [1, 0, 1, 0])
    assert len(data.val) == 2 and data.test is data.val


@pytest.mark.parametrize(
    "lines,error,message",
    [
        (["path,label", "i/0.png,0", "i/0.png,1,x"], ValueError, r"a.csv:3: expected 2 fields"),
        (
            ["i/0.png,0", "i/missing.png,1"],
            FileNotFoundError,
            r"a.csv:2: image file not found.*missing.png",
        ),
        (["file,class", "i/0.png,0"], ValueError, r"'class' on line 1 \(a header row must read"),
        (["image,kind", "i/0.png,cat"], FileNotFoundError, r"a.csv:1: .*header row must read"),
        (["i/0.png,0", "i/1.jpg,"], ValueError, r"a.csv:2: the label is empty"),
        (
            ["i/0.png,0", "i/1.jpg,cat"],
            ValueError,
            r"all integers or all class names.*'cat' on line 2",
        ),
        (["i/0.png,0", "i/1.jpg,-1"], ValueError, r"a.csv:2: integer labels must be non-negative"),
        (["path,label"], ValueError, r"a.csv lists no images"),
    ],
)
def test_csv_errors(tmp_path, lines, error, message):
    _write_csv_images(tmp_path)
    write_lines(str(tmp_path / "a.csv"), lines)
    with pytest.raises(error, match=message):
        load_dataset("csv", tmp_path / "a.csv")


def test_csv_skip_unreadable(tmp_path, caplog):
    _write_csv_images(tmp_path)
    _truncate_jpeg(os.path.join(str(tmp_path), "i", "1.jpg"))
    lines = ["path,label", "i/0.png,a", "i/gone.png,b", "i/1.jpg,b", "i/2.png,b"]
    write_lines(str(tmp_path / "a.csv"), lines)
    write_lines(str(tmp_path / "b.csv"), [lines[0], lines[1], lines[3]])
    with pytest.raises(ValueError, match=r"1 image files cannot be read.*b.csv:3 .*i/1.jpg"):
        load_dataset("csv", tmp_path / "b.csv")
    with caplog.at_level(logging.WARNING):
        data = load_dataset("csv", tmp_path / "a.csv", skip_unreadable=True, val_fraction=0.0)
    assert "dropped 1 rows whose image file is missing" in caplog.text
    assert "a.csv:3" in caplog.text and "dropped 1 image files" in caplog.text
    assert data.class_names == ("a", "b") and data.num_examples == 2
    np.testing.assert_array_equal(data.train.labels, [0, 1])
    np.testing.assert_array_equal(data.train.ids, [0, 1])
    with pytest.raises(ValueError, match="must be a CSV file.*directory"):
        load_dataset("csv", tmp_path)


def test_tfds_named(tmp_path):
    with mocked():
        data = load_dataset("tfds:cifar10", tmp_path)
    assert data.name == "tfds:cifar10" and data.num_classes == 10
    assert len(data.class_names) == 10
    assert data.image_shape == (32, 32, 3) and data.mean == (0.5,)
    assert len(data.train) + len(data.val) == 40 == data.num_examples
    assert data.train.true_labels is None and not data.train.file_backed
    # The mocked builder lists no splits, so there is no test split.
    assert data.test is data.val
    (images, _), _ = next(iter(make_train_dataset(data, 8, seed=0)))
    assert images.shape == (8, 32, 32, 3)
    with mocked():
        grey = load_dataset("tfds:mnist", tmp_path, num_train=20)
    assert grey.image_shape == (28, 28, 1) and grey.std == (0.25,)
    assert len(grey.train) + len(grey.val) == 20


def test_tfds_named_errors(tmp_path):
    with pytest.raises(ValueError, match="no builder 'no_such_set'"):
        load_dataset("tfds:no_such_set", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"(?s)not prepared.*tfds build mnist"):
        load_dataset("tfds:mnist", tmp_path)
    with pytest.raises(ValueError, match="applies only to clothing1m, csv, folder, webvision"):
        load_dataset("tfds:mnist", tmp_path, image_size=8)


def test_dataset_names_and_class_names(tmp_path):
    assert {"folder", "csv"} <= set(DATASET_NAMES)
    assert is_dataset_name("folder") and is_dataset_name("tfds:mnist")
    assert is_dataset_name("tfds:cifar10_corrupted/brightness_1:3.0.0")
    for bad in ("tfds:", "tfds: ", "mnist", None, 3):
        assert not is_dataset_name(bad)
    with pytest.raises(ValueError, match=r"or 'tfds:<name>'. Received: name='tfds:'"):
        load_dataset("tfds:")
    with pytest.raises(ValueError, match="skip_unreadable.*csv, folder"):
        load_dataset("fashion_mnist", tmp_path, skip_unreadable=True)
    with pytest.raises(ValueError, match="skip_unreadable=1"):
        load_dataset("folder", tmp_path, skip_unreadable=1)

    tiny = load_dataset("fashion_mnist", write_tiny_fashion(tmp_path / "f"))
    assert tiny.class_names == FASHION_MNIST_CLASS_NAMES
    assert tiny.class_names[0] == "T-shirt/top" and tiny.class_names[9] == "Ankle boot"
    with mocked():
        cifar = load_dataset("cifar100", tmp_path)
    assert len(cifar.class_names) == 100
    with pytest.raises(ValueError, match="num_classes=10 names. Received 2"):
        dataclasses.replace(tiny, class_names=("a", "b"))
    assert isinstance(tiny, NoisyData)


def test_csv_image_listed_twice_is_refused_naming_the_lines_or_kept_once(tmp_path, caplog):
    _write_csv_images(tmp_path)
    absolute = os.path.join(str(tmp_path), "i", "0.png")
    rows = ["i/0.png,a", "i/1.jpg,b", "i/2.png,a", f"{absolute},a", "i/3.png,b", "i/4.jpg,b"]
    write_lines(str(tmp_path / "d.csv"), ["path,label", *rows, "i/1.jpg,b"])
    with pytest.raises(
        ValueError,
        match=r"2 image files are listed more than once, e.g. .*0.png on lines 2, 5; "
        r".*1.jpg on lines 3, 8",
    ):
        load_dataset("csv", tmp_path / "d.csv")
    with caplog.at_level(logging.WARNING):
        data = load_dataset("csv", tmp_path / "d.csv", skip_duplicates=True, val_fraction=0.5)
    assert "2 image files are listed more than once" in caplog.text and "d.csv:5" in caplog.text
    assert data.num_examples == 5
    # No file in both train and validation (the validation set is also the test set).
    real = [os.path.realpath(p) for p in (*data.train.paths, *data.val.paths)]
    assert len(set(real)) == len(real) == 5


def test_csv_image_with_two_labels_is_refused(tmp_path):
    _write_csv_images(tmp_path)
    write_lines(str(tmp_path / "two.csv"), ["i/0.png,cat", "i/1.jpg,dog", "i/0.png,dog"])
    for skip in (False, True):
        with pytest.raises(
            ValueError,
            match=r"listed with different labels, e.g. .*0.png on line 1 'cat', line 3 'dog'",
        ):
            load_dataset("csv", tmp_path / "two.csv", skip_duplicates=skip)


def test_a_class_without_training_examples_after_the_split_is_named(tmp_path, caplog):
    _write_csv_images(tmp_path)
    rows = ["i/0.png,cat", "i/1.jpg,cat", "i/2.png,cat", "i/3.png,cat", "i/4.jpg,owl"]
    write_lines(str(tmp_path / "rare.csv"), rows)
    with caplog.at_level(logging.WARNING):
        data = load_dataset("csv", tmp_path / "rare.csv", val_fraction=0.5)
    assert "1 classes have no training example after the split" in caplog.text
    assert "['owl']" in caplog.text
    assert 1 not in data.train.labels


def test_csv_with_a_byte_order_mark_reads_its_header(tmp_path):
    _write_csv_images(tmp_path)
    (tmp_path / "bom.csv").write_bytes("\ufeffpath,label\ni/0.png,cat\ni/1.jpg,dog\n".encode())
    data = load_dataset("csv", tmp_path / "bom.csv", val_fraction=0.0)
    assert data.class_names == ("cat", "dog") and data.num_examples == 2
