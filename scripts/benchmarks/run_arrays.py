"""The arrays a finder benchmark's figures come from, kept per run.

A label-finder comparison spends almost all its time training: ELR once,
cleanlab's cross-validation folds several times. The figures, though, are
functions of a few arrays: the given and true labels, the ELR table after
every epoch, the averaged margins, the embedding, and cleanlab's
out-of-sample probabilities. `compare_cleanlab.py --arrays_dir=DIR` writes
them, one `.npz` per setting and seed, so that another finder rule can be
measured on the same runs without training again.

The files hold labels of the data set they come from: keep them beside
the data, never in the repository.
"""

import os

import keras
import numpy as np

from elr_tf.diagnostics import tables


class TableSnapshots(keras.callbacks.Callback):
    """Keeps a copy of the target table's rows `ids` after every epoch."""

    def __init__(self, ids):
        super().__init__()
        self.ids = ids
        self.tables = []

    def on_epoch_end(self, epoch, logs=None):
        self.tables.append(self.model.target_table.numpy()[self.ids])


def averaged(snapshots):
    """The table averaged over training, from its per-epoch snapshots.

    Each row scaled to sum to 1, then averaged over the epochs: what a
    model with `track_table_mean=True` keeps, since every example's row is
    updated once per epoch.
    """
    return np.mean([tables.shares(table)[0] for table in snapshots], axis=0)


def path_for(directory, setting, seed):
    """`DIR/<kind>_<value>_seed<seed>.npz` for a grid setting `(kind, value)`."""
    kind, value = setting
    tag = value if isinstance(value, str) else f"{value:g}"
    return os.path.join(directory, f"{kind}_{tag}_seed{seed}.npz")


def save(path, **arrays):
    """Writes `arrays` (adding to those already in `path`) atomically."""
    if os.path.exists(path):
        arrays = {**load(path), **arrays}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = f"{path}.partial.npz"
    np.savez_compressed(partial, **arrays)
    os.replace(partial, path)


def load(path):
    """The arrays `save` wrote to `path`, as a dict."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}
