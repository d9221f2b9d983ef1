"""Models: `ELRModel`, `ELRPlusModel` and the backbones they wrap."""

from elr_tf.models import backbones
from elr_tf.models.elr_model import ELRModel
from elr_tf.models.elr_plus_model import ELRPlusModel
from elr_tf.models.indexed_model import IndexedModel

__all__ = ["ELRModel", "ELRPlusModel", "IndexedModel", "backbones"]
