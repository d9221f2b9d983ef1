"""Callbacks: ELR+'s mixup draws and weight averaging, and the non-finite guard."""

from elr_tf.callbacks.mixup import Mixup
from elr_tf.callbacks.non_finite_guard import NonFiniteGuard
from elr_tf.callbacks.weight_averaging import WeightAveraging, ema_decay

__all__ = ["Mixup", "NonFiniteGuard", "WeightAveraging", "ema_decay"]
