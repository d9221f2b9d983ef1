"""Noisy-label data sets whose examples carry a stable id through `tf.data`.

ELR keeps one target row per training example. The row is addressed by the
example's **stable id**: its position in the raw training set, never its
position in a shuffled batch or in a per-epoch subsample. `load_dataset` gives
every example its id once, when the raw files are read; the train/validation
split, `num_train` subsetting, shuffling, augmentation and class-balanced
resampling all carry the id along unchanged.

- Training batches (`make_train_dataset`): `((images, ids), labels)`.
- Evaluation batches (`make_eval_dataset`): `(images, labels)`, or
  `((images, ids), labels)` in set order with `with_ids=True`.

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000, split_seed=0)
train_ds = make_train_dataset(data, batch_size=128, seed=0)
val_ds = make_eval_dataset(data.val, data, batch_size=512)
(images, ids), labels = next(iter(train_ds))
# images float32 [128, 28, 28, 1], normalised; ids int64 in
# [0, data.num_examples); labels == data.labels_by_id()[ids]
```

Data sets (`DATASET_NAMES`):

- `fashion_mnist`: the four IDX `.gz` files (Debian package
  `dataset-fashion-mnist` puts them in `/usr/share/datasets/fashion-mnist/`),
  or a tfds `data_dir` where `fashion_mnist` is prepared.
- `cifar10`, `cifar100`, `cifar10_n`, `cifar100_n`: prepared tfds data only;
  nothing is ever downloaded.
- `clothing1m`, `webvision` (mini-WebVision, first 50 classes): image files
  under `data_dir` in the layouts described in `load_dataset`.

References:
    - Liu et al., Early-Learning Regularization Prevents Memorization of
      Noisy Labels, NeurIPS 2020 (arXiv:2007.00151), and its reference code.
    - Wei et al., Learning with Noisy Labels Revisited: A Study Using
      Real-World Human Annotations, ICLR 2022 (CIFAR-10N / CIFAR-100N).
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import re

import numpy as np
import tensorflow as tf
from absl import logging

from elr_tf.validation import int_vector

DATASET_NAMES = (
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "cifar10_n",
    "cifar100_n",
    "clothing1m",
    "webvision",
)

AUGMENT_KINDS = ("cifar", "fashion_mnist", "large")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Human label sets of CIFAR-N: our short name -> tfds feature name (read from
# tensorflow_datasets/image_classification/cifar10_n and cifar100_n). The
# clean CIFAR label is the feature "label" in both.
CIFAR_N_LABEL_SETS = {
    "cifar10_n": {
        "aggre": "aggre_label",
        "random1": "random_label1",
        "random2": "random_label2",
        "random3": "random_label3",
        "worst": "worse_label",
    },
    "cifar100_n": {"noisy100": "noise_label"},
}
_CIFAR_N_DEFAULT = {"cifar10_n": "worst", "cifar100_n": "noisy100"}

# Per-channel mean and std on the [0, 1] scale. CIFAR, Clothing1M and
# WebVision values are those of the ELR reference code; Fashion-MNIST values
# were computed on its 60,000 training images.
_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_CIFAR100_STATS = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
_NORMALIZATION = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": _CIFAR10_STATS,
    "cifar10_n": _CIFAR10_STATS,
    "cifar100": _CIFAR100_STATS,
    "cifar100_n": _CIFAR100_STATS,
    "clothing1m": ((0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)),
    "webvision": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

# Zero padding before the random crop of the small-image augmentations.
_CROP_PADDING = 4

# Large data sets: (default crop size, default resize size). An `image_size`
# override keeps the resize/crop ratio.
_LARGE_SIZES = {"clothing1m": (224, 256), "webvision": (227, 256)}
_CLOTHING1M_CLASSES = 14
_WEBVISION_CLASSES = 50

# IDX element types (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# First bytes of the image formats `tf.io.decode_image` reads.
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


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
        ids = int_vector(self.ids, "ids")
        n = len(ids)
        if ids.size and ids.min() < 0:
            raise ValueError(f"`ids` must be non-negative. Received: min={ids.min()}")
        if np.unique(ids).size != n:
            raise ValueError("`ids` must be unique. Received duplicate ids.")
        labels = int_vector(self.labels, "labels", n)
        true_labels = self.true_labels
        if true_labels is not None:
            true_labels = int_vector(true_labels, "true_labels", n)
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
        labels = int_vector(labels, "labels", len(self))
        if labels.size and labels.min() < 0:
            raise ValueError(f"`labels` must be non-negative. Received: min={labels.min()}")
        return dataclasses.replace(self, labels=labels)

    def _take(self, positions):
        positions = np.asarray(positions, dtype=np.int64)
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
        name: data set name, one of `DATASET_NAMES`.
        train: training examples.
        val: validation examples (may be empty when `val_fraction=0`).
        test: test examples (clean labels).
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

    def labels_by_id(self, true_labels=False):
        """Returns int64 `[num_examples]`: each training-space id's label.

        Covers `train`, and `val` when `val_from_train`; other ids hold -1.

        Args:
            true_labels: give the true labels instead of the given ones
                (-1 where a set's true labels are unknown).
        """
        table = np.full(self.num_examples, -1, dtype=np.int64)
        for example_set in self._id_space_sets():
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

    def _id_space_sets(self):
        return (self.train, self.val) if self.val_from_train else (self.train,)


# --------------------------------------------------------------------------
# Loading.


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
):
    """Loads a data set with a stable id on every training example.

    Fashion-MNIST and the CIFAR family are split 90/10 per class (ELR-SPEC
    §2) by the labels as given (for CIFAR-N: the chosen human labels, which
    is what a practitioner would have), seeded by `split_seed`. Train and
    validation keep their raw ids. Clothing1M and WebVision come with their
    own clean validation sets and are not split.

    Layouts under `data_dir`:

    - Clothing1M: `noisy_label_kv.txt`, `clean_label_kv.txt` (lines
      `images/0/xx/yyy.jpg <label>`), `noisy_train_key_list.txt`,
      `clean_val_key_list.txt`, `clean_test_key_list.txt` (one key per
      line), in `data_dir` or `data_dir/annotations/`. Images at
      `data_dir/<key>`, or at `data_dir/<key without "images/">` when
      `data_dir/images/` does not exist (the layout the ELR reference loader
      reads). Train ids are line positions in `noisy_train_key_list.txt`;
      `true_labels` holds the clean label where `clean_label_kv.txt` has
      one and -1 elsewhere (None when it has none).
    - mini-WebVision (the ELR reference layout): `info/train_filelist_google.txt`
      (lines `google/q0001/xxx.jpg <label>`, images at `data_dir/<path>`),
      `info/val_filelist.txt` (lines `xxx.jpg <label>`, images in
      `val_images_256/`; a leading `val_images_256/` is also accepted). Only
      labels < 50 are kept; ids are positions among the kept lines. The
      optional ILSVRC12 validation list `imagenet/imagenet_val.txt` (lines
      `ILSVRC2012_val_00000001.JPEG <label>`, images in `imagenet/val/`,
      labels in WebVision's class order, which is ILSVRC12's) becomes
      `extra_tests["ilsvrc12"]`. `test` is the WebVision validation set.
      WebVision's resized release stores images with a shorter side of 256,
      so the resize to `resize_size` leaves them as they are (the reference
      code crops them directly); ILSVRC12 images are resized.

    Args:
        name: one of `DATASET_NAMES`.
        data_dir: data directory. Fashion-MNIST: IDX files, or a tfds
            data_dir (default `/usr/share/datasets/fashion-mnist/`). CIFAR
            family: tfds data_dir (default: tfds's). Clothing1M, WebVision:
            required, see layouts above.
        num_train: if set, first draw this many examples from the raw
            training set (stratified by label, seeded by `split_seed`), then
            split; ids stay the raw positions. None uses all.
        val_fraction: per-class fraction held out for validation, in
            [0, 1). Ignored for Clothing1M and WebVision.
        split_seed: seed of the subset and of the train/validation split.
        cifar_n_label: CIFAR-N human label set: one of `aggre`, `random1`,
            `random2`, `random3`, `worst` (default) for `cifar10_n`;
            `noisy100` (default) for `cifar100_n`. Must be None otherwise.
        noisy_labels_file: optional `.npy` (integer array of length
            `num_examples`, one label per raw id) or `.csv` (rows
            `id,label`, header optional, covering every train and val id)
            whose labels replace the train (and split-off val) labels by id.
            `true_labels` are kept.
        image_size: crop size override (int or `(H, W)`) for Clothing1M and
            WebVision, e.g. small sizes for tests. Must be None otherwise.

    Returns:
        A `NoisyData`.

    Raises:
        ValueError: for bad arguments or malformed files.
        FileNotFoundError: when the data is not present, with instructions.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"`name` must be one of {DATASET_NAMES}. Received: name={name!r}")
    if num_train is not None and (not _is_int(num_train) or num_train < 1):
        raise ValueError(
            f"`num_train` must be None or a positive int. Received: num_train={num_train!r}"
        )
    if isinstance(val_fraction, bool) or not (
        isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1
    ):
        raise ValueError(
            f"`val_fraction` must be a number in [0, 1). Received: val_fraction={val_fraction!r}"
        )
    if not _is_int(split_seed) or split_seed < 0:
        raise ValueError(
            f"`split_seed` must be a non-negative int. Received: split_seed={split_seed!r}"
        )
    if cifar_n_label is not None and name not in CIFAR_N_LABEL_SETS:
        raise ValueError(
            "`cifar_n_label` applies only to cifar10_n and cifar100_n. "
            f"Received: cifar_n_label={cifar_n_label!r} with name={name!r}"
        )
    if image_size is not None and name not in _LARGE_SIZES:
        raise ValueError(
            "`image_size` applies only to clothing1m and webvision. "
            f"Received: image_size={image_size!r} with name={name!r}"
        )
    if data_dir is not None:
        data_dir = os.fspath(data_dir)

    rng = np.random.default_rng(split_seed)
    if name in _LARGE_SIZES:
        data = _load_large(name, data_dir, image_size)
        if num_train is not None:
            positions = _stratified_subset(data.train.labels, num_train, rng)
            data = dataclasses.replace(data, train=data.train._take(positions))
    else:
        if name == "fashion_mnist":
            raw_train, test, num_classes, source = _load_fashion_mnist(data_dir)
        else:
            raw_train, test, num_classes, source = _load_tfds_cifar(name, data_dir, cifar_n_label)
        num_examples = len(raw_train)
        pool = raw_train
        if num_train is not None:
            pool = raw_train._take(_stratified_subset(raw_train.labels, num_train, rng))
        train_pos, val_pos = _split_per_class(pool.labels, val_fraction, rng)
        mean, std = _NORMALIZATION[name]
        data = NoisyData(
            name=name,
            train=pool._take(train_pos),
            val=pool._take(val_pos),
            test=test,
            num_classes=num_classes,
            image_shape=tuple(int(d) for d in raw_train.images.shape[1:]),
            num_examples=num_examples,
            mean=mean,
            std=std,
            augment="fashion_mnist" if name == "fashion_mnist" else "cifar",
            label_source=source,
        )
    if noisy_labels_file is not None:
        table = _read_noisy_labels_file(
            os.fspath(noisy_labels_file), data.num_examples, data.num_classes
        )
        _check_covers(table, data, noisy_labels_file)
        data = data.with_labels_by_id(table, label_source=f"file:{os.fspath(noisy_labels_file)}")
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


def _read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a NumPy array.

    Args:
        path: file path; gzip compression is detected from the content.

    Returns:
        The array, with the dims and element type of the IDX header.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a valid IDX file (message names it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ValueError(f"Cannot read IDX file {path}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"Not an IDX file: {path}. Expected a magic number 0x0000TTNN "
            f"(TT an element type in {sorted(_IDX_DTYPES)}); received first "
            f"bytes {raw[:4].hex()}"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"Truncated IDX header in {path} (ndim={ndim}).")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"IDX file {path} has {len(raw)} bytes; its header (dims={dims}, "
            f"dtype={dtype}) needs {expected}. The file is truncated or "
            "corrupt."
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _load_fashion_mnist(data_dir):
    directory = FASHION_MNIST_DIR if data_dir is None else data_dir
    files = {key: _idx_path(directory, stem) for key, stem in _FASHION_MNIST_FILES.items()}
    if all(os.path.isfile(p) for p in files.values()):
        arrays = {key: _read_idx(p) for key, p in files.items()}
    elif data_dir is not None and _tfds_prepared("fashion_mnist", data_dir):
        # The tfds copy stores examples in its own (shuffled) order, so ids
        # are positions in that order, not in the IDX files.
        train = _read_tfds_split("fashion_mnist", "train", data_dir, ("label",))
        test = _read_tfds_split("fashion_mnist", "test", data_dir, ("label",))
        arrays = {
            "train_images": train["image"],
            "train_labels": train["label"],
            "test_images": test["image"],
            "test_labels": test["label"],
        }
    else:
        missing = next(p for p in files.values() if not os.path.isfile(p))
        raise FileNotFoundError(
            f"Fashion-MNIST file not found: {missing}. Install the Debian "
            f"package dataset-fashion-mnist (files in {FASHION_MNIST_DIR}/), "
            "or pass --data_dir=<a directory holding the four IDX .gz files, "
            "or a tfds data_dir where fashion_mnist is prepared>."
        )
    sets = []
    for split in ("train", "test"):
        images = arrays[f"{split}_images"]
        labels = arrays[f"{split}_labels"].astype(np.int64)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                f"Fashion-MNIST {split} images must be uint8 [n, 28, 28(, 1)]. "
                f"Received dtype={images.dtype}, shape={images.shape} from "
                f"{files[f'{split}_images']}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"Fashion-MNIST {split}: {len(images)} images but "
                f"{len(labels)} labels (files {files[f'{split}_images']}, "
                f"{files[f'{split}_labels']})."
            )
        _check_label_range(labels, 10, files[f"{split}_labels"])
        sets.append(
            ExampleSet(
                ids=np.arange(len(labels)),
                labels=labels,
                true_labels=labels,
                images=images,
            )
        )
    return sets[0], sets[1], 10, "clean"


def _idx_path(directory, stem):
    gz = os.path.join(directory, stem + ".gz")
    plain = os.path.join(directory, stem)
    return plain if os.path.isfile(plain) and not os.path.isfile(gz) else gz


def _load_tfds_cifar(name, data_dir, cifar_n_label):
    label_field = "label"
    source = "clean"
    if name in CIFAR_N_LABEL_SETS:
        choices = CIFAR_N_LABEL_SETS[name]
        if cifar_n_label is None:
            cifar_n_label = _CIFAR_N_DEFAULT[name]
        if cifar_n_label not in choices:
            raise ValueError(
                f"`cifar_n_label` for {name} must be one of "
                f"{tuple(choices)}. Received: cifar_n_label={cifar_n_label!r}"
            )
        label_field = choices[cifar_n_label]
        source = f"{name}:{cifar_n_label}"
    fields = tuple(dict.fromkeys(("label", label_field)))
    train = _read_tfds_split(name, "train", data_dir, fields)
    test = _read_tfds_split(name, "test", data_dir, ("label",))
    num_classes = train["num_classes"]
    _check_label_range(train[label_field], num_classes, f"tfds {name} train")
    _check_label_range(train["label"], num_classes, f"tfds {name} train")
    train_set = ExampleSet(
        ids=train["ids"],
        labels=train[label_field],
        true_labels=train["label"],
        images=train["image"],
    )
    test_set = ExampleSet(
        ids=test["ids"],
        labels=test["label"],
        true_labels=test["label"],
        images=test["image"],
    )
    return train_set, test_set, num_classes, source


def _tfds_prepared(name, data_dir):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir).is_prepared()


