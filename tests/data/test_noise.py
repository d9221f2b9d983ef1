"""Tests for elr_tf.noise: hand-checked maps, realised rates, seeding, errors."""

import numpy as np
import pytest

from elr_tf.data import noise

N = 50_000


@pytest.fixture
def balanced10():
    # 5,000 examples per class, in a shuffled order so that position and
    # class are unrelated.
    labels = np.repeat(np.arange(10), N // 10)
    return np.random.default_rng(123).permutation(labels)


@pytest.fixture
def balanced100():
    labels = np.repeat(np.arange(100), N // 100)
    return np.random.default_rng(456).permutation(labels)


# Hand-checkable cases.


@pytest.mark.parametrize(
    "call",
    [
        lambda y: noise.symmetric(y, 0.0, 10, seed=0),
        lambda y: noise.symmetric(y, 0.0, 10, seed=0, include_true_class=False),
        lambda y: noise.asymmetric_cifar10(y, 0.0, seed=0),
        lambda y: noise.asymmetric_fashion_mnist(y, 0.0, seed=0),
        lambda y: noise.make_noisy_labels(y, "clean", 0.0, 10, seed=0),
        lambda y: noise.make_noisy_labels(y, "clean", None, 10, seed=0),
    ],
)
def test_rate_zero_gives_identical_labels(call):
    labels = np.arange(1000) % 10
    result = call(labels)
    np.testing.assert_array_equal(result.noisy, labels)
    np.testing.assert_array_equal(result.true, labels)
    assert result.rate_realised == 0.0
    assert not result.is_noisy.any()


def test_rate_zero_cifar100_gives_identical_labels():
    labels = np.arange(1000) % 100
    result = noise.asymmetric_cifar100(labels, 0.0, seed=0)
    np.testing.assert_array_equal(result.noisy, labels)


def test_result_fields_and_dtypes():
    labels = np.array([0, 1, 2, 3], dtype=np.int32)
    result = noise.symmetric(labels, 0.5, 4, seed=0)
    assert result.noisy.dtype == np.int64
    assert result.true.dtype == np.int64
    assert result.kind == "symmetric"
    assert result.rate_requested == 0.5
    # The input is copied, never written to.
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    with pytest.raises(AttributeError):
        result.kind = "other"


def test_cifar10_rate_one_maps_exactly_per_pairs():
    labels = np.repeat(np.arange(10), 3)
    result = noise.asymmetric_cifar10(labels, 1.0, seed=0)
    expected_map = [0, 1, 0, 5, 7, 3, 6, 7, 8, 1]
    np.testing.assert_array_equal(result.noisy, np.repeat(expected_map, 3))
    assert result.kind == "asymmetric_cifar10"
    assert result.rate_realised == 0.5


def test_cifar10_untouched_classes_untouched(balanced10):
    result = noise.asymmetric_cifar10(balanced10, 0.4, seed=3)
    for cls in (0, 1, 6, 7, 8):
        members = balanced10 == cls
        np.testing.assert_array_equal(result.noisy[members], cls)
    # Exactly round(0.4 * 5000) = 2000 flipped in each source class.
    for source, target in {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}.items():
        members = balanced10 == source
        flipped = result.noisy[members]
        assert np.count_nonzero(flipped == target) == 2000
        assert np.count_nonzero(flipped == source) == 3000


def test_cifar100_next_in_superclass_with_wrap():
    labels = np.arange(100)
    result = noise.asymmetric_cifar100(labels, 1.0, seed=0)
    assert result.noisy[0] == 1
    assert result.noisy[3] == 4
    assert result.noisy[4] == 0  # wraps within superclass 0-4
    assert result.noisy[5] == 6
    assert result.noisy[9] == 5
    assert result.noisy[98] == 99
    assert result.noisy[99] == 95  # wraps within superclass 95-99
    expected = (labels // 5) * 5 + (labels + 1) % 5
    np.testing.assert_array_equal(result.noisy, expected)
    assert result.rate_realised == 1.0


def test_fashion_mnist_rate_one_map():
    labels = np.arange(10)
    result = noise.asymmetric_fashion_mnist(labels, 1.0, seed=0)
    np.testing.assert_array_equal(result.noisy, [6, 1, 4, 3, 2, 7, 0, 9, 8, 7])
    assert result.kind == "asymmetric_fashion_mnist"


def test_symmetric_exclude_true_class_always_changes_label():
    labels = np.arange(200) % 5
    result = noise.symmetric(labels, 1.0, 5, seed=0, include_true_class=False)
    assert result.is_noisy.all()
    assert result.kind == "symmetric_other_classes"
    assert set(np.unique(result.noisy)) == set(range(5))


def test_symmetric_resamples_exactly_round_rate_n():
    # Excluding the true class makes every resampled label wrong, so the
    # count of wrong labels is the count resampled: round(0.25 * 10) = 2
    # (Python rounds 2.5 to even).
    result = noise.symmetric(np.zeros(10, dtype=int), 0.25, 3, seed=0, include_true_class=False)
    assert np.count_nonzero(result.is_noisy) == 2
    result = noise.symmetric(np.zeros(10, dtype=int), 0.3, 3, seed=0, include_true_class=False)
    assert np.count_nonzero(result.is_noisy) == 3


def test_transition_matrix_identity_gives_identical(balanced10):
    result = noise.from_transition_matrix(balanced10, np.eye(10), seed=0)
    np.testing.assert_array_equal(result.noisy, balanced10)
    assert result.rate_requested == 0.0
    assert result.kind == "matrix"


def test_transition_matrix_never_picks_zero_probability_class():
    # Class 2 has probability 0 from every row, including as the trailing
    # column that floating-point CDF round-off could otherwise reach.
    matrix = np.array([[0.7, 0.3, 0.0], [1 / 3, 2 / 3, 0.0], [0.5, 0.5, 0.0]])
    labels = np.arange(3000) % 3
    result = noise.from_transition_matrix(labels, matrix, seed=1)
    assert not np.any(result.noisy == 2)


def test_empty_labels():
    result = noise.symmetric(np.array([], dtype=np.int64), 0.5, 10, seed=0)
    assert result.noisy.shape == (0,)
    assert result.rate_realised == 0.0


# Realised rates on 50k examples.


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.8])
def test_symmetric_include_true_rate(balanced10, rate):
    result = noise.symmetric(balanced10, rate, 10, seed=0)
    assert result.rate_requested == rate
    assert result.rate_realised == pytest.approx(rate * (1 - 1 / 10), abs=0.006)


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.8])
def test_symmetric_exclude_true_rate_is_exact(balanced10, rate):
    result = noise.symmetric(balanced10, rate, 10, seed=0, include_true_class=False)
    assert result.rate_realised == pytest.approx(rate, abs=1e-12)


