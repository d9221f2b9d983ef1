"""python scripts/benchmarks/finder_on_runs.py RUN_DIR [RUN_DIR ...]

The label finder as it is now, on runs `scripts/train.py` finished, without
training: for every run directory, its model (`model.keras`) and its data
(`config.json`: the same files, labels and noise) are loaded again, the
embedding of its training examples is computed once, and
`find_label_issues` audits them with the run's own `--audit_*` settings
(`experiment.outputs.audit`, what the run did at its end). Prints the
figures beside the ones the run wrote in its `summary.json`, so that a
change to the finder is measured on long runs without running them again:
F1, AUROC, the estimated count and its error, the per-pair error, and the
report's `count_lost`, `unplaced` and `count_source`.

The runs must know their true labels (synthetic noise, or a label file with
the truth beside it such as CIFAR-10N), and their data must be where
`config.json` says; a run that does not is refused in one line, by name.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
from absl import app  # noqa: E402
from grid_settings import count_error  # noqa: E402

from elr_tf.data import make_eval_dataset  # noqa: E402
from elr_tf.experiment import assemble, outputs  # noqa: E402
from elr_tf.experiment.config import TrainConfig  # noqa: E402
from elr_tf.experiment.flags import user_errors  # noqa: E402


def audit_run(run_dir):
    """`(now, then, report)`: the finder's figures now and the run's own, and the report.

    Each figures dict holds `f1`, `auroc`, `num_estimated`, `num_noisy` and
    `pair_error` (`LabelAudit.metrics`); `then` is the run's
    `summary.json` `label_detection`.
    """
    with open(os.path.join(run_dir, "summary.json")) as f:
        then = json.load(f).get("label_detection")
    if not then:
        raise ValueError(
            f"{run_dir}: its summary.json has no label_detection (the run did not "
            "know its true labels); the finder cannot be measured on it."
        )
    with open(os.path.join(run_dir, "config.json")) as f:
        config = TrainConfig.from_dict(json.load(f))
    data, _ = assemble.load_noisy_data(config)
    keras.mixed_precision.set_global_policy(config.precision)
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    train_eval = make_eval_dataset(data.train, data, assemble.eval_batch_size(config))
    report = outputs.audit(
        model, data, config.audit_neighbours, train_eval, outputs.audit_keywords(config)
    )
    return report.metrics(), then, report


def row(figures):
    """The printed cells of one figures dict."""
    error = count_error(figures["num_estimated"], figures["num_noisy"])
    return (
        f"{figures['f1']:7.3f}{figures['auroc']:8.4f}{figures['num_estimated']:10d}"
        f"{error:+7.0%}{figures.get('pair_error', float('nan')):7.0%}"
    )


def main(argv):
    runs = argv[1:]
    if not runs:
        raise app.UsageError("Give the scripts/train.py run directories to audit again.")
    width = max(len(os.path.basename(os.path.normpath(run))) for run in runs) + 2
    header = f"{'F1':>7}{'AUROC':>8}{'estimated':>10}{'count':>7}{'pairs':>7}"
    print(f"{'run':<{width}}{'finder':<8}{header}  wrong  count from", flush=True)
    for run in runs:
        # A run that cannot be audited (no truth, data moved) is one line.
        with user_errors():
            now, then, report = audit_run(run)
        name = os.path.basename(os.path.normpath(run))
        lost = "none" if report.count_lost is None else f"{report.count_lost:.2f}"
        print(f"{name:<{width}}{'run':<8}{row(then)}  {then['num_noisy']}")
        print(
            f"{'':<{width}}{'now':<8}{row(now)}  {now['num_noisy']}  {report.count_source} "
            f"(count_lost {lost}, unplaced {report.unplaced:.3f})",
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
