"""Which classes the wrong labels come from and go to: counts and a heatmap.

A finder's list says which labels are wrong; users cleaning a data set also
ask *how* it is dirty. Label noise in real data sits between look-alike
classes (shirts labelled T-shirt, coats labelled pullover), so the
estimated number of wrong labels per (given label, suggested label) pair is
the picture of the noise. `plot_confusions` draws it as a heatmap and, when
the true labels are known (synthetic noise), the true (given label, true
label) counts beside it on the same colour scale.

Example:

```python
report = elr_tf.find_label_issues(model, y_train, true_labels=y_clean)
plot_confusions(report.pair_counts, "confusions.png", class_names=names,
                true_counts=true_pair_counts(report.labels, report.true_labels, 10))
```
"""

import numpy as np

from elr_tf import checks

FILE_NAME = "confusions.png"


def true_pair_counts(labels, true_labels, num_classes):
    """int64 `[C, C]`: examples given label `a` whose true label is `b != a`.

    Examples with an unknown true label (-1) are left out; the diagonal is
    zero.

    Example:

    >>> true_pair_counts([0, 0, 1, 1], [0, 1, 1, -1], 2)
    array([[0, 1],
           [0, 0]])
    """
    num_classes = checks.positive_int("num_classes", num_classes)
    labels = checks.int_vector("labels", labels)
    true_labels = checks.int_vector("true_labels", true_labels, len(labels))
    for name, values in (("labels", labels), ("true_labels", true_labels)):
        if values.size and values.max() >= num_classes:
            raise ValueError(
                f"`{name}` must be below num_classes={num_classes}. Received: max={values.max()}"
            )
    wrong = (true_labels >= 0) & (labels >= 0) & (labels != true_labels)
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels[wrong], true_labels[wrong]), 1)
    return counts


def plot_confusions(pair_counts, path, class_names=None, true_counts=None, title=None):
    """Draws the estimated (given x suggested) wrong-label counts as a heatmap.

    Args:
        pair_counts: `[C, C]` estimated counts, row the given label, column
            the suggested one (e.g. `LabelAudit.pair_counts`); the diagonal
            is not drawn.
        path: output image file (`.png`).
        class_names: optional names indexed by label.
        true_counts: optional `[C, C]` true (given x true label) counts,
            drawn beside the estimate on the same colour scale.
        title: optional title above both panels.
    """
    from matplotlib.figure import Figure

    panels = [("estimated", _check_square("pair_counts", pair_counts))]
    if true_counts is not None:
        true_counts = _check_square("true_counts", true_counts)
        if true_counts.shape != panels[0][1].shape:
            raise ValueError(
                "`true_counts` must have the shape of `pair_counts`, "
                f"{panels[0][1].shape}. Received shape={true_counts.shape}"
            )
        panels.append(("true", true_counts))
    size = panels[0][1].shape[0]
    names = [str(k) for k in range(size)]
    if class_names is not None:
        if len(class_names) != size:
            raise ValueError(
                f"`class_names` must name the {size} classes. Received {len(class_names)} names"
            )
        names = [str(name) for name in class_names]
    shown = [np.where(np.eye(size, dtype=bool), 0, counts) for _, counts in panels]
    top = max(1, max(int(counts.max()) for counts in shown))
    side = 1.0 + 0.45 * size
    figure = Figure(figsize=(side * len(panels) + 1.0, side + 0.8), layout="constrained")
    axes_row = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, (label, _), counts in zip(axes_row, panels, shown):
        image = axes.imshow(counts, cmap="Reds", vmin=0, vmax=top)
        axes.set_xticks(range(size), names, rotation=60, ha="right", fontsize=7)
        axes.set_yticks(range(size), names, fontsize=7)
        axes.set_xlabel("suggested label" if label == "estimated" else "true label")
        axes.set_ylabel("given label")
        axes.set_title(f"{label}: {int(counts.sum())} wrong labels", fontsize=9)
        if size <= 20:
            for (row, column), value in np.ndenumerate(counts):
                if row != column and value:
                    colour = "white" if value > top / 2 else "black"
                    axes.text(
                        column,
                        row,
                        f"{int(value)}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color=colour,
                    )
    figure.colorbar(image, ax=list(axes_row), shrink=0.8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=100)


def pair_count_error(pair_counts, true_counts):
    """How far an estimate of the wrong labels per pair is from the truth.

    The sum over the off-diagonal pairs `(a, b)` of `|estimated - true|`,
    divided by the true number of wrong labels (the sum of `true_counts`).
    0 is exact; a count that is right in total but splits a pair the wrong
    way (cat->dog for dog->cat) is penalised twice for every label it puts
    on the wrong side. NaN when there are no wrong labels.

    Example:

    >>> float(pair_count_error([[0, 3], [1, 0]], [[0, 2], [2, 0]]))
    0.5
    """
    estimated = _check_square("pair_counts", pair_counts).astype(np.float64)
    true = _check_square("true_counts", true_counts).astype(np.float64)
    if estimated.shape != true.shape:
        raise ValueError(
            "`pair_counts` and `true_counts` must have one shape. Received: "
            f"{estimated.shape} and {true.shape}"
        )
    off = ~np.eye(len(true), dtype=bool)
    total = true[off].sum()
    if total == 0:
        return float("nan")
    return float(np.abs(estimated - true)[off].sum() / total)


def top_pairs(pair_counts, class_names=None, count=5):
    """The `count` largest off-diagonal pairs, `[(given, suggested, n), ...]`."""
    counts = _check_square("pair_counts", pair_counts)
    size = counts.shape[0]
    off = np.where(np.eye(size, dtype=bool), 0, counts)
    order = np.argsort(-off, axis=None, kind="stable")[: max(int(count), 0)]

    def name(k):
        return str(class_names[k]) if class_names is not None else str(k)

    pairs = []
    for flat in order:
        given, suggested = divmod(int(flat), size)
        if off[given, suggested] > 0:
            pairs.append((name(given), name(suggested), int(off[given, suggested])))
    return pairs


def _check_square(name, counts):
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 2:
        raise ValueError(
            f"`{name}` must be a square [C, C] array with C >= 2. Received shape={counts.shape}"
        )
    if not np.issubdtype(counts.dtype, np.number) or not np.isfinite(counts).all():
        raise ValueError(f"`{name}` must hold finite numbers. Received dtype={counts.dtype}")
    if (counts < 0).any():
        raise ValueError(f"`{name}` must be non-negative. Received min={counts.min()}")
    return counts
