"""elr_tf: Early-Learning Regularization (ELR, ELR+) for Keras/TensorFlow.

Liu et al., "Early-Learning Regularization Prevents Memorization of Noisy
Labels", NeurIPS 2020.
"""

from elr_tf import losses
from elr_tf.elr_model import ELRModel
from elr_tf.inputs import INDEX_KEY, INPUTS_KEY, with_index
from elr_tf.target_table import TargetTable

__all__ = [
    "ELRModel",
    "INDEX_KEY",
    "INPUTS_KEY",
    "TargetTable",
    "losses",
    "with_index",
]
__version__ = "0.1.0"
