"""Mixup's mixing as pure functions (ELR-SPEC §3, step 2).

ELR+ trains each network on mixed batches: with `l ~ Beta(alpha, alpha)`,
`l = max(l, 1 - l)` and a permutation `m` of the batch,
`x_mix = l*x + (1-l)*x[m]`, `y_mix = l*y + (1-l)*y[m]` and the mixed target
rows `q = l*T[i] + (1-l)*T[i][m]`. The `l >= 1/2` rule keeps example `i` the
dominant one in its mix, so its own label and target row stay the larger
part.

Every draw is a function of `(seed, optimizer step)`: `draw_lambdas` on the
host (the `Mixup` callback), `permutation` in the graph (the model's
`train_step`), so a resumed run mixes exactly as an uninterrupted one.
"""

import numpy as np
import tensorflow as tf


def draw_lambdas(alpha, seed, step, size=2):
    """The mixing weights of one training step, `max(l, 1 - l)`.

    Args:
        alpha: Beta distribution parameter, `> 0`.
        seed: non-negative integer seed.
        step: the optimizer step the draw is for; the draw is a function of
            `(seed, step)` only.
        size: number of weights (one per network).

    Returns:
        float32 array `[size]` with values in `[0.5, 1]`.

    Example:

    >>> draw_lambdas(1.0, seed=0, step=5)
    array([0.58905023, 0.52725405], dtype=float32)
    """
    rng = np.random.default_rng([int(seed), int(step)])
    draws = rng.beta(alpha, alpha, size=size)
    return np.maximum(draws, 1.0 - draws).astype("float32")


def permutation(batch_size, seed, stream=0):
    """A random permutation of `range(batch_size)` from a stateless seed.

    Args:
        batch_size: scalar int (tensor), the length of the permutation.
        seed: int `[2]` stateless seed (the model's `mixup_seed`).
        stream: int, folded into the seed so that each network gets its own
            permutation.

    Returns:
        int32 `[batch_size]`.
    """
    seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), stream)
    keys = tf.random.stateless_uniform(tf.reshape(batch_size, [1]), seed=seed)
    return tf.argsort(keys)


def mix(values, order, lam):
    """`lam * values + (1 - lam) * values[order]` along the batch axis.

    Applies to inputs, one-hot labels and target rows alike; nests (tuples,
    dicts) are mixed tensor by tensor.

    Args:
        values: a tensor `[batch, ...]` or a nest of them (floating dtypes).
        order: int `[batch]` permutation, e.g. from `permutation`.
        lam: scalar mixing weight.

    Returns:
        The mixed values, same structure, shapes and dtypes.

    Example:

    >>> mix(tf.constant([[1.0], [3.0]]), tf.constant([1, 0]), 0.75).numpy()
    array([[1.5],
           [2.5]], dtype=float32)
    """

    def mix_one(value):
        value = tf.convert_to_tensor(value)
        if not value.dtype.is_floating:
            raise ValueError(
                "Mixup can only mix floating-point inputs (cast images to "
                f"float before the model). Received an input of dtype {value.dtype.name}"
            )
        weight = tf.cast(lam, value.dtype)
        return weight * value + (1.0 - weight) * tf.gather(value, order)

    return tf.nest.map_structure(mix_one, values)
