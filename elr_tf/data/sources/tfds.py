"""Prepared tensorflow-datasets sets: the CIFAR family and any `tfds:<name>`.

Nothing is downloaded: `data_dir` is a tfds data_dir (None: tfds's default)
where the set is prepared (`tfds build <name> --data_dir=...`). Images are
held in memory; split "train" is split 90/10 per class for validation.

- `cifar10`, `cifar100`: clean labels; ids are the positions in the
  original CIFAR binaries (from tfds's "id" feature).
- `cifar10_n`, `cifar100_n`: the CIFAR-N human labels (real noise), chosen
  by `cifar_n_label` (`CIFAR_N_LABEL_SETS`; default `worst`, `noisy100`);
  the clean CIFAR label is kept as true label. `cifar10_n` also reads a
  folder holding `cifar10.npz` (the keras.datasets arrays) and
  `CIFAR-10_human.npz` (the release's label sets) instead of a tfds
  data_dir: `_cifar_n_files`.
- `tfds:<name>`: any image-classification builder with features "image"
  (one fixed size) and "label" (`ClassLabel`). Labels are taken as given
  (`true_labels` None); `test` is split "test" when there is one, else the
  validation examples; normalisation is neutral (mean 0.5, std 0.25).

Example:

```python
data = load_dataset("cifar10_n", "~/tensorflow_datasets", cifar_n_label="aggre")
data = load_dataset("tfds:svhn_cropped", "~/tensorflow_datasets")
```

References:
    - Wei et al., Learning with Noisy Labels Revisited: A Study Using
      Real-World Human Annotations, ICLR 2022 (CIFAR-10N / CIFAR-100N).
"""

from __future__ import annotations

import functools
import re

import numpy as np
from absl import logging

from elr_tf import checks
from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import (
    DataSource,
    RawData,
    _cifar_n_files,
    _common,
    register,
    register_prefix,
)

# `load_dataset("tfds:<name>")` reads any prepared tfds image data set.
TFDS_PREFIX = "tfds:"

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

# CIFAR-10 classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog,
# 6 frog, 7 horse, 8 ship, 9 truck. Truck -> automobile, bird -> airplane,
# cat <-> dog, deer -> horse: the pairs of the ELR reference code.
CIFAR10_ASYMMETRIC_MAP = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}

# CIFAR-100: the 100 classes form 20 superclasses of 5 consecutive classes;
# each goes to the next class of its superclass, circularly (4 -> 0).
CIFAR100_ASYMMETRIC_MAP = {c: (c // 5) * 5 + (c + 1) % 5 for c in range(100)}

# Per-channel mean and std on the [0, 1] scale, as in the ELR reference code.
_CIFAR10_STATS = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2023, 0.1994, 0.2010)}
_CIFAR100_STATS = {"mean": (0.5071, 0.4867, 0.4408), "std": (0.2675, 0.2565, 0.2761)}


def tfds_prepared(name, data_dir):
    """True when tfds builder `name` is prepared in `data_dir`."""
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir).is_prepared()


