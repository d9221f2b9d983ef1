"""The named data sets and `load_dataset`, which gives every example its id.

`load_dataset` reads the raw files once (through `elr_tf.data.readers`),
gives every training example its stable id (its position in the raw
training set), then subsets (`num_train`), splits train/validation per class
and installs a label file; all of these carry the id along unchanged.

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000, split_seed=0)
train_ds = make_train_dataset(data, batch_size=128, seed=0)
```

Data sets (`DATASET_NAMES`):

- `fashion_mnist`: the four IDX `.gz` files (Debian package
  `dataset-fashion-mnist` puts them in `/usr/share/datasets/fashion-mnist/`),
  or a tfds `data_dir` where `fashion_mnist` is prepared.
- `cifar10`, `cifar100`, `cifar10_n`, `cifar100_n`: prepared tfds data only;
  nothing is ever downloaded.
- `clothing1m`, `webvision` (mini-WebVision, first 50 classes): image files
  under `data_dir` in the layouts described in `load_dataset`.
- `folder`, `csv`: your own images, in one sub-folder per class or listed in
  a `path,label` CSV file (see `load_dataset`).
- `tfds:<name>`: any prepared tensorflow-datasets image-classification
  data set with features "image" and "label" (`is_dataset_name`).

Your own images, ready for `ELRModel.fit`:

```python
train_ds, data = indexed_dataset("folder", "/data/my_images", image_size=96)
print(data.class_names)
```

References:
    - Liu et al., Early-Learning Regularization Prevents Memorization of
      Noisy Labels, NeurIPS 2020 (arXiv:2007.00151), and its reference code.
    - Wei et al., Learning with Noisy Labels Revisited: A Study Using
      Real-World Human Annotations, ICLR 2022 (CIFAR-10N / CIFAR-100N).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from absl import logging

from elr_tf import checks
from elr_tf.data import readers
from elr_tf.data.example_set import ExampleSet, NoisyData, split_per_class, stratified_subset
from elr_tf.data.pipeline import make_train_dataset, unreadable_paths
from elr_tf.data.readers import CIFAR_N_LABEL_SETS

DATASET_NAMES = (
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "cifar10_n",
    "cifar100_n",
    "clothing1m",
    "webvision",
    "folder",
    "csv",
)

# `load_dataset("tfds:<name>")` reads any prepared tfds image data set.
TFDS_PREFIX = "tfds:"

# In tfds's and Zalando's label order.
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

AUGMENT_KINDS = ("cifar", "fashion_mnist", "large")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

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

# The class map of `--asym` noise per data set ({given: flipped}), as in the
# reference: CIFAR-10 truck->automobile, bird->airplane, deer->horse,
# cat<->dog; CIFAR-100 the next class within each super-class; Fashion-MNIST
# its look-alike classes (T-shirt<->shirt, pullover<->coat, sneaker<->ankle
# boot, sandal->sneaker).
ASYMMETRIC_MAPS = {
    "cifar10": {9: 1, 2: 0, 3: 5, 5: 3, 4: 7},
    "cifar100": {c: (c // 5) * 5 + (c + 1) % 5 for c in range(100)},
    "fashion_mnist": {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7, 5: 7},
}

# Large data sets: (default crop size, default resize size). An `image_size`
# override keeps the resize/crop ratio.
_LARGE_SIZES = {"clothing1m": (224, 256), "webvision": (227, 256)}

# Users' own images (`folder`, `csv`): default crop size, and the resize
# size is the crop size times 256 / 224, the ratio of the large sets.
_OWN_DATA = ("folder", "csv")
_OWN_DEFAULT_SIZE = 64
_RESIZE_RATIO = 256 / 224
# Users' images and tfds sets have unknown statistics. Measuring them would
# mean decoding every image once more, so a neutral normalisation is used:
# it maps [0, 1] to [-2, 2], the range of the usual per-data-set ones.
_NEUTRAL_MEAN, _NEUTRAL_STD = 0.5, 0.25
# How many file names a warning or error lists.
_NAMES_SHOWN = 5
_FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


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
    - `folder` (`data_dir` = the folder): one sub-folder per class, the
      layout of `keras.utils.image_dataset_from_directory`. Class names are
      the sorted sub-folder names, label `k` the k-th name. Images (`.jpg`,
      `.jpeg`, `.png`, `.gif`, `.bmp`, any case, found recursively) of any
      size, grey or colour (decoded to RGB).
    - `csv` (`data_dir` = the CSV file): rows `path,label`, optional header
      row `path,label`. Paths are relative to the CSV file's folder, or
      absolute. Labels are all integers (classes `"0"`..`"C-1"`, `C` = the
      largest label + 1) or all class names (sorted unique names give the
      labels).

    Users' own images (`folder`, `csv`) are file-backed, like the large
    sets: ids are positions in the training list (class by class, sorted by
    path, for `folder`; row order for `csv`), split 90/10 per class like
    Fashion-MNIST, resized and cropped to `image_size` (`augment="large"`)
    and normalised with a neutral mean 0.5 and std 0.25 per channel, since
    their statistics are unknown. There is no separate test set: `test`
    holds the validation examples with their labels as given (a
    `noisy_labels_file` relabels `val`, not `test`). Their labels are not
    known to be clean, so `true_labels` is None. Every image is decoded
    once at load time, so that a broken file fails here, naming it, instead
    of in the middle of an epoch.

    `tfds:<name>` reads a prepared tensorflow-datasets image-classification
    set with features "image" (one fixed size) and "label", in memory, like
    CIFAR: split "train" is split 90/10 per class; `test` is split "test"
    when the builder has one, else the validation examples. Labels are
    taken as given, so `true_labels` is None (no noise-detection metrics are
    claimed); normalisation is neutral as for `folder`.

    Args:
        name: one of `DATASET_NAMES`, or `"tfds:<tfds name>"`
            (`is_dataset_name`).
        data_dir: data directory. Fashion-MNIST: IDX files, or a tfds
            data_dir (default `/usr/share/datasets/fashion-mnist/`). CIFAR
            family and `tfds:<name>`: tfds data_dir (default: tfds's).
            Clothing1M, WebVision, `folder`: the folder, required. `csv`:
            the CSV file, required.
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
        image_size: crop size (int or `(H, W)`): an override for
            Clothing1M and WebVision (e.g. small sizes for tests); for
            `folder` and `csv` the model input size (default 64), images
            being resized to a shorter side of `round(size * 256 / 224)`
            first. Must be None otherwise.
        skip_unreadable: `folder` and `csv` only. When False (default), a
            missing or undecodable image file, or an empty class folder,
            raises an error naming it. When True, such files (CSV rows) and
            class folders are dropped, and a warning gives their count and
            first names.

    Returns:
        A `NoisyData`; `class_names` is filled for Fashion-MNIST, the CIFAR
        family, `folder`, `csv` and tfds sets.

    Raises:
        ValueError: for bad arguments or malformed files or images.
        FileNotFoundError: when the data is not present, with instructions.
    """
    if not is_dataset_name(name):
        raise ValueError(
            f"`name` must be one of {DATASET_NAMES} or '{TFDS_PREFIX}<tfds name>'. "
            f"Received: name={name!r}"
        )
    if num_train is not None:
        num_train = checks.positive_int("num_train", num_train)
    checks.number_in("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    split_seed = checks.non_negative_int("split_seed", split_seed)
    if cifar_n_label is not None and name not in CIFAR_N_LABEL_SETS:
        raise ValueError(
            "`cifar_n_label` applies only to cifar10_n and cifar100_n. "
            f"Received: cifar_n_label={cifar_n_label!r} with name={name!r}"
        )
    if image_size is not None and name not in _LARGE_SIZES and name not in _OWN_DATA:
        raise ValueError(
            "`image_size` applies only to clothing1m, webvision, folder and csv. "
            f"Received: image_size={image_size!r} with name={name!r}"
        )
    if not isinstance(skip_unreadable, bool):
        raise ValueError(
            f"`skip_unreadable` must be a bool. Received: skip_unreadable={skip_unreadable!r}"
        )
    if skip_unreadable and name not in _OWN_DATA:
        raise ValueError(
            "`skip_unreadable` applies only to folder and csv. "
            f"Received: skip_unreadable=True with name={name!r}"
        )
    if data_dir is not None:
        data_dir = os.fspath(data_dir)

    rng = np.random.default_rng(split_seed)
    if name in _LARGE_SIZES:
        data = _load_large(name, data_dir, image_size)
        if num_train is not None:
            positions = stratified_subset(data.train.labels, num_train, rng)
            data = dataclasses.replace(data, train=data.train.subset(positions))
    else:
        raw = _load_raw(name, data_dir, cifar_n_label, image_size, skip_unreadable)
        raw_train = raw.train
        pool = raw_train
        if num_train is not None:
            pool = raw_train.subset(stratified_subset(raw_train.labels, num_train, rng))
        train_pos, val_pos = split_per_class(pool.labels, val_fraction, rng)
        val = pool.subset(val_pos)
        if raw.test is None and not len(val):
            logging.warning("%s has no test split and val_fraction=0: the test set is empty.", name)
        data = NoisyData(
            name=name,
            train=pool.subset(train_pos),
            val=val,
            # Without a test split, test is the validation examples; the
            # object is shared, so later relabelling of `val` leaves the
            # labels of `test` as given.
            test=val if raw.test is None else raw.test,
            num_classes=raw.num_classes,
            image_shape=raw.image_shape,
            num_examples=len(raw_train),
            mean=raw.mean,
            std=raw.std,
            augment=raw.augment,
            resize_size=raw.resize_size,
            label_source=raw.source,
            class_names=raw.class_names,
        )
    if noisy_labels_file is not None:
        table = readers.read_labels_file(
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


def is_dataset_name(name):
    """True when `load_dataset` accepts `name`.

    Args:
        name: a value to check: one of `DATASET_NAMES`, or
            `"tfds:<tfds name>"` (any non-empty tfds builder name, optionally
            with `/config` and `:version`; whether tfds knows it is checked
            when loading).
    """
    if not isinstance(name, str):
        return False
    return name in DATASET_NAMES or (
        name.startswith(TFDS_PREFIX) and len(name.strip()) > len(TFDS_PREFIX)
    )


def indexed_dataset(
    source,
    data_dir=None,
    *,
    batch_size=128,
    image_size=None,
    seed=0,
    augment=True,
    val_fraction=0.1,
    **load_kwargs,
):
    """Loads a data set and builds its training pipeline, ready for `fit`.

    A shortcut for `load_dataset` followed by `make_train_dataset`.

    Example:

    ```python
    train_ds, data = indexed_dataset("folder", "/data/pets", image_size=96)
    model.fit(train_ds, epochs=10)  # an ELRModel with data.num_examples rows
    print(data.class_names)
    ```

    Args:
        source: data set name, as `name` of `load_dataset` (e.g. `"folder"`,
            `"csv"`, `"cifar10"`, `"tfds:mnist"`).
        data_dir: as in `load_dataset` (the folder for `"folder"`, the CSV
            file for `"csv"`).
        batch_size: positive int, the training batch size.
        image_size: as in `load_dataset` (`folder`/`csv` default 64).
        seed: seeds shuffling and augmentation, and the train/validation
            split unless `load_kwargs` gives `split_seed`.
        augment: apply random augmentation.
        val_fraction: per-class validation fraction, as in `load_dataset`.
        **load_kwargs: further `load_dataset` arguments (`num_train`,
            `noisy_labels_file`, `skip_unreadable`, ...).

    Returns:
        `(train_ds, data)`: the `tf.data.Dataset` of `((images, ids),
        labels)` from `make_train_dataset`, and the `NoisyData`, whose
        `class_names` names the labels.
    """
    load_kwargs.setdefault("split_seed", seed)
    data = load_dataset(
        source, data_dir, image_size=image_size, val_fraction=val_fraction, **load_kwargs
    )
    return make_train_dataset(data, batch_size, seed=seed, augment=augment), data


@dataclasses.dataclass(frozen=True)
class _Raw:
    """A raw training set (ids = positions) and what `NoisyData` needs."""

    train: ExampleSet
    test: ExampleSet | None  # None: the data set has no test split.
    num_classes: int
    image_shape: tuple
    mean: tuple
    std: tuple
    augment: str
    source: str
    class_names: tuple | None
    resize_size: int | None = None


def _load_raw(name, data_dir, cifar_n_label, image_size, skip_unreadable):
    if name in _OWN_DATA:
        if data_dir is None:
            what = "the image folder" if name == "folder" else "the CSV file"
            raise ValueError(f"`data_dir` ({what}) is required for {name}. Received: data_dir=None")
        if name == "folder":
            train, class_names = _read_folder(data_dir, skip_unreadable)
        else:
            train, class_names = _read_csv(data_dir, skip_unreadable)
        height, width = checks.image_size(
            "image_size", _OWN_DEFAULT_SIZE if image_size is None else image_size
        )
        return _Raw(
            train=train,
            test=None,
            num_classes=len(class_names),
            image_shape=(height, width, 3),
            mean=(_NEUTRAL_MEAN,) * 3,
            std=(_NEUTRAL_STD,) * 3,
            augment="large",
            source="given",
            class_names=class_names,
            resize_size=max(height, width, round(max(height, width) * _RESIZE_RATIO)),
        )
    if name.startswith(TFDS_PREFIX):
        return _load_tfds_named(name, data_dir)
    if name == "fashion_mnist":
        train, test, num_classes, source = _load_fashion_mnist(data_dir)
        class_names = FASHION_MNIST_CLASS_NAMES
    else:
        train, test, num_classes, source, class_names = _load_tfds_cifar(
            name, data_dir, cifar_n_label
        )
    mean, std = _NORMALIZATION[name]
    return _Raw(
        train=train,
        test=test,
        num_classes=num_classes,
        image_shape=tuple(int(d) for d in train.images.shape[1:]),
        mean=mean,
        std=std,
        augment="fashion_mnist" if name == "fashion_mnist" else "cifar",
        source=source,
        class_names=class_names,
    )


def _read_folder(data_dir, skip_unreadable):
    """File-backed training set and class names of an image folder."""
    classes = readers.list_image_folder(data_dir)
    empty = [os.path.join(data_dir, c) for c, files in classes.items() if not files]
    if empty and not skip_unreadable:
        raise ValueError(
            f"Image folder {data_dir}: {len(empty)} class folders hold no image "
            f"file {readers.IMAGE_EXTENSIONS}: {empty[:_NAMES_SHOWN]}. Every class "
            "folder needs images; remove the folder, or pass "
            "skip_unreadable=True to drop it."
        )
    paths = [p for files in classes.values() for p in files]
    bad = set(_unreadable(paths, paths, skip_unreadable, f"image folder {data_dir}"))
    kept = {c: [p for p in files if p not in bad] for c, files in classes.items()}
    dropped = [os.path.join(data_dir, c) for c, files in kept.items() if not files]
    if dropped:
        logging.warning(
            "Image folder %s: dropped %d class folders without a readable image: %s.",
            data_dir,
            len(dropped),
            dropped[:_NAMES_SHOWN],
        )
    kept = {c: files for c, files in kept.items() if files}
    if not kept:
        raise ValueError(f"Image folder {data_dir} holds no readable image.")
    labels = np.concatenate([np.full(len(f), k, np.int64) for k, f in enumerate(kept.values())])
    paths = [p for files in kept.values() for p in files]
    train = ExampleSet(ids=np.arange(len(paths)), labels=labels, paths=paths)
    return train, tuple(kept)


def _read_csv(csv_path, skip_unreadable):
    """File-backed training set and class names of a `path,label` CSV file."""
    if os.path.isdir(csv_path):
        raise ValueError(
            f"`data_dir` for csv must be a CSV file of rows 'path,label'. "
            f"Received a directory: data_dir={csv_path!r} (use name='folder' for "
            "one sub-folder per class)."
        )
    line_numbers, paths, labels, class_names = readers.read_image_csv(csv_path)
    where = [f"{csv_path}:{n}" for n in line_numbers]
    missing = [k for k, p in enumerate(paths) if not os.path.isfile(p)]
    if missing and not skip_unreadable:
        k = missing[0]
        # A header that is not exactly "path,label" is read as a data row.
        hint = " (a header row must read 'path,label')" if k == 0 else ""
        raise FileNotFoundError(
            f"{where[k]}: image file not found: {paths[k]}{hint}. {len(missing)} "
            "rows name missing files; pass skip_unreadable=True to drop them."
        )
    if missing:
        logging.warning(
            "%s: dropped %d rows whose image file is missing, e.g. %s.",
            csv_path,
            len(missing),
            [f"{where[k]} {paths[k]}" for k in missing[:_NAMES_SHOWN]],
        )
    keep = np.ones(len(paths), bool)
    keep[missing] = False
    kept = np.flatnonzero(keep)
    kept_paths = [paths[k] for k in kept]
    bad = set(_unreadable(kept_paths, [where[k] for k in kept], skip_unreadable, csv_path))
    kept = np.asarray([k for k in kept if paths[k] not in bad], dtype=np.int64)
    if not kept.size:
        raise ValueError(f"CSV file {csv_path} lists no readable image.")
    train = ExampleSet(
        ids=np.arange(kept.size), labels=labels[kept], paths=[paths[k] for k in kept]
    )
    return train, class_names


def _unreadable(paths, where, skip_unreadable, what):
    """The paths that cannot be decoded; raises unless `skip_unreadable`.

    Args:
        paths: image paths.
        where: how to name each path in messages (e.g. `file.csv:3`).
        skip_unreadable: warn instead of raising.
        what: the data source, for messages.
    """
    bad = set(unreadable_paths(paths))
    if not bad:
        return []
    named = [w if w == p else f"{w} {p}" for w, p in zip(where, paths) if p in bad]
    if not skip_unreadable:
        raise ValueError(
            f"{what}: {len(named)} image files cannot be read or decoded (corrupt, "
            f"truncated or not JPEG/PNG/GIF/BMP): {named[:_NAMES_SHOWN]}. Fix or "
            "remove them, or pass skip_unreadable=True to drop them."
        )
    logging.warning(
        "%s: dropped %d image files that cannot be read or decoded, e.g. %s.",
        what,
        len(named),
        named[:_NAMES_SHOWN],
    )
    return sorted(bad)


def _load_tfds_named(name, data_dir):
    import tensorflow_datasets as tfds

    tfds_name = name[len(TFDS_PREFIX) :].strip()
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except ValueError as e:  # Unknown names; tfds lists every known data set.
        raise ValueError(
            f"`name`={name!r}: tensorflow-datasets has no builder {tfds_name!r} "
            f"({str(e).splitlines()[0]})."
        ) from e
    features = builder.info.features
    label = features["label"] if "label" in features else None
    image = features["image"] if "image" in features else None
    if not isinstance(label, tfds.features.ClassLabel) or not isinstance(
        image, tfds.features.Image
    ):
        raise ValueError(
            f"`name`={name!r}: expected an image-classification data set with "
            "features 'image' (Image) and 'label' (ClassLabel). Received "
            f"features {sorted(features.keys())}."
        )
    if None in image.shape:
        raise ValueError(
            f"`name`={name!r}: images of varying size {image.shape} cannot be "
            "held in memory as one array. Write them into one folder per class "
            "and use name='folder'."
        )
    train = readers.read_tfds_split(tfds_name, "train", data_dir, ("label",))
    num_classes = train["num_classes"]
    checks.labels_in_range(f"label of tfds {tfds_name} train", train["label"], num_classes)
    # Labels are taken as given, not known to be clean: no true labels.
    train_set = ExampleSet(ids=train["ids"], labels=train["label"], images=train["image"])
    test_set = None
    if "test" in builder.info.splits:
        test = readers.read_tfds_split(tfds_name, "test", data_dir, ("label",))
        checks.labels_in_range(f"label of tfds {tfds_name} test", test["label"], num_classes)
        test_set = ExampleSet(ids=test["ids"], labels=test["label"], images=test["image"])
    channels = int(train["image"].shape[-1])
    return _Raw(
        train=train_set,
        test=test_set,
        num_classes=num_classes,
        image_shape=tuple(int(d) for d in train["image"].shape[1:]),
        mean=(_NEUTRAL_MEAN,) * channels,
        std=(_NEUTRAL_STD,) * channels,
        augment="cifar",
        source="given",
        class_names=train["class_names"],
    )


def _load_fashion_mnist(data_dir):
    directory = FASHION_MNIST_DIR if data_dir is None else data_dir
    files = {key: _idx_path(directory, stem) for key, stem in _FASHION_MNIST_FILES.items()}
    if all(os.path.isfile(p) for p in files.values()):
        arrays = {key: readers.read_idx(p) for key, p in files.items()}
    elif data_dir is not None and readers.tfds_prepared("fashion_mnist", data_dir):
        # The tfds copy stores examples in its own (shuffled) order, so ids
        # are positions in that order, not in the IDX files.
        train = readers.read_tfds_split("fashion_mnist", "train", data_dir, ("label",))
        test = readers.read_tfds_split("fashion_mnist", "test", data_dir, ("label",))
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
        checks.labels_in_range(f"labels in {files[f'{split}_labels']}", labels, 10)
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
    train = readers.read_tfds_split(name, "train", data_dir, fields)
    test = readers.read_tfds_split(name, "test", data_dir, ("label",))
    num_classes = train["num_classes"]
    for field in dict.fromkeys((label_field, "label")):
        checks.labels_in_range(f"{field} of tfds {name} train", train[field], num_classes)
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
    return train_set, test_set, num_classes, source, train["class_names"]


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
        height, width = checks.image_size("image_size", image_size)
        resize_size = max(height, width, round(max(height, width) * resize / crop))
    if name == "clothing1m":
        train, val, test, extra = readers.read_clothing1m(data_dir)
        num_classes, source = readers.CLOTHING1M_CLASSES, "clothing1m:noisy"
    else:
        train, val, test, extra = readers.read_webvision(data_dir)
        num_classes, source = readers.WEBVISION_CLASSES, "webvision:web"
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


def _check_covers(table, data, path):
    for example_set in data.id_space_sets():
        missing = example_set.ids[table[example_set.ids] < 0]
        if missing.size:
            raise ValueError(
                f"noisy_labels_file {path} gives no label for {missing.size} "
                f"train/val ids, e.g. {missing[:5].tolist()}."
            )
