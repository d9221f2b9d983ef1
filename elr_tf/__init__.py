"""elr_tf: Early-Learning Regularization (ELR, ELR+) for Keras/TensorFlow.

Liu et al., "Early-Learning Regularization Prevents Memorization of Noisy
Labels", NeurIPS 2020.

The method is at the top: `ELRModel`, `ELRPlusModel`, their callbacks and
`with_index`. Sub-packages: `models`, `callbacks`, `data`, `diagnostics` and
`experiment` (the training program).
"""

from elr_tf import losses
from elr_tf.callbacks import Mixup, NonFiniteGuard, WeightAveraging
from elr_tf.diagnostics import AuditCallback, LabelAudit, MemorizationMonitor, find_label_issues
from elr_tf.inputs import INDEX_KEY, INPUTS_KEY, with_index
from elr_tf.margin_tracker import MarginTracker
from elr_tf.models import ELRModel, ELRPlusModel
from elr_tf.target_table import TargetTable

__all__ = [
    "AuditCallback",
    "LabelAudit",
    "MemorizationMonitor",
    "find_label_issues",
    "ELRModel",
    "ELRPlusModel",
    "INDEX_KEY",
    "INPUTS_KEY",
    "MarginTracker",
    "Mixup",
    "NonFiniteGuard",
    "TargetTable",
    "WeightAveraging",
    "losses",
    "with_index",
]
__version__ = "0.1.0"
