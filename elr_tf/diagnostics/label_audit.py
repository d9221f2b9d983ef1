"""Finding the wrong labels from an ELR target table (ELR-SPEC §4).

The target table `T` holds, for each training example, the temporal ensemble
of the network's predictions. ELR keeps the network from memorising wrong
labels, so for a mislabelled example `T[i]` keeps pointing at the true class
and away from the given label `y[i]`. `audit` turns the table into a per-example
report:

- `table_class = argmax(T[i])`;
- `score = 1 - T[i, y] / sum(T[i])`, the ranking score (higher: more likely
  wrong). Rows are normalised because early in training (or with a large
  `beta`) they sum to less than 1;
- `margin = max_{k != y} T[i, k] / sum(T[i]) - T[i, y] / sum(T[i])`, in
  `[-1, 1]`; positive when another class beats the given label;
- `flagged = table_class != y`, or `score > threshold` when a threshold is
  given.

An all-zero row means the example was never trained on (a validation id, an
id outside `num_train`, or one never drawn by class-balanced sampling): it is
kept in the report as **unseen** (`table_class=-1`, `score` and `margin` NaN,
never flagged) and left out of the detection metrics, which count it in
`num_unseen`.

With synthetic noise the true labels are known, and `LabelAudit.metrics()`
measures the flags (precision, recall, F1) and the ranking score (AUROC,
average precision). `AuditCallback` logs the same figures every epoch.

Example:

```python
report = audit(model, data.train.labels, ids=data.train.ids,
               true_labels=data.train.true_labels)
report.ranked().to_csv("audit.csv")   # most suspicious first
report.metrics()   # {"precision": ..., "recall": ..., "auroc": ..., ...}
```
"""

import csv
import dataclasses

import keras
import numpy as np

from elr_tf.checks import int_vector
from elr_tf.diagnostics.ranking import detection_metrics

CSV_COLUMNS = ("id", "label", "table_class", "score", "margin", "flagged")
TRUTH_COLUMNS = ("true_label", "is_noisy")
METRIC_NAMES = ("precision", "recall", "f1", "auroc", "auprc")


@dataclasses.dataclass(frozen=True, eq=False)
class LabelAudit:
    """Per-example verdicts on the given labels; one entry per audited id.

    Attributes:
        ids: int64 `[n]` stable ids (rows of the target table).
        labels: int64 `[n]` given (possibly noisy) labels.
        table_class: int64 `[n]` `argmax(T[i])`; -1 for unseen examples.
        score: float64 `[n]` `1 - T[i, y] / sum(T[i])`; NaN when unseen.
        margin: float64 `[n]` best other class minus the given label's
            share of the row; NaN when unseen.
        flagged: bool `[n]` suspected wrong labels.
        seen: bool `[n]` False for all-zero (never trained) rows.
        true_labels: int64 `[n]` clean labels (-1: unknown), or None.
    """

    ids: np.ndarray
    labels: np.ndarray
    table_class: np.ndarray
    score: np.ndarray
    margin: np.ndarray
    flagged: np.ndarray
    seen: np.ndarray
    true_labels: np.ndarray | None = None

    def __len__(self):
        return len(self.ids)

    @property
    def is_noisy(self):
        """bool `[n]`: given label differs from a known true label."""
        if self.true_labels is None:
            raise ValueError("The true labels are unknown: pass `true_labels` to `audit`.")
        return (self.true_labels >= 0) & (self.labels != self.true_labels)

    def ranked(self):
        """Returns a copy sorted by decreasing score (most suspicious first).

        Unseen examples come last; ties keep id order.
        """
        key = np.where(self.seen, -np.nan_to_num(self.score, nan=0.0), np.inf)
        return self._take(np.lexsort((self.ids, key)))

    def metrics(self):
        """Detection metrics against the true labels.

        Computed over the seen examples whose true label is known. Positives
        are the wrong labels. Undefined figures are NaN (recall, F1, AUROC
        and average precision without wrong labels; AUROC without clean
        ones); precision is 0 when nothing is flagged.

        Returns:
            dict with `precision`, `recall`, `f1` (of `flagged`), `auroc`,
            `auprc` (average precision of `score`), and the counts
            `num_examples`, `num_noisy`, `num_flagged`, `num_unseen`.
        """
        noisy = self.is_noisy
        use = self.seen & (self.true_labels >= 0)
        result = detection_metrics(self.flagged[use], self.score[use], noisy[use])
        result["num_unseen"] = int(np.count_nonzero(~self.seen))
        return result

    def to_csv(self, path, class_names=None):
        """Writes one row per example, in the current order.

        Columns: `id,label,table_class,score,margin,flagged`, plus
        `true_label,is_noisy` when true labels are known (`is_noisy` empty
        where the true label is -1), plus `label_name,table_class_name` (and
        `true_label_name`) when `class_names` are given. Unseen rows have
        `table_class=-1` (no name) and `nan` score and margin.

        Args:
            path: output file.
            class_names: optional sequence of class names, indexed by label.
        """
        with_truth = self.true_labels is not None
        columns = CSV_COLUMNS + (TRUTH_COLUMNS if with_truth else ())
        if class_names is not None:
            class_names = [str(name) for name in class_names]
            columns += ("label_name", "table_class_name")
            columns += ("true_label_name",) if with_truth else ()

        def name(index):
            return class_names[index] if 0 <= index < len(class_names) else ""

        noisy = self.is_noisy if with_truth else None
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for k in range(len(self)):
                row = [
                    int(self.ids[k]),
                    int(self.labels[k]),
                    int(self.table_class[k]),
                    f"{self.score[k]:.6g}",
                    f"{self.margin[k]:.6g}",
                    int(self.flagged[k]),
                ]
                if with_truth:
                    known = self.true_labels[k] >= 0
                    row += [int(self.true_labels[k]), int(noisy[k]) if known else ""]
                if class_names is not None:
                    row += [name(int(self.labels[k])), name(int(self.table_class[k]))]
                    row += [name(int(self.true_labels[k]))] if with_truth else []
                writer.writerow(row)

    def _take(self, order):
        values = {
            field.name: None
            if getattr(self, field.name) is None
            else getattr(self, field.name)[order]
            for field in dataclasses.fields(self)
        }
        return LabelAudit(**values)


