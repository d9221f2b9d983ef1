"""The data sets `load_dataset` reads: one registered `DataSource` per name.

Every module of this package whose name does not start with `_` is imported
with the package and registers the data sets it reads (`register`), so a new
data set is one new module here. `get(name)` returns a data set's record:
its loader and its facts (normalisation, augmentation, whether its labels
carry real noise, its asymmetric-noise class map). `load_dataset` calls the
loader, gives every training example its stable id (its position in the
raw training set), then subsets (`num_train`), splits train/validation per
class and installs a labels file; all of these carry the id along.

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000, split_seed=0)
train_ds = make_train_dataset(data, batch_size=128, seed=0)
get("cifar10").asymmetric_map[9]  # 1: truck -> automobile
get("clothing1m").real_noise  # True
```

A data source module, e.g. `mydata.py`:

```python
from elr_tf.data.sources import DataSource, RawData, register

def load(data_dir):
    x, y = ...  # arrays read from data_dir
    return RawData(train=ExampleSet(ids=np.arange(len(y)), labels=y, features=x),
                   num_classes=10, image_shape=x.shape[1:])

register(DataSource(name="mydata", load=load, mean=None, std=None, augment=None))
```
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import os
import pkgutil

import numpy as np
from absl import logging

from elr_tf import checks
from elr_tf.data.augment import AUGMENT_KINDS
from elr_tf.data.example_set import ExampleSet, NoisyData
from elr_tf.data.sources import _common

# The `load_dataset` arguments a source may take, with their values when not
# given. A source lists the ones it takes in `DataSource.options`.
LOAD_OPTIONS = {
    "cifar_n_label": None,
    "image_size": None,
    "skip_unreadable": False,
    "skip_duplicates": False,
}


@dataclasses.dataclass(frozen=True, eq=False)
class RawData:
    """What a source's loader reads; `load_dataset` makes a `NoisyData` of it.

    Example:

    ```python
    RawData(train=ExampleSet(ids=np.arange(3), labels=[0, 1, 0], features=x),
            num_classes=2, image_shape=(4,))
    ```

    Args:
        train: the raw training set, ids `0..n-1` (its positions).
        num_classes: number of classes.
        image_shape: shape of one example's model input (for images
            `(H, W, C)`; for tabular features `(num_features,)`).
        test: the test set, or None: the validation examples are the test
            set.
        val: the source's own validation set, whose ids are its own
            positions, or None: `load_dataset` splits one off `train`.
        extra_tests: further test sets by name.
        label_source: where `train.labels` come from, for logs.
        class_names: `num_classes` names, or None.
        resize_size: for file-backed images, the shorter side after
            resizing, before cropping to `image_shape`; else None.
    """

    train: ExampleSet
    num_classes: int
    image_shape: tuple
    test: ExampleSet | None = None
    val: ExampleSet | None = None
    extra_tests: dict = dataclasses.field(default_factory=dict)
    label_source: str = "given"
    class_names: tuple | None = None
    resize_size: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class DataSource:
    """A data set's record: its loader and the facts the program needs.

    Example:

    ```python
    source = get("fashion_mnist")
    raw = source.load("/usr/share/datasets/fashion-mnist")  # a RawData
    source.mean, source.augment, source.real_noise  # (0.286,), "fashion_mnist", False
    ```

    Args:
        name: the `load_dataset` name.
        load: `load(data_dir, **options) -> RawData`; `data_dir` is a
            string or None, `options` the `LOAD_OPTIONS` named in
            `options`.
        mean: per-channel mean of images on the [0, 1] scale (one value
            applies to every channel), or None: features are passed through
            as float32 (images: 0-255 pixels).
        std: per-channel std, like `mean`; None exactly when `mean` is.
        augment: augmentation kind (`AUGMENT_KINDS`), or None for none.
        real_noise: True when the labels carry real noise, so that
            synthetic noise on top is refused.
        asymmetric_map: dict `{given_class: flipped_class}` that asymmetric
            noise applies, or None when the data set has none.
        options: the `LOAD_OPTIONS` names `load` takes.
    """

    name: str
    load: collections.abc.Callable
    mean: tuple | None
    std: tuple | None
    augment: str | None
    real_noise: bool = False
    asymmetric_map: dict | None = None
    options: tuple[str, ...] = ()

    def __post_init__(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                "`mean` and `std` must both be given or both be None. "
                f"Received: mean={self.mean!r}, std={self.std!r} for {self.name!r}"
            )
        if self.mean is not None:
            mean = tuple(float(m) for m in self.mean)
            std = tuple(float(s) for s in self.std)
            if len(mean) != len(std) or not mean or min(std) <= 0:
                raise ValueError(
                    "`mean` and `std` must be tuples of one length, `std` positive. "
                    f"Received: mean={self.mean!r}, std={self.std!r} for {self.name!r}"
                )
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)
        if self.augment is not None:
            checks.one_of("augment", self.augment, AUGMENT_KINDS)
        unknown = [o for o in self.options if o not in LOAD_OPTIONS]
        if unknown:
            raise ValueError(
                f"`options` must be among {tuple(LOAD_OPTIONS)}. Received: "
                f"options={self.options!r} for {self.name!r}"
            )


_SOURCES = {}
_PREFIXES = {}


def register(source):
    """Adds `source` to the registry under `source.name`; returns it.

    Args:
        source: a `DataSource` whose name is not registered yet.

    Example:

    ```python
    register(DataSource(name="mydata", load=load, mean=None, std=None, augment=None))
    ```
    """
    if not isinstance(source, DataSource):
        raise ValueError(f"`source` must be a DataSource. Received: {type(source).__name__}")
    if source.name in _SOURCES:
        raise ValueError(f"A data source named {source.name!r} is already registered.")
    _SOURCES[source.name] = source
    return source


def register_prefix(prefix, make):
    """Makes `get(prefix + rest)` return `make(prefix + rest)` for any non-empty rest.

    Args:
        prefix: a name prefix such as `"tfds:"`.
        make: `make(name) -> DataSource`.

    Example:

    ```python
    register_prefix("tfds:", tfds_record)  # get("tfds:mnist") == tfds_record("tfds:mnist")
    ```
    """
    if prefix in _PREFIXES:
        raise ValueError(f"The name prefix {prefix!r} is already registered.")
    _PREFIXES[prefix] = make


def names():
    """The registered data set names, sorted (prefixed names not included)."""
    return tuple(sorted(_SOURCES))


def get(name):
    """The `DataSource` of data set `name`.

    Args:
        name: one of `names()`, or a registered prefix and a name
            (`"tfds:<tfds name>"`).

    Returns:
        The record.

    Raises:
        ValueError: `name` is unknown; the message lists the known names.

    Example:

    ```python
    get("cifar100").asymmetric_map[4]  # 0: the next class of its superclass
    get("tfds:mnist").real_noise  # False
    ```
    """
    if isinstance(name, str):
        if name in _SOURCES:
            return _SOURCES[name]
        for prefix, make in _PREFIXES.items():
            if name.startswith(prefix) and name[len(prefix) :].strip():
                return make(name)
    prefixed = " or ".join(f"'{p}<name>'" for p in _PREFIXES)
    raise ValueError(
        f"`name` must be one of {', '.join(names())}, or {prefixed}. Received: name={name!r}"
    )


def is_dataset_name(name):
    """True when `load_dataset` accepts `name` (see `get`).

    Whether tfds knows a `"tfds:<name>"` is checked when loading.

    Args:
        name: any value.
    """
    try:
        get(name)
    except ValueError:
        return False
    return True


def load_dataset(
    name,
    data_dir=None,
    *,
    num_train=None,
    val_fraction=0.1,
    split_seed=0,
    cifar_n_label=None,
    noisy_labels_file=None,
    image_size=None,
    skip_unreadable=False,
    skip_duplicates=False,
):
    """Loads a data set with a stable id on every training example.

    Reads the data set through its source's loader (`get(name).load`; each
    source module documents its files and layout), then, keeping every id:
    draws `num_train` examples (stratified), splits train/validation per
    class unless the source has its own validation set, and installs
    `noisy_labels_file`. Sources without a test set use the validation
    examples as test set, with their labels as given.

    Example:

    ```python
    data = load_dataset("folder", "/data/pets", image_size=96, split_seed=0)
    data.num_examples, data.class_names, data.source.real_noise
    ```

    Args:
        name: a data set name (`names()`, or `"tfds:<tfds name>"`).
        data_dir: where the data are, as the source documents (a folder or
            a file); None for a source's default.
        num_train: if set, first draw this many examples from the raw
            training set (stratified by label, seeded by `split_seed`), then
            split; ids stay the raw positions. None uses all.
        val_fraction: per-class fraction held out for validation, in
            [0, 1). Ignored by sources with their own validation set.
        split_seed: seed of the subset and of the train/validation split.
        cifar_n_label: CIFAR-N human label set (`cifar10_n`, `cifar100_n`).
        noisy_labels_file: optional `.npy` (integer array of length
            `num_examples`) or `.csv` (rows `id,label`, header optional,
            covering every train and val id) whose labels replace the train
            (and split-off val) labels by id; `true_labels` are kept.
        image_size: crop size (int or `(H, W)`) of file-backed images.
        skip_unreadable: drop unreadable images with a warning instead of
            raising (`folder`, `csv`).
        skip_duplicates: keep the first of rows naming one image file (by
            resolved path) with a warning, instead of raising (`csv`).

    Returns:
        A `NoisyData` whose `source` is the data set's `DataSource`.

    Raises:
        ValueError: for bad arguments, an option the source does not take,
            or malformed files.
        FileNotFoundError: when the data are not present, with instructions.
    """
    source = get(name)
    if num_train is not None:
        num_train = checks.positive_int("num_train", num_train)
    checks.number_in("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    split_seed = checks.non_negative_int("split_seed", split_seed)
    given = {
        "cifar_n_label": cifar_n_label,
        "image_size": image_size,
        "skip_unreadable": skip_unreadable,
        "skip_duplicates": skip_duplicates,
    }
    for option in ("skip_unreadable", "skip_duplicates"):
        if not isinstance(given[option], bool):
            raise ValueError(f"`{option}` must be a bool. Received: {option}={given[option]!r}")
    for option, value in given.items():
        if option not in source.options and value is not LOAD_OPTIONS[option]:
            takers = [n for n in names() if option in _SOURCES[n].options]
            raise ValueError(
                f"`{option}` applies only to {', '.join(takers)}. "
                f"Received: {option}={value!r} with name={name!r}"
            )
    if data_dir is not None:
        data_dir = os.fspath(data_dir)
    raw = source.load(data_dir, **{option: given[option] for option in source.options})
    data = _split(source, raw, num_train, val_fraction, split_seed)
    if noisy_labels_file is not None:
        path = os.fspath(noisy_labels_file)
        table = _common.read_labels_file(path, data.num_examples, data.num_classes)
        for example_set in data.id_space_sets():
            missing = example_set.ids[table[example_set.ids] < 0]
            if missing.size:
                raise ValueError(
                    f"noisy_labels_file {path} gives no label for {missing.size} "
                    f"train/val ids, e.g. {missing[:5].tolist()}."
                )
        data = data.with_labels_by_id(table, label_source=f"file:{path}")
    logging.info(
        "Loaded %s: %d train, %d val, %d test, %d classes, labels from %s.",
        name,
        len(data.train),
        len(data.val),
        len(data.test),
        data.num_classes,
        data.label_source,
    )
    return data


def _warn_of_classes_without_training_examples(source, raw, train):
    had = np.bincount(raw.train.labels, minlength=raw.num_classes) > 0
    absent = np.flatnonzero(had & (np.bincount(train.labels, minlength=raw.num_classes) == 0))
    if absent.size:
        names = [raw.class_names[c] if raw.class_names else str(c) for c in absent]
        logging.warning(
            "%s: %d classes have no training example after the split (all went to "
            "validation, or num_train left them out): %s. The model cannot learn them.",
            source.name,
            absent.size,
            names[: _common.NAMES_SHOWN],
        )


def _split(source, raw, num_train, val_fraction, split_seed):
    """The shared steps: subset, train/val split, test; ids unchanged."""
    rng = np.random.default_rng(split_seed)
    train = raw.train
    if num_train is not None:
        train = train.subset(_common.stratified_subset(train.labels, num_train, rng))
    val = raw.val
    if val is None:
        train_positions, val_positions = _common.split_per_class(train.labels, val_fraction, rng)
        train, val = train.subset(train_positions), train.subset(val_positions)
    if raw.test is None and not len(val):
        logging.warning(
            "%s has no test split and val_fraction=0: the test set is empty.", source.name
        )
    _warn_of_classes_without_training_examples(source, raw, train)
    return NoisyData(
        name=source.name,
        train=train,
        val=val,
        # Without a test split, test is the validation examples; the object
        # is shared, so later relabelling of `val` leaves `test` as given.
        test=val if raw.test is None else raw.test,
        num_classes=raw.num_classes,
        image_shape=tuple(int(d) for d in raw.image_shape),
        num_examples=len(raw.train),
        mean=source.mean,
        std=source.std,
        augment=source.augment,
        resize_size=raw.resize_size,
        extra_tests=raw.extra_tests,
        val_from_train=raw.val is None,
        label_source=raw.label_source,
        class_names=raw.class_names,
        source=source,
    )


def _import_all():
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_all()

DATASET_NAMES = names()
