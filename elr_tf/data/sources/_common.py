"""Readers and steps shared by several data sources.

Text file lists (`read_lines`, `read_filelist`), `.npz` archives
(`read_npz`), the noisy-labels file of `load_dataset` (`read_labels_file`),
unreadable-image handling
(`drop_unreadable`), the crop and resize sizes of file-backed images
(`file_image_shape`) and the subset and split that keep ids
(`stratified_subset`, `split_per_class`). Each reader names the file (and
line) it could not read.
"""

from __future__ import annotations

import os
import re
import zipfile

import numpy as np
from absl import logging

from elr_tf import checks
from elr_tf.data.augment import unreadable_paths

# How many file names a warning or error lists.
NAMES_SHOWN = 5

# Normalisation of images whose statistics are unknown (users' images, tfds
# sets): maps [0, 1] to [-2, 2]. One value applies to every channel.
NEUTRAL_MEAN = (0.5,)
NEUTRAL_STD = (0.25,)

# Users' own images (`folder`, `csv`): default crop size, the ratio of
# resize size to crop size (that of the large sets, 256 / 224), and the
# facts of their `DataSource` records.
OWN_IMAGE_SIZE = 64
RESIZE_RATIO = 256 / 224
OWN_IMAGES = {
    "mean": NEUTRAL_MEAN * 3,
    "std": NEUTRAL_STD * 3,
    "augment": "large",
    "options": ("image_size", "skip_unreadable"),
}


def require_data_dir(name, data_dir, what="the data folder"):
    """`data_dir` as a string; raises when it is None.

    Args:
        name: the data set name, for the message.
        data_dir: the `load_dataset` argument.
        what: what `data_dir` must be, for the message.
    """
    if data_dir is None:
        raise ValueError(f"`data_dir` ({what}) is required for {name}. Received: data_dir=None")
    return os.fspath(data_dir)


def existing_folder(name, data_dir):
    """`data_dir` as a string; raises unless it is an existing folder."""
    data_dir = require_data_dir(name, data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{name} data_dir does not exist: {data_dir}")
    return data_dir


def file_image_shape(image_size, default_size, resize_ratio):
    """Model input shape and resize size of file-backed RGB images.

    Images are resized to a shorter side of `resize_size`, then cropped to
    `(height, width)`.

    Args:
        image_size: crop size (int or `(H, W)`), or None for `default_size`.
        default_size: crop size when `image_size` is None.
        resize_ratio: resize size over crop size.

    Returns:
        `((height, width, 3), resize_size)`.

    Example:

    ```python
    file_image_shape(16, 224, 256 / 224)  # ((16, 16, 3), 18)
    ```
    """
    height, width = checks.image_size(
        "image_size", default_size if image_size is None else image_size
    )
    longer = max(height, width)
    return (height, width, 3), max(longer, round(longer * resize_ratio))


def read_lines(path):
    """Yields (1-based line number, stripped line), skipping blank lines.

    Args:
        path: a text file.

    Raises:
        FileNotFoundError: naming `path`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Required file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield lineno, line


def read_filelist(path, num_classes=None, keep_below=None):
    """Reads `<relative path> <label>` lines into a list of `(key, label)`.

    Args:
        path: the list file.
        num_classes: labels must be below it; None: any non-negative label.
        keep_below: keep only rows whose label is below it; None: all.

    Returns:
        A list of `(key, int label)` in file order.

    Example:

    ```python
    read_filelist("info/val_filelist.txt", keep_below=50)  # [("v0.jpg", 0), ...]
    ```
    """
    rows = []
    for lineno, line in read_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not is_int_text(parts[1]):
            raise ValueError(
                f"{path}:{lineno}: expected '<relative path> <integer label>'. Received: {line!r}"
            )
        label = int(parts[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise ValueError(
                f"{path}:{lineno}: label must be in [0, {num_classes}). Received: {label}"
            )
        if keep_below is None or label < keep_below:
            rows.append((parts[0], label))
    return rows


def read_npz(path):
    """All arrays of the `.npz` file `path` (as `np.savez` writes), by key.

    Args:
        path: an existing file.

    Raises:
        ValueError: naming `path`, when it is not an archive of plain
            arrays (corrupt or truncated, pickled objects, a lone `.npy`).

    Example:

    ```python
    read_npz("pets.npz")["x"].shape  # (120, 64, 64, 3)
    ```
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"it holds a single array of shape {archive.shape}")
        with archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"Cannot read {path} as an .npz file of named arrays (np.savez): {e}"
        ) from e


