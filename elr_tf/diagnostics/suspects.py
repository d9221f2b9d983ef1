"""A picture of the most suspicious training labels, to check by eye.

Numbers say how well a finder ranks wrong labels when the truth is known;
with real data it is not, and a person has to look. `plot_suspects` draws
the top of a `find_label_issues` report as a grid of the training images,
each captioned with its given label, the label the run suggests (the target
table's class) and the score. When the true labels are known (synthetic
noise), captions of labels that really are wrong are red and the true class
is added, so the grid also shows what the finder gets right.
"""

import numpy as np
import tensorflow as tf

from elr_tf import checks
from elr_tf.data.augment import decode_image_file

FILE_NAME = "suspects.png"
# Thumbnails of file-backed images are resized to this many pixels a side.
_THUMBNAIL = 96


def suspect_images(example_set, ids):
    """The images of `ids`, uint8 `[H, W, C]` each, from memory or files.

    Args:
        example_set: the `ExampleSet` that holds the ids (e.g. `data.train`).
        ids: int ids, each one of `example_set.ids`.

    Returns:
        A list of uint8 arrays (file-backed images resized so that their
        longer side is 96 pixels).
    """
    ids = checks.int_vector("ids", ids)
    position_of = {int(i): k for k, i in enumerate(example_set.ids)}
    missing = [int(i) for i in ids if int(i) not in position_of]
    if missing:
        raise ValueError(
            f"`ids` must be ids of the example set. Received ids not in it: {missing[:5]}"
        )
    positions = [position_of[int(i)] for i in ids]
    if not example_set.file_backed:
        return [example_set.features[k] for k in positions]
    images = []
    for k in positions:
        image = decode_image_file(str(example_set.paths[k]))
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        size = tf.cast(tf.round(shape * _THUMBNAIL / tf.reduce_max(shape)), tf.int32)
        image = tf.image.resize(image, tf.maximum(size, 1), antialias=True)
        images.append(np.clip(image.numpy(), 0, 255).astype(np.uint8))
    return images


def plot_suspects(report, example_set, path, class_names=None, count=64, columns=8):
    """Draws the `count` most suspicious examples of `report` as a grid.

    Args:
        report: a `LabelAudit` (e.g. from `find_label_issues`); it is ranked
            here, so any order will do. Unseen examples are left out.
        example_set: the `ExampleSet` holding the images of its ids.
        path: output image file (`.png`).
        class_names: optional names indexed by label.
        count: how many examples, at most.
        columns: images per row.

    Returns:
        The ids drawn, most suspicious first.
    """
    from matplotlib.figure import Figure

    checks.positive_int("count", count)
    checks.positive_int("columns", columns)
    ranked = report.ranked()
    keep = np.flatnonzero(ranked.seen)[:count]
    ids = ranked.ids[keep]
    images = suspect_images(example_set, ids)

    def name(label):
        label = int(label)
        if class_names is not None and 0 <= label < len(class_names):
            return str(class_names[label])
        return str(label)

    rows = max(1, -(-len(ids) // columns))
    figure = Figure(figsize=(1.9 * columns, 2.25 * rows + 0.5), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for slot, (k, image) in enumerate(zip(keep, images)):
        axes = grid.flat[slot]
        grey = image.shape[-1] == 1
        axes.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None)
        caption = (
            f"given: {name(ranked.labels[k])}\n"
            f"suggested: {name(ranked.table_class[k])}\n"
            f"score {ranked.score[k]:.3f}"
        )
        colour = "black"
        if ranked.true_labels is not None and ranked.true_labels[k] >= 0:
            wrong = ranked.true_labels[k] != ranked.labels[k]
            colour = "tab:red" if wrong else "black"
            caption += f"  (true: {name(ranked.true_labels[k])})"
        axes.set_title(caption, fontsize=7, color=colour, loc="left")
    note = "red: the given label is indeed wrong" if ranked.true_labels is not None else ""
    figure.suptitle(
        f"The {len(ids)} most suspicious training labels ({ranked.score_name} score, "
        f"{np.count_nonzero(ranked.flagged)} flagged). {note}",
        fontsize=10,
    )
    figure.savefig(path, dpi=100)
    return ids
