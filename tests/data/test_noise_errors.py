"""elr_tf.data.noise refuses bad input: every ValueError names the argument at fault."""

import numpy as np
import pytest
from data_helpers import CIFAR10_MAP, CIFAR100_MAP

from elr_tf.data import noise


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.4", True, None])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="`rate`.*Received: rate="):
        noise.symmetric(np.array([0, 1]), rate, 2, seed=0)


@pytest.mark.parametrize("rate", [-0.1, 1.01, None])
def test_bad_rate_asymmetric(rate):
    with pytest.raises(ValueError, match="`rate`.*Received: rate="):
        noise.asymmetric(np.array([0]), rate, 10, 0, asymmetric_map=CIFAR10_MAP)


@pytest.mark.parametrize("num_classes", [0, -3, 2.0, None])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="`num_classes`.*Received"):
        noise.symmetric(np.array([0, 1]), 0.2, num_classes, seed=0)


@pytest.mark.parametrize("num_classes", [0, None])
def test_bad_num_classes_asymmetric(num_classes):
    with pytest.raises(ValueError, match="`num_classes`.*Received"):
        noise.asymmetric(np.array([0, 1]), 0.2, num_classes, seed=0, asymmetric_map={0: 1})


def test_exclude_true_class_needs_two_classes():
    with pytest.raises(ValueError, match="`num_classes`.*num_classes=1"):
        noise.symmetric(np.array([0, 0]), 0.2, 1, seed=0, include_true_class=False)


@pytest.mark.parametrize("value", ["no", 0, 1])
def test_include_true_class_must_be_bool(value):
    with pytest.raises(ValueError, match="`include_true_class`.*Received: include_true_class="):
        noise.symmetric(np.array([0, 1]), 0.2, 2, seed=0, include_true_class=value)


@pytest.mark.parametrize("seed", [None, -1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="`seed`.*Received: seed="):
        noise.symmetric(np.array([0, 1]), 0.2, 2, seed=seed)


@pytest.mark.parametrize(
    "labels, pattern",
    [
        (np.array([0, 1, 10]), r"\[0, 10\).*10"),
        (np.array([-1, 0]), r"\[0, 10\).*-1"),
        (np.array([[0, 1]]), "1-D"),
        (np.array([0.0, 1.0]), "integer array"),
    ],
)
def test_bad_labels(labels, pattern):
    with pytest.raises(ValueError, match=f"`labels`.*{pattern}"):
        noise.symmetric(labels, 0.2, 10, seed=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise.asymmetric(np.array([10]), 0.2, 10, 0, asymmetric_map=CIFAR10_MAP),
        lambda: noise.asymmetric(np.array([100]), 0.2, 100, 0, asymmetric_map=CIFAR100_MAP),
        lambda: noise.transition_matrix(np.array([2]), None, 2, 0, matrix=np.eye(2)),
    ],
)
def test_labels_out_of_range_for_each_model(call):
    with pytest.raises(ValueError, match="`labels` must be in"):
        call()


def test_asymmetric_without_map():
    message = (
        r"`asymmetric_map` is required.*this data set has no asymmetric map.*"
        r"--noise_matrix.*Received: asymmetric_map=None"
    )
    with pytest.raises(ValueError, match=message):
        noise.make_noisy_labels(np.array([0]), "asymmetric", 0.2, 10, seed=0)
    with pytest.raises(ValueError, match=message):
        noise.make_noisy_labels(np.array([0]), "asymmetric", 0.2, 10, seed=0, asymmetric_map=None)
    with pytest.raises(ValueError, match=message):
        noise.asymmetric(np.array([0]), 0.2, 10, seed=0)


@pytest.mark.parametrize(
    "class_map, pattern",
    [
        ({}, "non-empty dict"),
        ([(0, 1)], "non-empty dict"),
        ({0: 10}, r"\[0, 10\).*0: 10"),
        ({-1: 0}, r"\[0, 10\).*-1: 0"),
        ({3: 3}, "different class.*3: 3"),
        ({0: 1.0}, r"\[0, 10\).*0: 1.0"),
        ({"cat": 1}, r"\[0, 10\).*'cat': 1"),
    ],
)
def test_bad_asymmetric_map(class_map, pattern):
    with pytest.raises(ValueError, match=f"`asymmetric_map`.*{pattern}"):
        noise.asymmetric(np.array([0, 1]), 0.2, 10, seed=0, asymmetric_map=class_map)


@pytest.mark.parametrize(
    "matrix, pattern",
    [
        (np.ones((2, 3)) / 3, "square"),
        (np.ones(4) / 4, "square"),
        (np.array([[1.5, -0.5], [0.0, 1.0]]), "non-negative"),
        (np.array([[0.5, 0.4], [0.0, 1.0]]), "sum to 1"),
        (np.array([[0.5, 0.5 + 1e-5], [0.0, 1.0]]), "sum to 1"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), "finite"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_bad_matrix(matrix, pattern):
    with pytest.raises(ValueError, match=f"`matrix`.*{pattern}"):
        noise.transition_matrix(np.array([0, 1]), None, 2, seed=0, matrix=matrix)


def test_matrix_row_sum_within_tolerance_is_accepted():
    matrix = np.array([[0.5, 0.5 + 1e-7], [0.0, 1.0]])
    result = noise.transition_matrix(np.array([0, 1]), None, 2, seed=0, matrix=matrix)
    assert result.noisy.shape == (2,)


def test_matrix_model_checks():
    labels = np.array([0])
    with pytest.raises(ValueError, match="`matrix`.*matrix=None"):
        noise.make_noisy_labels(labels, "matrix", None, 2, seed=0)
    with pytest.raises(ValueError, match="`rate` must be None.*matrix sets.*Received: rate=0.2"):
        noise.make_noisy_labels(labels, "matrix", 0.2, 2, seed=0, matrix=np.eye(2))
    with pytest.raises(ValueError, match="`num_classes`.*matrix size 2.*num_classes=3"):
        noise.make_noisy_labels(labels, "matrix", None, 3, seed=0, matrix=np.eye(2))
    with pytest.raises(ValueError, match="`num_classes`.*num_classes=None"):
        noise.make_noisy_labels(labels, "matrix", None, None, seed=0, matrix=np.eye(2))
