"""Argument checks shared by the data and audit modules."""

import numpy as np


def int_vector(values, name, length=None):
    """`values` as an int64 1-D array, or ValueError naming `name`.

    Args:
        values: array-like of integers (an empty array of any dtype passes).
        name: the argument's name, for the error message.
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
