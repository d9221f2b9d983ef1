"""`WeightAveraging`: the ramped weight averages ("mean teachers") of ELR+.

After each optimizer step ELR+ moves every averaged copy toward its
network, `ema <- a * ema + (1 - a) * f`, with a momentum `a` that grows
with the step (ELR-SPEC §3, step 5):

- `ema_update=True`: `a = sigmoid_rampup(step + 1, ema_step) * ema_alpha`;
- `ema_update=False`: `a = min(1 - 1 / (step + 1), ema_alpha)`, the true
  running mean of the weights seen so far until it would exceed
  `ema_alpha`;

where `step` counts optimizer steps from 1 (the reference passes the step
just taken).

Held teachers: when the model keeps held-fixed snapshots of its averaged
copies (`ELRPlusModel(teacher_span=N)`), the same update copies each
averaged copy into its snapshot after every N-th step (`step % N == 0`),
so the targets of steps `sN + 1 ... (s + 1)N` come from the averages as of
step `sN`. With `teacher_span="epoch"`, N is the number of steps per epoch.

Why not Keras's own averaging: `keras.optimizers.Optimizer(use_ema=True)`
keeps the average as optimizer slots with a constant momentum, and
`keras.callbacks.SwapEMAWeights` swaps it into the model only for
evaluation. ELR+ needs each average as a separate network that runs
forward during training (it produces the other network's targets every
step) and a momentum ramped with the step, so the averages live in the
model and this callback updates them.
"""

import keras
import tensorflow as tf

from elr_tf import checks, losses


def ema_decay(step, ema_alpha, ema_update=True, ema_step=40000):
    """The averaging momentum `a` after optimizer step `step` (1-based).

    Args:
        step: number of optimizer steps taken, including the one just taken
            (number or scalar tensor).
        ema_alpha: the final momentum, in `[0, 1)`.
        ema_update: ramp the momentum with `sigmoid_rampup` (True) or use the
            running-mean schedule `min(1 - 1/(step + 1), ema_alpha)`.
        ema_step: ramp length in steps (used only with `ema_update`).

    Returns:
        float32 scalar tensor.

    Example:

    >>> float(ema_decay(1, 0.997, ema_update=False))
    0.5
    """
    step = tf.cast(step, tf.float32)
    if ema_update:
        return losses.sigmoid_rampup(step + 1.0, ema_step) * ema_alpha
    return tf.minimum(1.0 - 1.0 / (step + 1.0), ema_alpha)


