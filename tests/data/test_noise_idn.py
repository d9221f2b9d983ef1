"""Tests for instance-dependent noise ("idn" in elr_tf.data.noise)."""

import collections
import gzip
import os
import re

import numpy as np
import pytest

from elr_tf.data import noise

# Four Gaussian blobs in 2-D, one per class, unit variance: 0, 1 and 2 in a
# row along x, each overlapping its neighbours; 3 far from all of them.
CENTRES = np.array([[0.0, 0.0], [2.5, 0.0], [5.0, 0.0], [2.5, 20.0]])

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
# T-shirt/top, pullover, coat and shirt.
FASHION_UPPER_BODY = {0, 2, 4, 6}


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 500)
    return labels, CENTRES[labels] + rng.normal(size=(labels.size, 2))


def _idn(labels, features, rate=0.2, seed=0):
    return noise.make_noisy_labels(labels, "idn", rate, 4, seed, features=features)


def _pairs(result):
    wrong = result.is_noisy
    return collections.Counter(zip(result.true[wrong].tolist(), result.noisy[wrong].tolist()))


def _bayes_posterior(x):
    log_density = -0.5 * ((x[:, None, :] - CENTRES[None]) ** 2).sum(axis=-1)
    posterior = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    return posterior / posterior.sum(axis=1, keepdims=True)


def test_registered_with_features_option():
    assert "idn" in noise.NOISE_NAMES
    assert noise.NOISE_MODELS["idn"].options == ("features",)
    assert noise.NOISE_MODELS["idn"].generate is noise.instance_dependent


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2, 0.333, 0.5, 0.9])
def test_realised_rate_is_the_requested_one(blobs, rate):
    labels, x = blobs
    result = _idn(labels, x, rate)
    assert result.kind == "idn"
    assert result.rate_requested == rate
    assert result.rate_realised == round(rate * labels.size) / labels.size
    np.testing.assert_array_equal(result.true, labels)


def test_rate_zero_gives_identical_labels(blobs):
    labels, x = blobs
    np.testing.assert_array_equal(_idn(labels, x, 0.0).noisy, labels)


def test_flips_go_between_overlapping_classes(blobs):
    labels, x = blobs
    result = _idn(labels, x)
    pairs = _pairs(result)
    # Only neighbours swap; the far class 3 is never flipped nor flipped to,
    # and 0 and 2, which barely overlap, never swap.
    assert set(pairs) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert min(pairs.values()) > 70


def test_flips_go_to_the_most_confused_class(blobs):
    labels, x = blobs
    result = _idn(labels, x)
    # Class 1 sits between 0 and 2: which of them an example flips to
    # depends on which side of class 1's centre it lies.
    middle = result.is_noisy & (labels == 1)
    np.testing.assert_array_equal(result.noisy[middle] == 0, x[middle, 0] < 2.5)
    # And always the wrong class of largest true posterior.
    posterior = _bayes_posterior(x)
    posterior[np.arange(labels.size), labels] = -1.0
    wrong = result.is_noisy
    np.testing.assert_array_equal(result.noisy[wrong], posterior.argmax(axis=1)[wrong])


def test_flipped_examples_are_the_hard_ones(blobs):
    labels, x = blobs
    result = _idn(labels, x)
    # Class 0's flipped examples are its members nearest class 1 (largest x),
    # up to the examples right at the cut.
    members = labels == 0
    flipped_x = x[members & result.is_noisy, 0]
    kept_x = x[members & ~result.is_noisy, 0]
    assert np.sort(flipped_x)[2] > kept_x.max()
    # Nearly the same examples as the top by true posterior of a wrong class.
    posterior = _bayes_posterior(x)
    posterior[np.arange(labels.size), labels] = 0.0
    count = np.count_nonzero(result.is_noisy)
    hardest = np.argsort(-posterior.max(axis=1))[:count]
    assert np.mean(result.is_noisy[hardest]) > 0.9


