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
being unknown.

Example:

```python
np.savez("pets.npz", x=images, y=labels)  # images uint8 [N, 64, 64, 3]
data = load_dataset("npz", "pets.npz")
```
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register

_LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))


def load(data_dir):
    """Reads the `.npz` file `data_dir` (layouts: module docstring)."""
    path = _common.require_data_dir("npz", data_dir, "the .npz file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"npz file not found: data_dir={path!r}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            keys = set(arrays.files)
            layout = next((k for k in _LAYOUTS if keys >= set(k)), None)
            if layout is None:
                raise ValueError(
                    f"{path} must hold the arrays {', '.join(_LAYOUTS[0])}, or x and y. "
                    f"Received arrays: {sorted(keys)}"
                )
            loaded = {key: arrays[key] for key in layout}
    except (OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"Cannot read npz file {path}: {e}") from e
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
    return RawData(
        train=train,
        test=test,
        num_classes=int(max(part.max(initial=0) for part in labels)) + 1,
        image_shape=train.features.shape[1:],
    )


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
