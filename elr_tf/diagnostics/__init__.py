"""Diagnostics: which labels are wrong, and whether the network memorises them."""

from elr_tf.diagnostics import confusions, neighbours, scores
from elr_tf.diagnostics.audit_callback import AuditCallback
from elr_tf.diagnostics.confusions import plot_confusions
from elr_tf.diagnostics.issue_count import estimate_issue_counts, estimate_pair_counts
from elr_tf.diagnostics.label_audit import LabelAudit, find_label_issues
from elr_tf.diagnostics.memorization import MemorizationMonitor, plot_memorization
from elr_tf.diagnostics.ranking import average_precision, detection_metrics, roc_auc

__all__ = [
    "AuditCallback",
    "LabelAudit",
    "MemorizationMonitor",
    "average_precision",
    "confusions",
    "detection_metrics",
    "estimate_issue_counts",
    "estimate_pair_counts",
    "find_label_issues",
    "neighbours",
    "plot_confusions",
    "plot_memorization",
    "roc_auc",
    "scores",
]