def _read_tfds_split(name, split, data_dir, fields):
    """Reads a prepared tfds split into NumPy arrays, in raw order.

    Uses `builder.as_dataset`, which never downloads. Examples are returned
    sorted by the index in their "id" feature ("train_00042" -> 42), which
    is the position in the original CIFAR binaries, because tfds stores
    examples in a shuffled order. When ids are absent or do not parse (e.g.
    mocked data), the stored read order is used.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as e:  # tfds's "could not find data in ..." check.
        where = data_dir if data_dir is not None else "tfds's default data_dir"
        manual = (
            " --manual_dir=<dir with the CIFAR-N annotation files named in "
            "the builder's MANUAL_DOWNLOAD_INSTRUCTIONS>"
            if name in CIFAR_N_LABEL_SETS
            else ""
        )
        raise FileNotFoundError(
            f"Data set {name!r} is not prepared in {where} ({e}). Nothing is "
            "downloaded here. On a machine with internet run "
            f"`tfds build {name} --data_dir=/some/dir{manual}`, copy "
            f"/some/dir/{name} to this machine and pass "
            "--data_dir=<the directory that contains it>."
        ) from e
    features = builder.info.features
    has_id = "id" in features
    keys = ("image",) + tuple(fields) + (("id",) if has_id else ())
    ds = ds.map(lambda ex: {k: ex[k] for k in keys}).batch(4096)
    parts = {k: [] for k in keys}
    for batch in tfds.as_numpy(ds):
        for k in keys:
            parts[k].append(batch[k])
    out = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}
    n = len(out["image"])
    order = np.arange(n)
    ids = np.arange(n)
    if has_id:
        parsed = _parse_tfds_ids(out["id"])
        if parsed is not None:
            order = np.argsort(parsed, kind="stable")
        else:
            logging.info(
                "%s/%s: 'id' feature does not hold positions; using read order.",
                name,
                split,
            )
    result = {k: out[k][order] for k in ("image",) + tuple(fields)}
    for k in fields:
        result[k] = result[k].astype(np.int64)
    result["ids"] = ids
    result["num_classes"] = int(features["label"].num_classes)
    return result


def _parse_tfds_ids(id_strings):
    positions = []
    for value in id_strings:
        match = re.fullmatch(rb"[A-Za-z]+_(\d+)", bytes(value))
        if match is None:
            return None
        positions.append(int(match.group(1)))
    positions = np.asarray(positions, dtype=np.int64)
    if not np.array_equal(np.sort(positions), np.arange(len(positions))):
        return None
    return positions


def _load_large(name, data_dir, image_size):
    if data_dir is None:
        raise ValueError(f"`data_dir` is required for {name}. Received: data_dir=None")
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{name} data_dir does not exist: {data_dir}")
    crop, resize = _LARGE_SIZES[name]
    if image_size is None:
        height = width = crop
        resize_size = resize
    else:
        height, width = _check_image_size(image_size)
        resize_size = max(height, width, round(max(height, width) * resize / crop))
    if name == "clothing1m":
        train, val, test, extra = _load_clothing1m(data_dir)
        num_classes, source = _CLOTHING1M_CLASSES, "clothing1m:noisy"
    else:
        train, val, test, extra = _load_webvision(data_dir)
        num_classes, source = _WEBVISION_CLASSES, "webvision:web"
    mean, std = _NORMALIZATION[name]
    return NoisyData(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        image_shape=(height, width, 3),
        num_examples=len(train),
        mean=mean,
        std=std,
        augment="large",
        resize_size=resize_size,
        extra_tests=extra,
        val_from_train=False,
        label_source=source,
    )


def _load_clothing1m(data_dir):
    def text_file(filename):
        # The official release keeps the lists in annotations/.
        direct = os.path.join(data_dir, filename)
        nested = os.path.join(data_dir, "annotations", filename)
        return nested if not os.path.isfile(direct) and os.path.isfile(nested) else direct

    noisy_kv = dict(_read_filelist(text_file("noisy_label_kv.txt"), _CLOTHING1M_CLASSES))
    clean_kv = dict(_read_filelist(text_file("clean_label_kv.txt"), _CLOTHING1M_CLASSES))

    def labelled(list_name, kv, kv_name):
        keys = _read_key_list(text_file(list_name))
        labels = []
        for lineno, key in keys:
            if key not in kv:
                raise ValueError(
                    f"{text_file(list_name)}:{lineno}: key {key!r} has no label in "
                    f"{text_file(kv_name)}."
                )
            labels.append(kv[key])
        return [k for _, k in keys], np.asarray(labels, dtype=np.int64)

    train_keys, train_labels = labelled("noisy_train_key_list.txt", noisy_kv, "noisy_label_kv.txt")
    # Keys read "images/0/xx/yyy.jpg". Some copies (the layout the ELR and
    # DivideMix loaders read) hold the class folders directly in data_dir.
    strip = len("images/") if not os.path.isdir(os.path.join(data_dir, "images")) else 0

    def image_paths(keys):
        return [os.path.join(data_dir, k[strip:] if k.startswith("images/") else k) for k in keys]

    true = np.asarray([clean_kv.get(k, -1) for k in train_keys], dtype=np.int64)
    train = ExampleSet(
        ids=np.arange(len(train_keys)),
        labels=train_labels,
        true_labels=true if (true >= 0).any() else None,
        paths=image_paths(train_keys),
    )
    sets = []
    for list_name in ("clean_val_key_list.txt", "clean_test_key_list.txt"):
        keys, labels = labelled(list_name, clean_kv, "clean_label_kv.txt")
        sets.append(
            ExampleSet(
                ids=np.arange(len(keys)),
                labels=labels,
                true_labels=labels,
                paths=image_paths(keys),
            )
        )
    return train, sets[0], sets[1], {}


def _load_webvision(data_dir):
    def file_set(list_path, image_dir, clean):
        rows = _read_filelist(list_path, keep_below=_WEBVISION_CLASSES)
        prefix = image_dir + "/"
        paths = [
            os.path.join(data_dir, key if key.startswith(prefix) else prefix + key)
            for key, _ in rows
        ]
        labels = np.asarray([label for _, label in rows], dtype=np.int64)
        return ExampleSet(
            ids=np.arange(len(rows)),
            labels=labels,
            true_labels=labels if clean else None,
            paths=paths,
        )

    info = os.path.join(data_dir, "info")
    train_rows = _read_filelist(
        os.path.join(info, "train_filelist_google.txt"), keep_below=_WEBVISION_CLASSES
    )
    train = ExampleSet(
        ids=np.arange(len(train_rows)),
        labels=[label for _, label in train_rows],
        paths=[os.path.join(data_dir, key) for key, _ in train_rows],
    )
    val = file_set(os.path.join(info, "val_filelist.txt"), "val_images_256", True)
    extra = {}
    imagenet_list = os.path.join(data_dir, "imagenet", "imagenet_val.txt")
    if os.path.isfile(imagenet_list):
        extra["ilsvrc12"] = file_set(imagenet_list, "imagenet/val", True)
    else:
        logging.warning("No %s: WebVision loaded without the ILSVRC12 test set.", imagenet_list)
    return train, val, val, extra


def _read_filelist(path, num_classes=None, keep_below=None):
    """Reads `<relative path> <label>` lines into a list of (key, label)."""
    rows = []
    for lineno, line in _read_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not _is_int_text(parts[1]):
            raise ValueError(
                f"{path}:{lineno}: expected '<relative path> <integer label>'. Received: {line!r}"
            )
        label = int(parts[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise ValueError(
                f"{path}:{lineno}: label must be in [0, {num_classes}). Received: {label}"
            )
        if keep_below is None or label < keep_below:
            rows.append((parts[0], label))
    return rows


def _read_key_list(path):
    return list(_read_lines(path))


def _read_lines(path):
    """Yields (1-based line number, stripped line), skipping blank lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Required file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield lineno, line


