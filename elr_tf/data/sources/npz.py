"""Your own images in one NumPy `.npz` file (`npz`).

`data_dir` is the `.npz` file. It holds either

- `x_train`, `y_train`, `x_test`, `y_test` (the `keras.datasets` layout,
  e.g. `np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)`):
  the training arrays are split 90/10 per class for validation, and the
  test arrays are the test set; or
- `x`, `y`: split 90/10 per class, the validation examples also being the
  test set.

Images `x*` are uint8 `[N, H, W, C]` (or `[N, H, W]` for grey), held in
memory and augmented like CIFAR (pad, crop, flip). Labels `y*` are
integers `[N]` (or `[N, 1]`); there are `max label + 1` classes. Ids are
positions in `x_train` (or `x`). Labels are taken as given (`true_labels`
None), and normalisation is neutral (mean 0.5, std 0.25), the statistics
being unknown. An optional string array `class_names`, one name per class
(label `k` is named `class_names[k]`), names the classes in the audit and
the pictures.

Example:

```python
np.savez("pets.npz", x=images, y=labels, class_names=["cat", "dog"])  # images uint8 [N, 64, 64, 3]
data = load_dataset("npz", "pets.npz")
data.class_names  # ("cat", "dog")
```
"""

from __future__ import annotations

import os

import numpy as np

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register

_LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))
_CLASS_NAMES = "class_names"


def load(data_dir):
    """Reads the `.npz` file `data_dir` (layouts and `class_names`: module docstring)."""
    path = _common.require_data_dir("npz", data_dir, "the .npz file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"npz file not found: data_dir={path!r}")
    loaded = _common.read_npz(path)
    layout = next((k for k in _LAYOUTS if set(loaded) >= set(k)), None)
    if layout is None:
        raise ValueError(
            f"{path} must hold the arrays {', '.join(_LAYOUTS[0])}, or x and y. "
            f"Received arrays: {sorted(loaded)}"
        )
    names = loaded.get(_CLASS_NAMES)
    x_key, y_key = layout[:2]
    train = _example_set(path, loaded[x_key], loaded[y_key], x_key, y_key)
    test = None
    if len(layout) == 4:
        test = _example_set(path, loaded["x_test"], loaded["y_test"], "x_test", "y_test")
        if test.features.shape[1:] != train.features.shape[1:]:
            raise ValueError(
                f"{path}: x_test images must have the shape of x_train's. Received "
                f"{test.features.shape[1:]} and {train.features.shape[1:]}"
            )
    labels = [train.labels] + ([] if test is None else [test.labels])
    num_classes = int(max(part.max(initial=0) for part in labels)) + 1
    return RawData(
        train=train,
        test=test,
        num_classes=num_classes,
        image_shape=train.features.shape[1:],
        class_names=None if names is None else _class_names(path, names, num_classes),
    )


def _class_names(path, names, num_classes):
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise ValueError(
            f"{path}: `{_CLASS_NAMES}` must be a 1-D array of strings, one per class. "
            f"Received: dtype={names.dtype}, shape={names.shape}"
        )
    try:
        names = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names.tolist())
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: `{_CLASS_NAMES}` must be UTF-8 text when stored as bytes. Received "
            f"{error.object!r}, not UTF-8 at byte {error.start}"
        ) from None
    if len(names) != num_classes:
        raise ValueError(
            f"{path}: `{_CLASS_NAMES}` must name the {num_classes} classes of the labels "
            f"(0 to the largest label, {num_classes - 1}). Received {len(names)} names: "
            f"{list(names[:10])}"
        )
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(
            f"{path}: `{_CLASS_NAMES}` must name each class differently. Received "
            f"repeated names: {repeated[:10]}"
        )
    return names


def _example_set(path, images, labels, x_key, y_key):
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"{path}: `{x_key}` must be uint8 images [N, H, W, C] or [N, H, W]. "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if (
        labels.ndim != 1
        or not np.issubdtype(labels.dtype, np.integer)
        or len(labels) != len(images)
    ):
        raise ValueError(
            f"{path}: `{y_key}` must hold one integer label per image of `{x_key}` "
            f"({len(images)}). Received: dtype={labels.dtype}, shape={labels.shape}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: `{y_key}` must be non-negative. Received: min={labels.min()}")
    return ExampleSet(ids=np.arange(len(labels)), labels=labels, features=images)


register(
    DataSource(
        name="npz",
        load=load,
        mean=_common.NEUTRAL_MEAN,
        std=_common.NEUTRAL_STD,
        augment="cifar",
    )
)
