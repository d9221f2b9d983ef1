"""Watching memorisation of wrong labels happen, epoch by epoch.

Trained on noisy labels with cross-entropy, a network first predicts the
true class even for most wrongly-labelled examples ("early learning"), then
memorises their wrong labels. ELR prevents the second phase. The ELR paper's
figure 1 (seed README) shows it with two panels:

- clean labels: fraction predicted correctly / incorrectly;
- wrong labels: fraction predicted as the true class, as the wrong given
  label (memorised), or as neither (other).

`MemorizationMonitor` measures these fractions on the training examples after
every epoch, logs them, and draws the figure; `plot_memorization` overlays
several runs (see `scripts/plot_memorization.py`).

Example:

```python
monitor = MemorizationMonitor.from_examples(
    data.train, data, max_examples=10_000, batch_size=512, output_dir=run_dir
)
model.fit(train_ds, epochs=50, callbacks=[monitor, csv_logger])
# run_dir/memorization.csv, run_dir/memorization.png
```
"""

import csv
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from elr_tf import checks
from elr_tf.data import make_eval_dataset

CLEAN_KEYS = ("mem_clean_correct", "mem_clean_wrong")
NOISY_KEYS = ("mem_noisy_true", "mem_noisy_memorized", "mem_noisy_other")
KEYS = CLEAN_KEYS + NOISY_KEYS
CSV_NAME = "memorization.csv"
PNG_NAME = "memorization.png"

# Colours of the ELR paper's figure: green right, red memorised, blue other.
_STYLE = {
    "mem_clean_correct": ("correct", "tab:green"),
    "mem_clean_wrong": ("incorrect", "tab:blue"),
    "mem_noisy_true": ("true class", "tab:green"),
    "mem_noisy_memorized": ("memorised (wrong label)", "tab:red"),
    "mem_noisy_other": ("other class", "tab:blue"),
}
_LINESTYLES = ("-", "--", ":", "-.")


def memorization_fractions(predictions, labels, true_labels):
    """The five fractions of the memorisation figure.

    Examples whose true label is unknown (-1) are ignored. A group without
    examples (e.g. no wrong labels at 0% noise) has NaN fractions; each
    non-empty group's fractions sum to 1.

    Args:
        predictions: int `[n]` predicted classes.
        labels: int `[n]` given (training, possibly wrong) labels.
        true_labels: int `[n]` clean labels.

    Returns:
        dict of `KEYS` to floats.
    """
    predictions, labels, true_labels = (
        np.asarray(a, np.int64).reshape(-1) for a in (predictions, labels, true_labels)
    )
    if not len(predictions) == len(labels) == len(true_labels):
        raise ValueError(
            "`predictions`, `labels` and `true_labels` must have one length. Received: "
            f"{len(predictions)}, {len(labels)}, {len(true_labels)}"
        )
    known = true_labels >= 0
    clean = known & (labels == true_labels)
    noisy = known & (labels != true_labels)
    right = predictions == true_labels
    memorised = predictions == labels
    return {
        "mem_clean_correct": _fraction(right, clean),
        "mem_clean_wrong": _fraction(~right, clean),
        "mem_noisy_true": _fraction(right, noisy),
        "mem_noisy_memorized": _fraction(memorised, noisy),
        "mem_noisy_other": _fraction(~right & ~memorised, noisy),
    }


