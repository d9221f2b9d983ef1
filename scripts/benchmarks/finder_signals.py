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
  table + neighbours, pairs        the final table beside the neighbours (with the margins)
  mean table, pairs                the table averaged over the epochs
  mean table + neighbours, pairs   the same, beside the neighbours (with the margins)
  the default, pairs               find_label_issues on the run: the mean table beside
                                   the neighbours, its count from the mean table alone
                                   when the final table lost a fifth of its count

and prints, per signal and setting, the mean over seeds of the flags' F1,
the score's AUROC, the error of the estimated count and the error of its
split over the (given, true) pairs (`confusions.pair_count_error`), then
the count the table's confident joint estimates after every epoch.
`--nohalves` skips the two extra trainings of the out-of-sample signal.
A `cifar10n:SET` setting reads CIFAR-10N's human label set SET, as in
`compare_cleanlab.py`:

python scripts/benchmarks/finder_signals.py --flagfile=configs/cifar10n_cpu.cfg \
    --data_dir=DIR --num_train=10000 --grid=cifar10n:worst --noise_seeds=1 --nohalves

No cleanlab needed.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_cleanlab  # noqa: E402
import fitting  # noqa: E402
import numpy as np  # noqa: E402
import run_arrays  # noqa: E402
from absl import app, flags  # noqa: E402

from elr_tf.diagnostics import find_label_issues, issue_count, neighbours, tables  # noqa: E402
from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment.assemble import load_noisy_data  # noqa: E402

SIGNALS = (
    "final table + margins, estimate",
    "table at 1/3, pairs",
    "out-of-sample halves, pairs",
    "neighbours alone, pairs",
    "table + neighbours, pairs",
    "mean table, pairs",
    "mean table + neighbours, pairs",
    "the default, pairs",
)
HALVES = SIGNALS[2]


def signals(config, k=neighbours.DEFAULT_NEIGHBOURS, halves=True):
    """Trains one setting; returns `({signal: LabelAudit}, per-epoch counts)`."""
    loaded = load_noisy_data(config)
    data = loaded[0]
    train = data.train
    snapshots = run_arrays.TableSnapshots(train.ids)
    run = fitting.fit(config, loaded, extra_callbacks=[snapshots])
    features = neighbours.embeddings(run.model, run.eval_dataset(train))
    margins = run.model.average_margins.numpy()[train.ids]
    by_position = np.arange(len(train))

    def audit(rows, **options):
        return find_label_issues(
            rows, train.labels, ids=by_position, true_labels=train.true_labels, **options
        )

    early = snapshots.tables[len(snapshots.tables) // 3]
    voters = neighbours.neighbour_label_shares(features, train.labels, data.num_classes, k=k)
    final = snapshots.tables[-1]
    mean = run_arrays.averaged(snapshots.tables)
    reports = {
        SIGNALS[0]: audit(final, margins=margins, flag="estimate"),
        SIGNALS[1]: audit(early),
        SIGNALS[3]: audit(voters),
        SIGNALS[4]: audit(final, margins=margins, embeddings=features, neighbours=k),
        SIGNALS[5]: audit(mean),
        SIGNALS[6]: audit(mean, margins=margins, embeddings=features, neighbours=k),
        SIGNALS[7]: audit(
            final, mean_table=mean, margins=margins, embeddings=features, neighbours=k
        ),
    }
    if halves:
        reports[HALVES] = audit(fitting.cross_validated_probs(config, loaded, folds=2))
    counts = [
        int(issue_count.estimate_issue_counts(tables.shares(table)[0], train.labels).sum())
        for table in snapshots.tables
    ]
    return reports, counts


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
    for setting in settings:
        for seed in seeds:
            run_config = dataclasses.replace(
                compare_cleanlab.setting_config(config, setting, seed), loss="elr"
            )
            reports, counts = signals(
                run_config,
                k=config.audit_neighbours or neighbours.DEFAULT_NEIGHBOURS,
                halves=_HALVES.value,
            )
            label = compare_cleanlab.setting_label(setting)
            names = [name for name in SIGNALS if name in reports]
            for name in names:
                m = reports[name].metrics()
                error = compare_cleanlab.count_error(m["num_estimated"], m["num_noisy"])
                pairs = m.get("pair_error", np.nan)
                row = (m["f1"], m["auroc"], error, pairs)
                figures.setdefault((name, setting), []).append(row)
                print(
                    f"{label} seed {seed} {name}: F1 {m['f1']:.3f} AUROC {m['auroc']:.4f} "
                    f"count {error:+.0%} pairs {pairs:.0%}",
                    flush=True,
                )
            print(f"{label} seed {seed} table count per epoch: {counts}", flush=True)
    labels = [compare_cleanlab.setting_label(setting) for setting in settings]
    print(f"\nF1 / AUROC / error of the count / per-pair error, means over seeds {seeds}")
    print(f"{'signal':<34}" + "".join(f"{label:>28}" for label in labels))
    for name in names:
        cells = []
        for setting in settings:
            f1, auroc, error, pairs = np.mean(figures[(name, setting)], axis=0)
            cells.append(f"{f1:.3f} {auroc:.4f} {error:+4.0%} {pairs:4.0%}".rjust(28))
        print(f"{name:<34}" + "".join(cells))


if __name__ == "__main__":
    _HOLDERS = elr_flags.define_flags()
    _GRID = flags.DEFINE_string(
        "grid", "sym:0.2,sym:0.4,sym:0.6,sym:0.8,asym:0.4,idn:0.2,idn:0.4", "As compare_cleanlab."
    )
    _SEEDS = flags.DEFINE_list("noise_seeds", ["1", "2"], "Seeds; each draws its own noise.")
    _HALVES = flags.DEFINE_bool(
        "halves", True, "Also train on each half for the out-of-sample signal."
    )
    flags.FLAGS.set_default("verbose", 0)
    app.run(main)