def test_symmetric_noise_is_spread_over_classes(balanced10):
    result = noise.symmetric(balanced10, 0.4, 10, seed=0)
    counts = np.bincount(result.noisy, minlength=10)
    np.testing.assert_allclose(counts, N / 10, rtol=0.05)


def test_symmetric_cifar100_rate(balanced100):
    result = noise.make_noisy_labels(balanced100, "symmetric", 0.5, 100, seed=2)
    assert result.rate_realised == pytest.approx(0.5 * 0.99, abs=0.006)


def test_cifar10_asymmetric_rate(balanced10):
    result = noise.asymmetric_cifar10(balanced10, 0.4, seed=0)
    assert result.rate_realised == pytest.approx(0.2, abs=1e-12)


def test_cifar100_asymmetric_rate(balanced100):
    result = noise.asymmetric_cifar100(balanced100, 0.4, seed=0)
    assert result.rate_realised == pytest.approx(0.4, abs=0.01)
    # Every changed label went to the next class of its superclass.
    changed = result.is_noisy
    expected = (balanced100 // 5) * 5 + (balanced100 + 1) % 5
    np.testing.assert_array_equal(result.noisy[changed], expected[changed])


def test_fashion_mnist_asymmetric_rate(balanced10):
    result = noise.asymmetric_fashion_mnist(balanced10, 0.4, seed=0)
    assert result.rate_realised == pytest.approx(0.7 * 0.4, abs=1e-12)


def test_transition_matrix_rate(balanced10):
    matrix = np.full((10, 10), 0.3 / 9)
    np.fill_diagonal(matrix, 0.7)
    result = noise.from_transition_matrix(balanced10, matrix, seed=0)
    assert result.rate_requested == pytest.approx(0.3)
    assert result.rate_realised == pytest.approx(0.3, abs=0.01)


# Seeding.

_ALL_KINDS = [
    {"kind": "symmetric", "rate": 0.4, "num_classes": 10},
    {
        "kind": "symmetric",
        "rate": 0.4,
        "num_classes": 10,
        "include_true_class": False,
    },
    {"kind": "asymmetric", "rate": 0.4, "num_classes": 10, "dataset": "cifar10"},
    {
        "kind": "asymmetric",
        "rate": 0.4,
        "num_classes": 10,
        "dataset": "fashion_mnist",
    },
    {
        "kind": "matrix",
        "rate": None,
        "num_classes": 10,
        "matrix": np.full((10, 10), 0.1),
    },
]


@pytest.mark.parametrize("kwargs", _ALL_KINDS)
def test_same_seed_same_labels_different_seed_different(balanced10, kwargs):
    first = noise.make_noisy_labels(balanced10, seed=7, **kwargs)
    again = noise.make_noisy_labels(balanced10, seed=7, **kwargs)
    other = noise.make_noisy_labels(balanced10, seed=8, **kwargs)
    np.testing.assert_array_equal(first.noisy, again.noisy)
    assert np.any(first.noisy != other.noisy)


def test_cifar100_seeding(balanced100):
    first = noise.asymmetric_cifar100(balanced100, 0.4, seed=7)
    again = noise.asymmetric_cifar100(balanced100, 0.4, seed=7)
    other = noise.asymmetric_cifar100(balanced100, 0.4, seed=8)
    np.testing.assert_array_equal(first.noisy, again.noisy)
    assert np.any(first.noisy != other.noisy)


def test_make_noisy_labels_matches_direct_calls(balanced10, balanced100):
    pairs = [
        (
            noise.make_noisy_labels(balanced10, "symmetric", 0.3, 10, seed=5),
            noise.symmetric(balanced10, 0.3, 10, seed=5),
        ),
        (
            noise.make_noisy_labels(balanced10, "asymmetric", 0.3, None, 5, dataset="cifar10"),
            noise.asymmetric_cifar10(balanced10, 0.3, seed=5),
        ),
        (
            noise.make_noisy_labels(balanced100, "asymmetric", 0.3, 100, 5, dataset="cifar100"),
            noise.asymmetric_cifar100(balanced100, 0.3, seed=5),
        ),
    ]
    for via_dispatch, direct in pairs:
        np.testing.assert_array_equal(via_dispatch.noisy, direct.noisy)
        assert via_dispatch.kind == direct.kind


# Every ValueError path names the argument at fault.


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.4", True, None])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="`rate`.*Received: rate="):
        noise.symmetric(np.array([0, 1]), rate, 2, seed=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda rate: noise.asymmetric_cifar10(np.array([0]), rate, 0),
        lambda rate: noise.asymmetric_cifar100(np.array([0]), rate, 0),
        lambda rate: noise.asymmetric_fashion_mnist(np.array([0]), rate, 0),
    ],
)
def test_bad_rate_asymmetric(call):
    with pytest.raises(ValueError, match="`rate`"):
        call(1.01)


