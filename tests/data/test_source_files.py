"""Tests of the source modules' file readers: IDX files, tfds ids, Clothing1M lists."""

import gzip
import os

import numpy as np
import pytest
from file_layouts import (
    write_clothing1m,
    write_idx,
    write_lines,
)

from elr_tf.data import load_dataset
from elr_tf.data.sources import fashion_mnist, tfds


def test_read_idx_tiny_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", images)
    np.testing.assert_array_equal(fashion_mnist.read_idx(tmp_path / "a.gz"), images)
    values = np.array([[-1, 70000], [5, 0]], dtype=np.int32)
    write_idx(tmp_path / "b", values, compress=False)
    result = fashion_mnist.read_idx(tmp_path / "b")
    np.testing.assert_array_equal(result, values)
    assert result.shape == (2, 2)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.gz"):
        fashion_mnist.read_idx(tmp_path / "missing.gz")
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="Not an IDX file: .*magic"):
        fashion_mnist.read_idx(tmp_path / "magic")
    write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8), compress=False)
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="short.*truncated or corrupt"):
        fashion_mnist.read_idx(tmp_path / "short")
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")
    (tmp_path / "broken.gz").write_bytes(good[:-6])
    with pytest.raises(ValueError, match="broken.gz"):
        fashion_mnist.read_idx(tmp_path / "broken.gz")


def test_tfds_ids_give_raw_order():
    ids = [b"train_00002", b"train_00000", b"train_00001"]
    np.testing.assert_array_equal(tfds.parse_tfds_ids(ids), [2, 0, 1])
    assert tfds.parse_tfds_ids([b"train_00002", b"ab cd"]) is None
    assert tfds.parse_tfds_ids([b"train_00005"]) is None  # Not 0..n-1.


def test_clothing1m_bad_files(tmp_path):
    write_clothing1m(tmp_path)
    os.remove(tmp_path / "clean_test_key_list.txt")
    with pytest.raises(FileNotFoundError, match="clean_test_key_list.txt"):
        load_dataset("clothing1m", tmp_path)
    write_lines(str(tmp_path / "clean_test_key_list.txt"), ["images/9/unknown.jpg"])
    with pytest.raises(ValueError, match="clean_test_key_list.txt:1: key"):
        load_dataset("clothing1m", tmp_path)
    write_lines(str(tmp_path / "noisy_label_kv.txt"), ["a.jpg 0", "b.jpg x"])
    with pytest.raises(ValueError, match="noisy_label_kv.txt:2: expected"):
        load_dataset("clothing1m", tmp_path)
