"""python scripts/plot_memorization.py --runs=runs/ce,runs/elr --labels=CE,ELR \
    --out=memorization_ce_vs_elr.png

Overlays the memorisation curves of several of your runs in one figure.

Each run directory must hold the `memorization.csv` written by
`elr_tf.MemorizationMonitor`. Left panel: clean labels
(correct / incorrect); right panel: wrong labels (true class / memorised /
other); one line style per run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from elr_tf.diagnostics import memorization  # noqa: E402

_RUNS = flags.DEFINE_list("runs", None, "Run directories holding memorization.csv.")
_LABELS = flags.DEFINE_list("labels", None, "Legend label of each run (default: directory names).")
_OUT = flags.DEFINE_string("out", "memorization.png", "Output image (.png, .pdf, .svg).")
_TITLE = flags.DEFINE_string("title", None, "Figure title.")


def plot_runs(run_dirs, labels, out, title=None):
    """Reads each run's `memorization.csv` and draws them together."""
    labels = labels or [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(
            f"`--labels` must name each of the {len(run_dirs)} runs. Received: --labels="
            f"{','.join(labels)}"
        )
    runs = {}
    for label, run_dir in zip(labels, run_dirs):
        path = os.path.join(run_dir, memorization.CSV_NAME)
        if not os.path.exists(path):
            raise ValueError(f"No {memorization.CSV_NAME} in run directory {run_dir!r}")
        runs[label] = memorization.read_memorization_csv(path)
    memorization.plot_memorization(runs, out, title=title)
    return out


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _RUNS.value:
        raise app.UsageError("`--runs` must list at least one run directory.")
    try:
        out = plot_runs(_RUNS.value, _LABELS.value, _OUT.value, _TITLE.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
