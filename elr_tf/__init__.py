"""elr_tf: Early-Learning Regularization (ELR, ELR+) for Keras/TensorFlow.

Liu et al., "Early-Learning Regularization Prevents Memorization of Noisy
Labels", NeurIPS 2020.
"""

from elr_tf import losses
from elr_tf.audit import AuditCallback, LabelAudit
from elr_tf.audit import audit as audit_labels
from elr_tf.elr_model import ELRModel
from elr_tf.elr_plus_model import ELRPlusModel
from elr_tf.inputs import INDEX_KEY, INPUTS_KEY, with_index
from elr_tf.memorization import MemorizationMonitor
from elr_tf.mixup import Mixup
from elr_tf.target_table import TargetTable
from elr_tf.weight_averaging import WeightAveraging

__all__ = [
    "AuditCallback",
    "LabelAudit",
    "MemorizationMonitor",
    "audit_labels",
    "ELRModel",
    "ELRPlusModel",
    "INDEX_KEY",
    "INPUTS_KEY",
    "Mixup",
    "TargetTable",
    "WeightAveraging",
    "losses",
    "with_index",
]
__version__ = "0.1.0"