def test_same_seed_same_labels_other_seed_another_draw(blobs):
    labels, x = blobs
    first, again, other = (_idn(labels, x, 0.3, seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.noisy, again.noisy)
    assert np.any(first.noisy != other.noisy)
    # The seed only drives the classifier's SGD, so another seed moves only
    # the examples near the cut.
    assert np.mean(first.is_noisy[other.is_noisy]) > 0.95


def test_any_array_like_features_flattened(blobs):
    labels, x = blobs
    # A feature-wise affine map changes nothing after standardisation, and
    # [n, 2, 1] "images" are flattened to [n, 2].
    reference = _idn(labels, x).noisy
    for features in (x.reshape(-1, 2, 1), 3.0 * x + 7.0, x.tolist(), x.astype(np.float32)):
        np.testing.assert_array_equal(_idn(labels, features).noisy, reference)


def test_features_callable_is_called_once_and_never_written(blobs):
    labels, x = blobs
    copy = x.copy()
    calls = []

    def load():
        calls.append(1)
        return x

    result = _idn(labels, load)
    assert len(calls) == 1
    np.testing.assert_array_equal(x, copy)
    np.testing.assert_array_equal(result.noisy, _idn(labels, x).noisy)


def test_other_models_refuse_features():
    with pytest.raises(ValueError, match="`features` is not an option of noise model 'symmetric'"):
        noise.make_noisy_labels(np.array([0, 1]), "symmetric", 0.2, 2, 0, features=lambda: None)


def test_constant_features_and_integer_images():
    labels = np.arange(40) % 4
    result = _idn(labels, np.zeros((40, 3)), 0.25)
    assert result.rate_realised == 0.25
    images = np.random.default_rng(1).integers(0, 256, size=(40, 4, 4), dtype=np.uint8)
    assert _idn(labels, images, 0.25).rate_realised == 0.25


def test_empty_labels():
    result = _idn(np.array([], dtype=np.int64), np.zeros((0, 28, 28)), 0.3)
    assert result.noisy.shape == (0,)
    assert result.rate_realised == 0.0


# Checks: every ValueError names the argument at fault.


@pytest.mark.parametrize("features", [None, "missing"])
def test_features_required(features):
    kwargs = {} if features == "missing" else {"features": features}
    with pytest.raises(ValueError, match="`features` is required.*Received: features=None"):
        noise.make_noisy_labels(np.array([0, 1]), "idn", 0.2, 2, 0, **kwargs)


@pytest.mark.parametrize("shape", [(9, 2), (11,), ()])
def test_features_length_must_match_labels(shape):
    features = np.zeros(shape)
    with pytest.raises(
        ValueError,
        match=rf"`features` must have one row per label \(10 rows\).*shape {re.escape(str(shape))}",
    ):
        noise.instance_dependent(np.arange(10) % 2, 0.2, 2, 0, features=features)


def test_features_length_checked_at_rate_zero():
    with pytest.raises(ValueError, match="`features` must have one row per label"):
        noise.instance_dependent(np.arange(10) % 2, 0.0, 2, 0, features=np.zeros((9, 2)))


@pytest.mark.parametrize(
    "features, pattern",
    [
        (np.array([["a", "b"]] * 4), "numeric.*dtype <U1"),
        (np.array([[0.0, np.nan]] * 4), "finite"),
        (np.array([[0.0, np.inf]] * 4), "finite"),
        ([[0.0], [1.0, 2.0], [0.0], [1.0]], r"a numeric array \[n, ...\]"),
    ],
)
def test_bad_features(features, pattern):
    with pytest.raises(ValueError, match=f"`features` must be {pattern}"):
        noise.instance_dependent(np.array([0, 1, 0, 1]), 0.5, 2, 0, features=features)


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, None, "0.3", float("nan")])
def test_rate_must_be_in_zero_one_open(rate):
    with pytest.raises(ValueError, match=r"`rate`.*\[0.0, 1.0\).*Received: rate="):
        noise.instance_dependent(np.array([0, 1]), rate, 2, 0, features=np.zeros((2, 1)))


def test_num_classes_at_least_two():
    with pytest.raises(ValueError, match="`num_classes` must be at least 2.*num_classes=1"):
        noise.instance_dependent(np.array([0, 0]), 0.5, 1, 0, features=np.zeros((2, 1)))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"labels": np.array([0, 2])}, "`labels` must be in"),
        ({"num_classes": 0}, "`num_classes`.*Received"),
        ({"seed": None}, "`seed`.*Received: seed=None"),
    ],
)
def test_shared_checks(kwargs, pattern):
    arguments = {
        "labels": np.array([0, 1]),
        "rate": 0.5,
        "num_classes": 2,
        "seed": 0,
        "features": np.zeros((2, 1)),
    } | kwargs
    with pytest.raises(ValueError, match=pattern):
        noise.instance_dependent(**arguments)


# Real data: Fashion-MNIST.


def _read_idx(name):
    with gzip.open(os.path.join(FASHION_DIR, name)) as file:
        data = file.read()
    ndim = data[3]
    shape = np.frombuffer(data, ">u4", count=ndim, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def test_fashion_mnist_flips_between_look_alike_classes():
    if not os.path.isdir(FASHION_DIR):
        pytest.skip(f"{FASHION_DIR} missing (Debian package dataset-fashion-mnist not installed)")
    images = _read_idx("train-images-idx3-ubyte.gz")[:4000]
    labels = _read_idx("train-labels-idx1-ubyte.gz")[:4000].astype(np.int64)
    result = noise.make_noisy_labels(labels, "idn", 0.3, 10, seed=0, features=lambda: images)
    assert result.rate_realised == 0.3
    pairs = _pairs(result)
    top = pairs.most_common(6)
    print("Fashion-MNIST idn 0.3, top flips (true, noisy, count):", top)
    # The six most common flips are among T-shirt, pullover, coat and shirt,
    # and those four classes take most of the noise.
    assert all({true, noisy} <= FASHION_UPPER_BODY for (true, noisy), _ in top)
    within = sum(c for (true, noisy), c in pairs.items() if {true, noisy} <= FASHION_UPPER_BODY)
    assert within / result.is_noisy.sum() > 0.5
    # Trousers and bags, which look like no other class, get less than half
    # the overall rate.
    assert np.mean(result.is_noisy[np.isin(labels, [1, 8])]) < 0.15