def read_tfds_split(name, split, data_dir, fields):
    """Reads a prepared tfds split into NumPy arrays, in raw order.

    Uses `builder.as_dataset`, which never downloads. Examples are sorted
    by the index in their "id" feature ("train_00042" -> 42) when every id
    parses to a position; otherwise (e.g. mocked data) they keep the stored
    read order.

    Args:
        name: tfds builder name.
        split: split name, e.g. `"train"`.
        data_dir: tfds data_dir, or None for tfds's default.
        fields: integer features to read besides "image".

    Returns:
        A dict: `"image"`, each of `fields` (int64), `"ids"` (positions),
        `"num_classes"` and `"class_names"` of the "label" feature.

    Raises:
        FileNotFoundError: the set is not prepared, with instructions.

    Example:

    ```python
    read_tfds_split("cifar10", "test", None, ("label",))["image"].shape  # (10000, 32, 32, 3)
    ```
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
        files = (
            f" Or pass --data_dir=<a folder holding {_cifar_n_files.IMAGES_FILE} and "
            f"{_cifar_n_files.HUMAN_FILE}>."
            if name == "cifar10_n"
            else ""
        )
        raise FileNotFoundError(
            f"Data set {name!r} is not prepared in {where} ({e}). Nothing is "
            "downloaded here. On a machine with internet run "
            f"`tfds build {name} --data_dir=/some/dir{manual}` (it needs apache-beam), copy "
            f"/some/dir/{name} to this machine and pass "
            f"--data_dir=<the directory that contains it>.{files}"
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
    if has_id:
        parsed = parse_tfds_ids(out["id"])
        if parsed is not None:
            order = np.argsort(parsed, kind="stable")
        else:
            logging.info(
                "%s/%s: 'id' feature does not hold positions; using read order.", name, split
            )
    result = {k: out[k][order] for k in ("image",) + tuple(fields)}
    for k in fields:
        result[k] = result[k].astype(np.int64)
    result["ids"] = np.arange(n)
    result["num_classes"] = int(features["label"].num_classes)
    # ClassLabel names; "0".."C-1" when the builder gives none.
    result["class_names"] = tuple(str(n) for n in features["label"].names)
    return result


def parse_tfds_ids(id_strings):
    """Positions from tfds "id" strings (`b"train_00042"` -> 42), or None.

    None unless every string parses and the positions are exactly `0..n-1`.

    Args:
        id_strings: byte strings of the "id" feature.

    Example:

    ```python
    parse_tfds_ids([b"train_00001", b"train_00000"])  # array([1, 0])
    ```
    """
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


def load_cifar(name, data_dir, cifar_n_label=None):
    """Reads `cifar10`, `cifar100`, `cifar10_n` or `cifar100_n` from tfds.

    `cifar10_n` is read from a folder's `cifar10.npz` and
    `CIFAR-10_human.npz` instead when `data_dir` holds them
    (`_cifar_n_files`).
    """
    label_field, label_source = "label", "clean"
    if name in CIFAR_N_LABEL_SETS:
        choices = CIFAR_N_LABEL_SETS[name]
        if cifar_n_label is None:
            cifar_n_label = _CIFAR_N_DEFAULT[name]
        if cifar_n_label not in choices:
            raise ValueError(
                f"`cifar_n_label` for {name} must be one of {tuple(choices)}. "
                f"Received: cifar_n_label={cifar_n_label!r}"
            )
        label_field, label_source = choices[cifar_n_label], f"{name}:{cifar_n_label}"
        if name == "cifar10_n" and _cifar_n_files.is_files_dir(data_dir):
            return _cifar_n_files.load(data_dir, cifar_n_label, choices)
    fields = tuple(dict.fromkeys(("label", label_field)))
    train = read_tfds_split(name, "train", data_dir, fields)
    test = read_tfds_split(name, "test", data_dir, ("label",))
    num_classes = train["num_classes"]
    for field in fields:
        checks.labels_in_range(f"{field} of tfds {name} train", train[field], num_classes)
    return RawData(
        train=ExampleSet(
            ids=train["ids"],
            labels=train[label_field],
            true_labels=train["label"],
            features=train["image"],
        ),
        test=ExampleSet(
            ids=test["ids"], labels=test["label"], true_labels=test["label"], features=test["image"]
        ),
        num_classes=num_classes,
        image_shape=train["image"].shape[1:],
        label_source=label_source,
        class_names=train["class_names"],
    )


def load_named(tfds_name, data_dir):
    """Reads any prepared tfds image-classification set `tfds_name`."""
    import tensorflow_datasets as tfds

    name = TFDS_PREFIX + tfds_name
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
    sets = {}
    for split in ("train", "test"):
        if split == "test" and "test" not in builder.info.splits:
            break
        part = read_tfds_split(tfds_name, split, data_dir, ("label",))
        checks.labels_in_range(
            f"label of tfds {tfds_name} {split}", part["label"], part["num_classes"]
        )
        sets[split] = ExampleSet(ids=part["ids"], labels=part["label"], features=part["image"])
        if split == "train":
            num_classes, class_names = part["num_classes"], part["class_names"]
    return RawData(
        train=sets["train"],
        test=sets.get("test"),
        num_classes=num_classes,
        image_shape=sets["train"].features.shape[1:],
        class_names=class_names,
    )


@functools.cache
def _named_record(name):
    return DataSource(
        name=name,
        load=functools.partial(load_named, name[len(TFDS_PREFIX) :].strip()),
        mean=_common.NEUTRAL_MEAN,
        std=_common.NEUTRAL_STD,
        augment="cifar",
    )


# CIFAR with synthetic noise (and its asymmetric map), and CIFAR-N with
# its human labels (real noise).
_HUMAN_LABELS = {"real_noise": True, "options": ("cifar_n_label",)}
for _name, _stats, _facts in (
    ("cifar10", _CIFAR10_STATS, {"asymmetric_map": CIFAR10_ASYMMETRIC_MAP}),
    ("cifar100", _CIFAR100_STATS, {"asymmetric_map": CIFAR100_ASYMMETRIC_MAP}),
    ("cifar10_n", _CIFAR10_STATS, _HUMAN_LABELS),
    ("cifar100_n", _CIFAR100_STATS, _HUMAN_LABELS),
):
    register(
        DataSource(
            name=_name,
            load=functools.partial(load_cifar, _name),
            augment="cifar",
            **_stats,
            **_facts,
        )
    )
register_prefix(TFDS_PREFIX, _named_record)
