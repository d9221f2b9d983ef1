"""Synthetic label noise, reproducible from a seed.

`make_noisy_labels` looks a noise model up by name in `NOISE_MODELS`, calls
its generator once and returns a `NoisyLabels`, which keeps the true labels
beside the noisy ones. Every draw comes from `np.random.default_rng(seed)`,
so the same labels, settings and seed give the same noisy labels.

A generator has the signature
`generator(labels, rate, num_classes, seed, *, <its options>) -> NoisyLabels`;
adding a noise model is one such function and one `NOISE_MODELS` entry
naming the options it takes.

Example:

```python
labels = np.arange(1000) % 10
result = make_noisy_labels(labels, "symmetric", rate=0.4, num_classes=10, seed=0)
result.rate_requested  # 0.4
result.rate_realised  # about 0.4 * (1 - 1 / 10) = 0.36
```

References:
    - Liu et al., Early-Learning Regularization Prevents Memorization of
      Noisy Labels, NeurIPS 2020 (arXiv:2007.00151).
"""

import collections.abc
import dataclasses
import math

import numpy as np

from elr_tf import checks
from elr_tf.data import confusability

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
            `"matrix"` it is the expected wrong fraction implied by the
            matrix and the labels.
        rate_realised: the fraction of examples with `noisy != true`.
        kind: the `NOISE_MODELS` name of the model that made the labels.
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


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """A `NOISE_MODELS` entry: a generator and the options it takes.

    Attributes:
        generate: `generate(labels, rate, num_classes, seed, **options)`,
            returning a `NoisyLabels`; it checks its own arguments.
        options: names of the keyword options `generate` takes.
    """

    generate: collections.abc.Callable
    options: tuple[str, ...] = ()


def symmetric(labels, rate, num_classes, seed, *, include_true_class=True):
    """Resamples a random `rate`-fraction of labels uniformly.

    Exactly `round(rate * n)` examples, chosen without replacement, get a
    new label drawn uniformly from all classes, so about
    `rate * (1 - 1 / num_classes)` of the labels end up wrong. With
    `include_true_class=False` the draw is over the other
    `num_classes - 1` classes and exactly `round(rate * n)` labels are wrong.

    Args:
        labels: 1-D integer array-like of true labels in `[0, num_classes)`.
        rate: fraction of examples to resample, in `[0, 1]`.
        num_classes: number of classes, at least 1 (at least 2 when
            `include_true_class=False`).
        seed: non-negative int seeding `np.random.default_rng`.
        include_true_class: whether the uniform draw may return the true
            class.

    Returns:
        A `NoisyLabels` with `kind="symmetric"`.

    Example:

    ```python
    result = symmetric(np.zeros(10, int), 0.3, 3, seed=0, include_true_class=False)
    result.rate_realised  # 0.3
    ```
    """
    rate = _check_rate(rate)
    num_classes = checks.positive_int("num_classes", num_classes)
    if not isinstance(include_true_class, (bool, np.bool_)):
        raise ValueError(
            "`include_true_class` must be True or False. "
            f"Received: include_true_class={include_true_class!r}"
        )
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
    else:
        # Draw from C - 1 slots and skip over the true class: uniform over
        # the other classes without rejection sampling.
        draw = rng.integers(0, num_classes - 1, size=chosen.shape[0])
        noisy[chosen] = draw + (draw >= true[chosen])
    return _result(noisy, true, rate, "symmetric")


def asymmetric(labels, rate, num_classes, seed, *, asymmetric_map=None, sequential=False):
    """Flips a `rate`-fraction of each mapped class to its image in the map.

    Within each class `c` in `asymmetric_map`, `round(rate * count(c))`
    examples chosen at random are relabelled `asymmetric_map[c]`; classes
    not in the map are untouched.

    `sequential=True` draws as the ELR reference code does for CIFAR: the
    classes are visited in order and each draws `ceil(rate * count)` from
    the labels *as already flipped*, so with a two-way pair (CIFAR-10's
    cat <-> dog) part of the first class's flips are drawn again and sent
    back to their true class. Its realised rate is below the independent
    draw's: for CIFAR-10 with `n` examples per class, `rate * n * (5 - rate)`
    wrong labels against `5 * rate * n` (at rate 0.4: 18.4% of the labels
    against 20%).

    Args:
        labels: 1-D integer array-like of true labels in `[0, num_classes)`.
        rate: fraction of each mapped class to flip, in `[0, 1]`.
        num_classes: number of classes, at least 1.
        seed: non-negative int seeding `np.random.default_rng`.
        asymmetric_map: dict `{class: flipped_class}` of classes in
            `[0, num_classes)`, each mapped to a different class; the data
            source supplies it.
        sequential: draw each class from the labels as already flipped, as
            the reference code (see above).

    Returns:
        A `NoisyLabels` with `kind="asymmetric"`.

    Example:

    ```python
    result = asymmetric(np.array([9, 2, 0]), 1.0, 10, seed=0, asymmetric_map={9: 1, 2: 0})
    result.noisy  # array([1, 0, 0])
    ```
    """
    rate = _check_rate(rate)
    num_classes = checks.positive_int("num_classes", num_classes)
    class_map = _check_asymmetric_map(asymmetric_map, num_classes)
    true = _check_labels(labels, num_classes)
    rng = _make_rng(seed)
    noisy = true.copy()
    # Sorted so that the sequence of draws, hence the result, does not
    # depend on the dict's insertion order.
    if not isinstance(sequential, (bool, np.bool_)):
        raise ValueError(f"`sequential` must be True or False. Received: sequential={sequential!r}")
    for source in sorted(class_map):
        members = np.flatnonzero((noisy if sequential else true) == source)
        # The reference flips the j-th shuffled member while j < rate * count.
        count = math.ceil(rate * members.size) if sequential else _count(rate, members.size)
        flipped = rng.choice(members, size=count, replace=False)
        noisy[flipped] = class_map[source]
    return _result(noisy, true, rate, "asymmetric")


