"""Synthetic label noise, reproducible from a seed.

The noise models are those of the ELR reference code (symmetric, CIFAR-10
and CIFAR-100 asymmetric), plus a Fashion-MNIST asymmetric map and a general
transition-matrix model. Everything is pure NumPy and driven by
`np.random.default_rng(seed)`, so the same labels, rate and seed always give
the same noisy labels on any machine.

Every function returns a `NoisyLabels` that keeps the true labels beside the
noisy ones, so memorisation and label-error detection can be measured.

Example:

```python
labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 100)
result = make_noisy_labels(
    labels, kind="symmetric", rate=0.4, num_classes=10, seed=0
)
result.rate_requested  # 0.4
result.rate_realised  # about 0.4 * (1 - 1 / 10) = 0.36
```

References:
    - Liu et al., Early-Learning Regularization Prevents Memorization of
      Noisy Labels, NeurIPS 2020 (arXiv:2007.00151).
"""

import dataclasses

import numpy as np

from elr_tf import checks

_KINDS = ("clean", "symmetric", "asymmetric", "matrix")
_ASYMMETRIC_DATASETS = ("cifar10", "cifar100", "fashion_mnist")

# CIFAR-10 classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog,
# 6 frog, 7 horse, 8 ship, 9 truck. The pairs are those of the reference code.
CIFAR10_ASYMMETRIC_MAP = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}

# Fashion-MNIST classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress,
# 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot. See
# `asymmetric_fashion_mnist` for why these pairs.
FASHION_MNIST_ASYMMETRIC_MAP = {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7, 5: 7}

