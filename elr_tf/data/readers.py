"""Readers of the file formats the data sets come in.

IDX files (Fashion-MNIST), prepared tensorflow-datasets splits, the
Clothing1M and mini-WebVision file lists, users' own image folders and
`path,label` CSV files, and label files (`.npy` or `id,label` `.csv`). Each
names the file (and line) it could not read.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import re

import numpy as np
from absl import logging

from elr_tf.checks import labels_in_range
from elr_tf.data.example_set import ExampleSet

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
CLOTHING1M_CLASSES = 14
WEBVISION_CLASSES = 50

# File name endings of the formats `tf.io.decode_image` reads (compared in
# lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


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


def tfds_prepared(name, data_dir):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir).is_prepared()


def read_tfds_split(name, split, data_dir, fields):
    """Reads a prepared tfds split into NumPy arrays, in raw order.

    Uses `builder.as_dataset`, which never downloads. Examples are returned
    sorted by the index in their "id" feature ("train_00042" -> 42), which
    is the position in the original CIFAR binaries, because tfds stores
    examples in a shuffled order. When ids are absent or do not parse (e.g.
    mocked data), the stored read order is used.
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
        raise FileNotFoundError(
            f"Data set {name!r} is not prepared in {where} ({e}). Nothing is "
            "downloaded here. On a machine with internet run "
            f"`tfds build {name} --data_dir=/some/dir{manual}`, copy "
            f"/some/dir/{name} to this machine and pass "
            "--data_dir=<the directory that contains it>."
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
    ids = np.arange(n)
    if has_id:
        parsed = parse_tfds_ids(out["id"])
        if parsed is not None:
            order = np.argsort(parsed, kind="stable")
        else:
            logging.info(
                "%s/%s: 'id' feature does not hold positions; using read order.",
                name,
                split,
            )
    result = {k: out[k][order] for k in ("image",) + tuple(fields)}
    for k in fields:
        result[k] = result[k].astype(np.int64)
    result["ids"] = ids
    result["num_classes"] = int(features["label"].num_classes)
    # ClassLabel names; "0".."C-1" when the builder gives none.
    result["class_names"] = tuple(str(n) for n in features["label"].names)
    return result


def parse_tfds_ids(id_strings):
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


def read_clothing1m(data_dir):
    """Reads the Clothing1M file lists under `data_dir` (layout: `load_dataset`).

    Returns:
        `(train, val, test, extra_tests)`: file-backed `ExampleSet`s and `{}`.
    """

    def text_file(filename):
        # The official release keeps the lists in annotations/.
        direct = os.path.join(data_dir, filename)
        nested = os.path.join(data_dir, "annotations", filename)
        return nested if not os.path.isfile(direct) and os.path.isfile(nested) else direct

    noisy_kv = dict(read_filelist(text_file("noisy_label_kv.txt"), CLOTHING1M_CLASSES))
    clean_kv = dict(read_filelist(text_file("clean_label_kv.txt"), CLOTHING1M_CLASSES))

    def labelled(list_name, kv, kv_name):
        keys = _read_key_list(text_file(list_name))
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
    # Keys read "images/0/xx/yyy.jpg". Some copies (the layout the ELR and
    # DivideMix loaders read) hold the class folders directly in data_dir.
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
                ids=np.arange(len(keys)),
                labels=labels,
                true_labels=labels,
                paths=image_paths(keys),
            )
        )
    return train, sets[0], sets[1], {}