def audit(model_or_table, labels, ids=None, true_labels=None, threshold=None):
    """Audits the given labels against a target table.

    Args:
        model_or_table: an `ELRModel` or `ELRPlusModel` (anything with
            `target_tables`, a list of tables, which are averaged, or with a
            `target_table`), or a `[num_examples, C]` array or tensor.
        labels: int `[n]` given labels of `ids`. With `ids=None`, the labels
            of every table row by id (e.g. `noisy_labels.npy` of a run
            directory); negative labels then mark unused ids, which are
            dropped.
        ids: int `[n]` table rows to audit, or None for all rows.
        true_labels: optional int `[n]` clean labels aligned with `labels`
            (-1: unknown).
        threshold: None to flag `argmax(T[i]) != y[i]` (ELR-SPEC §4), or a
            float in `[0, 1)` to flag `score > threshold`.

    Returns:
        A `LabelAudit`.
    """
    table = _as_table(model_or_table)
    num_rows, num_classes = table.shape
    labels = int_vector("labels", labels)
    if true_labels is not None:
        true_labels = int_vector("true_labels", true_labels, len(labels))
    if ids is None:
        if len(labels) != num_rows:
            raise ValueError(
                "With `ids=None`, `labels` must give one label per table row "
                f"({num_rows}). Received: len(labels)={len(labels)}"
            )
        keep = labels >= 0
        ids = np.flatnonzero(keep).astype(np.int64)
        labels = labels[keep]
        if true_labels is not None:
            true_labels = true_labels[keep]
    else:
        ids = int_vector("ids", ids, len(labels))
        if ids.size and (ids.min() < 0 or ids.max() >= num_rows):
            raise ValueError(
                f"`ids` must index table rows in [0, {num_rows}). Received: "
                f"min={ids.min()}, max={ids.max()}"
            )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` must be in [0, {num_classes}) (the table has {num_classes} "
            f"columns). Received: min={labels.min()}, max={labels.max()}"
        )
    if threshold is not None and not (
        isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    ):
        raise ValueError(f"`threshold` must be None or a float. Received: threshold={threshold!r}")

    rows = table[ids].astype(np.float64)
    totals = rows.sum(axis=1)
    seen = totals > 0
    shares = rows / np.where(seen, totals, 1.0)[:, None]
    given = shares[np.arange(len(ids)), labels]
    others = shares.copy()
    others[np.arange(len(ids)), labels] = -np.inf
    table_class = np.where(seen, rows.argmax(axis=1), -1).astype(np.int64)
    score = np.where(seen, 1.0 - given, np.nan)
    margin = np.where(seen, others.max(axis=1) - given, np.nan)
    if threshold is None:
        flagged = seen & (table_class != labels)
    else:
        flagged = seen & (np.nan_to_num(score, nan=-np.inf) > threshold)
    return LabelAudit(
        ids=ids,
        labels=labels,
        table_class=table_class,
        score=score,
        margin=margin,
        flagged=flagged,
        seen=seen,
        true_labels=true_labels,
    )


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
        threshold: as in `audit`.
        prefix: prefix of the log keys.

    Example:

    ```python
    callbacks = [
        AuditCallback(data.train.ids, data.train.labels, data.train.true_labels),
        keras.callbacks.CSVLogger("metrics.csv"),
    ]
    model.fit(train_ds, epochs=10, callbacks=callbacks)
    ```
    """

    def __init__(self, ids, labels, true_labels, threshold=None, prefix="audit_"):
        super().__init__()
        self.ids = int_vector("ids", ids)
        self.labels = int_vector("labels", labels, len(self.ids))
        self.true_labels = int_vector("true_labels", true_labels, len(self.ids))
        self.threshold = threshold
        self.prefix = prefix
        self.last_audit = None

    def on_epoch_end(self, epoch, logs=None):
        self.last_audit = audit(
            self.model, self.labels, self.ids, self.true_labels, threshold=self.threshold
        )
        if logs is not None:
            metrics = self.last_audit.metrics()
            for name in METRIC_NAMES:
                logs[f"{self.prefix}{name}"] = metrics[name]


def _as_table(source):
    # A model's tables are averaged (ELR+ has two); an object may also offer
    # a single `target_table`; anything else is the table itself.
    if hasattr(source, "target_tables"):
        tables = [_to_numpy(t) for t in source.target_tables]
        if not tables or any(t.shape != tables[0].shape for t in tables):
            raise ValueError(
                "`target_tables` must be a non-empty list of tables of one shape. "
                f"Received shapes: {[t.shape for t in tables]}"
            )
        table = np.mean(tables, axis=0)
    elif hasattr(source, "target_table"):
        table = _to_numpy(source.target_table)
    else:
        table = _to_numpy(source)
    if table.ndim != 2 or table.shape[1] < 2 or not np.issubdtype(table.dtype, np.floating):
        raise ValueError(
            "The target table must be a float [num_examples, num_classes >= 2] "
            f"array. Received: dtype={table.dtype}, shape={table.shape}"
        )
    return table


def _to_numpy(value):
    # Tensors and Keras/TF variables (mirrored ones included) all have
    # `.numpy()` in eager mode.
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)