class MemorizationMonitor(keras.callbacks.Callback):
    """Tracks how many wrong labels the model memorises, each epoch.

    After every epoch it predicts the training examples (no augmentation,
    inference mode), adds the `KEYS` fractions (see
    `memorization_fractions`) to the logs and appends them to `history`,
    which it writes to `output_dir` as `memorization.csv` (every epoch) and
    `memorization.png` (at the end of training). Place it **before**
    `CSVLogger` in the callback list so that the fractions reach
    `metrics.csv` too.

    Three ways to give the examples:

    - `x` a `tf.data.Dataset` of `((images, ids), labels)` batches in a fixed
      order (e.g. `elr_tf.data.make_eval_dataset(data.train, data, bs,
      with_ids=True)`); `labels` are the noisy training labels, and
      `true_labels` (required) follows the same order.
    - `x` an array of model-ready inputs, with `labels` and `true_labels`
      arrays (and optional `ids`, recorded for reference only).
    - `MemorizationMonitor.from_examples(data.train, data, ...)`, which
      builds the dataset of a random subset (the usual way in this package).

    Args:
        x: dataset or input array, as above.
        labels: noisy labels (array form only; the dataset yields them).
        true_labels: int `[n]` clean labels (-1: unknown, ignored).
        ids: optional int `[n]` ids (array form).
        max_examples: predict only this many examples, a fixed random subset
            drawn once (`seed`); None for all. A dataset is still read in
            full (the subset is filtered out of it), so for file-backed data
            use `from_examples`, which reads only the subset.
        seed: seed of the subset.
        batch_size: prediction batch size (array form, and the re-batched
            subset of a dataset).
        output_dir: where to write `memorization.csv` (after every epoch,
            so that an interrupted run keeps its history) and
            `memorization.png` (at the end of training); None writes
            nothing.
        plot_every_epoch: also redraw the PNG after every epoch (for
            watching a long run; it costs about a tenth of a second).
        append: read an existing `memorization.csv` in `output_dir` first and
            continue it (use when resuming an interrupted run; epochs that
            are trained again replace their old rows).
        title: optional figure title.
    """

    def __init__(
        self,
        x,
        labels=None,
        true_labels=None,
        ids=None,
        *,
        max_examples=None,
        seed=0,
        batch_size=256,
        output_dir=None,
        plot_every_epoch=False,
        append=False,
        title=None,
    ):
        super().__init__()
        if true_labels is None:
            raise ValueError("`true_labels` is required: memorisation needs the clean labels.")
        if max_examples is not None:
            checks.positive_int("max_examples", max_examples)
        checks.positive_int("batch_size", batch_size)
        self.max_examples = max_examples
        self.seed = seed
        self.batch_size = batch_size
        self.output_dir = output_dir
        self.plot_every_epoch = plot_every_epoch
        self.title = title
        self.history = []
        self._true_labels = np.asarray(true_labels, np.int64).reshape(-1)
        if isinstance(x, tf.data.Dataset):
            if labels is not None or ids is not None:
                raise ValueError(
                    "`labels` and `ids` must be None when `x` is a dataset: it yields "
                    "((images, ids), labels)."
                )
            self._dataset = x
            self._ids = self._labels = self._inputs = None
        else:
            if labels is None:
                raise ValueError("`labels` is required when `x` is an array.")
            n = len(x)
            self._inputs = x
            self._labels = np.asarray(labels, np.int64).reshape(-1)
            self._ids = np.arange(n) if ids is None else np.asarray(ids, np.int64).reshape(-1)
            for name, values in (("labels", self._labels), ("ids", self._ids)):
                _check_length(name, values, n)
            _check_length("true_labels", self._true_labels, n)
            self._dataset = None
        self._positions = None
        self._predict_ds = None
        if append and output_dir and os.path.exists(os.path.join(output_dir, CSV_NAME)):
            self.history = read_memorization_csv(os.path.join(output_dir, CSV_NAME))

    @classmethod
    def from_examples(
        cls, example_set, data, *, max_examples=10_000, seed=0, batch_size=256, **kwargs
    ):
        """Monitors (a random subset of) an `ExampleSet` of `data`.

        Only examples with a known true label are eligible; the subset is
        chosen *before* the input pipeline is built, so that file-backed
        sets (Clothing1M) read only the monitored images each epoch.

        Args:
            example_set: e.g. `data.train`; its `true_labels` must be known
                for at least one example.
            data: the `elr_tf.data.NoisyData` it belongs to.
            max_examples: size of the subset; None for all.
            seed: seed of the subset.
            batch_size: prediction batch size.
            **kwargs: other `MemorizationMonitor` arguments (`output_dir`,
                `append`, ...).

        Returns:
            A `MemorizationMonitor` reading `make_eval_dataset(subset, data,
            batch_size, with_ids=True)`.
        """
        true = example_set.true_labels
        if true is None or not (true >= 0).any():
            raise ValueError(
                "`example_set` has no known true labels, so memorisation cannot be measured."
            )
        positions = np.flatnonzero(true >= 0)
        if max_examples is not None and max_examples < len(positions):
            rng = np.random.default_rng(seed)
            positions = np.sort(rng.choice(positions, max_examples, replace=False))
        subset = example_set.subset(positions)
        dataset = make_eval_dataset(subset, data, batch_size, with_ids=True)
        return cls(dataset, true_labels=subset.true_labels, batch_size=batch_size, **kwargs)

    @property
    def ids(self):
        """Ids of the monitored examples (after subsampling)."""
        self._prepare()
        return self._ids[self._positions]

    def on_epoch_end(self, epoch, logs=None):
        self._prepare()
        logits = self.model.predict(self._predict_ds, verbose=0)
        predictions = np.asarray(logits).argmax(axis=-1)
        fractions = memorization_fractions(
            predictions,
            self._labels[self._positions],
            self._true_labels[self._positions],
        )
        if logs is not None:
            logs.update(fractions)
        self.history = [row for row in self.history if row["epoch"] < epoch]
        self.history.append({"epoch": epoch, **fractions})
        self.write(plot=self.plot_every_epoch)

    def on_train_end(self, logs=None):
        self.write()

    def write(self, plot=True):
        """Writes `memorization.csv` (and `memorization.png`) to `output_dir`."""
        if not self.output_dir or not self.history:
            return
        os.makedirs(self.output_dir, exist_ok=True)
        write_memorization_csv(os.path.join(self.output_dir, CSV_NAME), self.history)
        if not plot:
            return
        try:
            plot_memorization(
                {None: self.history}, os.path.join(self.output_dir, PNG_NAME), title=self.title
            )
        except ImportError as error:
            # A missing plotting library must not fail a finished run.
            logging.warning("memorization.png not written: %s", error)

    def _prepare(self):
        if self._positions is not None:
            return
        if self._dataset is not None:
            ids, labels = [], []
            id_labels = self._dataset.map(lambda x, y: (x[1], y))
            for batch_ids, batch_labels in id_labels.as_numpy_iterator():
                ids.append(batch_ids)
                labels.append(batch_labels)
            self._ids = np.concatenate(ids).astype(np.int64)
            self._labels = np.concatenate(labels).astype(np.int64)
            _check_length("true_labels", self._true_labels, len(self._ids), "the dataset")
        n = len(self._ids)
        if self.max_examples is not None and self.max_examples < n:
            rng = np.random.default_rng(self.seed)
            self._positions = np.sort(rng.choice(n, self.max_examples, replace=False))
        else:
            self._positions = np.arange(n)
        self._predict_ds = self._make_predict_dataset(n)

    def _make_predict_dataset(self, n):
        if self._dataset is None:
            images = self._inputs
            if len(self._positions) < n:
                images = np.asarray(images)[self._positions]
            return tf.data.Dataset.from_tensor_slices(images).batch(self.batch_size)
        images = self._dataset.map(lambda x, y: x[0])
        if len(self._positions) == n:
            return images
        keep = np.zeros(n, bool)
        keep[self._positions] = True
        keep = tf.constant(keep)
        return (
            images.unbatch()
            .enumerate()
            .filter(lambda i, _: tf.gather(keep, i))
            .map(lambda _, image: image)
            .batch(self.batch_size)
            # `filter` hides the size, and Keras warns when a dataset of
            # unknown size runs out; the size is known here.
            .apply(
                tf.data.experimental.assert_cardinality(-(-len(self._positions) // self.batch_size))
            )
            .prefetch(tf.data.AUTOTUNE)
        )


def write_memorization_csv(path, history):
    """Writes history rows (`epoch` plus `KEYS`) as CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=("epoch",) + KEYS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({"epoch": int(row["epoch"]), **{k: f"{row[k]:.6g}" for k in KEYS}})


def read_memorization_csv(path):
    """Reads a `memorization.csv` back into a list of row dicts."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [k for k in ("epoch",) + KEYS if rows and k not in rows[0]]
    if missing:
        raise ValueError(f"{path} is not a memorization.csv: it lacks columns {missing}")
    return [{"epoch": int(row["epoch"]), **{k: float(row[k]) for k in KEYS}} for row in rows]


def plot_memorization(runs, path, title=None):
    """Draws the two-panel memorisation figure, one line style per run.

    Args:
        runs: dict of run label (None for a single unlabelled run) to its
            history rows (as `MemorizationMonitor.history` or
            `read_memorization_csv`). Colours mark the outcome (green right,
            red memorised, blue other), line styles the run.
        path: output image file (the format follows the extension).
        title: optional figure title.
    """
    # The object-oriented API draws with Agg without touching pyplot's
    # global backend, so this is safe inside any program.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    clean_axes, noisy_axes = figure.subplots(1, 2, sharey=True)
    for index, (label, rows) in enumerate(runs.items()):
        linestyle = _LINESTYLES[index % len(_LINESTYLES)]
        epochs = [row["epoch"] + 1 for row in rows]
        for axes, keys in ((clean_axes, CLEAN_KEYS), (noisy_axes, NOISY_KEYS)):
            for key in keys:
                name, colour = _STYLE[key]
                axes.plot(
                    epochs,
                    [row[key] for row in rows],
                    color=colour,
                    linestyle=linestyle,
                    label=name if label is None else f"{label}: {name}",
                )
    clean_axes.set_title("Clean labels")
    noisy_axes.set_title("Wrong labels")
    clean_axes.set_ylabel("fraction of examples")
    for axes in (clean_axes, noisy_axes):
        axes.set_xlabel("epoch")
        axes.set_ylim(0.0, 1.0)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if len(runs) > 1:
            # Below the panel, one column per run: inside, it hides curves.
            axes.legend(
                fontsize="small",
                loc="upper center",
                bbox_to_anchor=(0.5, -0.15),
                ncol=len(runs),
            )
        else:
            axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)


def _fraction(hit, group):
    count = np.count_nonzero(group)
    return float(np.count_nonzero(hit & group) / count) if count else float("nan")


def _check_length(name, values, n, what="`x`"):
    if len(values) != n:
        raise ValueError(
            f"`{name}` must have one entry per example of {what} ({n}). "
            f"Received: length {len(values)}"
        )
