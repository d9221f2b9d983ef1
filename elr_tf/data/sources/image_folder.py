"""Your own images in one sub-folder per class (`folder`).

`data_dir` is the folder, laid out as for
`keras.utils.image_dataset_from_directory`: `data_dir/<class name>/.../<image>`.
Class names are the sorted sub-folder names, label `k` the k-th name.
Images (`IMAGE_EXTENSIONS`, any case, found recursively) may have any size
and be grey or colour (decoded to RGB). Ids are positions in the list,
class by class, sorted by path. The examples are split 90/10 per class; the
validation examples are also the test set. Images are resized to a shorter
side of `round(image_size * 256 / 224)` and cropped to `image_size`
(default 64), normalised with a neutral mean 0.5 and std 0.25. Labels are
taken as given (`true_labels` None). Every image is decoded once at load
time: an unreadable file or an empty class folder raises an error naming
it, or with `skip_unreadable=True` is dropped with a warning.

Example:

```python
data = load_dataset("folder", "/data/pets", image_size=96)
data.class_names  # ("cat", "dog")
```
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from elr_tf.data.example_set import ExampleSet
from elr_tf.data.sources import DataSource, RawData, _common, register

# File name endings of the formats `tf.io.decode_image` reads (compared in
# lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")

# Bounds of the folder walk: entries listed (files and folders; WebVision's
# 2.4M images fit, a walk into the wrong tree, e.g. `/`, stops early) and
# folder depth below a class folder. Past either, loading stops with an
# error naming the folder.
MAX_WALK_ENTRIES = 5_000_000
MAX_WALK_DEPTH = 32


def is_image_file_name(name):
    """True when `name` ends in one of `IMAGE_EXTENSIONS`, in any case."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_folder(data_dir):
    """Lists the image files of a folder holding one sub-folder per class.

    Class names are the sorted names of the sub-folders (hidden ones,
    starting with ".", are skipped); the image files of a class are found
    recursively and sorted by path. Files without an image extension are
    left out, with a warning naming a few of them.

    Symbolic links are followed, and each real folder and file is read
    once: a link back to a folder it is inside (a cycle) is refused,
    naming it; a folder or file reached twice is counted once, with a
    warning; one file (by resolved path) in two classes is refused. The
    walk stops with an error past `MAX_WALK_ENTRIES` entries or
    `MAX_WALK_DEPTH` levels.

    Args:
        data_dir: the folder.

    Returns:
        A dict `{class name: [image paths]}` in class order; a class's list
        is empty when its folder holds no image file.

    Raises:
        FileNotFoundError: `data_dir` is not a directory.
        ValueError: `data_dir` has no class sub-folders, a symlink cycle,
            a file in two classes, or more than the walk's bounds.

    Example:

    ```python
    list_image_folder("/data/pets")  # {"cat": [".../cat/1.jpg", ...], "dog": [...]}
    ```
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
            stray[: _common.NAMES_SHOWN],
        )
    walk = _Walk(data_dir)
    classes = {name: walk.images(os.path.join(data_dir, name), name) for name in class_names}
    walk.report()
    others = walk.others
    if others:
        logging.warning(
            "Image folder %s: %d files without an image extension %s are not used, e.g. %s.",
            data_dir,
            len(others),
            IMAGE_EXTENSIONS,
            sorted(others)[: _common.NAMES_SHOWN],
        )
    return classes


def load(data_dir, *, image_size=None, skip_unreadable=False):
    """Reads the image folder `data_dir` (file-backed)."""
    data_dir = _common.require_data_dir("folder", data_dir, "the image folder")
    image_shape, resize_size = _common.file_image_shape(
        image_size, _common.OWN_IMAGE_SIZE, _common.RESIZE_RATIO
    )
    classes = list_image_folder(data_dir)
    empty = [os.path.join(data_dir, c) for c, files in classes.items() if not files]
    if empty and not skip_unreadable:
        raise ValueError(
            f"Image folder {data_dir}: {len(empty)} class folders hold no image "
            f"file {IMAGE_EXTENSIONS}: {empty[: _common.NAMES_SHOWN]}. Every class "
            "folder needs images; remove the folder, or pass "
            "skip_unreadable=True to drop it."
        )
    paths = [p for files in classes.values() for p in files]
    bad = set(_common.drop_unreadable(paths, paths, skip_unreadable, f"image folder {data_dir}"))
    kept = {c: [p for p in files if p not in bad] for c, files in classes.items()}
    dropped = [os.path.join(data_dir, c) for c, files in kept.items() if not files]
    if dropped:
        logging.warning(
            "Image folder %s: dropped %d class folders without a readable image: %s.",
            data_dir,
            len(dropped),
            dropped[: _common.NAMES_SHOWN],
        )
    kept = {c: files for c, files in kept.items() if files}
    if not kept:
        raise ValueError(f"Image folder {data_dir} holds no readable image.")
    labels = np.concatenate([np.full(len(f), k, np.int64) for k, f in enumerate(kept.values())])
    paths = [p for files in kept.values() for p in files]
    return RawData(
        train=ExampleSet(ids=np.arange(len(paths)), labels=labels, paths=paths),
        num_classes=len(kept),
        image_shape=image_shape,
        class_names=tuple(kept),
        resize_size=resize_size,
    )


register(DataSource(name="folder", load=load, **_common.OWN_IMAGES))


class _Walk:
    """Finds the image files under class folders, each real folder and file once."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.entries = 0
        self.folders = set()  # Real paths of the folders walked.
        self.files = {}  # Real path -> (class name, path) of each image kept.
        self.twice = []  # Folders and files reached again, not read again.
        self.others = []  # Files without an image extension.

    def images(self, top, class_name):
        """The sorted image paths under `top`."""
        found = []
        real_top = os.path.realpath(top)
        self.folders.add(real_top)
        stack = [(top, (real_top,))]
        while stack:
            folder, ancestors = stack.pop()
            if len(ancestors) > MAX_WALK_DEPTH:
                raise ValueError(
                    f"Image folder {self.data_dir}: {folder} is more than "
                    f"MAX_WALK_DEPTH={MAX_WALK_DEPTH} folders below its class folder. "
                    "Is data_dir the folder of class sub-folders?"
                )
            for entry in self._list(folder):
                if entry.is_dir():
                    real = os.path.realpath(entry.path)
                    if real in ancestors:
                        raise ValueError(
                            f"Image folder {self.data_dir}: {entry.path} links back to "
                            f"{real}, a folder it is inside, so the walk would never end. "
                            "Remove the link (or point it elsewhere)."
                        )
                    if real in self.folders:
                        self.twice.append(entry.path)
                        continue
                    self.folders.add(real)
                    stack.append((entry.path, (*ancestors, real)))
                elif is_image_file_name(entry.name):
                    self._add_file(entry.path, class_name, found)
                else:
                    self.others.append(entry.path)
        return sorted(found)

    def _list(self, folder):
        try:
            entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
        except OSError as error:
            raise ValueError(
                f"Image folder {self.data_dir}: cannot list {folder} ({error.strerror})."
            ) from None
        self.entries += len(entries)
        if self.entries > MAX_WALK_ENTRIES:
            raise ValueError(
                f"Image folder {self.data_dir} holds more than MAX_WALK_ENTRIES="
                f"{MAX_WALK_ENTRIES:,} files and folders (at {folder}). Is data_dir the "
                "folder of class sub-folders?"
            )
        return sorted(entries, key=lambda e: e.name)

    def _add_file(self, path, class_name, found):
        real = os.path.realpath(path)
        if real not in self.files:
            self.files[real] = (class_name, path)
            found.append(path)
            return
        first_class, first_path = self.files[real]
        if first_class != class_name:
            raise ValueError(
                f"Image folder {self.data_dir}: one file is in two classes, "
                f"{first_path} ({first_class}) and {path} ({class_name}), both {real}. "
                "An image has one label: remove one of them."
            )
        self.twice.append(path)

    def report(self):
        if self.twice:
            logging.warning(
                "Image folder %s: %d folders or files are reached twice (through "
                "symbolic links) and are read once, e.g. %s.",
                self.data_dir,
                len(self.twice),
                sorted(self.twice)[: _common.NAMES_SHOWN],
            )