class WeightAveraging(keras.callbacks.Callback):
    """Updates the averaged copies of an `ELRPlusModel` after every step.

    The model supplies the `(average, weight)` variable pairs through
    `averaging_pairs()`: every trainable weight of each network. Batch-norm
    moving statistics are not averaged, as in the reference (it averages
    `parameters()`, not buffers); see `ELRPlusModel` for how the copies get
    theirs.

    The update is one compiled `tf.function` over all pairs, reading the
    step from `model.optimizer.iterations` inside the graph (so nothing
    waits on the device, and a resumed run continues the same schedule).
    Under a distribution strategy each device updates its own copies from
    its own weights, with no cross-device traffic.

    Args:
        ema_alpha: final momentum, in `[0, 1)`: 0.997 (CIFAR, WebVision),
            0.9999 (Clothing1M). 0 makes each copy equal to its network.
        ema_update: ramp the momentum over `ema_step` steps (True: CIFAR)
            or use the running-mean schedule (False: Clothing1M, WebVision).
        ema_step: ramp length in optimizer steps, `>= 0` when `ema_update`
            (reference: 40000); ignored otherwise.
        jit_compile: compile the update with XLA.

    Example:

    ```python
    model.fit(train_ds, epochs=200, callbacks=[
        elr_tf.WeightAveraging(0.997, ema_step=40000),
        elr_tf.Mixup(alpha=1.0),
    ])
    ```

    References:
        Tarvainen, Valpola. "Mean teachers are better role models", NeurIPS
        2017. Liu et al., "Early-Learning Regularization Prevents
        Memorization of Noisy Labels", NeurIPS 2020, §5 (ELR+).
    """

    def __init__(self, ema_alpha=0.997, ema_update=True, ema_step=40000, jit_compile=False):
        super().__init__()
        checks.number_in("ema_alpha", ema_alpha, 0.0, 1.0, high_open=True)
        if not isinstance(ema_update, bool):
            raise ValueError(f"`ema_update` must be a bool. Received: ema_update={ema_update!r}")
        if not checks.is_int(ema_step):
            raise ValueError(f"`ema_step` must be an integer. Received: ema_step={ema_step!r}")
        if ema_update and ema_step < 0:
            raise ValueError(
                "`ema_step` (the ramp length) must be >= 0 when `ema_update=True`. "
                f"Received: ema_step={ema_step!r}"
            )
        self.ema_alpha = float(ema_alpha)
        self.ema_update = ema_update
        self.ema_step = int(ema_step)
        self.jit_compile = jit_compile
        self._update = None
        self._update_model = None
        self._span = None

    def set_model(self, model):
        super().set_model(model)
        # `fit` sets the callbacks' model just before it makes the train
        # function; the mark tells an `ELRPlusModel` that its averaged copies
        # will move in this `fit` (it warns otherwise, and clears the mark).
        if hasattr(model, "weight_averaging_attached"):
            model.weight_averaging_attached = True

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "averaging_pairs"):
            raise ValueError(
                "The WeightAveraging callback needs a model with "
                "`averaging_pairs()`, such as `ELRPlusModel`. Received a model "
                f"of type {type(self.model).__name__}"
            )
        steps = getattr(self.model, "steps_per_execution", 1)
        if steps != 1:
            raise ValueError(
                "The WeightAveraging callback updates the averages once per "
                "batch, so the model must be compiled with "
                f"steps_per_execution=1. Received: steps_per_execution={steps}"
            )
        span = self.teacher_refresh_steps(self.model, self.params)
        if self._update is None or self._update_model is not self.model or self._span != span:
            self._update = self.make_update_function(self.model, span)
            self._update_model = self.model
            self._span = span

    @staticmethod
    def teacher_refresh_steps(model, params):
        """Steps between teacher refreshes: `model.teacher_span` resolved.

        None when the model holds no snapshots; `"epoch"` resolves to
        `params["steps"]`, the steps per epoch `fit` reports to callbacks.
        """
        span = getattr(model, "teacher_span", None)
        if span != "epoch":
            return span
        steps = (params or {}).get("steps")
        if not steps:
            raise ValueError(
                "ELRPlusModel(teacher_span='epoch') holds each teacher fixed for one "
                "epoch, but fit does not know the number of steps per epoch (an "
                "infinite or unsized dataset). Pass `steps_per_epoch` to fit, or build "
                "the model with teacher_span=<steps>."
            )
        return int(steps)

    def on_train_batch_end(self, batch, logs=None):
        self._update()

    def make_update_function(self, model, teacher_span=None):
        """Returns a compiled no-argument function applying one update.

        Args:
            model: an `ELRPlusModel` (anything with `averaging_pairs()`,
                `optimizer` and `distribute_strategy`).
            teacher_span: refresh the model's `teacher_pairs()` snapshots
                after every `teacher_span`-th step (None: no snapshots).
        """
        pairs = [(average.value, weight.value) for average, weight in model.averaging_pairs()]
        snapshots = []
        if teacher_span is not None:
            snapshots = [(held.value, source.value) for held, source in model.teacher_pairs()]
        strategy = model.distribute_strategy
        iterations = model.optimizer.iterations

        def assign(average, weight, decay):
            return average.assign(decay * average + (1.0 - decay) * weight)

        def copy(held, source):
            return held.assign(source)

        def refresh():
            for held, source in snapshots:
                strategy.extended.update(held, copy, args=(source,), group=False)
            return tf.constant(True)

        def update():
            decay = ema_decay(
                tf.convert_to_tensor(iterations), self.ema_alpha, self.ema_update, self.ema_step
            )
            for average, weight in pairs:
                # Per device: each replica's copy of the average moves toward
                # the same replica's copy of the weight.
                strategy.extended.update(average, assign, args=(weight, decay), group=False)
            if snapshots:
                # After the averages moved: the next span reads this step's.
                due = tf.equal(tf.math.floormod(tf.convert_to_tensor(iterations), teacher_span), 0)
                tf.cond(due, refresh, lambda: tf.constant(False))

        return tf.function(update, jit_compile=self.jit_compile)
