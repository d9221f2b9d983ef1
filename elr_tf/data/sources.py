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
from elr_tf.data.readers import CIFAR_N_LABEL_SETS

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

# Large data sets: (default crop size, default resize size). An `image_size`
# override keeps the resize/crop ratio.
_LARGE_SIZES = {"clothing1m": (224, 256), "webvision": (227, 256)}
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
    if num_train is not None:
        num_train = checks.positive_int("num_train", num_train)
    checks.number_in("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    split_seed = checks.non_negative_int("split_seed", split_seed)
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
            positions = stratified_subset(data.train.labels, num_train, rng)
            data = dataclasses.replace(data, train=data.train.subset(positions))
    else:
        if name == "fashion_mnist":
            raw_train, test, num_classes, source = _load_fashion_mnist(data_dir)
        else:
            raw_train, test, num_classes, source = _load_tfds_cifar(name, data_dir, cifar_n_label)
        num_examples = len(raw_train)
        pool = raw_train
        if num_train is not None:
            pool = raw_train.subset(stratified_subset(raw_train.labels, num_train, rng))
        train_pos, val_pos = split_per_class(pool.labels, val_fraction, rng)
        mean, std = _NORMALIZATION[name]
        data = NoisyData(
            name=name,
            train=pool.subset(train_pos),
            val=pool.subset(val_pos),
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
    return train_set, test_set, num_classes, source


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
