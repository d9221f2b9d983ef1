"""Tests for elr_tf.data.sources.npz: own images in one .npz file, class names included."""

import numpy as np
import pytest

from elr_tf.data import load_dataset


def _arrays(n=20, num_classes=3):
    rng = np.random.default_rng(0)
    return {
        "x": rng.integers(0, 255, (n, 8, 8, 3)).astype(np.uint8),
        "y": np.arange(n) % num_classes,
    }


@pytest.mark.parametrize("dtype", ["U", "S"])
def test_class_names_are_read(tmp_path, dtype):
    path = tmp_path / "pets.npz"
    np.savez(path, **_arrays(), class_names=np.array(["cat", "dog", "emu"], dtype=dtype))
    data = load_dataset("npz", path)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.num_classes == 3 and data.train.true_labels is None


def test_without_class_names_there_are_none(tmp_path):
    path = tmp_path / "pets.npz"
    np.savez(path, **_arrays())
    assert load_dataset("npz", path).class_names is None


@pytest.mark.parametrize(
    "names,message",
    [
        (np.array(["cat", "dog"]), r"must name the 3 classes .*Received 2 names: \['cat', 'dog'\]"),
        (np.array(["cat", "dog", "emu", "fox"]), "must name the 3 classes"),
        (np.array([0, 1, 2]), r"1-D array of strings.*dtype=int64"),
        (np.array([["cat", "dog", "emu"]]), r"1-D array of strings.*shape=\(1, 3\)"),
        (np.array(["cat", "dog", "cat"]), r"each class differently.*\['cat'\]"),
        (np.array([b"cat", b"d\xf6g", b"emu"]), r"UTF-8 text.*b'd\\xf6g', not UTF-8 at byte 1"),
    ],
)
def test_bad_class_names_are_refused(tmp_path, names, message):
    path = tmp_path / "pets.npz"
    np.savez(path, **_arrays(), class_names=names)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset("npz", path)
    assert str(error.value).startswith(f"{path}: `class_names`")


def test_unreadable_npz_is_refused_by_name(tmp_path):
    path = tmp_path / "pets.npz"
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=f"Cannot read {path} as an .npz file"):
        load_dataset("npz", path)