def transition_matrix(labels, rate, num_classes, seed, *, matrix=None):
    """Draws each example's new label from row `matrix[y]`.

    Args:
        labels: 1-D integer array-like of true labels in `[0, num_classes)`.
        rate: must be None: the matrix sets the noise rate.
        num_classes: number of classes, equal to the matrix size `C`.
        seed: non-negative int seeding `np.random.default_rng`.
        matrix: array-like `[C, C]` with `matrix[i, j]` the probability
            that true class `i` is labelled `j`; non-negative, each row
            summing to 1 within 1e-6.

    Returns:
        A `NoisyLabels` with `kind="matrix"`; `rate_requested` is the
        expected wrong fraction `mean(1 - matrix[y, y])`.

    Example:

    ```python
    matrix = np.array([[0.8, 0.2], [0.0, 1.0]])
    result = transition_matrix(np.array([0, 0, 1]), None, 2, seed=0, matrix=matrix)
    result.noisy[2]  # 1: class 1 is never flipped
    ```
    """
    if rate is not None:
        raise ValueError(
            "`rate` must be None for matrix noise: the transition matrix sets "
            f"the noise rate. Received: rate={rate!r}"
        )
    if matrix is None:
        raise ValueError(
            "`matrix` must be a [C, C] transition matrix for matrix noise. Received: matrix=None"
        )
    matrix = _check_matrix(matrix)
    num_classes = checks.positive_int("num_classes", num_classes)
    if num_classes != matrix.shape[0]:
        raise ValueError(
            f"`num_classes` must equal the matrix size {matrix.shape[0]}. "
            f"Received: num_classes={num_classes}"
        )
    true = _check_labels(labels, num_classes)
    rng = _make_rng(seed)
    noisy = _sample_rows(true, matrix, rng)
    expected = float(np.mean(1.0 - matrix[true, true])) if true.size else 0.0
    return _result(noisy, true, expected, "matrix")


def instance_dependent(labels, rate, num_classes, seed, *, features=None):
    """Flips the `rate`-fraction of examples a classifier finds most confusable.

    Instance-dependent noise as Chen et al. make it: an auxiliary classifier
    is trained on the clean labels, and its softmax predictions, averaged
    over its training epochs, score each example by its largest probability
    among the wrong classes. The `round(rate * n)` highest-scoring examples
    are relabelled to that most-confused wrong class, so the noise lands
    between look-alike classes and on hard examples.

    The classifier is linear on the flattened features, each standardised,
    trained with minibatch SGD (batch 128; at least 5 epochs and 2,000
    steps; step size twice the inverse of the features' largest covariance
    eigenvalue) from zero weights, the batches shuffled by `seed`; so
    another seed moves only the examples near the cut. It holds a float32
    copy of the features; Fashion-MNIST's 60,000 x 784 training set takes
    about 2 s on one core.

    Args:
        labels: 1-D integer array-like of true labels in `[0, num_classes)`.
        rate: fraction of examples to flip, in `[0, 1)`.
        num_classes: number of classes, at least 2.
        seed: non-negative int seeding `np.random.default_rng`.
        features: the examples, aligned with `labels`: an array-like
            `[n, ...]` of numbers (images, table rows, embeddings; flattened
            after the first axis), or a zero-argument callable returning
            one.

    Returns:
        A `NoisyLabels` with `kind="idn"` and `rate_realised` equal to
        `round(rate * n) / n`.

    Example:

    ```python
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 0.0]])  # 0 and 1 overlap
    features = centres[labels] + rng.normal(size=(300, 2))
    result = make_noisy_labels(labels, "idn", 0.1, 3, seed=0, features=features)
    np.unique(result.noisy[labels == 2])  # array([2]): flips are between 0 and 1
    ```

    References:
        - Chen et al., Beyond Class-Conditional Assumption: A Primary Attempt
          to Combat Instance-Dependent Label Noise, AAAI 2021
          (arXiv:2012.05458).
    """
    rate = checks.number_in("rate", rate, 0.0, 1.0, high_open=True)
    num_classes = checks.positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(
            "`num_classes` must be at least 2 for instance-dependent noise, "
            f"since a label flips to another class. Received: num_classes={num_classes}"
        )
    true = _check_labels(labels, num_classes)
    rng = _make_rng(seed)
    if features is None:
        raise ValueError(
            "`features` is required for instance-dependent noise: an array "
            "[n, ...] of the examples aligned with `labels`, or a callable "
            "returning one. Received: features=None"
        )
    x = confusability.check_features(features() if callable(features) else features, true.shape[0])
    count = _count(rate, true.shape[0])
    noisy = true.copy()
    if count:
        probs = confusability.epoch_averaged_probabilities(x, true, num_classes, rng)
        probs[np.arange(true.shape[0]), true] = -1.0
        confused = probs.argmax(axis=1)
        # A stable sort breaks ties in score by position, not at random.
        flipped = np.argsort(-probs.max(axis=1), kind="stable")[:count]
        noisy[flipped] = confused[flipped]
    return _result(noisy, true, rate, "idn")


