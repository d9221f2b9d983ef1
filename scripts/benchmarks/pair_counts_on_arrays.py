"""python scripts/benchmarks/pair_counts_on_arrays.py DIR/*.npz [--runs=RUN,...]

How far the estimated wrong labels per (given label, true class) pair are
from the truth under other counting rules, measured on the runs
`compare_cleanlab.py --arrays_dir=DIR` kept (`run_arrays`), without
training. For every rule, per setting (the file name without its seed),
the mean over the files of:

- `pairs`: the per-pair error (`confusions.pair_count_error`, what the
  finder reports);
- `rows`: the part of it that the per-given-label totals already carry,
  `sum_y |estimated_y - true_y| / wrong`, where `estimated_y` is the
  row sum: a rule can only split a row across pairs once its total is
  right;
- `count`: the total's error.

The rules:

- `default`: what `find_label_issues` counts (the averaged table,
  calibrated, on a memorising run);
- `final table`: the calibrated confident joint of the table the run
  ended with;
- `averaged table, calibrated`: the calibrated confident joint of the
  averaged table, without the neighbours: what the default counts on a
  memorising run, applied to every run;
- `label prior removed`: the averaged table with every class column
  divided by the share of examples given that label (rows renormalised),
  then calibrated: a network trained on the given labels leans toward
  the labels given more often;
- `pairs split evenly`: every symmetric pair of the default's counts
  replaced by their mean, `(J + J.T) / 2`, as if every confusion went both
  ways equally;
- `confident joint of cleanlab's`: the calibrated confident joint of
  cleanlab's out-of-sample probabilities, when the run kept them;
- two bounds that read the truth, which no finder has: `true class totals`
  (the default's counts scaled, by iterative proportional fitting, to the
  given-label totals along rows and the true class totals along columns)
  and `best epoch` (the epoch whose table's calibrated count is nearest).

`--runs` also reads `scripts/train.py` run directories (trained with the
averaged table kept and the true labels known): the default's counts from
their `summary.json`, the tables from `model.keras`.
Such a run keeps no per-epoch tables: its "best epoch" is its final table.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import run_arrays  # noqa: E402
from absl import app, flags  # noqa: E402

from elr_tf.diagnostics import confusions, find_label_issues, issue_count, tables  # noqa: E402

DEFAULT = "default"
CALIBRATED = "averaged table, calibrated"
BOUNDS = ("true class totals (bound)", "best epoch (bound)")


def rules(arrays):
    """`{rule: [C, C] estimated pair counts}` of one kept run, and the true counts."""
    labels, true_labels = arrays["labels"], arrays["true_labels"]
    averaged = arrays.get("mean_table")
    averaged = run_arrays.averaged(arrays["tables"]) if averaged is None else averaged
    report = find_label_issues(
        arrays["tables"][-1],
        labels,
        true_labels=true_labels,
        mean_table=averaged,
        margins=arrays["margins"],
        embeddings=arrays["embeddings"],
    )
    return counted_by_rule(
        labels,
        true_labels,
        report.pair_counts,
        averaged,
        arrays["tables"],
        arrays.get("pred_probs"),
    )


def run_rules(run_dir):
    """`rules` of a `scripts/train.py` run, from the files it wrote.

    The default's counts are the run's own (`summary.json`); the final and
    the averaged table come from `model.keras` (ELR+: the mean of its
    two). The run keeps no per-epoch tables, so its "best epoch" is the
    final one.
    """
    import keras

    with open(os.path.join(run_dir, "summary.json")) as f:
        default = np.asarray(json.load(f)["label_issues"]["pair_counts"])
    labels = np.load(os.path.join(run_dir, "noisy_labels.npy"))
    true_labels = np.load(os.path.join(run_dir, "true_labels.npy"))
    used = (labels >= 0) & (true_labels >= 0)
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    averaged = tables.mean_table(model)
    if averaged is None:
        raise ValueError(
            f"{run_dir}: the model kept no averaged table (trained with "
            "--notrack_table_mean); the rules read it."
        )
    final = tables.final_table(model)[used]
    return counted_by_rule(labels[used], true_labels[used], default, averaged[used], final[None])


def counted_by_rule(labels, true_labels, default, averaged, per_epoch, pred_probs=None):
    """The counts of every rule (module docstring) and the true counts.

    Args:
        labels, true_labels: int `[n]` given and true labels.
        default: `[C, C]` the finder's own pair counts.
        averaged: `[n, C]` the table averaged over training.
        per_epoch: `[E, n, C]` the table after each epoch, the last the
            final one.
        pred_probs: optional `[n, C]` cleanlab's out-of-sample
            probabilities.
    """
    averaged = tables.shares(averaged)[0]
    finals = [tables.shares(table)[0] for table in per_epoch]
    num_classes = averaged.shape[1]
    truth = confusions.true_pair_counts(labels, true_labels, num_classes)
    given = np.bincount(labels, minlength=num_classes)
    unleaned = averaged / np.maximum(given, 1)[None, :]
    unleaned /= unleaned.sum(axis=1, keepdims=True)
    counted = {
        DEFAULT: default,
        "final table": issue_count.estimate_pair_counts(finals[-1], labels, calibrate=True),
        CALIBRATED: issue_count.estimate_pair_counts(averaged, labels, calibrate=True),
        "label prior removed": issue_count.estimate_pair_counts(unleaned, labels, calibrate=True),
        "pairs split evenly": (default + default.T) / 2,
    }
    if pred_probs is not None:
        counted["confident joint of cleanlab's"] = issue_count.estimate_pair_counts(
            pred_probs, labels, calibrate=True
        )
    true_totals = np.bincount(true_labels, minlength=num_classes)
    counted[BOUNDS[0]] = fit_totals(default, given, true_totals)
    each = [issue_count.estimate_pair_counts(table, labels, calibrate=True) for table in finals]
    counted[BOUNDS[1]] = min(each, key=lambda c: confusions.pair_count_error(c, truth))
    return counted, truth


def fit_totals(pair_counts, given_totals, true_totals, iterations=200):
    """Off-diagonal counts scaled so the joint has the given row and column totals.

    The joint is the pair counts with the diagonal filled so each row sums
    to its given-label total; iterative proportional fitting then scales it
    to `given_totals` along rows and `true_totals` along columns.

    Example:

    >>> np.round(fit_totals([[0, 2], [2, 0]], np.array([10, 10]), np.array([8, 12])), 2)
    array([[0.  , 3.18],
           [1.18, 0.  ]])
    """
    joint = np.asarray(pair_counts, np.float64).copy()
    np.fill_diagonal(joint, 0)
    np.fill_diagonal(joint, np.maximum(given_totals - joint.sum(axis=1), 0))
    joint += 1e-9
    for _ in range(iterations):
        joint *= (given_totals / joint.sum(axis=1))[:, None]
        joint *= (true_totals / joint.sum(axis=0))[None, :]
    np.fill_diagonal(joint, 0)
    return joint


def errors(estimated, truth):
    """`(pairs, rows, count)` errors of `estimated` pair counts against `truth`."""
    wrong = truth.sum()
    rows = np.abs(estimated.sum(axis=1) - truth.sum(axis=1)).sum() / wrong
    return confusions.pair_count_error(estimated, truth), rows, estimated.sum() / wrong - 1


def main(argv, runs=()):
    if len(argv) < 2 and not runs:
        raise app.UsageError(
            "Give the .npz files compare_cleanlab.py --arrays_dir wrote, or --runs."
        )
    measured = [
        (os.path.basename(path).rsplit("_seed", 1)[0], rules(run_arrays.load(path)))
        for path in argv[1:]
    ]
    measured += [(os.path.basename(os.path.normpath(run)), run_rules(run)) for run in runs or ()]
    groups = {}
    for setting, (counted, truth) in measured:
        for name, estimated in counted.items():
            groups.setdefault(setting, {}).setdefault(name, []).append(errors(estimated, truth))
    # Run directories' names can be long: the column fits the longest.
    width = max([18] + [len(setting) + 2 for setting in groups])
    print(f"{'setting':<{width}}{'rule':<30}{'pairs':>7}{'rows':>7}{'count':>7}  runs")
    for setting, by_rule in groups.items():
        for name, rows in by_rule.items():
            pairs, row_error, count = np.mean(rows, axis=0)
            cells = f"{pairs:7.0%}{row_error:7.0%}{count:+7.0%}  {len(rows)}"
            print(f"{setting:<{width}}{name:<30}{cells}")


if __name__ == "__main__":
    _RUNS = flags.DEFINE_list(
        "runs", None, "Also read these scripts/train.py run directories (module docstring)."
    )
    app.run(lambda argv: main(argv, _RUNS.value))
