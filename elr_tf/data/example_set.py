"""`ExampleSet` and `NoisyData`: examples that keep a stable id.

ELR keeps one target row per training example, addressed by the example's
**stable id**: its position in the raw training set. The sets here carry the
id beside every example; subsetting, splitting and relabelling keep it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from elr_tf.checks import int_vector


@dataclasses.dataclass(frozen=True, eq=False)
class ExampleSet:
    """A set of examples, each with its stable id.

    Exactly one of `images` (in-memory sets) and `paths` (file-backed sets)
    is given. Arrays are kept in id order by `load_dataset`.

    Attributes:
        ids: int64 `[n]`, unique non-negative stable ids. For training and
            validation examples split off a training set, the id is the
            position in the raw training set and indexes the target table.
        labels: int64 `[n]`, the labels used for training and evaluation
            (may be noisy).
        true_labels: int64 `[n]` clean labels, or None when unknown. `-1`
            marks single examples whose clean label is unknown (Clothing1M).
        images: uint8 `[n, H, W, C]`, or None for file-backed sets.
        paths: str array `[n]` of image file paths, or None for in-memory
            sets.
    """

    ids: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray | None = None
    images: np.ndarray | None = None
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
        if (self.images is None) == (self.paths is None):
            raise ValueError(
                "Exactly one of `images` and `paths` must be given. Received: "
                f"images is None={self.images is None}, "
                f"paths is None={self.paths is None}"
            )
        images, paths = self.images, self.paths
        if images is not None:
            images = np.asarray(images)
            if images.dtype != np.uint8 or images.ndim != 4 or len(images) != n:
                raise ValueError(
                    f"`images` must be uint8 [n={n}, H, W, C]. Received: "
                    f"dtype={images.dtype}, shape={images.shape}"
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
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "paths", paths)

    def __len__(self):
        return len(self.ids)

    @property
    def file_backed(self):
        """True when images are read from `paths`."""
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
            images=None if self.images is None else self.images[positions],
            paths=None if self.paths is None else self.paths[positions],
        )


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyData:
    """A loaded data set: train/val/test `ExampleSet`s plus what a model needs.

    Attributes:
        name: data set name, one of `DATASET_NAMES` or `"tfds:<name>"`.
        train: training examples.
        val: validation examples (may be empty when `val_fraction=0`).
        test: test examples (clean labels for the built-in sets; for
            `folder`, `csv` and tfds sets without a test split, the `val`
            examples with their labels as given).
        num_classes: number of classes.
        image_shape: `(H, W, C)` of the model input.
        num_examples: size of the raw training id space; the target table
            needs this many rows. It is the size of the raw training set, so
            it does not change with `num_train`.
        mean: per-channel normalisation mean on the [0, 1] scale.
        std: per-channel normalisation std on the [0, 1] scale.
        augment: augmentation kind, one of `AUGMENT_KINDS`.
        resize_size: for `augment="large"`, the shorter image side after
            resizing, before cropping to `image_shape`; else None.
        extra_tests: further test sets by name (WebVision: `"ilsvrc12"`).
        val_from_train: True when `val` was split off the training set, so
            that its ids live in the training id space (and are relabelled by
            `with_labels_by_id`). False for Clothing1M and WebVision, whose
            validation ids are positions in their own list.
        label_source: where `train.labels` came from, for logs.
        class_names: tuple of `num_classes` class names, label `k` named
            `class_names[k]`, or None when the data set does not name them.
    """

    name: str
    train: ExampleSet
    val: ExampleSet
    test: ExampleSet
    num_classes: int
    image_shape: tuple
    num_examples: int
    mean: tuple
    std: tuple
    augment: str
    resize_size: int | None = None
    extra_tests: dict = dataclasses.field(default_factory=dict)
    val_from_train: bool = True
    label_source: str = "given"
    class_names: tuple | None = None

    def __post_init__(self):
        if self.class_names is not None:
            names = tuple(str(n) for n in self.class_names)
            if len(names) != self.num_classes:
                raise ValueError(
                    f"`class_names` must hold num_classes={self.num_classes} "
                    f"names. Received {len(names)}: {names[:5]}"
                )
            object.__setattr__(self, "class_names", names)

    def labels_by_id(self, true_labels=False):
        """Returns int64 `[num_examples]`: each training-space id's label.

        Covers `train`, and `val` when `val_from_train`; other ids hold -1.

        Args:
            true_labels: give the true labels instead of the given ones
                (-1 where a set's true labels are unknown).
        """
        field = "true_labels" if true_labels else "labels"
        return self._by_id(field, np.full(self.num_examples, -1, dtype=np.int64))

    def features_by_id(self):
        """Returns `[num_examples, ...]`: each training-space id's features (0: unused).

        Raises ValueError for file-backed sets, whose features are image files.
        """
        sets = self.id_space_sets()
        if any(s.images is None for s in sets):
            raise ValueError(
                "The training examples are image files, not arrays in memory: a noise "
                "model that reads the examples themselves (--noise=idn) cannot use them."
            )
        first = sets[0].images
        return self._by_id("images", np.zeros((self.num_examples, *first.shape[1:]), first.dtype))

    def _by_id(self, field, table):
        # Fills `table` (one row per id) with each id-space set's `field`.
        for example_set in self.id_space_sets():
            values = getattr(example_set, field)
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
        table = np.asarray(labels_by_id)
        if table.ndim != 1 or len(table) != self.num_examples:
            raise ValueError(
                f"`labels_by_id` must be 1-D of length num_examples="
                f"{self.num_examples}. Received shape={table.shape}"
            )
        if not np.issubdtype(table.dtype, np.integer):
            raise ValueError(
                f"`labels_by_id` must have an integer dtype. Received: dtype={table.dtype}"
            )
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


def stratified_subset(labels, size, rng):
    """Positions of a `size`-example subset keeping the class proportions.

    Args:
        labels: int `[n]` labels of the set to draw from.
        size: subset size, at most `n`.
        rng: a `np.random.Generator`.
    """
    n = len(labels)
    if size > n:
        raise ValueError(
            f"`num_train` must be at most the training set size {n}. Received: num_train={size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / n
    quota = np.floor(exact).astype(np.int64)
    # Largest remainders get the examples left over by flooring.
    leftover = size - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:leftover]] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
        for c, q in zip(classes, quota)
    ]
    return np.sort(np.concatenate(chosen))


def split_per_class(labels, val_fraction, rng):
    """Per-class (train, val) positions; val gets round(fraction * count).

    Args:
        labels: int `[n]` labels of the set to split.
        val_fraction: fraction of each class held out, in [0, 1).
        rng: a `np.random.Generator`.
    """
    train, val = [], []
    for c in np.unique(labels):
        positions = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(np.floor(val_fraction * len(positions) + 0.5))
        val.append(positions[:n_val])
        train.append(positions[n_val:])
    empty = np.zeros(0, np.int64)
    return np.sort(np.concatenate(train + [empty])), np.sort(np.concatenate(val + [empty]))
