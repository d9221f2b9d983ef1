"""Tests for elr_tf.data.sources._cifar_n_files: CIFAR-10N from its two .npz files."""

import os

import numpy as np
import pytest
from data_helpers import mocked
from file_layouts import CIFAR10N_FLIPS, cifar10n_arrays, write_cifar10n

from elr_tf.data import load_dataset
from elr_tf.data.sources import _cifar_n_files

CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@pytest.mark.parametrize(
    "choice,key",
    [
        ("aggre", "aggre_label"),
        ("random1", "random_label1"),
        ("random2", "random_label2"),
        ("random3", "random_label3"),
        ("worst", "worse_label"),
        (None, "worse_label"),
    ],
)
def test_each_label_set_is_picked_with_the_truth_beside_it(tmp_path, choice, key):
    images, human = cifar10n_arrays()
    root = write_cifar10n(tmp_path, images, human)
    data = load_dataset("cifar10_n", root, cifar_n_label=choice)
    noisy, true = data.labels_by_id(), data.labels_by_id(true_labels=True)
    np.testing.assert_array_equal(noisy, human[key])
    np.testing.assert_array_equal(true, images["y_train"])
    assert np.mean(noisy != true) == CIFAR10N_FLIPS[key] / 40
    assert data.label_source == f"cifar10_n:{choice or 'worst'}"
    assert data.source.real_noise


def test_ids_images_test_set_and_class_names(tmp_path):
    images, human = cifar10n_arrays(n_train=40, n_test=10)
    # keras.datasets gives labels as uint8 [N, 1].
    images["y_train"] = images["y_train"].astype(np.uint8)[:, None]
    data = load_dataset("cifar10_n", write_cifar10n(tmp_path, images, human))
    assert data.class_names == CIFAR10_NAMES == _cifar_n_files.CLASS_NAMES
    assert (data.num_classes, data.image_shape, data.num_examples) == (10, (32, 32, 3), 40)
    assert (data.mean, data.augment) == ((0.4914, 0.4822, 0.4465), "cifar")
    for example_set in (data.train, data.val):
        # Ids are positions: the image of id k is filled with k.
        np.testing.assert_array_equal(example_set.features[:, 5, 7, 1], example_set.ids)
    np.testing.assert_array_equal(data.test.ids, np.arange(10))
    np.testing.assert_array_equal(data.test.labels, np.arange(10))
    np.testing.assert_array_equal(data.test.true_labels, data.test.labels)
    assert data.test.features.shape == (10, 32, 32, 3)


def test_any_subset_of_label_sets_without_clean_label(tmp_path):
    images, human = cifar10n_arrays()
    root = write_cifar10n(tmp_path, images, {"aggre_label": human["aggre_label"]})
    data = load_dataset("cifar10_n", root, cifar_n_label="aggre")
    np.testing.assert_array_equal(data.labels_by_id(true_labels=True), images["y_train"])


def test_a_missing_label_set_names_file_key_choice_and_what_the_file_has(tmp_path):
    images, human = cifar10n_arrays()
    kept = ("clean_label", "aggre_label", "worse_label", "random_label1")
    root = write_cifar10n(tmp_path, images, {k: human[k] for k in kept})
    with pytest.raises(ValueError) as error:
        load_dataset("cifar10_n", root, cifar_n_label="random2")
    message = str(error.value)
    assert os.path.join(root, "CIFAR-10_human.npz") in message
    assert "`random_label2`" in message and "cifar_n_label='random2'" in message
    assert "['aggre_label', 'clean_label', 'random_label1', 'worse_label']" in message
    assert "one of: aggre, random1, worst" in message


def test_clean_label_out_of_step_with_y_train_is_refused(tmp_path):
    images, human = cifar10n_arrays()
    human["clean_label"][[3, 17]] = (human["clean_label"][[3, 17]] + 1) % 10
    root = write_cifar10n(tmp_path, images, human)
    with pytest.raises(ValueError, match=r"out of step.*2 of 40 labels.*\[3, 17\]"):
        load_dataset("cifar10_n", root)


