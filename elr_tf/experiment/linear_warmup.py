"""`LinearWarmup`: a learning-rate schedule scaled up linearly over its first steps."""

import keras

from elr_tf import checks


@keras.saving.register_keras_serializable(package="elr_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Multiplies a schedule by `min(1, (step + 1) / warmup_steps)`.

    Short, high-learning-rate runs (the CIFAR-10N CPU recipe,
    `configs/cifar10n_cpu.cfg`) start their batch-norm network more stably
    when the first epoch ramps the rate up. The factor multiplies the
    wrapped schedule rather than delaying it, so a cosine that ends at
    epoch `E` still ends there. Keras's `CosineDecay(warmup_steps=...)` has
    no restarts and `CosineDecayRestarts` no warmup, hence this wrapper.

    Args:
        schedule: a `LearningRateSchedule` or a float.
        warmup_steps: steps of the ramp, >= 1.

    Example:

    ```python
    lr = LinearWarmup(0.1, warmup_steps=4)
    [float(lr(s)) for s in range(5)]  # [0.025, 0.05, 0.075, 0.1, 0.1]
    ```
    """

    def __init__(self, schedule, warmup_steps):
        self.schedule = schedule
        self.warmup_steps = checks.positive_int("warmup_steps", warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        factor = keras.ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            return factor * keras.ops.cast(self.schedule(step), "float32")
        return factor * float(self.schedule)

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        schedule = config["schedule"]
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        return cls(schedule, config["warmup_steps"])
