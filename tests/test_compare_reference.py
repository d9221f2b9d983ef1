"""`scripts/benchmarks/compare_reference.py`: its data, its elr_tf side and its table.

The PyTorch side is tested in `tests/test_reference_torch.py` (skipped
without the benchmark dependencies).
"""

import os

import numpy as np
import pytest
from script_loader import load_script

from elr_tf.data import FASHION_MNIST_DIR


@pytest.fixture(scope="module")
def script():
    return load_script("compare_reference")


def _needs_fashion_mnist():
    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")):
        pytest.skip("needs the Fashion-MNIST files (scripts/setup.sh installs them)")


def test_setting_and_one_elr_plus_epoch_of_the_elr_tf_side(script):
    _needs_fashion_mnist()
    setting = script.load_setting(0.6, seed=0, num_examples=600)
    assert setting["x_train"].shape == (540, 28, 28, 1)
    assert setting["x_test"].shape == (10000, 28, 28, 1)
    # Normalised per channel on the training images' statistics.
    assert abs(float(setting["x_train"].mean())) < 0.2
    wrong = float(np.mean(setting["y_train"] != setting["true_train"]))
    assert wrong == pytest.approx(setting["wrong"]) and 0.45 < wrong < 0.62
    # The same seed gives both frameworks the same initial weights.
    first, second = script.initial_weights("elr_plus", 0)
    again = script.initial_weights("elr_plus", 0)
    np.testing.assert_array_equal(first[0], again[0][0])
    assert not np.array_equal(first[0], second[0])
    result = script.train_elr_tf(
        "elr_plus", setting, seed=0, init_weights=(first, second), epochs=1
    )
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["seconds_per_epoch"] > 0


def test_table_means_seeds_and_compares_common_seeds(script):
    def record(framework, method, seed, accuracy):
        return {
            "framework": framework,
            "method": method,
            "noise": 0.6,
            "seed": seed,
            "epochs": 20,
            "test_accuracy": accuracy,
            "seconds_per_epoch": 2.0,
            "wrong": 0.535,
        }

    records = [
        record("pytorch", "elr_plus", 0, 0.85),
        record("pytorch", "elr_plus", 1, 0.84),
        record("elr_tf", "elr_plus", 0, 0.86),
        record("elr_tf", "elr", 0, 0.80),
    ]
    table = script.format_table(records).splitlines()
    assert len(table) == 4  # Header, rule, ELR, ELR+ (no CE records).
    assert table[2].startswith("| 60% (53.5%) | ELR | — | 0.8000 | — |")
    # PyTorch's mean over two seeds; the gap over the seed both have.
    assert "| ELR+ | 0.8450 (0.8500 / 0.8400) | 0.8600 | +1.00 pts | 2.0 |" in table[3]
    assert script.run_key(records[0]) != script.run_key(records[1])
    # Records written before the start was recorded copied Keras's start.
    assert script.starting_point(records[0]) == ("keras", "same")
    own = dict(records[0], init="reference", weights="own")
    assert script.run_key(own) != script.run_key(records[0])
