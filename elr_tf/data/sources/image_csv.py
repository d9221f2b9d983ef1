"""Your own images listed in a `path,label` CSV file (`csv`).

`data_dir` is the CSV file: rows `path,label`, with an optional header row
`path,label`. Paths are relative to the CSV file's folder, or absolute.
Labels are all integers (classes `"0"`..`"C-1"`, `C` the largest label + 1)
or all class names (the sorted unique names give the labels). Ids are row
positions. Otherwise as `folder`: split 90/10 per class with the validation
examples as test set, resized and cropped to `image_size` (default 64),
neutral normalisation, labels taken as given, every image decoded once at
load time (`skip_unreadable=True` drops missing or broken files, with a
warning).

Example:

```python
data = load_dataset("csv", "/data/labels.csv", image_size=96)
```
"""

from __future__ import annotations

import csv
import os

import numpy as np
from absl import logging

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register


def read_image_csv(path):
    """Reads a `path,label` CSV file listing image files and their labels.

    Files are not opened here.

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

    Example:

    ```python
    lines, paths, labels, names = read_image_csv("labels.csv")  # rows "a.jpg,cat", ...
    ```
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CSV file not found: {path}")
    base = os.path.dirname(os.path.abspath(path))
    line_numbers, paths, texts = [], [], []
    # utf-8-sig: a byte-order mark (as some spreadsheet programs write) is
    # not part of the first row.
    with open(path, encoding="utf-8-sig", newline="") as f:
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
    is_int = [_common.is_int_text(t) for t in texts]
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


def one_row_per_image(csv_path, line_numbers, paths, labels, class_names, skip_duplicates):
    """Positions of the rows to keep: one per image file, by resolved path.

    A file listed twice would be counted twice and could land in both the
    training and the validation split. Rows naming one file with two labels
    are refused; with one label they are refused too unless
    `skip_duplicates`, which keeps the first row of each and logs how many
    went.

    Returns:
        int64 positions into the rows, in row order.
    """
    rows = {}
    for k, path in enumerate(paths):
        rows.setdefault(os.path.realpath(path), []).append(k)
    repeated = [ks for ks in rows.values() if len(ks) > 1]
    clashing = [ks for ks in repeated if len({int(labels[k]) for k in ks}) > 1]
    if clashing:
        ks = clashing[0]
        listed = ", ".join(f"line {line_numbers[k]} {class_names[labels[k]]!r}" for k in ks)
        raise ValueError(
            f"{csv_path}: {len(clashing)} image files are listed with different labels, "
            f"e.g. {paths[ks[0]]} on {listed}. Give each image one label."
        )
    if repeated and not skip_duplicates:
        named = [
            f"{paths[ks[0]]} on lines {', '.join(str(line_numbers[k]) for k in ks)}"
            for ks in repeated[: _common.NAMES_SHOWN]
        ]
        raise ValueError(
            f"{csv_path}: {len(repeated)} image files are listed more than once, e.g. "
            f"{'; '.join(named)}. A repeated image counts twice and can fall in both the "
            "training and the validation split: remove the repeats, or pass "
            "skip_duplicates=True to keep the first row of each."
        )
    if repeated:
        logging.warning(
            "%s: %d image files are listed more than once; the first row of each is "
            "kept and %d repeats dropped, e.g. %s.",
            csv_path,
            len(repeated),
            sum(len(ks) - 1 for ks in repeated),
            [f"{csv_path}:{line_numbers[ks[1]]}" for ks in repeated[: _common.NAMES_SHOWN]],
        )
    return np.asarray(sorted(ks[0] for ks in rows.values()), dtype=np.int64)


def load(data_dir, *, image_size=None, skip_unreadable=False, skip_duplicates=False):
    """Reads the images listed in the CSV file `data_dir` (file-backed)."""
    csv_path = _common.require_data_dir("csv", data_dir, "the CSV file")
    image_shape, resize_size = _common.file_image_shape(
        image_size, _common.OWN_IMAGE_SIZE, _common.RESIZE_RATIO
    )
    if os.path.isdir(csv_path):
        raise ValueError(
            f"`data_dir` for csv must be a CSV file of rows 'path,label'. "
            f"Received a directory: data_dir={csv_path!r} (use name='folder' for "
            "one sub-folder per class)."
        )
    line_numbers, paths, labels, class_names = read_image_csv(csv_path)
    first = one_row_per_image(csv_path, line_numbers, paths, labels, class_names, skip_duplicates)
    line_numbers, paths = [line_numbers[k] for k in first], [paths[k] for k in first]
    labels = labels[first]
    where = [f"{csv_path}:{n}" for n in line_numbers]
    missing = [k for k, p in enumerate(paths) if not os.path.isfile(p)]
    if missing and not skip_unreadable:
        k = missing[0]
        # A header that is not exactly "path,label" is read as a data row.
        hint = " (a header row must read 'path,label')" if k == 0 else ""
        raise FileNotFoundError(
            f"{where[k]}: image file not found: {paths[k]}{hint}. {len(missing)} "
            "rows name missing files; pass skip_unreadable=True to drop them."
        )
    if missing:
        logging.warning(
            "%s: dropped %d rows whose image file is missing, e.g. %s.",
            csv_path,
            len(missing),
            [f"{where[k]} {paths[k]}" for k in missing[: _common.NAMES_SHOWN]],
        )
    absent = set(missing)
    kept = [k for k in range(len(paths)) if k not in absent]
    bad = set(
        _common.drop_unreadable(
            [paths[k] for k in kept], [where[k] for k in kept], skip_unreadable, csv_path
        )
    )
    kept = np.asarray([k for k in kept if paths[k] not in bad], dtype=np.int64)
    if not kept.size:
        raise ValueError(f"CSV file {csv_path} lists no readable image.")
    return RawData(
        train=ExampleSet(
            ids=np.arange(kept.size), labels=labels[kept], paths=[paths[k] for k in kept]
        ),
        num_classes=len(class_names),
        image_shape=image_shape,
        class_names=class_names,
        resize_size=resize_size,
    )


register(
    DataSource(
        name="csv",
        load=load,
        **{**_common.OWN_IMAGES, "options": (*_common.OWN_IMAGES["options"], "skip_duplicates")},
    )
)
