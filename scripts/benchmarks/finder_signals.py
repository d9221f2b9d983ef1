"""python scripts/benchmarks/finder_signals.py --flagfile=configs/fashion_mnist_sym.cfg \
    --arch=mini_cnn --num_train=3000 --epochs=15 --t0=15 \
    --grid=sym:0.2,sym:0.4,sym:0.6,sym:0.8,asym:0.4,idn:0.2,idn:0.4 --noise_seeds=1,2

Which signal lets the finder see the wrong labels: the study behind the
default of `find_label_issues` (docs/label_issues.md, "Why the neighbours").

For every noise setting of `--grid` and seed of `--noise_seeds`, on the
data `compare_cleanlab.py` uses, it trains ELR once (keeping the target
table of every epoch), takes the network's embedding of the training set,
and trains ELR on each half of the training set for the same epochs (the
out-of-sample probabilities of cross-fitting). Then it scores the same
noisy labels with each signal through `find_label_issues`:

  final table + margins, estimate  the finder without neighbours
  table at 1/3, pairs              the table early in training (self-confidence)
  out-of-sample halves, pairs      each half predicted by the other half's network
  neighbours alone, pairs          the 30 nearest neighbours' label shares
  table + neighbours, pairs        the default (with the margins)

and prints, per signal and setting, the mean over seeds of the flags' F1,
the score's AUROC and the error of the estimated count. No cleanlab needed.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_cleanlab  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from elr_tf.diagnostics import find_label_issues, neighbours  # noqa: E402
from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment.assemble import load_noisy_data  # noqa: E402

SIGNALS = (
    "final table + margins, estimate",
    "table at 1/3, pairs",
    "out-of-sample halves, pairs",
    "neighbours alone, pairs",
    "table + neighbours, pairs",
)


class TableSnapshots(keras.callbacks.Callback):
    """Keeps a copy of the target table's training rows after every epoch."""

    def __init__(self, ids):
        super().__init__()
        self.ids = ids
        self.tables = []

    def on_epoch_end(self, epoch, logs=None):
        self.tables.append(self.model.target_table.numpy()[self.ids])


def signals(config, k=neighbours.DEFAULT_NEIGHBOURS):
    """Trains one setting; returns `{signal: LabelAudit}`."""
    loaded = load_noisy_data(config)
    data = loaded[0]
    train = data.train
    snapshots = TableSnapshots(train.ids)
    run = compare_cleanlab._fit(config, loaded, extra_callbacks=[snapshots])
    features = neighbours.embeddings(run.model, run.eval_dataset(train))
    held_out_probs = compare_cleanlab._cross_validated_probs(config, loaded, folds=2)
    margins = run.model.average_margins.numpy()[train.ids]
    by_position = np.arange(len(train))

    def audit(rows, **options):
        return find_label_issues(
            rows, train.labels, ids=by_position, true_labels=train.true_labels, **options
        )

    early = snapshots.tables[len(snapshots.tables) // 3]
    voters = neighbours.neighbour_label_shares(features, train.labels, data.num_classes, k=k)
    final = snapshots.tables[-1]
    return {
        SIGNALS[0]: audit(final, margins=margins, flag="estimate"),
        SIGNALS[1]: audit(early),
        SIGNALS[2]: audit(held_out_probs),
        SIGNALS[3]: audit(voters),
        SIGNALS[4]: audit(final, margins=margins, embeddings=features, neighbours=k),
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = elr_flags.config_from_flags(_HOLDERS)
    try:
        settings = compare_cleanlab.parse_grid(_GRID.value)
        seeds = compare_cleanlab.parse_seeds(_SEEDS.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    figures = {}
    for kind, rate in settings:
        for seed in seeds:
            setting = dataclasses.replace(
                config,
                loss="elr",
                noise_rate=rate,
                noise=compare_cleanlab.GRID_KINDS[kind],
                asymmetric=False,
                seed=seed,
            )
            for name, report in signals(setting, k=config.audit_neighbours or 30).items():
                m = report.metrics()
                error = compare_cleanlab.count_error(m["num_estimated"], m["num_noisy"])
                figures.setdefault((name, (kind, rate)), []).append((m["f1"], m["auroc"], error))
                print(
                    f"{kind} {rate:g} seed {seed} {name}: F1 {m['f1']:.3f} "
                    f"AUROC {m['auroc']:.4f} count {error:+.0%}",
                    flush=True,
                )
    labels = [f"{kind} {rate:.0%}" for kind, rate in settings]
    print(f"\nF1 / AUROC / error of the count, means over seeds {seeds}")
    print(f"{'signal':<34}" + "".join(f"{label:>22}" for label in labels))
    for name in SIGNALS:
        cells = []
        for setting in settings:
            f1, auroc, error = np.mean(figures[(name, setting)], axis=0)
            cells.append(f"{f1:.3f} {auroc:.4f} {error:+4.0%}".rjust(22))
        print(f"{name:<34}" + "".join(cells))


if __name__ == "__main__":
    _HOLDERS = elr_flags.define_flags()
    _GRID = flags.DEFINE_string(
        "grid", "sym:0.2,sym:0.4,sym:0.6,sym:0.8,asym:0.4,idn:0.2,idn:0.4", "As compare_cleanlab."
    )
    _SEEDS = flags.DEFINE_list("noise_seeds", ["1", "2"], "Seeds; each draws its own noise.")
    flags.FLAGS.set_default("verbose", 0)
    app.run(main)
