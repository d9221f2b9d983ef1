"""Diagnostics: which labels are wrong, and whether the network memorises them."""

from elr_tf.diagnostics.label_audit import AuditCallback, LabelAudit, audit
from elr_tf.diagnostics.memorization import MemorizationMonitor, plot_memorization
from elr_tf.diagnostics.ranking import average_precision, detection_metrics, roc_auc

__all__ = [
    "AuditCallback",
    "LabelAudit",
    "MemorizationMonitor",
    "audit",
    "average_precision",
    "detection_metrics",
    "plot_memorization",
    "roc_auc",
]