# Tolerance on transition-matrix row sums.
_ROW_SUM_ATOL = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy labels with the true labels kept beside them.

    Attributes:
        noisy: int64 array `[n]`, the labels to train on.
        true: int64 array `[n]`, the labels before noise was added.
        rate_requested: the noise rate asked for. For symmetric noise that
            includes the true class this is the fraction of examples
            *resampled*, so more than the fraction that ends up wrong. For
            `kind="matrix"` it is the expected wrong fraction implied by the
            matrix and the labels.
        rate_realised: the fraction of examples with `noisy != true`.
        kind: which noise model made the labels, e.g. `"symmetric"` or
            `"asymmetric_cifar10"`.
    """

    noisy: np.ndarray
    true: np.ndarray
    rate_requested: float
    rate_realised: float
    kind: str

    @property
    def is_noisy(self):
        """Boolean array `[n]`, True where the noisy label is wrong."""
        return self.noisy != self.true


def symmetric(labels, rate, num_classes, seed, include_true_class=True):
    """Resamples a random `rate`-fraction of labels uniformly.

    Exactly `round(rate * n)` examples, chosen without replacement, get a
    new label drawn uniformly. As in the reference code the draw includes
    the true class by default, so the fraction of labels that end up wrong
    is about `rate * (1 - 1 / num_classes)`; with
    `include_true_class=False` the new label is drawn from the other
    `num_classes - 1` classes and exactly `round(rate * n)` labels are wrong.

    Args:
        labels: 1-D integer array-like of true labels in
            `[0, num_classes)`.
        rate: fraction of examples to resample, in `[0, 1]`.
        num_classes: number of classes, at least 1 (at least 2 when
            `include_true_class=False`).
        seed: non-negative int seeding `np.random.default_rng`.
        include_true_class: whether the uniform draw may return the true
            class.

    Returns:
        A `NoisyLabels` with `kind="symmetric"`, or
        `kind="symmetric_other_classes"` when `include_true_class=False`.

    Example:

    ```python
    result = symmetric(np.arange(10) % 3, rate=0.5, num_classes=3, seed=0)
    result.noisy.shape  # (10,)
    ```
    """
    rate = _check_rate(rate)
    num_classes = checks.positive_int("num_classes", num_classes)
    if not include_true_class and num_classes < 2:
        raise ValueError(
            "`num_classes` must be at least 2 when include_true_class=False, "
            "since the new label must differ from the true one. "
            f"Received: num_classes={num_classes}"
        )
    true = _check_labels(labels, num_classes)
    rng = _make_rng(seed)

    n = true.shape[0]
    chosen = rng.choice(n, size=_count(rate, n), replace=False)
    noisy = true.copy()
    if include_true_class:
        noisy[chosen] = rng.integers(0, num_classes, size=chosen.shape[0])
        kind = "symmetric"
    else:
        # Draw from C - 1 slots and skip over the true class: uniform over
        # the other classes without rejection sampling.
        draw = rng.integers(0, num_classes - 1, size=chosen.shape[0])
        noisy[chosen] = draw + (draw >= true[chosen])
        kind = "symmetric_other_classes"
    return _result(noisy, true, rate, kind)


def asymmetric_cifar10(labels, rate, seed):
    """Flips a `rate`-fraction of five CIFAR-10 classes to a similar class.

    Within each source class, `round(rate * class_count)` examples chosen at
    random are flipped: truck (9) -> automobile (1), bird (2) -> airplane
    (0), cat (3) -> dog (5), dog (5) -> cat (3), deer (4) -> horse (7). The
    other five classes are untouched, so on balanced data the realised rate
    is `rate / 2`. These are the pairs of the ELR reference code.

    Args:
        labels: 1-D integer array-like of CIFAR-10 labels in `[0, 10)`.
        rate: fraction of each source class to flip, in `[0, 1]`.
        seed: non-negative int seeding `np.random.default_rng`.

    Returns:
        A `NoisyLabels` with `kind="asymmetric_cifar10"`.

    Example:

    ```python
    result = asymmetric_cifar10(np.array([9, 2, 3, 5, 4, 0]), rate=1.0, seed=0)
    result.noisy  # array([1, 0, 5, 3, 7, 0])
    ```
    """
    return _flip_within_class(labels, rate, seed, CIFAR10_ASYMMETRIC_MAP, 10, "asymmetric_cifar10")


def asymmetric_cifar100(labels, rate, seed):
    """Moves labels to the next class of their CIFAR-100 superclass.

    The 100 fine classes form 20 superclasses of 5 consecutive classes
    (0-4, 5-9, ...). Each label independently, with probability `rate`,
    moves to the next class of its superclass, circularly: 0 -> 1, ...,
    3 -> 4, 4 -> 0, and 99 -> 95. As in the reference code this is a
    per-example draw from a transition matrix, so the realised rate is only
    close to `rate`, not exact.

    Args:
        labels: 1-D integer array-like of CIFAR-100 fine labels in
            `[0, 100)`.
        rate: probability of moving each label, in `[0, 1]`.
        seed: non-negative int seeding `np.random.default_rng`.

    Returns:
        A `NoisyLabels` with `kind="asymmetric_cifar100"`.

    Example:

    ```python
    result = asymmetric_cifar100(np.array([0, 4, 99]), rate=1.0, seed=0)
    result.noisy  # array([1, 0, 95])
    ```
    """
    rate = _check_rate(rate)
    true = _check_labels(labels, 100)
    rng = _make_rng(seed)
    source = np.arange(100)
    # Next class within the block of 5, wrapping at the block's end.
    target = (source // 5) * 5 + (source + 1) % 5
    matrix = np.eye(100) * (1.0 - rate)
    matrix[source, target] += rate
    noisy = _sample_rows(true, matrix, rng)
    return _result(noisy, true, rate, "asymmetric_cifar100")


def asymmetric_fashion_mnist(labels, rate, seed):
    """Flips a `rate`-fraction of seven Fashion-MNIST classes.

    The reference code has no Fashion-MNIST noise, so the map is ours,
    built the way the CIFAR-10 one is: each class goes to the class it is
    most often mistaken for, and visually distinctive classes are left
    clean. Confusions are those commonly seen in Fashion-MNIST confusion
    matrices of small CNNs:

    - T-shirt/top (0) <-> Shirt (6): upper-body garments of the same shape;
      the most confused pair in the data set.
    - Pullover (2) <-> Coat (4): long-sleeved upper-body garments.
    - Sneaker (7) <-> Ankle boot (9): closed shoes; the strongest footwear
      confusion.
    - Sandal (5) -> Sneaker (7): low shoes; one-way, like CIFAR-10's
      deer -> horse, since Sneaker already flips to Ankle boot.
    - Trouser (1), Dress (3) and Bag (8) are untouched: rarely confused
      with any single class.

    Within each source class, `round(rate * class_count)` examples chosen at
    random are flipped, so on balanced data the realised rate is
    `0.7 * rate`.

    Args:
        labels: 1-D integer array-like of Fashion-MNIST labels in `[0, 10)`.
        rate: fraction of each source class to flip, in `[0, 1]`.
        seed: non-negative int seeding `np.random.default_rng`.

    Returns:
        A `NoisyLabels` with `kind="asymmetric_fashion_mnist"`.

    Example:

    ```python
    result = asymmetric_fashion_mnist(np.array([0, 1, 5]), rate=1.0, seed=0)
    result.noisy  # array([6, 1, 7])
    ```
    """
    return _flip_within_class(
        labels,
        rate,
        seed,
        FASHION_MNIST_ASYMMETRIC_MAP,
        10,
        "asymmetric_fashion_mnist",
    )


def from_transition_matrix(labels, matrix, seed):
    """Draws each example's new label from row `matrix[y]`.

    Args:
        labels: 1-D integer array-like of true labels in `[0, C)`.
        matrix: array-like `[C, C]` with `matrix[i, j]` the probability
            that true class `i` is labelled `j`; non-negative, each row
            summing to 1 within 1e-6.
        seed: non-negative int seeding `np.random.default_rng`.

    Returns:
        A `NoisyLabels` with `kind="matrix"`; `rate_requested` is the
        expected wrong fraction `mean(1 - matrix[y, y])`.

    Example:

    ```python
    matrix = np.array([[0.8, 0.2], [0.0, 1.0]])
    result = from_transition_matrix(np.array([0, 0, 1]), matrix, seed=0)
    result.noisy[2]  # 1: class 1 is never flipped
    ```
    """
    matrix = _check_matrix(matrix)
    true = _check_labels(labels, matrix.shape[0])
    rng = _make_rng(seed)
    noisy = _sample_rows(true, matrix, rng)
    expected = float(np.mean(1.0 - matrix[true, true])) if true.size else 0.0
    return _result(noisy, true, expected, "matrix")


def make_noisy_labels(
    labels,
    kind,
    rate,
    num_classes,
    seed,
    dataset=None,
    include_true_class=True,
    matrix=None,
):
    """Adds synthetic label noise of the given kind.

    Args:
        labels: 1-D integer array-like of true labels in
            `[0, num_classes)`.
        kind: one of `"clean"`, `"symmetric"`, `"asymmetric"`, `"matrix"`.
        rate: noise rate in `[0, 1]` for `"symmetric"` and `"asymmetric"`.
            For `"clean"` it must be `None` or 0; for `"matrix"` it must be
            `None`, since the matrix sets the rate.
        num_classes: number of classes. May be `None` for `"asymmetric"`
            (taken from `dataset`) and `"matrix"` (taken from the matrix
            shape); if given it must agree with them.
        seed: non-negative int seeding `np.random.default_rng`.
        dataset: for `kind="asymmetric"`, which class map to use: one of
            `"cifar10"`, `"cifar100"`, `"fashion_mnist"`.
        include_true_class: for `kind="symmetric"`, whether the uniform
            draw may return the true class (the reference behaviour).
        matrix: for `kind="matrix"`, the `[C, C]` transition matrix.

    Returns:
        A `NoisyLabels`.

    Example:

    ```python
    result = make_noisy_labels(
        labels, kind="asymmetric", rate=0.4, num_classes=10, seed=1,
        dataset="cifar10",
    )
    print(result.rate_requested, result.rate_realised)  # 0.4, about 0.2
    ```
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}. Received: kind={kind!r}")

    if kind == "clean":
        if rate is not None and _check_rate(rate) != 0.0:
            raise ValueError(f"`rate` must be None or 0 when kind='clean'. Received: rate={rate}")
        true = _check_labels(labels, checks.positive_int("num_classes", num_classes))
        _make_rng(seed)  # Validate the seed even though no draw is made.
        return _result(true.copy(), true, 0.0, "clean")

    if kind == "symmetric":
        return symmetric(
            labels,
            rate,
            num_classes,
            seed,
            include_true_class=include_true_class,
        )

    if kind == "asymmetric":
        builders = {
            "cifar10": (asymmetric_cifar10, 10),
            "cifar100": (asymmetric_cifar100, 100),
            "fashion_mnist": (asymmetric_fashion_mnist, 10),
        }
        if dataset not in builders:
            raise ValueError(
                "`dataset` must be one of "
                f"{_ASYMMETRIC_DATASETS} when kind='asymmetric'; there is "
                "no asymmetric class map for other data sets (use "
                f"kind='matrix' instead). Received: dataset={dataset!r}"
            )
        builder, expected_classes = builders[dataset]
        if num_classes is not None and num_classes != expected_classes:
            raise ValueError(
                f"`num_classes` must be {expected_classes} (or None) for "
                f"dataset={dataset!r}. Received: num_classes={num_classes}"
            )
        return builder(labels, rate, seed)

    # kind == "matrix"
    if matrix is None:
        raise ValueError(
            "`matrix` must be a [C, C] transition matrix when kind='matrix'. Received: matrix=None"
        )
    if rate is not None:
        raise ValueError(
            "`rate` must be None when kind='matrix': the transition matrix "
            f"sets the noise rate. Received: rate={rate}"
        )
    matrix = _check_matrix(matrix)
    if num_classes is not None and num_classes != matrix.shape[0]:
        raise ValueError(
            f"`num_classes` must match the matrix size {matrix.shape[0]} "
            f"(or be None). Received: num_classes={num_classes}"
        )
    return from_transition_matrix(labels, matrix, seed)


