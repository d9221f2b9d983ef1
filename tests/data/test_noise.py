"""Tests for elr_tf.data.noise: the registry, hand-checked maps, rates, seeding, errors."""

import inspect

import numpy as np
import pytest
from data_helpers import CIFAR10_MAP, CIFAR100_MAP

from elr_tf.data import noise

N = 50_000

# Fashion-MNIST: T-shirt <-> shirt, pullover <-> coat, sneaker <-> boot, sandal -> sneaker.
FASHION_MAP = {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7, 5: 7}


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


def _uniform_matrix(num_classes, rate):
    matrix = np.full((num_classes, num_classes), rate / (num_classes - 1))
    np.fill_diagonal(matrix, 1.0 - rate)
    return matrix


# The registry.


def test_registry_lists_every_model():
    assert noise.NOISE_NAMES == tuple(noise.NOISE_MODELS)
    assert noise.NOISE_NAMES[:3] == ("symmetric", "asymmetric", "matrix")
    assert noise.NOISE_MODELS["symmetric"].options == ("include_true_class",)
    assert noise.NOISE_MODELS["asymmetric"].options == ("asymmetric_map", "sequential")
    assert noise.NOISE_MODELS["matrix"].options == ("matrix",)


@pytest.mark.parametrize("name", noise.NOISE_NAMES)
def test_registry_entry_matches_its_generator(name):
    # The uniform call of `make_noisy_labels`, and each declared option is a
    # keyword of the generator.
    model = noise.NOISE_MODELS[name]
    parameters = inspect.signature(model.generate).parameters
    assert list(parameters)[:4] == ["labels", "rate", "num_classes", "seed"]
    keyword_only = [p for p, v in parameters.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only == list(model.options)


# A call of each model of this file; a model with its own test file (e.g.
# "idn" in test_noise_idn.py) checks the same there.
_EVERY_MODEL = {
    "symmetric": {"rate": 0.4},
    "asymmetric": {"rate": 0.4, "asymmetric_map": CIFAR10_MAP},
    "matrix": {"rate": None, "matrix": _uniform_matrix(10, 0.4)},
}


@pytest.mark.parametrize("name", _EVERY_MODEL)
def test_kind_is_the_registry_name(balanced10, name):
    result = noise.make_noisy_labels(balanced10, name, num_classes=10, seed=0, **_EVERY_MODEL[name])
    assert result.kind == name
    assert result.rate_realised > 0


@pytest.mark.parametrize("name", ["pairflip", "Symmetric", "clean", None])
def test_unknown_name(name):
    known = ", ".join(noise.NOISE_NAMES)
    with pytest.raises(ValueError, match=rf"`name` must be one of {known}\. Received: name="):
        noise.make_noisy_labels(np.array([0]), name, 0.2, 10, seed=0)


@pytest.mark.parametrize(
    "name, options, option",
    [
        ("symmetric", {"asymmetric_map": {0: 1}}, "asymmetric_map"),
        ("symmetric", {"matrix": np.eye(2)}, "matrix"),
        (
            "asymmetric",
            {"asymmetric_map": {0: 1}, "include_true_class": False},
            "include_true_class",
        ),
        ("matrix", {"matrix": np.eye(2), "asymmetric_map": {0: 1}}, "asymmetric_map"),
        ("symmetric", {"asymetric_map": {0: 1}}, "asymetric_map"),
    ],
)
def test_option_the_model_does_not_take(name, options, option):
    rate = None if name == "matrix" else 0.2
    with pytest.raises(
        ValueError,
        match=rf"`{option}` is not an option of noise model '{name}'.*Received: {option}=",
    ):
        noise.make_noisy_labels(np.array([0, 1]), name, rate, 2, seed=0, **options)


def test_option_error_summarises_arrays():
    with pytest.raises(ValueError, match=r"takes `include_true_class`.*array of shape \(2, 2\)"):
        noise.make_noisy_labels(np.array([0, 1]), "symmetric", 0.2, 2, seed=0, matrix=np.eye(2))


def test_option_set_to_none_counts_as_not_given(balanced10):
    # The program forwards the data source's map (None for most data sets)
    # and the optional matrix whatever the noise model.
    result = noise.make_noisy_labels(
        balanced10, "symmetric", 0.3, 10, seed=5, asymmetric_map=None, matrix=None
    )
    direct = noise.symmetric(balanced10, 0.3, 10, seed=5)
    np.testing.assert_array_equal(result.noisy, direct.noisy)


def test_make_noisy_labels_matches_direct_calls(balanced10, balanced100):
    pairs = [
        (
            noise.make_noisy_labels(balanced10, "symmetric", 0.3, 10, seed=5),
            noise.symmetric(balanced10, 0.3, 10, seed=5),
        ),
        (
            noise.make_noisy_labels(
                balanced10, "symmetric", 0.3, 10, seed=5, include_true_class=False
            ),
            noise.symmetric(balanced10, 0.3, 10, seed=5, include_true_class=False),
        ),
        (
            noise.make_noisy_labels(
                balanced10, "asymmetric", 0.3, 10, 5, asymmetric_map=CIFAR10_MAP
            ),
            noise.asymmetric(balanced10, 0.3, 10, 5, asymmetric_map=CIFAR10_MAP),
        ),
        (
            noise.make_noisy_labels(
                balanced100, "asymmetric", 0.3, 100, 5, asymmetric_map=CIFAR100_MAP
            ),
            noise.asymmetric(balanced100, 0.3, 100, 5, asymmetric_map=CIFAR100_MAP),
        ),
        (
            noise.make_noisy_labels(
                balanced10, "matrix", None, 10, 5, matrix=np.full((10, 10), 0.1)
            ),
            noise.transition_matrix(balanced10, None, 10, 5, matrix=np.full((10, 10), 0.1)),
        ),
    ]
    for via_registry, direct in pairs:
        np.testing.assert_array_equal(via_registry.noisy, direct.noisy)
        assert via_registry.kind == direct.kind


# Hand-checkable cases.


@pytest.mark.parametrize(
    "call",
    [
        lambda y: noise.symmetric(y, 0.0, 10, seed=0),
        lambda y: noise.symmetric(y, 0.0, 10, seed=0, include_true_class=False),
        lambda y: noise.asymmetric(y, 0.0, 10, seed=0, asymmetric_map=CIFAR10_MAP),
        lambda y: noise.asymmetric(y, 0.0, 10, seed=0, asymmetric_map=FASHION_MAP),
        lambda y: noise.asymmetric(y, 0.0, 100, seed=0, asymmetric_map=CIFAR100_MAP),
        lambda y: noise.transition_matrix(y, None, 10, seed=0, matrix=np.eye(10)),
    ],
)
def test_rate_zero_gives_identical_labels(call):
    labels = np.arange(1000) % 10
    result = call(labels)
    np.testing.assert_array_equal(result.noisy, labels)
    np.testing.assert_array_equal(result.true, labels)
    assert result.rate_realised == 0.0
    assert not result.is_noisy.any()


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


def test_asymmetric_rate_one_maps_exactly_per_pairs():
    labels = np.repeat(np.arange(10), 3)
    result = noise.asymmetric(labels, 1.0, 10, seed=0, asymmetric_map=CIFAR10_MAP)
    expected_map = [0, 1, 0, 5, 7, 3, 6, 7, 8, 1]
    np.testing.assert_array_equal(result.noisy, np.repeat(expected_map, 3))
    assert result.kind == "asymmetric"
    assert result.rate_realised == 0.5


def test_asymmetric_untouched_classes_untouched(balanced10):
    result = noise.asymmetric(balanced10, 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP)
    for cls in (0, 1, 6, 7, 8):
        members = balanced10 == cls
        np.testing.assert_array_equal(result.noisy[members], cls)
    # Exactly round(0.4 * 5000) = 2000 flipped in each source class.
    for source, target in CIFAR10_MAP.items():
        flipped = result.noisy[balanced10 == source]
        assert np.count_nonzero(flipped == target) == 2000
        assert np.count_nonzero(flipped == source) == 3000


def test_asymmetric_result_does_not_depend_on_map_order(balanced10):
    reordered = dict(reversed(list(CIFAR10_MAP.items())))
    first = noise.asymmetric(balanced10, 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP)
    second = noise.asymmetric(balanced10, 0.4, 10, seed=3, asymmetric_map=reordered)
    np.testing.assert_array_equal(first.noisy, second.noisy)


def test_cifar100_map_next_in_superclass_with_wrap():
    labels = np.arange(100)
    result = noise.asymmetric(labels, 1.0, 100, seed=0, asymmetric_map=CIFAR100_MAP)
    assert result.noisy[0] == 1
    assert result.noisy[3] == 4
    assert result.noisy[4] == 0  # wraps within superclass 0-4
    assert result.noisy[5] == 6
    assert result.noisy[9] == 5
    assert result.noisy[98] == 99
    assert result.noisy[99] == 95  # wraps within superclass 95-99
    assert result.rate_realised == 1.0


def test_fashion_map_rate_one():
    labels = np.arange(10)
    result = noise.asymmetric(labels, 1.0, 10, seed=0, asymmetric_map=FASHION_MAP)
    np.testing.assert_array_equal(result.noisy, [6, 1, 4, 3, 2, 7, 0, 9, 8, 7])


def test_asymmetric_accepts_numpy_int_classes():
    class_map = {np.int64(1): np.int32(0)}
    result = noise.asymmetric(np.array([1, 1]), 1.0, 2, seed=0, asymmetric_map=class_map)
    np.testing.assert_array_equal(result.noisy, [0, 0])


def test_symmetric_exclude_true_class_always_changes_label():
    labels = np.arange(200) % 5
    result = noise.symmetric(labels, 1.0, 5, seed=0, include_true_class=False)
    assert result.is_noisy.all()
    assert result.kind == "symmetric"
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
    result = noise.transition_matrix(balanced10, None, 10, seed=0, matrix=np.eye(10))
    np.testing.assert_array_equal(result.noisy, balanced10)
    assert result.rate_requested == 0.0
    assert result.kind == "matrix"


def test_transition_matrix_never_picks_zero_probability_class():
    # Class 2 has probability 0 from every row, including as the trailing
    # column that floating-point CDF round-off could otherwise reach.
    matrix = np.array([[0.7, 0.3, 0.0], [1 / 3, 2 / 3, 0.0], [0.5, 0.5, 0.0]])
    labels = np.arange(3000) % 3
    result = noise.transition_matrix(labels, None, 3, seed=1, matrix=matrix)
    assert not np.any(result.noisy == 2)


def test_transition_matrix_cifar100_superclass_matrix(balanced100):
    # The reference code's per-example CIFAR-100 draw, as a matrix.
    matrix = np.eye(100) * 0.6
    matrix[np.arange(100), list(CIFAR100_MAP.values())] += 0.4
    result = noise.transition_matrix(balanced100, None, 100, seed=0, matrix=matrix)
    assert result.rate_requested == pytest.approx(0.4)
    assert result.rate_realised == pytest.approx(0.4, abs=0.01)
    expected = np.array([CIFAR100_MAP[c] for c in balanced100])
    changed = result.is_noisy
    np.testing.assert_array_equal(result.noisy[changed], expected[changed])


@pytest.mark.parametrize("name", _EVERY_MODEL)
def test_empty_labels(name):
    result = noise.make_noisy_labels(
        np.array([], dtype=np.int64), name, num_classes=10, seed=0, **_EVERY_MODEL[name]
    )
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


@pytest.mark.parametrize(
    "class_map, num_classes, mapped_fraction",
    [(CIFAR10_MAP, 10, 0.5), (FASHION_MAP, 10, 0.7), (CIFAR100_MAP, 100, 1.0)],
)
def test_asymmetric_rate_is_exact(balanced10, balanced100, class_map, num_classes, mapped_fraction):
    labels = balanced10 if num_classes == 10 else balanced100
    result = noise.asymmetric(labels, 0.4, num_classes, seed=0, asymmetric_map=class_map)
    assert result.rate_requested == 0.4
    assert result.rate_realised == pytest.approx(mapped_fraction * 0.4, abs=1e-12)
    changed = result.is_noisy
    expected = np.array([class_map.get(c, c) for c in labels])
    np.testing.assert_array_equal(result.noisy[changed], expected[changed])


def test_transition_matrix_rate(balanced10):
    result = noise.transition_matrix(balanced10, None, 10, seed=0, matrix=_uniform_matrix(10, 0.3))
    assert result.rate_requested == pytest.approx(0.3)
    assert result.rate_realised == pytest.approx(0.3, abs=0.01)


# Seeding.

_SEEDED_CALLS = [
    ("symmetric", {"rate": 0.4}),
    ("symmetric", {"rate": 0.4, "include_true_class": False}),
    ("asymmetric", {"rate": 0.4, "asymmetric_map": CIFAR10_MAP}),
    ("asymmetric", {"rate": 0.4, "asymmetric_map": FASHION_MAP}),
    ("matrix", {"rate": None, "matrix": np.full((10, 10), 0.1)}),
]


@pytest.mark.parametrize("name, kwargs", _SEEDED_CALLS)
def test_same_seed_same_labels_different_seed_different(balanced10, name, kwargs):
    first = noise.make_noisy_labels(balanced10, name, num_classes=10, seed=7, **kwargs)
    again = noise.make_noisy_labels(balanced10, name, num_classes=10, seed=7, **kwargs)
    other = noise.make_noisy_labels(balanced10, name, num_classes=10, seed=8, **kwargs)
    np.testing.assert_array_equal(first.noisy, again.noisy)
    assert np.any(first.noisy != other.noisy)


def test_cifar100_map_seeding(balanced100):
    def call(seed):
        return noise.asymmetric(balanced100, 0.4, 100, seed, asymmetric_map=CIFAR100_MAP)

    np.testing.assert_array_equal(call(7).noisy, call(7).noisy)
    assert np.any(call(7).noisy != call(8).noisy)


# --- the reference's sequential asymmetric draw ------------------------------


def test_sequential_asymmetric_sends_drawn_back_flips_to_their_true_class():
    # All cats go to dog; the dog class, now 20 strong, all go to cat: every
    # cat is right again and every dog is wrong, 10 of 20 (the independent
    # draw flips all 20).
    labels = np.repeat([3, 5], 10)
    result = noise.make_noisy_labels(
        labels, "asymmetric", 1.0, 10, seed=0, asymmetric_map={3: 5, 5: 3}, sequential=True
    )
    np.testing.assert_array_equal(result.noisy, np.full(20, 3))
    assert result.rate_realised == 0.5
    independent = noise.make_noisy_labels(
        labels, "asymmetric", 1.0, 10, seed=0, asymmetric_map={3: 5, 5: 3}
    )
    assert independent.rate_realised == 1.0
    # The count is ceil(rate * count), as the reference's `j < rate * count`.
    quarter = noise.make_noisy_labels(
        np.full(10, 3), "asymmetric", 0.25, 10, seed=1, asymmetric_map={3: 5}, sequential=True
    )
    assert int(np.sum(quarter.noisy == 5)) == 3


def test_sequential_asymmetric_on_cifar10_sized_classes_realises_rate_times_five_minus_rate():
    # 4,500 per class at 40%: trucks, birds and deer give 1,800 wrong each;
    # 1,800 cats go to dog; then ceil(0.4 * 6,300) = 2,520 of the dog class go
    # to cat, k of them former cats (right again). Wrong = 9,720 - 2k, about
    # 0.4 * 4,500 * (5 - 0.4) = 8,280 (18.4%), against 9,000 (20%) drawn
    # independently.
    labels = np.repeat(np.arange(10), 4500)
    result = noise.make_noisy_labels(
        labels, "asymmetric", 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP, sequential=True
    )
    cats_still_cats = int(np.sum((labels == 3) & (result.noisy == 3)))
    returned = cats_still_cats - 2700  # The 2,700 cats never drawn stay cats.
    assert int(result.is_noisy.sum()) == 9720 - 2 * returned
    assert abs(result.rate_realised - 0.184) < 0.003
    assert int(np.sum((labels == 5) & (result.noisy == 3))) == 2520 - returned
    again = noise.make_noisy_labels(
        labels, "asymmetric", 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP, sequential=True
    )
    np.testing.assert_array_equal(result.noisy, again.noisy)
    independent = noise.make_noisy_labels(
        labels, "asymmetric", 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP
    )
    assert independent.rate_realised == 0.2
    with pytest.raises(ValueError, match="`sequential` must be True or False"):
        noise.make_noisy_labels(
            labels, "asymmetric", 0.4, 10, seed=3, asymmetric_map=CIFAR10_MAP, sequential=1
        )
