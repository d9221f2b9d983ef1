"""Training inputs that carry each example's stable sample id.

ELR keeps one target row per training example, so every training batch must
say which examples it holds. Two input forms are accepted by `ELRModel`:

- tuple form: `((images, index), labels)`;
- dict form: `({"inputs": images, "index": index}, labels)`, needed when the
  backbone itself takes several inputs (then `"inputs"` holds them).

`index` is an int tensor `[batch]` of ids in `[0, num_examples)`: the
example's position in the raw training set. It must not change between epochs,
so assign it *before* shuffling. Evaluation and prediction take plain inputs.
"""

import numpy as np
import tensorflow as tf

from elr_tf import checks

INPUTS_KEY = "inputs"
INDEX_KEY = "index"
# A training element of `ELRPlusModel(data_order="separate")` holds one batch
# per network under these keys (`with_index(..., shuffles=2)`).
PAIRED_KEYS = ("network1", "network2")


def is_paired(data):
    """Whether a training element holds one batch per network (`PAIRED_KEYS`)."""
    return isinstance(data, dict) and set(data) == set(PAIRED_KEYS)


def split_index(x, required=True):
    """Splits model inputs into `(inputs, index)`.

    Args:
        x: the `x` part of a batch, in tuple or dict form (see module doc),
            or plain inputs.
        required: raise when no index is present.

    Returns:
        `(inputs, index)`; `index` is None for plain inputs when not required.
    """
    if isinstance(x, dict) and INDEX_KEY in x:
        if INPUTS_KEY not in x:
            raise ValueError(
                f"Indexed dict inputs need the keys {INPUTS_KEY!r} and "
                f"{INDEX_KEY!r}. Received keys: {sorted(x)}"
            )
        return x[INPUTS_KEY], x[INDEX_KEY]
    if isinstance(x, (tuple, list)) and len(x) == 2 and _looks_like_index(x[1]):
        return x[0], x[1]
    if required:
        raise ValueError(
            "ELRModel training batches must carry the sample id of each "
            "example: `((inputs, index), labels)` or "
            f"`({{'{INPUTS_KEY}': inputs, '{INDEX_KEY}': index}}, labels)`; "
            "`elr_tf.with_index(x, y)` builds them. Received `x` of type "
            f"{type(x).__name__} with structure {describe(x)}"
        )
    return x, None


def _looks_like_index(value):
    # An id vector has rank 1; images and feature batches have rank >= 2.
    # (The dtype is not checked here: Keras casts a model's call inputs to
    # float, so inside `call` the ids may arrive as floats. `check_index`
    # checks the dtype where the original batch is seen.)
    shape = getattr(value, "shape", None)
    return shape is not None and len(shape) == 1


def check_index(index):
    """Raises ValueError unless `index` is an integer tensor of rank 1."""
    dtype = tf.as_dtype(index.dtype)
    if not dtype.is_integer or len(index.shape) != 1:
        raise ValueError(
            "`index` (sample ids) must be an integer tensor of shape [batch]. "
            f"Received: dtype={dtype.name}, shape={list(index.shape)}"
        )
    return index


def describe(x):
    """The nest of `x` with each tensor as `dtype[shape]`, for error messages."""
    return tf.nest.map_structure(
        lambda t: (
            f"{getattr(getattr(t, 'dtype', None), 'name', type(t).__name__)}"
            f"{list(getattr(t, 'shape', []))}"
        ),
        x,
    )


def _check_unbatched(label_spec):
    # Per example, a class index is a scalar and one-hot or soft labels a
    # vector of known length; a leading unknown (or integer) axis is a batch.
    shape = label_spec.shape
    batched = shape.rank is not None and (
        (shape.rank >= 1 and shape[0] is None)
        or (shape.rank >= 1 and label_spec.dtype.is_integer)
        or shape.rank >= 2
    )
    if batched:
        raise ValueError(
            "`x` must be an unbatched dataset of (x, y) examples: with_index attaches "
            "one id per example and batches itself. Received labels of shape "
            f"{shape} ({label_spec.dtype.name}), which looks batched: pass the dataset "
            "before `.batch()`, or call `.unbatch()` on it."
        )