def _flip_within_class(labels, rate, seed, class_map, num_classes, kind):
    rate = _check_rate(rate)
    true = _check_labels(labels, num_classes)
    rng = _make_rng(seed)
    noisy = true.copy()
    # Sorted so that the sequence of draws, hence the result, does not
    # depend on the dict's insertion order.
    for source in sorted(class_map):
        members = np.flatnonzero(true == source)
        count = _count(rate, members.shape[0])
        flipped = rng.choice(members, size=count, replace=False)
        noisy[flipped] = class_map[source]
    return _result(noisy, true, rate, kind)


def _sample_rows(true, matrix, rng):
    # Inverse-CDF sampling, one class at a time so memory stays O(n) even
    # for many classes. Dividing by the row total makes the last CDF entry
    # exactly 1.0, so a uniform draw in [0, 1) can never fall past it onto a
    # zero-probability trailing class.
    cdf = np.cumsum(matrix, axis=1)
    cdf /= cdf[:, -1:]
    uniform = rng.random(true.shape[0])
    noisy = np.empty_like(true)
    for source in range(matrix.shape[0]):
        members = true == source
        noisy[members] = np.searchsorted(cdf[source], uniform[members], side="right")
    return noisy


def _result(noisy, true, rate_requested, kind):
    n = true.shape[0]
    realised = float(np.count_nonzero(noisy != true)) / n if n else 0.0
    return NoisyLabels(
        noisy=noisy.astype(np.int64),
        true=true,
        rate_requested=float(rate_requested),
        rate_realised=realised,
        kind=kind,
    )


