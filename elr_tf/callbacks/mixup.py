"""`Mixup`: the per-batch mixup draw of ELR+, as a Keras callback.

ELR+ trains each network on mixed batches (ELR-SPEC §3, step 2): with
`l ~ Beta(alpha, alpha)`, `l = max(l, 1 - l)` and a permutation `m` of the
batch, `x_mix = l*x + (1-l)*x[m]`, `y_mix = l*y + (1-l)*y[m]` and the mixed
target rows `q = l*T[i] + (1-l)*T[i][m]`. The `l >= 1/2` rule keeps example
`i` the dominant one in its mix, so its own label and target row stay the
larger part.

The split of work: `Mixup` draws `l` on the host before each batch, from
`(seed, optimizer step)` only, and writes it into the model's
`mixup_lambda` variable together with the seed `[seed, step]` of the
permutation; the model's `train_step` draws the permutation of its
(per-replica) batch in the graph from that seed (`permutation`) and mixes
(`mix`). Because every draw is a function of the step, a run resumed by
`BackupAndRestore` mixes exactly as an uninterrupted one.
"""

import keras
import numpy as np
import tensorflow as tf

from elr_tf import checks


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

    Applies to inputs, one-hot labels and target rows alike; nested inputs
    (tuples, dicts) are mixed tensor by tensor.

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


class Mixup(keras.callbacks.Callback):
    """Turns on mixup for an `ELRPlusModel` and draws `l` for every batch.

    Before each training batch it draws, for each of the two networks,
    `l ~ Beta(alpha, alpha)`, `l = max(l, 1 - l)`, from a generator seeded
    with `(seed, optimizer step)`, and stores the pair in
    `model.mixup_lambda`; `model.mixup_seed` gets `[seed, step]`, from
    which the model draws each network's permutation of the batch. Without
    this callback the model does not mix (`l = 1`), like the reference with
    `mixup_alpha = 0`; at the end of training `l` is reset to 1.

    The step is read from `model.optimizer.iterations` once per epoch (not
    per batch, which would wait for every step to finish), so
    `steps_per_execution` must be 1. Under `MirroredStrategy` each replica
    mixes within its own part of the batch, with the same `l` and the
    same permutation pattern.

    Args:
        alpha: Beta distribution parameter, `> 0`; the reference uses 1
            (CIFAR, Clothing1M) and 1.5 (WebVision).
        seed: non-negative integer seed of the draws.

    Example:

    ```python
    model.fit(train_ds, epochs=200, callbacks=[
        elr_tf.Mixup(alpha=1.0, seed=123),
        elr_tf.WeightAveraging(ema_alpha=0.997),
    ])
    ```

    References:
        Zhang, Cisse, Dauphin, Lopez-Paz. "mixup: Beyond Empirical Risk
        Minimization", ICLR 2018. Liu et al., "Early-Learning Regularization
        Prevents Memorization of Noisy Labels", NeurIPS 2020, §5 (ELR+).
    """

    def __init__(self, alpha=1.0, seed=0):
        super().__init__()
        # Leave the callback out to train without mixup.
        self.alpha = checks.number_in("alpha", alpha, 0.0, low_open=True)
        self.seed = checks.non_negative_int("seed", seed)
        self._step = 0

    def on_train_begin(self, logs=None):
        for attribute in ("mixup_lambda", "mixup_seed"):
            if not hasattr(self.model, attribute):
                raise ValueError(
                    "The Mixup callback needs a model with `mixup_lambda` and "
                    "`mixup_seed` variables, such as `ELRPlusModel`. Received a "
                    f"model of type {type(self.model).__name__}"
                )
        steps = getattr(self.model, "steps_per_execution", 1)
        if steps != 1:
            raise ValueError(
                "The Mixup callback draws one `l` per batch, so the model must "
                f"be compiled with steps_per_execution=1. Received: steps_per_execution={steps}"
            )

    def on_epoch_begin(self, epoch, logs=None):
        # Read once per epoch: after BackupAndRestore has restored the
        # optimizer, so a resumed run continues the same sequence of draws.
        self._step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        size = self.model.mixup_lambda.shape[0]
        self.model.mixup_lambda.assign(draw_lambdas(self.alpha, self.seed, self._step, size))
        self.model.mixup_seed.assign(np.array([self.seed, self._step], "int64"))
        self._step += 1

    def on_train_end(self, logs=None):
        self.model.mixup_lambda.assign(np.ones(self.model.mixup_lambda.shape, "float32"))
