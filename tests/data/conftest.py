"""Fixtures of the data tests: a tiny Fashion-MNIST and the real one."""

import os

import pytest
from file_layouts import write_tiny_fashion

from elr_tf.data import FASHION_MNIST_DIR, load_dataset


@pytest.fixture
def tiny(tmp_path):
    return load_dataset("fashion_mnist", write_tiny_fashion(tmp_path / "fmnist"))


@pytest.fixture(scope="module")
def real_fashion():
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.skip(
            f"{FASHION_MNIST_DIR} missing (Debian package dataset-fashion-mnist not installed)"
        )
    return load_dataset("fashion_mnist")
