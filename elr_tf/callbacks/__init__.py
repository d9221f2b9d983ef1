"""Callbacks of the method: ELR+'s mixup draws and weight averaging."""

from elr_tf.callbacks.mixup import Mixup
from elr_tf.callbacks.weight_averaging import WeightAveraging, ema_decay

__all__ = ["Mixup", "WeightAveraging", "ema_decay"]
