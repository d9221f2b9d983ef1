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

import json
import os

import keras

POINTER = "checkpoint.json"


def _atomic_write_text(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def latest_checkpoint(directory):
    """Returns `(epoch, weights_path)` of the newest whole checkpoint, or None."""
    pointer = os.path.join(directory, POINTER)
    if not os.path.exists(pointer):
        return None
    with open(pointer) as f:
        state = json.load(f)
    return state["epoch"], os.path.join(directory, state["weights"])


def restore_latest(model, directory):
    """Loads the newest checkpoint into `model`; returns its epoch (0 if none).

    The model must be built and compiled (its optimiser variables are
    created here so that their saved values can be loaded).
    """
    found = latest_checkpoint(directory)
    if found is None:
        return 0
    epoch, path = found
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    return epoch


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
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, f"partial-{name}")
        self.model.save_weights(tmp, overwrite=True)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _atomic_write_text(
            os.path.join(self.directory, POINTER),
            json.dumps({"epoch": epoch + 1, "weights": name}),
        )
        self._prune(keep_name=name)

    def _prune(self, keep_name):
        names = sorted(
            n
            for n in os.listdir(self.directory)
            if n.startswith("epoch-") and n.endswith(".weights.h5")
        )
        for old in names[: max(0, len(names) - self.keep)]:
            if old != keep_name:
                os.remove(os.path.join(self.directory, old))