def _read_noisy_labels_file(path, num_examples, num_classes):
    """Returns int64 `[num_examples]` labels by id; -1 where the file is silent."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"noisy_labels_file not found: {path}")
    if path.endswith(".npy"):
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot read noisy_labels_file {path}: {e}") from e
        if table.ndim != 1 or len(table) != num_examples:
            raise ValueError(
                f"noisy_labels_file {path} must hold a 1-D array of length "
                f"num_examples={num_examples}. Received shape={table.shape}"
            )
        if not np.issubdtype(table.dtype, np.integer):
            raise ValueError(
                f"noisy_labels_file {path} must hold integers. Received dtype={table.dtype}"
            )
        _check_label_range(table, num_classes, path)
        return table.astype(np.int64)
    if not path.endswith(".csv"):
        raise ValueError(
            f"`noisy_labels_file` must end in .npy or .csv. Received: noisy_labels_file={path!r}"
        )
    table = np.full(num_examples, -1, dtype=np.int64)
    for lineno, line in _read_lines(path):
        parts = [p.strip() for p in line.split(",")]
        if lineno == 1 and not all(_is_int_text(p) for p in parts):
            continue  # Header.
        if len(parts) != 2 or not all(_is_int_text(p) for p in parts):
            raise ValueError(
                f"{path}:{lineno}: expected 'id,label' with two integers. Received: {line!r}"
            )
        example_id, label = int(parts[0]), int(parts[1])
        if not 0 <= example_id < num_examples:
            raise ValueError(
                f"{path}:{lineno}: id must be in [0, {num_examples}). Received: {example_id}"
            )
        if not 0 <= label < num_classes:
            raise ValueError(
                f"{path}:{lineno}: label must be in [0, {num_classes}). Received: {label}"
            )
        if table[example_id] >= 0:
            raise ValueError(f"{path}:{lineno}: id {example_id} appears twice.")
        table[example_id] = label
    return table


def _check_covers(table, data, path):
    for example_set in data._id_space_sets():
        missing = example_set.ids[table[example_set.ids] < 0]
        if missing.size:
            raise ValueError(
                f"noisy_labels_file {path} gives no label for {missing.size} "
                f"train/val ids, e.g. {missing[:5].tolist()}."
            )


def _stratified_subset(labels, size, rng):
    """Positions of a `size`-example subset keeping the class proportions."""
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


def _split_per_class(labels, val_fraction, rng):
    """Per-class (train, val) positions; val gets round(fraction * count)."""
    train, val = [], []
    for c in np.unique(labels):
        positions = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(np.floor(val_fraction * len(positions) + 0.5))
        val.append(positions[:n_val])
        train.append(positions[n_val:])
    empty = np.zeros(0, np.int64)
    return np.sort(np.concatenate(train + [empty])), np.sort(np.concatenate(val + [empty]))


# --------------------------------------------------------------------------
# tf.data pipelines.


def make_train_dataset(
    data,
    batch_size,
    *,
    seed,
    augment=True,
    shuffle=True,
    drop_remainder=False,
    balanced_batches=None,
    epoch=None,
):
    """Builds the training `tf.data.Dataset` of `((images, ids), labels)`.

    Each iteration is one epoch, freshly shuffled (and freshly resampled with
    `balanced_batches`); the sequence of epochs depends only on `seed` (and
    TensorFlow's global seed, when set). Augmentation randomness is drawn
    per example from a seeded stream, so results do not depend on
    parallelism.

    Augmentation (ELR-SPEC §3 inputs):

    - `cifar`, `fashion_mnist`: zero-pad 4, random crop back to size,
      random horizontal flip (for Fashion-MNIST too: the classes are
      clothing items, left-right symmetric). Done on whole batches.
    - `large`: decode JPEG/PNG, resize the shorter side to
      `data.resize_size` (keeping the aspect ratio), random crop to
      `data.image_shape`, random horizontal flip. Without augmentation the
      crop is central.

    Images are then scaled to [0, 1] and normalised per channel. A file that
    is missing or not an image fails with an error naming it; for other
    decoding errors, `find_unreadable_images(data.train)` names the files.

    Args:
        data: a `NoisyData`; `data.train` is used.
        batch_size: positive int.
        seed: int seeding shuffling, resampling and augmentation.
        augment: apply random augmentation.
        shuffle: shuffle each epoch (ignored with `balanced_batches`, which
            always shuffles).
        drop_remainder: drop the last partial batch.
        balanced_batches: if set to N, each epoch draws `N * batch_size`
            examples with (up to one) equal count per class, anew each epoch,
            and yields N batches (the Clothing1M recipe). Classes smaller
            than their quota are sampled with repetition.
        epoch: optional int `tf.Variable` holding the current epoch. When
            given, each epoch's order, resampling and augmentation are drawn
            from `(seed, epoch)` instead of from how often the dataset was
            iterated, so a run resumed at epoch k reads the same batches an
            uninterrupted run reads at epoch k. Set it before each epoch
            (the trainer does, in `on_epoch_begin`).

    Returns:
        A `tf.data.Dataset` yielding `((images float32 [B, H, W, C],
        ids int64 [B]), labels int64 [B])`.
    """
    _check_data(data)
    _check_positive_int(batch_size, "batch_size")
    if not _is_int(seed):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    if balanced_batches is not None:
        _check_positive_int(balanced_batches, "balanced_batches")
    example_set = data.train
    n = len(example_set)
    if n == 0:
        raise ValueError("`data.train` is empty; cannot make a training dataset.")

    if balanced_batches is not None:
        positions = _balanced_positions(
            example_set.labels, balanced_batches * batch_size, seed, epoch
        )
    elif epoch is not None:
        positions = _epoch_stream(
            lambda key: (
                tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), key)
                if shuffle
                else tf.range(n, dtype=tf.int64)
            ),
            seed,
            epoch,
        )
    else:
        positions = tf.data.Dataset.range(n)
        if shuffle:
            positions = positions.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    # One random int per example, fresh each epoch, drives its augmentation.
    if epoch is None:
        randoms = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    else:
        total = n if balanced_batches is None else balanced_batches * batch_size
        randoms = _epoch_stream(
            lambda key: tf.random.stateless_uniform(
                [total], key, minval=0, maxval=2**62, dtype=tf.int64
            ),
            seed + 1,
            epoch,
        )
    ds = tf.data.Dataset.zip((positions, randoms))
    ds = _load_examples(ds, example_set, data, batch_size, augment, drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(example_set, data, batch_size, *, with_ids=False, true_labels=False):
    """Builds an evaluation `tf.data.Dataset`, in set order, no augmentation.

    Large-image sets are resized (shorter side to `data.resize_size`) and
    centre-cropped to `data.image_shape`.

    Args:
        example_set: the `ExampleSet` to read (e.g. `data.val`, `data.test`).
        data: the `NoisyData` it belongs to (normalisation, image shape).
        batch_size: positive int.
        with_ids: yield `((images, ids), labels)` instead of
            `(images, labels)`.
        true_labels: yield `example_set.true_labels` instead of `labels`.

    Returns:
        A `tf.data.Dataset` of `(images float32, labels int64)` or
        `((images, ids int64), labels)`.
    """
    _check_data(data)
    if not isinstance(example_set, ExampleSet):
        # ValueError, not TypeError: every bad argument raises ValueError here.
        raise ValueError(  # noqa: TRY004
            f"`example_set` must be an ExampleSet. Received: {type(example_set).__name__}"
        )
    _check_positive_int(batch_size, "batch_size")
    if true_labels:
        if example_set.true_labels is None:
            raise ValueError(
                "`true_labels=True` but this set's true labels are unknown "
                "(example_set.true_labels is None)."
            )
        # Kept as is, -1 included: callers mask unknown labels themselves.
        example_set = dataclasses.replace(example_set, labels=example_set.true_labels)
    positions = tf.data.Dataset.range(len(example_set))
    zeros = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
    ds = tf.data.Dataset.zip((positions, zeros))
    ds = _load_examples(ds, example_set, data, batch_size, False, False)
    if not with_ids:
        ds = ds.map(lambda x, y: (x[0], y))
    return ds.prefetch(tf.data.AUTOTUNE)


def find_unreadable_images(example_set):
    """Lists the files of a file-backed set that cannot be read or decoded.

    Decoding errors inside a running `tf.data` pipeline do not say which file
    failed when the file has a valid image header but corrupt data; this scan
    names them. It decodes every image once.

    Args:
        example_set: a file-backed `ExampleSet`.

    Returns:
        The unreadable paths, in set order (empty when all are fine).
    """
    if not isinstance(example_set, ExampleSet) or not example_set.file_backed:
        raise ValueError(
            "`example_set` must be a file-backed ExampleSet. Received: "
            f"{type(example_set).__name__}"
        )
    paths = [str(p) for p in example_set.paths]
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    ds = ds.map(lambda p: (p, tf.shape(_decode_file(p))), num_parallel_calls=tf.data.AUTOTUNE)
    readable = {p.decode() for p, _ in ds.ignore_errors().as_numpy_iterator()}
    return [p for p in paths if p not in readable]


def _load_examples(ds, example_set, data, batch_size, augment, drop_remainder):
    """Maps `(position, random)` elements to batches of `((x, ids), y)`."""
    # Captured tensors live on the CPU, where tf.data runs.
    with tf.device("/cpu:0"):
        ids = tf.constant(example_set.ids, tf.int64)
        labels = tf.constant(example_set.labels, tf.int64)
        if example_set.file_backed:
            paths = tf.constant([str(p) for p in example_set.paths], tf.string)
        else:
            images = tf.constant(example_set.images)
    mean, std = data.mean, data.std
    if example_set.file_backed:
        crop_hw = data.image_shape[:2]
        resize_size = data.resize_size

        def load_one(position, random):
            image = _load_image(tf.gather(paths, position), resize_size)
            example_id = tf.gather(ids, position)
            if augment:
                seed = tf.stack([random, example_id])
                image = _random_crop_flip(image, crop_hw, seed)
            else:
                image = _center_crop(image, crop_hw)
            image = _normalize(image, mean, std)
            return (image, example_id), tf.gather(labels, position)

        ds = ds.map(load_one, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size, drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)

    def load_batch(position, random):
        batch = tf.gather(images, position)
        if augment:
            batch = _pad_crop_flip(batch, random, _CROP_PADDING)
        batch = _normalize(batch, mean, std)
        return (batch, tf.gather(ids, position)), tf.gather(labels, position)

    ds = ds.batch(batch_size, drop_remainder)
    return ds.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)


def _epoch_stream(make, seed, epoch):
    """Dataset of the elements of `make(key)`, `key` drawn from (seed, epoch).

    `epoch` (a variable) is read when the dataset is iterated, i.e. at the
    start of each epoch.
    """
    ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    ds = ds.map(lambda _: make(tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])))
    return ds.unbatch()


def _balanced_positions(labels, total, seed, epoch=None):
    """Dataset of `total` positions per epoch, class-balanced, fresh each epoch."""
    classes, class_index = np.unique(labels, return_inverse=True)
    num_classes = len(classes)
    counts = np.bincount(class_index, minlength=num_classes)
    quota = -(-total // num_classes)
    if (counts < quota).any():
        logging.warning(
            "balanced_batches: classes %s have fewer than %d examples and "
            "are sampled with repetition.",
            classes[counts < quota].tolist(),
            quota,
        )
    with tf.device("/cpu:0"):
        class_index_t = tf.constant(class_index, tf.int64)
        counts_t = tf.constant(counts, tf.int64)
        starts_t = tf.constant(np.cumsum(counts) - counts, tf.int64)
    n = len(labels)
    base, extra = divmod(total, num_classes)

    def sample(random):
        seeds = tf.random.experimental.stateless_split(tf.stack([random, 0]), 3)
        # A fresh random order inside each class: sort by (class, random key).
        keys = tf.random.stateless_uniform([n], seeds[0])
        by_key = tf.argsort(keys, stable=True)
        order = tf.gather(by_key, tf.argsort(tf.gather(class_index_t, by_key), stable=True))
        # `extra` random classes get one more example when C does not divide.
        shuffled = tf.argsort(tf.random.stateless_uniform([num_classes], seeds[1]))
        per_class = base + tf.cast(shuffled < extra, tf.int64)
        slot_class = tf.repeat(tf.range(num_classes, dtype=tf.int64), per_class)
        slot_start = tf.repeat(tf.cumsum(per_class, exclusive=True), per_class)
        within = tf.range(total, dtype=tf.int64) - slot_start
        within = within % tf.gather(counts_t, slot_class)
        picked = tf.gather(order, tf.gather(starts_t, slot_class) + within)
        mix = tf.argsort(tf.random.stateless_uniform([total], seeds[2]))
        return tf.cast(tf.gather(picked, mix), tf.int64)

    if epoch is None:
        ds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        ds = ds.map(sample).unbatch()
    else:
        ds = _epoch_stream(lambda key: sample(key[0] * 1_000_003 + key[1]), seed, epoch)
    return ds.apply(tf.data.experimental.assert_cardinality(total))


def _pad_crop_flip(images, random, padding):
    """Zero-pads, random-crops back and random-flips a uint8 batch.

    The crop offsets and flip of example k come from `random[k]`:
    `dy = r % s`, `dx = (r // s) % s`, flip when `(r // s**2) % 2 == 1`,
    with `s = 2 * padding + 1`. Batched gathers are used instead of a
    per-example map because they are much cheaper for small images.

    Args:
        images: `[B, H, W, C]` tensor.
        random: int64 `[B]`, non-negative.
        padding: zero padding on each side.

    Returns:
        `[B, H, W, C]` tensor of the same dtype.
    """
    images = tf.convert_to_tensor(images)
    random = tf.cast(random, tf.int64)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    span = 2 * padding + 1
    dy = tf.cast(random % span, tf.int32)
    dx = tf.cast((random // span) % span, tf.int32)
    flip = (random // (span * span)) % 2 == 1
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = dy[:, None] + tf.range(height)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cols = dx[:, None] + tf.range(width)[None, :]
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    flipped = tf.reverse(cropped, axis=[2])
    return tf.where(flip[:, None, None, None], flipped, cropped)


def _normalize(images, mean, std):
    """uint8-range images -> float32 `(x / 255 - mean) / std` per channel."""
    images = tf.cast(images, tf.float32) / 255.0
    return (images - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def _load_image(path, resize_size):
    """Reads an image file; returns float32 RGB with shorter side `resize_size`."""
    image = _decode_file(path)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_size / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), resize_size)
    return tf.image.resize(image, new_size, antialias=True)


def _decode_file(path):
    """Reads and decodes an image file to uint8 RGB `[H, W, 3]`.

    Files that are not JPEG/PNG/GIF/BMP (empty, HTML error pages, ...) fail
    with an InvalidArgumentError naming the file; missing files fail in
    `tf.io.read_file`, whose error names the file. A valid header followed
    by corrupt data fails in the decoder, whose error cannot name the file:
    `find_unreadable_images` lists such files.
    """
    contents = tf.io.read_file(path)
    is_image = tf.reduce_any([tf.strings.substr(contents, 0, len(m)) == m for m in _IMAGE_MAGICS])
    check = tf.debugging.Assert(
        is_image,
        ["Corrupt or unreadable image file (not JPEG/PNG/GIF/BMP):", path],
    )
    with tf.control_dependencies([check]):
        contents = tf.identity(contents)
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _random_crop_flip(image, crop_hw, seed):
    """Random `crop_hw` crop and horizontal flip of `[H, W, C]`, stateless."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    channels = tf.shape(image)[-1]
    image = tf.image.stateless_random_crop(
        image, tf.stack([crop_hw[0], crop_hw[1], channels]), seeds[0]
    )
    return tf.image.stateless_random_flip_left_right(image, seeds[1])


def _center_crop(image, crop_hw):
    """Central `crop_hw` crop of `[H, W, C]` (H, W at least the crop)."""
    return tf.image.resize_with_crop_or_pad(image, crop_hw[0], crop_hw[1])


# --------------------------------------------------------------------------
# Validation helpers.


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_int_text(text):
    return re.fullmatch(r"[+-]?\d+", text) is not None


def _check_positive_int(value, name):
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")


def _check_image_size(image_size):
    if _is_int(image_size):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(_is_int(s) and s > 0 for s in image_size)
    ):
        raise ValueError(
            "`image_size` must be a positive int or a (height, width) pair. "
            f"Received: image_size={image_size!r}"
        )
    return int(image_size[0]), int(image_size[1])


def _check_data(data):
    if not isinstance(data, NoisyData):
        raise ValueError(  # noqa: TRY004
            f"`data` must be a NoisyData from load_dataset. Received: {type(data).__name__}"
        )


def _check_label_range(labels, num_classes, source):
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Labels from {source} must be in [0, {num_classes}). Received "
            f"range [{labels.min()}, {labels.max()}]"
        )