@pytest.mark.parametrize("missing", ["cifar10.npz", "CIFAR-10_human.npz"])
def test_a_folder_with_one_file_only_is_refused(tmp_path, missing):
    images, human = cifar10n_arrays()
    if missing == "cifar10.npz":
        images = None
    else:
        human = None
    root = write_cifar10n(tmp_path, images, human)
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("cifar10_n", root)
    assert f"{os.path.join(root, missing)} not found" in str(error.value)
    assert "holds both cifar10.npz" in str(error.value)


def _bad_arrays(case):
    images, human = cifar10n_arrays()
    if case == "no y_test":
        del images["y_test"]
    elif case == "float images":
        images["x_train"] = images["x_train"].astype(np.float32)
    elif case == "28x28 images":
        images["x_train"] = images["x_train"][:, :28, :28]
    elif case == "grey test images":
        images["x_test"] = images["x_test"][..., 0]
    elif case == "no images":
        images["x_train"], images["y_train"] = images["x_train"][:0], images["y_train"][:0]
        human = {k: v[:0] for k, v in human.items()}
    elif case == "y_train out of range":
        images["y_train"][4] = 10
    elif case == "y_test too short":
        images["y_test"] = images["y_test"][:-1]
    elif case == "short label set":
        human["worse_label"] = human["worse_label"][:39]
    elif case == "label set out of range":
        human["worse_label"][[1, 2]] = [10, -1]
    elif case == "float label set":
        human["worse_label"] = human["worse_label"].astype(np.float64)
    return images, human


@pytest.mark.parametrize(
    "case,file,message",
    [
        ("no y_test", "cifar10.npz", r"must hold the arrays x_train, y_train.*Missing: y_test"),
        ("float images", "cifar10.npz", r"`x_train` must be uint8.*dtype=float32"),
        ("28x28 images", "cifar10.npz", r"`x_train` must be uint8 images \[N, 32, 32, 3\]"),
        ("grey test images", "cifar10.npz", r"`x_test` must be .*shape=\(10, 32, 32\)"),
        ("no images", "cifar10.npz", r"`x_train` must be .*N >= 1"),
        ("y_train out of range", "cifar10.npz", r"`y_train` must be .*\[0, 10\).*\[10\]"),
        ("y_test too short", "cifar10.npz", r"`y_test` must hold one .* \[10\].*shape=\(9,\)"),
        ("short label set", "CIFAR-10_human.npz", r"`worse_label` .*\[40\].*shape=\(39,\)"),
        ("label set out of range", "CIFAR-10_human.npz", r"`worse_label` .*\[10, -1\]"),
        ("float label set", "CIFAR-10_human.npz", r"`worse_label` must hold one integer"),
    ],
)
def test_bad_arrays_are_refused_naming_file_and_expectation(tmp_path, case, file, message):
    root = write_cifar10n(tmp_path, *_bad_arrays(case))
    with pytest.raises(ValueError, match=message) as error:
        load_dataset("cifar10_n", root, cifar_n_label="worst")
    assert str(error.value).startswith(os.path.join(root, file))


@pytest.mark.parametrize("file", ["cifar10.npz", "CIFAR-10_human.npz"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "one array", "objects"])
def test_unreadable_npz_files_are_refused_by_name(tmp_path, file, damage):
    root = write_cifar10n(tmp_path, *cifar10n_arrays())
    path = os.path.join(root, file)
    if damage == "garbage":
        with open(path, "wb") as f:
            f.write(b"not an npz")
    elif damage == "truncated":
        with open(path, "rb") as f:
            content = f.read()
        with open(path, "wb") as f:
            f.write(content[: len(content) // 2])
    elif damage == "one array":
        with open(path, "wb") as f:
            np.save(f, np.arange(40))
    else:
        np.savez(path, worse_label=np.array([1, "x", None], dtype=object))
    with pytest.raises(ValueError, match=f"Cannot read {path} as an .npz file"):
        load_dataset("cifar10_n", root)


def test_a_folder_without_the_files_is_still_read_as_a_tfds_dir(tmp_path):
    with mocked():
        data = load_dataset("cifar10_n", tmp_path, cifar_n_label="aggre")
    assert data.num_examples == 40 and data.label_source == "cifar10_n:aggre"
    with pytest.raises(FileNotFoundError, match=r"not prepared.*Or pass --data_dir=<a folder"):
        load_dataset("cifar10_n", tmp_path)