def read_labels_file(path, num_examples, num_classes):
    """Reads a noisy-labels file: one label per raw training id.

    Args:
        path: a `.npy` file (integer array `[num_examples]`) or a `.csv`
            file (rows `id,label`, header optional).
        num_examples: size of the raw training id space.
        num_classes: labels must be in `[0, num_classes)`.

    Returns:
        int64 `[num_examples]` labels by id; -1 where the file gives none.

    Example:

    ```python
    table = read_labels_file("noisy.csv", num_examples=60000, num_classes=10)
    ```
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"noisy_labels_file not found: {path}")
    if path.endswith(".npy"):
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot read noisy_labels_file {path}: {e}") from e
        checks.int_vector(
            f"noisy_labels_file {path} (a label per training example)", table, length=num_examples
        )
        checks.labels_in_range(f"labels in {path}", table, num_classes)
        return table.astype(np.int64)
    if not path.endswith(".csv"):
        raise ValueError(
            f"`noisy_labels_file` must end in .npy or .csv. Received: noisy_labels_file={path!r}"
        )
    table = np.full(num_examples, -1, dtype=np.int64)
    for lineno, line in read_lines(path):
        parts = [p.strip() for p in line.split(",")]
        if lineno == 1 and not all(is_int_text(p) for p in parts):
            continue  # Header.
        if len(parts) != 2 or not all(is_int_text(p) for p in parts):
            raise ValueError(
                f"{path}:{lineno}: expected 'id,label' with two integers. Received: {line!r}"
            )
        example_id, label = int(parts[0]), int(parts[1])
        if not 0 <= example_id < num_examples:
            raise ValueError(
                f"{path}:{lineno}: id must be in [0, {num_examples}). Received: {example_id}"
            )
        if not 0 <= label < num_classes:
            raise ValueError(
                f"{path}:{lineno}: label must be in [0, {num_classes}). Received: {label}"
            )
        if table[example_id] >= 0:
            raise ValueError(f"{path}:{lineno}: id {example_id} appears twice.")
        table[example_id] = label
    return table


def drop_unreadable(paths, where, skip_unreadable, what):
    """The paths that cannot be decoded; raises unless `skip_unreadable`.

    Decodes every image once, so that a broken file fails at load time,
    named, rather than in the middle of an epoch.

    Args:
        paths: image paths.
        where: how to name each path in messages (e.g. `file.csv:3`).
        skip_unreadable: warn and return the bad paths instead of raising.
        what: the data source, for messages.

    Returns:
        The sorted unreadable paths (empty when all decode).
    """
    bad = set(unreadable_paths(paths))
    if not bad:
        return []
    named = [w if w == p else f"{w} {p}" for w, p in zip(where, paths) if p in bad]
    if not skip_unreadable:
        raise ValueError(
            f"{what}: {len(named)} image files cannot be read or decoded (corrupt, "
            f"truncated or not JPEG/PNG/GIF/BMP): {named[:NAMES_SHOWN]}. Fix or "
            "remove them, or pass skip_unreadable=True to drop them."
        )
    logging.warning(
        "%s: dropped %d image files that cannot be read or decoded, e.g. %s.",
        what,
        len(named),
        named[:NAMES_SHOWN],
    )
    return sorted(bad)


def stratified_subset(labels, size, rng):
    """Positions of a `size`-example subset keeping the class proportions.

    Args:
        labels: int `[n]` labels of the set to draw from.
        size: subset size, at most `n`.
        rng: a `np.random.Generator`.

    Returns:
        Sorted int positions into `labels`.

    Example:

    ```python
    stratified_subset(np.array([0, 0, 1, 1]), 2, np.random.default_rng(0))  # one of each
    ```
    """
    n = len(labels)
    if size > n:
        raise ValueError(
            f"`num_train` must be at most the training set size {n}. Received: num_train={size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / n
    quota = np.floor(exact).astype(np.int64)
    # Largest remainders get the examples left over by flooring.
    leftover = size - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:leftover]] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
        for c, q in zip(classes, quota)
    ]
    return np.sort(np.concatenate(chosen))


def split_per_class(labels, val_fraction, rng):
    """Per-class (train, val) positions; val gets round(fraction * count).

    Args:
        labels: int `[n]` labels of the set to split.
        val_fraction: fraction of each class held out, in [0, 1).
        rng: a `np.random.Generator`.

    Returns:
        `(train_positions, val_positions)`, each sorted.

    Example:

    ```python
    split_per_class(np.zeros(10, int), 0.2, np.random.default_rng(0))  # 8 and 2 positions
    ```
    """
    train, val = [], []
    for c in np.unique(labels):
        positions = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(np.floor(val_fraction * len(positions) + 0.5))
        val.append(positions[:n_val])
        train.append(positions[n_val:])
    empty = np.zeros(0, np.int64)
    return np.sort(np.concatenate(train + [empty])), np.sort(np.concatenate(val + [empty]))


def is_int_text(text):
    """True when `text` is a decimal integer, optionally signed."""
    return re.fullmatch(r"[+-]?\d+", text) is not None
