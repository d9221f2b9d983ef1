"""Reading a run's target tables for the label finder.

`find_label_issues` takes an ELR model or a bare table. From a model it
reads two tables: the final one (`target_tables`, averaged over ELR+'s two
networks) and, when the model kept it (`track_table_mean=True`, the
default), the table averaged over training (`mean_target_tables`). Rows
are scaled to sum to 1 before they are compared; an all-zero row is an
example never trained on.
"""

import keras
import numpy as np

from elr_tf.checks import int_vector


def final_table(source):
    """float `[num_examples, C]`: a model's table (ELR+: the mean of its two) or `source`."""
    if hasattr(source, "target_tables"):
        table = _mean_of("target_tables", source.target_tables)
    elif hasattr(source, "target_table"):
        table = to_numpy(source.target_table)
    elif isinstance(source, keras.Model):
        raise ValueError(
            f"`model_or_table` must be an ELR model (ELRModel, ELRPlusModel) or its "
            f"target table. Received the Keras model {source.name!r} of type "
            f"{type(source).__name__}, which keeps no target table: train it as "
            "`ELRModel(backbone, num_examples, num_classes)` to find label issues."
        )
    else:
        table = to_numpy(source)
    return check_table("The target table", table)


def mean_table(source, given=None, shape=None):
    """The table averaged over training, or None when there is none.

    Args:
        source: a model or a table, as `final_table` takes.
        given: an explicit `[num_examples, C]` averaged table, used instead
            of the model's own.
        shape: the final table's shape, which `given` must have.
    """
    if given is not None:
        table = check_table("`mean_table`", to_numpy(given))
        if shape is not None and table.shape != shape:
            raise ValueError(
                f"`mean_table` must have the target table's shape {shape}. "
                f"Received shape={table.shape}"
            )
        return table
    means = getattr(source, "mean_target_tables", None)
    if means is None:
        return None
    return check_table("The averaged table", _mean_of("mean_target_tables", means))


def shares(rows):
    """`(rows / row sums, seen)`: float64 shares (zero where unseen) and bool `seen`."""
    rows = np.asarray(rows, np.float64)
    totals = rows.sum(axis=1)
    seen = totals > 0
    return rows / np.where(seen, totals, 1.0)[:, None], seen


def check_table(what, table):
    """`table` if it is a finite float `[n, C >= 2]` array; ValueError naming `what`."""
    if table.ndim != 2 or table.shape[1] < 2 or not np.issubdtype(table.dtype, np.floating):
        raise ValueError(
            f"{what} must be a float [num_examples, num_classes >= 2] "
            f"array. Received: dtype={table.dtype}, shape={table.shape}"
        )
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{what} must be finite. Received {int(bad.sum())} rows with NaN or "
            f"inf, e.g. rows {np.flatnonzero(bad)[:5].tolist()} (a diverged run?)."
        )
    return table


def count_seen(model_or_table, ids):
    """How many of `ids` were trained on: the examples `find_label_issues` audits.

    Args:
        model_or_table: as in `find_label_issues`.
        ids: int `[n]` table rows.
    """
    _, seen = shares(final_table(model_or_table)[int_vector("ids", ids)])
    return int(np.count_nonzero(seen))


def check_embeddings(embeddings, n):
    """`embeddings` as an `[n, d]` array; ValueError otherwise."""
    embeddings = to_numpy(embeddings)
    if embeddings.ndim != 2 or len(embeddings) != n:
        raise ValueError(
            f"`embeddings` must be a [n, d] array with one row per audited example ({n}). "
            f"Received shape={embeddings.shape}"
        )
    return embeddings


def to_numpy(value):
    """A NumPy array of a tensor, a Keras/TF variable (mirrored too) or an array."""
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _mean_of(name, tables):
    tables = [to_numpy(t) for t in tables]
    if not tables or any(t.shape != tables[0].shape for t in tables):
        raise ValueError(
            f"`{name}` must be a non-empty list of tables of one shape. "
            f"Received shapes: {[t.shape for t in tables]}"
        )
    return np.mean(tables, axis=0)
