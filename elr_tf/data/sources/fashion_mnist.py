"""Fashion-MNIST (`fashion_mnist`): the four IDX files, or a prepared tfds copy.

`data_dir` holds `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` (or the same
names without `.gz`); the default is `FASHION_MNIST_DIR`, where the Debian
package `dataset-fashion-mnist` puts them. A tfds `data_dir` where
`fashion_mnist` is prepared is also read; its ids are positions in tfds's
stored order. Labels are clean; 60,000 training and 10,000 test images
`28 x 28 x 1`, split 90/10 per class for validation.

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000)
get("fashion_mnist").asymmetric_map[0]  # 6: T-shirt/top -> Shirt
```
"""

from __future__ import annotations

import gzip
import math
import os

import numpy as np

from elr_tf import checks
from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, register
from elr_tf.data.sources import tfds as tfds_source

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

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

# Each class to the class it is most often mistaken for; Trouser, Dress and
# Bag are left clean.
FASHION_MNIST_ASYMMETRIC_MAP = {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7, 5: 7}

_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX element types (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a NumPy array.

    Args:
        path: file path; gzip compression is detected from the content.

    Returns:
        The array, with the dims and element type of the IDX header.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a valid IDX file (message names it).

    Example:

    ```python
    read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape  # (10000,)
    ```
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


def load(data_dir):
    """Reads Fashion-MNIST from `data_dir` (None: `FASHION_MNIST_DIR`)."""
    directory = FASHION_MNIST_DIR if data_dir is None else data_dir
    files = {key: _idx_path(directory, stem) for key, stem in _FILES.items()}
    if all(os.path.isfile(p) for p in files.values()):
        arrays = {key: read_idx(p) for key, p in files.items()}
    elif data_dir is not None and tfds_source.tfds_prepared("fashion_mnist", data_dir):
        arrays = {}
        for split in ("train", "test"):
            part = tfds_source.read_tfds_split("fashion_mnist", split, data_dir, ("label",))
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = part["image"], part["label"]
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
                ids=np.arange(len(labels)), labels=labels, true_labels=labels, features=images
            )
        )
    return RawData(
        train=sets[0],
        test=sets[1],
        num_classes=10,
        image_shape=sets[0].features.shape[1:],
        label_source="clean",
        class_names=FASHION_MNIST_CLASS_NAMES,
    )


def _idx_path(directory, stem):
    gz = os.path.join(directory, stem + ".gz")
    plain = os.path.join(directory, stem)
    return plain if os.path.isfile(plain) and not os.path.isfile(gz) else gz


register(
    DataSource(
        name="fashion_mnist",
        load=load,
        # Computed on the 60,000 training images.
        mean=(0.2860,),
        std=(0.3530,),
        augment="fashion_mnist",
        asymmetric_map=FASHION_MNIST_ASYMMETRIC_MAP,
    )
)