def _check_not_reshuffled(dataset):
    # The ids are positions, so they must not move between epochs. The
    # dataset's graph names a reshuffling stage if it has one.
    try:
        graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    except (tf.errors.OpError, ValueError, TypeError, AttributeError):
        return  # A dataset that cannot be serialised is taken as documented.
    for node in graph.node:
        reshuffle = node.attr.get("reshuffle_each_iteration")
        if node.op.startswith("Shuffle") and (reshuffle is None or reshuffle.b):
            raise ValueError(
                "`x` must not be shuffled: an example's id is its position in the "
                "dataset, and a dataset reshuffled every epoch would move every id "
                "each epoch. Pass it unshuffled; with_index shuffles after the ids "
                "are attached (shuffle=True). Received a dataset with a "
                f"{node.op} stage."
            )


def with_index(x, y=None, *, batch_size=32, shuffle=True, seed=None, shuffles=1):
    """Makes a `tf.data.Dataset` of `((x, index), y)` batches.

    With `shuffles=2` each element holds two batches of two independent
    shuffles, `{"network1": ((x, index), y), "network2": ((x, index), y)}`:
    the input of `ELRPlusModel` (default `data_order="separate"`), where
    each network makes its own pass over the data every epoch.

    Args:
        x: NumPy array / tensor of inputs (then `y` holds the labels), or an
            **unbatched, unshuffled** `tf.data.Dataset` of `(x, y)` elements.
            An element's id is its position in `x` (or in the dataset's
            order), so the order must be the same each time it is read.
        y: labels when `x` is an array; must be None for a dataset.
        batch_size: batch size of the result.
        shuffle: reshuffle (with a full buffer) every epoch, after the ids
            are attached, so ids stay stable.
        seed: shuffle seed (the second shuffle uses `seed + 1`).
        shuffles: 1, or 2 for one independently shuffled batch per ELR+
            network (needs `shuffle=True`).

    Returns:
        A dataset yielding `((x, index), y)`, `index` int64, or with
        `shuffles=2` a dict of two of them under `PAIRED_KEYS`.

    Example:

    >>> ds = with_index(np.zeros((5, 3)), np.arange(5) % 2, batch_size=2)
    >>> (xb, idx), yb = next(iter(ds))
    """
    checks.positive_int("batch_size", batch_size)
    if shuffles not in (1, 2):
        raise ValueError(f"`shuffles` must be 1 or 2. Received: shuffles={shuffles!r}")
    if shuffles == 2:
        if not shuffle:
            raise ValueError(
                "`shuffles=2` draws two independent shuffles; it cannot apply with "
                "shuffle=False. Received: shuffle=False, shuffles=2"
            )
        first, second = (
            with_index(x, y, batch_size=batch_size, seed=None if seed is None else seed + k)
            for k in range(2)
        )
        return tf.data.Dataset.zip(dict(zip(PAIRED_KEYS, (first, second))))
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(
                "`y` must be None when `x` is a tf.data.Dataset of (x, y) "
                f"elements. Received: y of type {type(y).__name__}"
            )
        spec = x.element_spec
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(
                f"`x` must be a dataset of `(x, y)` elements. Received element_spec={spec}"
            )
        _check_unbatched(spec[1])
        _check_not_reshuffled(x)
        size = int(x.cardinality())
        if size == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                "`x` must be a finite dataset: an example's id is its position, so a "
                "repeated dataset would give each repeat new ids. Pass it without "
                "`.repeat()`; fit's epochs repeat it."
            )
        dataset = x.enumerate().map(
            lambda i, xy: ((xy[0], i), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        if y is None:
            raise ValueError("`y` is required when `x` is an array. Received: y=None")
        x = np.asarray(x) if not tf.is_tensor(x) else x
        y = np.asarray(y) if not tf.is_tensor(y) else y
        if len(x) != len(y):
            raise ValueError(
                f"`x` and `y` must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
            )
        size = len(x)
        index = np.arange(size, dtype=np.int64)
        dataset = tf.data.Dataset.from_tensor_slices(((x, index), y))
    if shuffle:
        buffer = size if size > 0 else 10_000
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