@pytest.mark.parametrize("num_classes", [0, -3, 2.0, None])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="`num_classes`.*Received"):
        noise.symmetric(np.array([0, 1]), 0.2, num_classes, seed=0)


def test_exclude_true_class_needs_two_classes():
    with pytest.raises(ValueError, match="`num_classes`.*num_classes=1"):
        noise.symmetric(np.array([0, 0]), 0.2, 1, seed=0, include_true_class=False)


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
        lambda: noise.asymmetric_cifar10(np.array([10]), 0.2, 0),
        lambda: noise.asymmetric_fashion_mnist(np.array([10]), 0.2, 0),
        lambda: noise.asymmetric_cifar100(np.array([100]), 0.2, 0),
        lambda: noise.from_transition_matrix(np.array([2]), np.eye(2), 0),
        lambda: noise.make_noisy_labels(np.array([5]), "clean", 0, 5, 0),
    ],
)
def test_labels_out_of_range_for_each_model(call):
    with pytest.raises(ValueError, match="`labels` must be in"):
        call()


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
        noise.from_transition_matrix(np.array([0, 1]), matrix, seed=0)


def test_matrix_row_sum_within_tolerance_is_accepted():
    matrix = np.array([[0.5, 0.5 + 1e-7], [0.0, 1.0]])
    result = noise.from_transition_matrix(np.array([0, 1]), matrix, seed=0)
    assert result.noisy.shape == (2,)


def test_make_noisy_labels_bad_kind():
    with pytest.raises(ValueError, match="`kind`.*Received: kind='pairflip'"):
        noise.make_noisy_labels(np.array([0]), "pairflip", 0.2, 10, seed=0)


@pytest.mark.parametrize("dataset", [None, "mnist", "cifar-10"])
def test_make_noisy_labels_bad_dataset(dataset):
    with pytest.raises(ValueError, match="`dataset`.*Received: dataset="):
        noise.make_noisy_labels(np.array([0]), "asymmetric", 0.2, 10, seed=0, dataset=dataset)


def test_make_noisy_labels_dataset_class_count_mismatch():
    with pytest.raises(ValueError, match="`num_classes`.*num_classes=10"):
        noise.make_noisy_labels(np.array([0]), "asymmetric", 0.2, 10, seed=0, dataset="cifar100")


def test_make_noisy_labels_clean_with_rate():
    with pytest.raises(ValueError, match="`rate`.*kind='clean'.*rate=0.4"):
        noise.make_noisy_labels(np.array([0]), "clean", 0.4, 10, seed=0)


def test_make_noisy_labels_matrix_errors():
    with pytest.raises(ValueError, match="`matrix`.*matrix=None"):
        noise.make_noisy_labels(np.array([0]), "matrix", None, 2, seed=0)
    with pytest.raises(ValueError, match="`rate`.*kind='matrix'"):
        noise.make_noisy_labels(np.array([0]), "matrix", 0.2, 2, seed=0, matrix=np.eye(2))
    with pytest.raises(ValueError, match="`num_classes`.*num_classes=3"):
        noise.make_noisy_labels(np.array([0]), "matrix", None, 3, seed=0, matrix=np.eye(2))
