"""Clothing1M (`clothing1m`): 14 classes of web images with real noisy labels.

Files under `data_dir`, in `data_dir` or `data_dir/annotations/`:
`noisy_label_kv.txt` and `clean_label_kv.txt` (lines
`images/0/xx/yyy.jpg <label>`), `noisy_train_key_list.txt`,
`clean_val_key_list.txt` and `clean_test_key_list.txt` (one key per line).
Images are at `data_dir/<key>`, or at `data_dir/<key without "images/">`
when `data_dir/images/` does not exist. Train ids are line positions in
`noisy_train_key_list.txt`; `true_labels` holds the clean label where
`clean_label_kv.txt` has one and -1 elsewhere (None when it has none). The
clean validation and test sets come with the data set, so nothing is split
off. Images are resized to a shorter side of 256 and cropped to 224
(`image_size` overrides the crop, keeping the ratio).

Example:

```python
data = load_dataset("clothing1m", "/data/clothing1m")
data.num_classes, data.image_shape  # 14, (224, 224, 3)
```
"""

from __future__ import annotations

import os

import numpy as np

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register

CLOTHING1M_CLASSES = 14


def read_clothing1m(data_dir):
    """Reads the Clothing1M file lists under `data_dir` (layout: module docstring).

    Args:
        data_dir: the Clothing1M folder.

    Returns:
        `(train, val, test)`: file-backed `ExampleSet`s.

    Example:

    ```python
    train, val, test = read_clothing1m("/data/clothing1m")
    ```
    """

    def text_file(filename):
        # The official release keeps the lists in annotations/.
        direct = os.path.join(data_dir, filename)
        nested = os.path.join(data_dir, "annotations", filename)
        return nested if not os.path.isfile(direct) and os.path.isfile(nested) else direct

    noisy_kv = dict(_common.read_filelist(text_file("noisy_label_kv.txt"), CLOTHING1M_CLASSES))
    clean_kv = dict(_common.read_filelist(text_file("clean_label_kv.txt"), CLOTHING1M_CLASSES))

    def labelled(list_name, kv, kv_name):
        keys = list(_common.read_lines(text_file(list_name)))
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
    # Keys read "images/0/xx/yyy.jpg"; some copies hold the class folders
    # directly in data_dir.
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
                ids=np.arange(len(keys)), labels=labels, true_labels=labels, paths=image_paths(keys)
            )
        )
    return train, sets[0], sets[1]


def load(data_dir, *, image_size=None):
    """Reads Clothing1M from `data_dir` (file-backed)."""
    data_dir = _common.existing_folder("clothing1m", data_dir)
    image_shape, resize_size = _common.file_image_shape(image_size, 224, 256 / 224)
    train, val, test = read_clothing1m(data_dir)
    return RawData(
        train=train,
        val=val,
        test=test,
        num_classes=CLOTHING1M_CLASSES,
        image_shape=image_shape,
        label_source="clothing1m:noisy",
        resize_size=resize_size,
    )


register(
    DataSource(
        name="clothing1m",
        load=load,
        # As in the ELR reference code.
        mean=(0.6959, 0.6537, 0.6371),
        std=(0.3113, 0.3192, 0.3214),
        augment="large",
        real_noise=True,
        options=("image_size",),
    )
)
