"""mini-WebVision (`webvision`): the first 50 classes of WebVision 1.0, real noise.

Files under `data_dir` (the ELR reference layout):
`info/train_filelist_google.txt` (lines `google/q0001/xxx.jpg <label>`,
images at `data_dir/<path>`) and `info/val_filelist.txt` (lines
`xxx.jpg <label>`, images in `val_images_256/`; a leading `val_images_256/`
is also accepted). Only labels < 50 are kept; ids are positions among the
kept lines. `test` is the WebVision validation set. The optional ILSVRC12
validation list `imagenet/imagenet_val.txt` (lines
`ILSVRC2012_val_00000001.JPEG <label>`, images in `imagenet/val/`, labels
in ILSVRC12's class order, which WebVision shares) becomes
`extra_tests["ilsvrc12"]`. Images are resized to a shorter side of 256 and
cropped to 227 (`image_size` overrides the crop, keeping the ratio).

Example:

```python
data = load_dataset("webvision", "/data/webvision")
data.extra_tests["ilsvrc12"]  # when imagenet/imagenet_val.txt is present
```
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register

WEBVISION_CLASSES = 50


def read_webvision(data_dir):
    """Reads the mini-WebVision file lists under `data_dir` (layout: module docstring).

    Args:
        data_dir: the WebVision folder.

    Returns:
        `(train, val, extra_tests)`: file-backed `ExampleSet`s and a dict
        that may hold `"ilsvrc12"`.

    Example:

    ```python
    train, val, extra = read_webvision("/data/webvision")
    ```
    """

    def file_set(list_path, image_dir, clean):
        rows = _common.read_filelist(list_path, keep_below=WEBVISION_CLASSES)
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
    train_rows = _common.read_filelist(
        os.path.join(info, "train_filelist_google.txt"), keep_below=WEBVISION_CLASSES
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
    return train, val, extra


def load(data_dir, *, image_size=None):
    """Reads mini-WebVision from `data_dir` (file-backed)."""
    data_dir = _common.existing_folder("webvision", data_dir)
    image_shape, resize_size = _common.file_image_shape(image_size, 227, 256 / 227)
    train, val, extra = read_webvision(data_dir)
    return RawData(
        train=train,
        val=val,
        test=val,
        extra_tests=extra,
        num_classes=WEBVISION_CLASSES,
        image_shape=image_shape,
        label_source="webvision:web",
        resize_size=resize_size,
    )


register(
    DataSource(
        name="webvision",
        load=load,
        # ImageNet's statistics, as in the ELR reference code.
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        augment="large",
        real_noise=True,
        options=("image_size",),
    )
)