def _count(rate, n):
    # Python's round() absorbs float error such as 0.3 * 10 = 3.0000000004
    # that int() would turn into an off-by-one.
    return round(rate * n)


def _check_rate(rate):
    return checks.number_in("rate", rate, 0.0, 1.0)


def _make_rng(seed):
    # A None seed would give irreproducible noise, which the experiments
    # must never have, so it is refused rather than passed on.
    return np.random.default_rng(checks.non_negative_int("seed", seed))


def _check_labels(labels, num_classes):
    return checks.labels_in_range("labels", labels, num_classes)


def _check_matrix(matrix):
    try:
        array = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`matrix` must be a numeric [C, C] array. Received: matrix={matrix!r}"
        ) from error
    if array.ndim != 2 or array.shape[0] != array.shape[1] or not array.size:
        raise ValueError(
            f"`matrix` must be a square [C, C] array. Received: matrix with shape {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            "`matrix` must be finite and non-negative. "
            f"Received: matrix with minimum {np.nanmin(array)}"
        )
    sums = array.sum(axis=1)
    bad_rows = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_ATOL)
    if bad_rows.size:
        raise ValueError(
            "`matrix` rows must each sum to 1 (tolerance 1e-6). Received: "
            f"matrix with row sums {sums[bad_rows[:5]].tolist()} at rows "
            f"{bad_rows[:5].tolist()}"
        )
    return array
