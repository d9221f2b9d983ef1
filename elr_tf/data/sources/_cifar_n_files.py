"""CIFAR-10N from the two files a Keras user has: `cifar10_n` outside tfds.

`load_cifar` (`tfds.py`) reads a folder `data_dir` here, instead of a tfds
data_dir, when it holds one of these files (`is_files_dir`):

- `cifar10.npz`: the `keras.datasets.cifar10` layout, i.e. `x_train` uint8
  `[N, 32, 32, 3]`, `y_train` int `[N]` (or `[N, 1]`), `x_test` uint8
  `[M, 32, 32, 3]`, `y_test`. `y_train` are CIFAR-10's own labels: the
  truth (`true_labels`).
- `CIFAR-10_human.npz`: the CIFAR-10N release's label sets (the dict of
  its `CIFAR-10_human.pt`, saved with `np.savez`), int `[N]` each,
  indexed like `x_train`, under the release's keys (`clean_label`,
  `aggre_label`, `worse_label`, `random_label1`, `random_label2`,
  `random_label3`; any of them may be missing). When `clean_label` is
  there it must equal `y_train`.

The module registers nothing (its name starts with `_`): the record
`cifar10_n` is one `DataSource`, whose loader chooses between the tfds
directory and these files.

Example:

```python
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
np.savez("cifar10n/cifar10.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
# and cifar10n/CIFAR-10_human.npz beside it (the CIFAR-10N label sets)
data = load_dataset("cifar10_n", "cifar10n", cifar_n_label="aggre")
data.class_names[3], data.label_source  # "cat", "cifar10_n:aggre"
```

References:
    - Wei et al., Learning with Noisy Labels Revisited: A Study Using
      Real-World Human Annotations, ICLR 2022 (CIFAR-10N).
"""

from __future__ import annotations

import os

import numpy as np

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import RawData, _common

IMAGES_FILE = "cifar10.npz"
HUMAN_FILE = "CIFAR-10_human.npz"
# The release's key of CIFAR-10's own labels in `HUMAN_FILE`.
CLEAN_KEY = "clean_label"

# The CIFAR-10 classes, by label (those of `keras.datasets.cifar10` and tfds).
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_IMAGE_SHAPE = (32, 32, 3)


def is_files_dir(data_dir):
    """True when `data_dir` is a folder holding `IMAGES_FILE` or `HUMAN_FILE`.

    Either file alone counts, so that a folder missing the other one is
    refused with both files named rather than read as a tfds data_dir.
    """
    if data_dir is None:
        return False
    data_dir = os.path.expanduser(os.fspath(data_dir))
    return any(os.path.isfile(os.path.join(data_dir, f)) for f in (IMAGES_FILE, HUMAN_FILE))


def load(data_dir, cifar_n_label, label_sets):
    """Reads CIFAR-10N from `data_dir`'s two `.npz` files (module docstring).

    Args:
        data_dir: the folder holding `cifar10.npz` and `CIFAR-10_human.npz`.
        cifar_n_label: the chosen label set (e.g. `"worst"`), one of
            `label_sets`.
        label_sets: dict of `cifar_n_label` values to their keys in
            `CIFAR-10_human.npz` (e.g. `{"worst": "worse_label", ...}`).

    Returns:
        A `RawData`: train labels from the chosen set, `true_labels` and the
        test set from `cifar10.npz`, ids the positions, CIFAR-10's class
        names.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file cannot be read, lacks a key, or holds arrays of
            the wrong type, shape or range; or `clean_label` differs from
            `y_train`.
    """
    data_dir = os.path.expanduser(os.fspath(data_dir))
    paths = {f: os.path.join(data_dir, f) for f in (IMAGES_FILE, HUMAN_FILE)}
    for name, path in paths.items():
        if not os.path.isfile(path):
            other = HUMAN_FILE if name == IMAGES_FILE else IMAGES_FILE
            raise FileNotFoundError(
                f"cifar10_n: {path} not found. A CIFAR-10N folder (data_dir={data_dir}) "
                f"holds both {IMAGES_FILE} (the keras.datasets.cifar10 arrays x_train, "
                f"y_train, x_test, y_test) and {HUMAN_FILE} (the CIFAR-10N label sets); "
                f"it has {other} only."
            )
    path = paths[IMAGES_FILE]
    arrays = _read(
        path, ("x_train", "y_train", "x_test", "y_test"), "the keras.datasets.cifar10 layout"
    )
    x_train = _images(path, "x_train", arrays["x_train"])
    x_test = _images(path, "x_test", arrays["x_test"])
    y_train = _labels(path, "y_train", arrays["y_train"], len(x_train), "x_train")
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test), "x_test")
    human_path = paths[HUMAN_FILE]
    human = _common.read_npz(human_path)
    label_key = label_sets[cifar_n_label]
    if label_key not in human:
        present = [choice for choice, key in label_sets.items() if key in human]
        raise ValueError(
            f"{human_path} has no `{label_key}`, the label set of "
            f"cifar_n_label={cifar_n_label!r}. The file holds {sorted(human)}, so "
            f"cifar_n_label can be one of: {', '.join(present) or 'none'}."
        )
    noisy = _labels(human_path, label_key, human[label_key], len(x_train), f"x_train of {path}")
    if CLEAN_KEY in human:
        clean = _labels(human_path, CLEAN_KEY, human[CLEAN_KEY], len(x_train), f"x_train of {path}")
        differ = np.flatnonzero(clean != y_train)
        if differ.size:
            raise ValueError(
                f"{human_path}: `{CLEAN_KEY}` must equal `y_train` of {path} (CIFAR-10's own "
                f"labels); the files are out of step. Received {differ.size} of {len(clean)} "
                f"labels that differ, at positions {differ[:5].tolist()}."
            )
    return RawData(
        train=ExampleSet(
            ids=np.arange(len(x_train)), labels=noisy, true_labels=y_train, features=x_train
        ),
        test=ExampleSet(
            ids=np.arange(len(x_test)), labels=y_test, true_labels=y_test, features=x_test
        ),
        num_classes=len(CLASS_NAMES),
        image_shape=_IMAGE_SHAPE,
        label_source=f"cifar10_n:{cifar_n_label}",
        class_names=CLASS_NAMES,
    )


def _read(path, keys, layout):
    """The arrays `keys` of the `.npz` file `path`; every one must be there."""
    arrays = _common.read_npz(path)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(
            f"{path} must hold the arrays {', '.join(keys)} ({layout}). Missing: "
            f"{', '.join(missing)}; the file holds {sorted(arrays)}."
        )
    return arrays


def _images(path, key, images):
    if images.dtype != np.uint8 or images.shape[1:] != _IMAGE_SHAPE or not len(images):
        raise ValueError(
            f"{path}: `{key}` must be uint8 images [N, 32, 32, 3] with N >= 1. "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    return images


def _labels(path, key, labels, n, images):
    """`labels` as int64 `[n]` in `[0, 10)`; `[n, 1]` is taken as `[n]`."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != n:
        raise ValueError(
            f"{path}: `{key}` must hold one integer label per image of {images} "
            f"(shape [{n}]). Received: dtype={labels.dtype}, shape={labels.shape}"
        )
    bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))]
    if bad.size:
        raise ValueError(
            f"{path}: `{key}` must be CIFAR-10 classes in [0, {len(CLASS_NAMES)}). "
            f"Received {bad.size} labels out of range, e.g. {bad[:5].tolist()}"
        )
    return labels.astype(np.int64)