def read_webvision(data_dir):
    """Reads the mini-WebVision file lists under `data_dir` (layout: `load_dataset`).

    Returns:
        `(train, val, test, extra_tests)`: file-backed `ExampleSet`s; `test`
        is the WebVision validation set, `extra_tests` may hold `"ilsvrc12"`.
    """

    def file_set(list_path, image_dir, clean):
        rows = read_filelist(list_path, keep_below=WEBVISION_CLASSES)
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
    train_rows = read_filelist(
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
    return train, val, val, extra


def is_image_file_name(name):
    """True when `name` ends in one of `IMAGE_EXTENSIONS`, in any case."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_folder(data_dir):
    """Lists the image files of a folder holding one sub-folder per class.

    This is the layout of `keras.utils.image_dataset_from_directory`:
    `data_dir/<class name>/.../<image>`. Class names are the sorted names of
    the sub-folders (hidden ones, starting with ".", are skipped); the image
    files of a class are found recursively and sorted by path, so the order
    (and with it every example's id) does not depend on the file system.
    Files that are not images by their extension are not data and are left
    out, with a warning naming a few of them.

    Args:
        data_dir: the folder.

    Returns:
        A dict `{class name: [image paths]}` in class order; a class's list
        is empty when its folder holds no image file.

    Raises:
        FileNotFoundError: `data_dir` is not a directory.
        ValueError: `data_dir` has no class sub-folders.
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"Image folder not found: data_dir={data_dir!r} is not a directory."
        )
    entries = sorted(e for e in os.listdir(data_dir) if not e.startswith("."))
    class_names = [e for e in entries if os.path.isdir(os.path.join(data_dir, e))]
    stray = [e for e in entries if e not in class_names and is_image_file_name(e)]
    if not class_names:
        raise ValueError(
            f"Image folder {data_dir} has no class sub-folders. Expected one "
            f"sub-folder per class, e.g. {os.path.join(data_dir, 'cat', '0001.jpg')}; "
            f"received {len(entries)} entries, none a folder."
        )
    if stray:
        logging.warning(
            "Image folder %s: %d image files directly in it are not in a class "
            "sub-folder and are not used, e.g. %s.",
            data_dir,
            len(stray),
            stray[:5],
        )
    classes, others = {}, []
    for name in class_names:
        files = []
        for root, dirs, names in os.walk(os.path.join(data_dir, name), followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file_name in names:
                if file_name.startswith("."):
                    continue
                path = os.path.join(root, file_name)
                (files if is_image_file_name(file_name) else others).append(path)
        classes[name] = sorted(files)
    if others:
        logging.warning(
            "Image folder %s: %d files without an image extension %s are not used, e.g. %s.",
            data_dir,
            len(others),
            IMAGE_EXTENSIONS,
            sorted(others)[:5],
        )
    return classes


def read_image_csv(path):
    """Reads a `path,label` CSV file listing image files and their labels.

    A first row reading `path,label` is a header. Paths are relative to the
    CSV file's folder (absolute paths are kept). Labels are either all
    integers (class `k` is named `"k"`, and there are `max + 1` classes) or
    all class names (sorted unique names give the class indices). Files are
    not opened here.

    Args:
        path: the CSV file.

    Returns:
        `(line_numbers, paths, labels, class_names)`: 1-based line number of
        each row, its image path, int64 labels `[n]` and a tuple of names.

    Raises:
        FileNotFoundError: the CSV file does not exist.
        ValueError: a row without exactly two fields, an empty path or
            label, a negative integer label, integer labels mixed with
            names, or no rows; the message names the file and line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CSV file not found: {path}")
    base = os.path.dirname(os.path.abspath(path))
    line_numbers, paths, texts = [], [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        first = True
        for row in reader:
            lineno = reader.line_num
            fields = [field.strip() for field in row]
            if not any(fields):
                continue  # Blank line.
            if first and [field.lower() for field in fields] == ["path", "label"]:
                first = False
                continue
            first = False
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{lineno}: expected 2 fields 'path,label'. Received "
                    f"{len(fields)} fields: {','.join(row)!r}"
                )
            image, label = fields
            if not image or not label:
                missing = "path" if not image else "label"
                raise ValueError(
                    f"{path}:{lineno}: the {missing} is empty. Received: {','.join(row)!r}"
                )
            line_numbers.append(lineno)
            paths.append(os.path.join(base, image))
            texts.append(label)
    if not texts:
        raise ValueError(f"CSV file {path} lists no images. Expected rows 'path,label'.")
    is_int = [_is_int_text(t) for t in texts]
    if all(is_int):
        labels = np.asarray([int(t) for t in texts], dtype=np.int64)
        if labels.min() < 0:
            k = int(np.argmax(labels < 0))
            raise ValueError(
                f"{path}:{line_numbers[k]}: integer labels must be non-negative. "
                f"Received: {texts[k]!r}"
            )
        class_names = tuple(str(c) for c in range(int(labels.max()) + 1))
    elif any(is_int):
        # "3" could be a class name or class index 3: refuse to guess.
        k_int, k_name = is_int.index(True), is_int.index(False)
        # A header other than "path,label" is read as a row.
        hint = " (a header row must read 'path,label')" if k_name == 0 else ""
        raise ValueError(
            f"{path}: labels must be all integers or all class names. Received "
            f"the integer {texts[k_int]!r} on line {line_numbers[k_int]} and the "
            f"name {texts[k_name]!r} on line {line_numbers[k_name]}{hint}."
        )
    else:
        class_names = tuple(sorted(set(texts)))
        index = {name: k for k, name in enumerate(class_names)}
        labels = np.asarray([index[t] for t in texts], dtype=np.int64)
    return line_numbers, paths, labels, class_names


def read_filelist(path, num_classes=None, keep_below=None):
    """Reads `<relative path> <label>` lines into a list of (key, label)."""
    rows = []
    for lineno, line in read_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not _is_int_text(parts[1]):
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


def _read_key_list(path):
    return list(read_lines(path))


def read_lines(path):
    """Yields (1-based line number, stripped line), skipping blank lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Required file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield lineno, line


def read_labels_file(path, num_examples, num_classes):
    """Returns int64 `[num_examples]` labels by id; -1 where the file is silent."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"noisy_labels_file not found: {path}")
    if path.endswith(".npy"):
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot read noisy_labels_file {path}: {e}") from e
        if table.ndim != 1 or len(table) != num_examples:
            raise ValueError(
                f"noisy_labels_file {path} must hold a 1-D array of length "
                f"num_examples={num_examples}. Received shape={table.shape}"
            )
        if not np.issubdtype(table.dtype, np.integer):
            raise ValueError(
                f"noisy_labels_file {path} must hold integers. Received dtype={table.dtype}"
            )
        labels_in_range(f"labels in {path}", table, num_classes)
        return table.astype(np.int64)
    if not path.endswith(".csv"):
        raise ValueError(
            f"`noisy_labels_file` must end in .npy or .csv. Received: noisy_labels_file={path!r}"
        )
    table = np.full(num_examples, -1, dtype=np.int64)
    for lineno, line in read_lines(path):
        parts = [p.strip() for p in line.split(",")]
        if lineno == 1 and not all(_is_int_text(p) for p in parts):
            continue  # Header.
        if len(parts) != 2 or not all(_is_int_text(p) for p in parts):
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


def _is_int_text(text):
    return re.fullmatch(r"[+-]?\d+", text) is not None
