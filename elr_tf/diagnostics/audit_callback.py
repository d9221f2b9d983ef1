"""`AuditCallback`: the finder's detection metrics in the epoch logs.

When the clean labels are known (synthetic noise, CIFAR-10N), the callback
runs `find_label_issues` on the model's table after every epoch and logs
precision, recall, F1, AUROC, AUPRC and the estimated count, so that
`metrics.csv` and TensorBoard show how the finder improves as training goes.
"""

import keras

from elr_tf.checks import int_vector, one_of
from elr_tf.diagnostics.label_audit import FLAG_RULES, METRIC_NAMES, SCORES, find_label_issues


class AuditCallback(keras.callbacks.Callback):
    """Logs label-error detection metrics from the model's table each epoch.

    Adds `audit_precision`, `audit_recall`, `audit_f1`, `audit_auroc` and
    `audit_auprc` (see `LabelAudit.metrics`) to the epoch logs. Place it
    **before** `CSVLogger` (and `TensorBoard`) in the callback list: Keras
    calls callbacks in order, and `CSVLogger` fixes its columns from the
    logs of the first epoch it sees.

    Args:
        ids: int `[n]` ids of the training examples to audit.
        labels: int `[n]` their training (noisy) labels.
        true_labels: int `[n]` their clean labels (-1: unknown).
        prefix: prefix of the log keys.
        score: as in `find_label_issues`.
        flag: as in `find_label_issues`.

    Example:

    ```python
    callbacks = [
        AuditCallback(data.train.ids, data.train.labels, data.train.true_labels),
        keras.callbacks.CSVLogger("metrics.csv"),
    ]
    model.fit(train_ds, epochs=10, callbacks=callbacks)
    ```
    """

    def __init__(
        self,
        ids,
        labels,
        true_labels,
        prefix="audit_",
        score=None,
        flag="pairs",
    ):
        super().__init__()
        self.ids = int_vector("ids", ids)
        self.labels = int_vector("labels", labels, len(self.ids))
        self.true_labels = int_vector("true_labels", true_labels, len(self.ids))
        self.prefix = prefix
        self.score = None if score is None else one_of("score", score, SCORES)
        self.flag = one_of("flag", flag, FLAG_RULES)
        self.last_audit = None

    def on_epoch_end(self, epoch, logs=None):
        self.last_audit = find_label_issues(
            self.model, self.labels, self.ids, self.true_labels, self.score, self.flag
        )
        if logs is not None:
            metrics = self.last_audit.metrics()
            for name in METRIC_NAMES:
                logs[f"{self.prefix}{name}"] = metrics[name]
            logs[f"{self.prefix}num_estimated"] = metrics["num_estimated"]
