"""`Mixup`: the per-batch mixup draw of ELR+, as a Keras callback.

The split of work: `Mixup` draws `l` on the host before each batch, from
`(seed, optimizer step)` only (`elr_tf.mixing.draw_lambdas`), and writes it
into the model's `mixup_lambda` variable together with the seed
`[seed, step]` of the permutation; the model's `train_step` draws the
permutation of its (per-replica) batch in the graph from that seed and
mixes (`elr_tf.mixing`).

Why not `keras.layers.MixUp`: it mixes images and labels in the input
pipeline, but ELR+ must mix each example's target-table row with the same
permutation, and that row is read inside the training step.
"""

import keras
import numpy as np

from elr_tf import checks, mixing


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
        self.model.mixup_lambda.assign(mixing.draw_lambdas(self.alpha, self.seed, self._step, size))
        self.model.mixup_seed.assign(np.array([self.seed, self._step], "int64"))
        self._step += 1

    def on_train_end(self, logs=None):
        self.model.mixup_lambda.assign(np.ones(self.model.mixup_lambda.shape, "float32"))
