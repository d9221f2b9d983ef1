"""Crash-safe per-epoch checkpoints of a training run.

Why not `keras.callbacks.BackupAndRestore` alone: it writes the weights file
and then the epoch file in place, so a kill between the two leaves new
weights beside an old epoch number (and a kill during the write leaves a
truncated file that is then loaded). Here every checkpoint is written under
a temporary name and renamed into place once complete, and the pointer file
`checkpoint.json` is replaced atomically last; the checkpoint it names is
therefore always whole. What is saved is `model.save_weights()`: network,
optimiser state (hence the learning-rate schedule position) and the target
table(s).
"""

import contextlib
import errno
import json
import os
import re
import secrets
import shutil

import keras
from absl import logging

POINTER = "checkpoint.json"
_CHECKPOINT = re.compile(r"epoch-(\d+)\.weights\.h5")


class DiskFullError(OSError):
    """Writing a run's file failed for lack of space; names the path and the need."""


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it into place on success.

    The temporary name, `.partial-<stem>-<pid>-<random>`, is unique to the
    write and keeps the file's extension (Keras and NumPy choose their
    format by it). If the block fails, the temporary file is removed
    and `path` is left as it was; a full disk raises `DiskFullError`.
    """
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    if name.endswith(".weights.h5"):
        stem, extension = name[: -len(".weights.h5")], ".weights.h5"
    unique = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = os.path.join(directory, f".partial-{stem}-{unique}{extension}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if _is_disk_full(error):
            raise _disk_full(path) from None
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def _is_disk_full(error):
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error):
            return True
        # numpy's `tofile` reports a short write without an errno.
        if isinstance(error, OSError) and re.search(r"\d+ requested and \d+ written", str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _disk_full(path):
    directory = os.path.dirname(path) or "."
    free = shutil.disk_usage(directory).free
    # The size of an earlier file of the same kind (the previous checkpoint)
    # is what the new one needs.
    extension = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    sizes = [
        os.path.getsize(os.path.join(directory, n))
        for n in os.listdir(directory)
        if n.endswith(extension) and not n.startswith(".partial-")
    ]
    need = f"about {max(sizes) / 2**20:.1f} MiB" if sizes else "more than is free"
    return DiskFullError(
        errno.ENOSPC,
        f"No space left to write {path} (needs {need}; {free / 2**20:.1f} MiB free). "
        "Nothing already written was changed; free some space and resume with --resume.",
    )


def checkpoints_on_disk(directory):
    """`[(epoch, path)]` of the checkpoint files in `directory`, newest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _CHECKPOINT.fullmatch(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found, reverse=True)


def latest_checkpoint(directory):
    """Returns `(epoch, weights_path)` of the checkpoint the pointer names, or None.

    Raises ValueError naming `checkpoint.json` when it cannot be read.
    """
    pointer = os.path.join(directory, POINTER)
    if not os.path.exists(pointer):
        return None
    try:
        with open(pointer) as f:
            state = json.load(f)
        return int(state["epoch"]), os.path.join(directory, state["weights"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Corrupt checkpoint pointer {pointer}: {error}") from None


def restore_latest(model, directory):
    """Loads the newest intact checkpoint into `model`; returns its epoch (0 if none).

    The checkpoint `checkpoint.json` names is tried first. If the pointer or
    that file is unreadable (truncated, corrupt), the error is logged naming
    the file and the newest other checkpoint on disk that loads is used.
    The model must be built and compiled (its optimiser variables are
    created here so that their saved values can be loaded).

    Raises:
        ValueError: checkpoints exist but none of them loads.
    """
    candidates = []
    try:
        pointed = latest_checkpoint(directory)
        if pointed is not None:
            candidates.append(pointed)
    except ValueError as error:
        logging.error("%s; looking for the newest intact checkpoint instead.", error)
    candidates += [c for c in checkpoints_on_disk(directory) if c not in candidates]
    if not candidates:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    failures = []
    for epoch, path in candidates:
        try:
            model.load_weights(path)
        except Exception as error:  # noqa: BLE001 (h5py and Keras raise many kinds)
            failures.append(f"{path}: {type(error).__name__}: {error}")
            logging.error("Cannot load checkpoint %s (%s).", path, error)
            continue
        if failures:
            logging.warning(
                "Resuming from the newest intact checkpoint, %s (epoch %d).", path, epoch
            )
        return epoch
    raise ValueError(f"No checkpoint in {directory} can be loaded: " + "; ".join(failures))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a whole checkpoint after every epoch, atomically.

    Args:
        directory: where checkpoints and `checkpoint.json` live.
        keep: number of checkpoints kept on disk (older ones are deleted
            after the pointer has moved on).
    """

    def __init__(self, directory, keep=2):
        super().__init__()
        self.directory = directory
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        with atomic_path(os.path.join(self.directory, name)) as tmp:
            self.model.save_weights(tmp, overwrite=True)
        atomic_write_text(
            os.path.join(self.directory, POINTER),
            json.dumps({"epoch": epoch + 1, "weights": name}),
        )
        self._prune(keep_name=name)

    def _prune(self, keep_name):
        names = sorted(os.path.basename(p) for _, p in checkpoints_on_disk(self.directory))
        for old in names[: max(0, len(names) - self.keep)]:
            if old != keep_name:
                os.remove(os.path.join(self.directory, old))
