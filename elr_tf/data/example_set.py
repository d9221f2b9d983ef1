"""`ExampleSet` and `NoisyData`: examples that keep a stable id.

ELR keeps one target row per training example, addressed by the example's
stable id: its position in the raw training set. The sets here carry the id
beside every example; subsetting, splitting and relabelling keep it. The
examples are any array-like features (images, tabular rows) or image files.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from elr_tf.checks import int_vector


@dataclasses.dataclass(frozen=True, eq=False)
class ExampleSet:
    """A set of examples, each with its stable id.

    Exactly one of `features` (in-memory sets) and `paths` (file-backed
    image sets) is given. `load_dataset` keeps the arrays in id order.

    Example:

    ```python
    tabular = ExampleSet(ids=[0, 1, 2], labels=[1, 0, 1], features=np.zeros((3, 5), "float32"))
    images = ExampleSet(ids=[0, 1], labels=[0, 1], paths=["a.jpg", "b.png"])
    tabular.subset([2, 0]).ids  # array([2, 0])
    ```

    Args:
        ids: int64 `[n]`, unique non-negative stable ids. For training and
            validation examples split off a training set, the id is the
            position in the raw training set and indexes the target table.
        labels: int64 `[n]`, the labels used for training and evaluation
            (may be noisy).
        true_labels: int64 `[n]` clean labels, or None when unknown. `-1`
            marks single examples whose clean label is unknown (Clothing1M).
        features: array `[n, ...]` of any dtype (e.g. uint8 images
            `[n, H, W, C]`, float tabular rows `[n, F]`), or None for
            file-backed sets.
        paths: str array `[n]` of image file paths, or None for in-memory
            sets.
    """

    ids: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray | None = None
    features: np.ndarray | None = None
    paths: np.ndarray | None = None

    def __post_init__(self):
        ids = int_vector("ids", self.ids)
        n = len(ids)
        if ids.size and ids.min() < 0:
            raise ValueError(f"`ids` must be non-negative. Received: min={ids.min()}")
        if np.unique(ids).size != n:
            raise ValueError("`ids` must be unique. Received duplicate ids.")
        labels = int_vector("labels", self.labels, n)
        true_labels = self.true_labels
        if true_labels is not None:
            true_labels = int_vector("true_labels", true_labels, n)
        if (self.features is None) == (self.paths is None):
            raise ValueError(
                "Exactly one of `features` and `paths` must be given. Received: "
                f"features is None={self.features is None}, "
                f"paths is None={self.paths is None}"
            )
        features, paths = self.features, self.paths
        if features is not None:
            features = np.asarray(features)
            if features.ndim < 1 or len(features) != n:
                raise ValueError(
                    f"`features` must be an array [n={n}, ...] with one row per id. "
                    f"Received: shape={features.shape}"
                )
        else:
            paths = np.asarray(paths, dtype=object)
            if paths.ndim != 1 or len(paths) != n:
                raise ValueError(
                    f"`paths` must be a 1-D list of {n} file paths. Received shape={paths.shape}"
                )
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "true_labels", true_labels)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "paths", paths)

    def __len__(self):
        return len(self.ids)

    @property
    def file_backed(self):
        """True when the examples are image files read from `paths`."""
        return self.paths is not None

    def with_labels(self, labels):
        """Returns a copy with `labels` replaced.

        Args:
            labels: 1-D integer array-like of non-negative labels, one per
                example, in the order of `ids`.

        Returns:
            A new `ExampleSet`; `true_labels` is kept.
        """
        labels = int_vector("labels", labels, len(self))
        if labels.size and labels.min() < 0:
            raise ValueError(f"`labels` must be non-negative. Received: min={labels.min()}")
        return dataclasses.replace(self, labels=labels)

    def subset(self, positions):
        """Returns the examples at `positions` (indices into this set), ids kept.

        Args:
            positions: integer array-like of positions, or a boolean mask of
                length `len(self)`.
        """
        positions = np.asarray(positions)
        if positions.dtype == bool:
            if positions.shape != (len(self),):
                raise ValueError(
                    f"A boolean `positions` mask must have shape ({len(self)},). "
                    f"Received: shape={positions.shape}"
                )
            positions = np.flatnonzero(positions)
        positions = int_vector("positions", positions)
        return ExampleSet(
            ids=self.ids[positions],
            labels=self.labels[positions],
            true_labels=None if self.true_labels is None else self.true_labels[positions],
            features=None if self.features is None else self.features[positions],
            paths=None if self.paths is None else self.paths[positions],
        )


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyData:
    """A loaded data set: train/val/test `ExampleSet`s plus what a model needs.

    Example:

    ```python
    data = load_dataset("fashion_mnist", num_train=1000)
    data.num_examples, data.mean, data.source.asymmetric_map[0]  # 60000, (0.286,), 6
    pixels = dataclasses.replace(data, mean=None, std=None)  # pipelines give 0-255 floats
    ```

    Args:
        name: data set name (`elr_tf.data.sources.names()` or
            `"tfds:<name>"`).
        train: training examples.
        val: validation examples (may be empty when `val_fraction=0`).
        test: test examples (for data sets without a test split, the `val`
            examples with their labels as given).
        num_classes: number of classes.
        image_shape: shape of one example's model input (`(H, W, C)` for
            images).
        num_examples: size of the raw training id space; the target table
            needs this many rows. It does not change with `num_train`.
        mean: per-channel normalisation mean of images on the [0, 1] scale
            (one value applies to every channel), or None: the pipelines
            pass features through as float32 (images: 0-255 pixels).
        std: per-channel normalisation std, like `mean`; None exactly when
            `mean` is.
        augment: augmentation kind (`AUGMENT_KINDS`), or None for none.
        resize_size: for file-backed images, the shorter image side after
            resizing, before cropping to `image_shape`; else None.
        extra_tests: further test sets by name (WebVision: `"ilsvrc12"`).
        val_from_train: True when `val` was split off the training set, so
            that its ids live in the training id space (and are relabelled by
            `with_labels_by_id`). False for sources with their own
            validation set, whose ids are positions in its own list.
        label_source: where `train.labels` came from, for logs.
        class_names: tuple of `num_classes` class names, label `k` named
            `class_names[k]`, or None when the data set does not name them.
        source: the `DataSource` record it was loaded from (`real_noise`,
            `asymmetric_map`, ...), or None for data built by hand.
    """

    name: str
    train: ExampleSet
    val: ExampleSet
    test: ExampleSet
    num_classes: int
    image_shape: tuple
    num_examples: int
    mean: tuple | None
    std: tuple | None
    augment: str | None
    resize_size: int | None = None
    extra_tests: dict = dataclasses.field(default_factory=dict)
    val_from_train: bool = True
    label_source: str = "given"
    class_names: tuple | None = None
    source: typing.Any = None  # a sources.DataSource

    def __post_init__(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                "`mean` and `std` must both be given or both be None. "
                f"Received: mean={self.mean!r}, std={self.std!r}"
            )
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError(
                "`mean` and `std` must have one length. "
                f"Received: mean={self.mean!r}, std={self.std!r}"
            )
        if self.class_names is not None:
            names = tuple(str(n) for n in self.class_names)
            if len(names) != self.num_classes:
                raise ValueError(
                    f"`class_names` must hold num_classes={self.num_classes} "
                    f"names. Received {len(names)}: {names[:5]}"
                )
            object.__setattr__(self, "class_names", names)

    def features_by_id(self):
        """The features of every training-space id as one array.

        Covers `train`, and `val` when `val_from_train`; rows of other ids
        are zero. In-memory sets only.

        Example:

        ```python
        x = data.features_by_id()  # [data.num_examples, 28, 28, 1] for Fashion-MNIST
        x[data.train.ids]  # the training features, in train order
        ```

        Returns:
            An array `[num_examples, ...]` of the features' dtype.

        Raises:
            ValueError: the features are image files (`paths`).
        """
        sets = self.id_space_sets()
        if any(s.file_backed for s in sets):
            raise ValueError(
                f"`features_by_id` needs in-memory features, but the features of "
                f"{self.name} are image files (ExampleSet.paths): what needs the "
                "examples as one array (e.g. a noise model taking the 'features' "
                "option, such as idn) cannot use this data set."
            )
        first = sets[0].features
        table = np.zeros((self.num_examples,) + first.shape[1:], first.dtype)
        for example_set in sets:
            table[example_set.ids] = example_set.features
        return table

    def labels_by_id(self, true_labels=False):
        """Returns int64 `[num_examples]`: each training-space id's label.

        Covers `train`, and `val` when `val_from_train`; other ids hold -1.

        Args:
            true_labels: give the true labels instead of the given ones
                (-1 where a set's true labels are unknown).
        """
        table = np.full(self.num_examples, -1, dtype=np.int64)
        for example_set in self.id_space_sets():
            values = example_set.true_labels if true_labels else example_set.labels
            if values is not None:
                table[example_set.ids] = values
        return table

    def with_labels_by_id(self, labels_by_id, label_source=None):
        """Returns a copy whose train (and val) labels are looked up by id.

        Use it to install synthetic noise made from `labels_by_id()`.
        `true_labels` are kept unchanged.

        Args:
            labels_by_id: integer array-like `[num_examples]`, the label of
                each raw training id. Entries for ids not in the sets are
                ignored and may be -1.
            label_source: new `label_source` string; unchanged when None.

        Returns:
            A new `NoisyData`.
        """
        table = int_vector("labels_by_id", labels_by_id, length=self.num_examples)
        replaced = {}
        for field in ("train", "val") if self.val_from_train else ("train",):
            example_set = getattr(self, field)
            labels = table[example_set.ids].astype(np.int64)
            bad = (labels < 0) | (labels >= self.num_classes)
            if bad.any():
                raise ValueError(
                    f"`labels_by_id` must give every {field} id a label in "
                    f"[0, {self.num_classes}). Received {int(bad.sum())} bad "
                    f"entries, e.g. id {int(example_set.ids[bad][0])} -> "
                    f"{int(labels[bad][0])}"
                )
            replaced[field] = example_set.with_labels(labels)
        if label_source is not None:
            replaced["label_source"] = label_source
        return dataclasses.replace(self, **replaced)

    def id_space_sets(self):
        """The sets whose ids are rows of the target table: train (and val)."""
        return (self.train, self.val) if self.val_from_train else (self.train,)
