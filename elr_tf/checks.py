"""Argument checks: the one place their rules and messages are written.

Every check takes the argument's name as the user wrote it (`"batch_size"`
in Python, `"--bs"` on the command line) and its value, returns the value in
canonical form, and otherwise raises a ValueError naming the argument, the
value received and what was expected:

    >>> positive_int("--bs", 0)
    ValueError: `--bs` must be a positive integer. Received: --bs=0

One check runs inside the graph instead, on tensors whose values are known
only at run time (sample ids, labels): `assert_in_range`.
"""

import math
import numbers
import os

import numpy as np
import tensorflow as tf


def is_int(value):
    """True for Python and NumPy integers, False for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """True for finite or infinite real numbers, False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name, value):
    """`value` as an int >= 1."""
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative_int(name, value):
    """`value` as an int >= 0."""
    if not is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
    return int(value)


def number_in(name, value, low, high=math.inf, *, low_open=False, high_open=False):
    """`value` as a finite float in the interval from `low` to `high`.

    Infinite and NaN values are always refused, also when `high` is inf: no
    setting of this project means anything at infinity.

    Args:
        name: the argument's name.
        value: the value to check.
        low, high: bounds of the interval.
        low_open, high_open: exclude the bound.
    """
    ok = is_number(value) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(
            f"`{name}` must be a finite number in {interval}. Received: {name}={value!r}"
        )
    return float(value)


def one_of(name, value, choices):
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(str, choices))}. Received: {name}={value!r}"
        )
    return value


def int_vector(name, values, length=None):
    """`values` as an int64 1-D array.

    Args:
        name: the argument's name.
        values: array-like of integers (an empty array of any dtype passes).
        length: required length, or None.
    """
    array = np.asarray(values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(
            f"`{name}` must be a 1-D integer array. Received: "
            f"dtype={array.dtype}, shape={array.shape}"
        )
    if length is not None and len(array) != length:
        raise ValueError(f"`{name}` must have length {length}. Received: length={len(array)}")
    return array.astype(np.int64)


def labels_in_range(name, labels, num_classes):
    """`labels` as an int64 1-D array of class indices in `[0, num_classes)`."""
    array = int_vector(name, labels)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        bad = array[(array < 0) | (array >= num_classes)]
        raise ValueError(
            f"`{name}` must be in [0, {num_classes}). Received: {name} "
            f"containing {bad[:5].tolist()} ({bad.size} out of range)"
        )
    return array


# The largest image side `image_size` takes. One 4096 x 4096 RGB image is
# 192 MiB as float32, so a batch of 64 needs 12 GiB before the network's
# own activations; larger sides are a typo more often than a plan.
MAX_IMAGE_SIZE = 4096


def image_size(name, value):
    """A positive int or `(height, width)` pair, each at most `MAX_IMAGE_SIZE`, as a tuple."""
    size = (value, value) if is_int(value) else value
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(is_int(s) and s > 0 for s in size)
    ):
        raise ValueError(
            f"`{name}` must be a positive int or a (height, width) pair. Received: {name}={value!r}"
        )
    if max(size) > MAX_IMAGE_SIZE:
        raise ValueError(
            f"`{name}` must be at most {MAX_IMAGE_SIZE} pixels a side (one "
            f"{MAX_IMAGE_SIZE} x {MAX_IMAGE_SIZE} image is 192 MiB as float32). "
            f"Received: {name}={value!r}"
        )
    return int(size[0]), int(size[1])


def assert_in_range(name, values, bound_name, bound):
    """`values` with run-time checks that they lie in `[0, bound)`.

    For tensors inside a training step, where the values are known only when
    it runs: a value out of range raises `InvalidArgumentError` with the
    message "`name` must be >= 0" or "`name` must be < `bound_name`=`bound`".
    XLA (`jit_compile=True`) drops these checks.

    Args:
        name: what the values are, as the message should name them.
        values: an integer tensor.
        bound_name: the name of the argument that sets the bound.
        bound: the exclusive upper bound (a Python int).

    Example:

    >>> assert_in_range("labels", tf.constant([0, 3]), "num_classes", 3)
    InvalidArgumentError: labels must be < num_classes=3 ...
    """
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(values, message=f"{name} must be >= 0"),
            tf.debugging.assert_less(
                values,
                tf.cast(bound, values.dtype),
                message=f"{name} must be < {bound_name}={bound}",
            ),
        ]
    ):
        return tf.identity(values)


def folder_name(name, value):
    """`value` as one folder name inside another: not empty, no separator, not `.`/`..`."""
    if not value or os.sep in value or (os.altsep and os.altsep in value) or value in (".", ".."):
        raise ValueError(
            f"`{name}` must be one folder name inside --output_dir (no '/', not '.' or "
            f"'..'). Received: {name}={value!r}"
        )
    return value


def increasing_epochs(name, value):
    """`value` as a tuple of increasing positive epochs (ints)."""
    value = tuple(value)
    if not all(is_int(m) and m >= 1 for m in value) or list(value) != sorted(value):
        raise ValueError(
            f"`{name}` must be increasing positive epochs. Received: "
            f"{name}={','.join(map(str, value))}"
        )
    return value
