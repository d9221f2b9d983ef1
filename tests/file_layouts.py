"""Tiny on-disk data sets: IDX (Fashion-MNIST), Clothing1M, mini-WebVision, CIFAR-10N."""

import gzip
import os

import numpy as np
import tensorflow as tf


def write_image(path, height, width, value, fmt):
    image = tf.fill([height, width, 3], tf.constant(value, tf.uint8))
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, encode(image))


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def write_clothing1m(root):
    """14 classes; 28 noisy train, 7 val, 7 test images of mixed sizes."""
    keys = {
        split: [f"images/{i % 10}/{split}_{i:03d}.{'png' if i % 3 else 'jpg'}" for i in range(n)]
        for split, n in (("train", 28), ("val", 7), ("test", 7))
    }
    for split_keys in keys.values():
        for i, key in enumerate(split_keys):
            height, width = (20, 30) if i % 2 else (30, 20)
            fmt = key.rsplit(".", 1)[1]
            write_image(os.path.join(root, key), height, width, 10 * (i % 14), fmt)
    noisy = [f"{k} {i % 14}" for i, k in enumerate(keys["train"])]
    # Clean labels for val, test and the first 5 train keys.
    clean = [f"{k} {(i + 1) % 14}" for i, k in enumerate(keys["train"][:5])]
    clean += [f"{k} {i % 14}" for i, k in enumerate(keys["val"] + keys["test"])]
    write_lines(os.path.join(root, "noisy_label_kv.txt"), noisy)
    write_lines(os.path.join(root, "clean_label_kv.txt"), clean)
    write_lines(os.path.join(root, "noisy_train_key_list.txt"), keys["train"])
    write_lines(os.path.join(root, "clean_val_key_list.txt"), keys["val"])
    write_lines(os.path.join(root, "clean_test_key_list.txt"), keys["test"])
    return keys


def write_webvision(root):
    train, val, imagenet = [], [], []
    for i, label in enumerate([0, 1, 2, 60, 3, 49, 55, 4, 0, 1]):
        key = f"google/q{label:04d}/{i:04d}.jpg"
        write_image(os.path.join(root, key), 24, 32, 5 * i, "jpg")
        train.append(f"{key} {label}")
    for i, label in enumerate([0, 1, 70, 2]):
        write_image(os.path.join(root, "val_images_256", f"v{i}.jpg"), 32, 24, 9, "jpg")
        # Bare names as in the WebVision release; a leading folder also works.
        val.append(f"{'val_images_256/' if i == 1 else ''}v{i}.jpg {label}")
    for i, label in enumerate([3, 99, 4]):
        name = f"ILSVRC2012_val_{i:08d}.JPEG"
        write_image(os.path.join(root, "imagenet", "val", name), 30, 30, 7, "png")
        imagenet.append(f"{name} {label}")
    write_lines(os.path.join(root, "info", "train_filelist_google.txt"), train)
    write_lines(os.path.join(root, "info", "val_filelist.txt"), val)
    write_lines(os.path.join(root, "imagenet", "imagenet_val.txt"), imagenet)


_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}


def write_idx(path, array, compress=True):
    array = np.asarray(array)
    dtype = np.dtype(np.uint8) if array.dtype == np.uint8 else np.dtype(">i4")
    header = bytes([0, 0, _IDX_CODES[dtype], array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(dtype).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def write_tiny_fashion(directory, n_train=60, n_test=20, size=28):
    """Images of example k are filled with k + 1; labels are k % 10."""
    os.makedirs(directory, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        values = np.arange(1, n + 1, dtype=np.uint8)
        images = np.broadcast_to(values[:, None, None], (n, size, size))
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return str(directory)


# How many labels each CIFAR-10N set of `cifar10n_arrays` changes.
CIFAR10N_FLIPS = {
    "aggre_label": 2,
    "random_label1": 4,
    "random_label2": 5,
    "random_label3": 6,
    "worse_label": 10,
}


def cifar10n_arrays(n_train=40, n_test=10):
    """The arrays of a tiny CIFAR-10N folder: `(cifar10.npz's, CIFAR-10_human.npz's)`.

    Training image k is filled with k; `y_train` is k % 10 (`y_test` likewise).
    Each label set of `CIFAR10N_FLIPS` gives the next class to its first
    `CIFAR10N_FLIPS[key]` examples; `clean_label` is `y_train`.
    """
    y_train = np.arange(n_train) % 10
    images = {
        "x_train": np.broadcast_to(
            np.arange(n_train, dtype=np.uint8)[:, None, None, None], (n_train, 32, 32, 3)
        ).copy(),
        "y_train": y_train,
        "x_test": np.full((n_test, 32, 32, 3), 200, np.uint8),
        "y_test": np.arange(n_test) % 10,
    }
    human = {"clean_label": y_train.copy()}
    for key, flips in CIFAR10N_FLIPS.items():
        human[key] = y_train.copy()
        human[key][:flips] = (y_train[:flips] + 1) % 10
    return images, human


def write_cifar10n(directory, images=None, human=None):
    """Writes `cifar10.npz` and `CIFAR-10_human.npz` (None: leaves a file out)."""
    os.makedirs(directory, exist_ok=True)
    for name, arrays in (("cifar10.npz", images), ("CIFAR-10_human.npz", human)):
        if arrays is not None:
            np.savez(os.path.join(directory, name), **arrays)
    return str(directory)