NOISE_MODELS = {
    "symmetric": NoiseModel(symmetric, options=("include_true_class",)),
    "asymmetric": NoiseModel(asymmetric, options=("asymmetric_map", "sequential")),
    "matrix": NoiseModel(transition_matrix, options=("matrix",)),
    "idn": NoiseModel(instance_dependent, options=("features",)),
}
NOISE_NAMES = tuple(NOISE_MODELS)


def make_noisy_labels(labels, name, rate, num_classes, seed, **options):
    """Adds the synthetic label noise of the model registered as `name`.

    An option whose value is None counts as not given, so a caller may
    forward optional settings unconditionally; any other option the model
    does not take is refused.

    Args:
        labels: 1-D integer array-like of true labels in `[0, num_classes)`.
        name: one of `NOISE_NAMES`.
        rate: the noise rate, checked by the model (None for `"matrix"`).
        num_classes: number of classes.
        seed: non-negative int seeding `np.random.default_rng`.
        **options: the model's options, named in `NOISE_MODELS[name].options`
            and described in its generator's docstring.

    Returns:
        A `NoisyLabels` with `kind=name`.

    Raises:
        ValueError: for an unknown `name`, an option the model does not
            take, or an argument the model refuses.

    Example:

    ```python
    labels = np.repeat(np.arange(10), 100)
    result = make_noisy_labels(
        labels, "asymmetric", 0.4, 10, seed=1, asymmetric_map={9: 1, 2: 0}
    )
    result.rate_realised  # 0.08: 40 of each of the 2 mapped classes' 100
    ```
    """
    model = NOISE_MODELS[checks.one_of("name", name, NOISE_NAMES)]
    given = {key: value for key, value in options.items() if value is not None}
    for key, value in given.items():
        if key not in model.options:
            takes = ", ".join(f"`{option}`" for option in model.options) or "no options"
            raise ValueError(
                f"`{key}` is not an option of noise model {name!r}, which takes "
                f"{takes}. Received: {key}={_brief(value)}"
            )
    return model.generate(labels, rate, num_classes, seed, **given)


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


def _brief(value):
    # Arrays and long values are summarised so that an error stays one line.
    if hasattr(value, "shape"):
        return f"array of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_rate(rate):
    return checks.number_in("rate", rate, 0.0, 1.0)


def _make_rng(seed):
    # A None seed would give irreproducible noise, which the experiments
    # must never have, so it is refused rather than passed on.
    return np.random.default_rng(checks.non_negative_int("seed", seed))


def _check_labels(labels, num_classes):
    return checks.labels_in_range("labels", labels, num_classes)


def _check_asymmetric_map(asymmetric_map, num_classes):
    if asymmetric_map is None:
        raise ValueError(
            "`asymmetric_map` is required for asymmetric noise, and this data "
            "set has no asymmetric map: give a transition matrix instead "
            "(`--noise_matrix`). Received: asymmetric_map=None"
        )
    if not isinstance(asymmetric_map, collections.abc.Mapping) or not asymmetric_map:
        raise ValueError(
            "`asymmetric_map` must be a non-empty dict {class: flipped_class}. "
            f"Received: asymmetric_map={_brief(asymmetric_map)}"
        )
    for source, target in asymmetric_map.items():
        valid = all(checks.is_int(c) and 0 <= c < num_classes for c in (source, target))
        if not valid or source == target:
            raise ValueError(
                f"`asymmetric_map` must map classes in [0, {num_classes}) each "
                f"to a different class. Received: asymmetric_map with "
                f"{source!r}: {target!r}"
            )
    return {int(source): int(target) for source, target in asymmetric_map.items()}


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
