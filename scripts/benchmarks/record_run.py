"""python scripts/benchmarks/record_run.py --run=runs/cifar10n_cpu --setting="alone, 2 cores" \
    --out=docs/cifar10n.jsonl

Appends one finished run of `scripts/train.py` to a JSON-lines file of
results, so that a figure reported in the docs keeps its command and its
setting beside it.

The record holds the run's flags (`flags.cfg`, which reruns it), its
summary figures (final and best test accuracy, the realised noise, seconds
per epoch, the label-issue count and detection metrics when known), the
test accuracy after every epoch (`metrics.csv`), the memorisation curve
when the run wrote one (`memorization.csv`), the seconds its epochs and
their diagnostics took, the whole command's wall time when given, and the
free-text `--setting` (what shared the cores, the machine), which no file
of the run can tell.
"""

import csv
import json
import os

from absl import app, flags

_RUN = flags.DEFINE_string("run", None, "Run directory of scripts/train.py.", required=True)
_OUT = flags.DEFINE_string("out", None, "JSON-lines file to append to.", required=True)
_SETTING = flags.DEFINE_string(
    "setting", None, "What shared the cores, the machine, ...", required=True
)
_NOTE = flags.DEFINE_string("note", "", "Anything else the record should carry.")
_WALL = flags.DEFINE_float(
    "wall_seconds", None, "The whole command's wall time, start to exit, if you timed it."
)

_SUMMARY_FIELDS = (
    "dataset",
    "arch",
    "loss",
    "epochs",
    "final_test_accuracy",
    "best_test_accuracy",
    "noise_rate_realised",
    "seconds_per_epoch",
    "extras_seconds_per_epoch",
    "num_train",
    "label_detection",
)


def _rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(value):
    return None if value in (None, "", "NA", "nan") else float(value)


def record(run_dir, setting, note="", wall_seconds=None):
    """The record of `run_dir` (module docstring), as a dict."""
    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(summary_path):
        raise ValueError(f"`--run`={run_dir!r} has no summary.json: is the run finished?")
    with open(summary_path) as f:
        summary = json.load(f)
    with open(os.path.join(run_dir, "flags.cfg")) as f:
        flag_lines = [line.strip() for line in f if line.startswith("--")]
    metrics = _rows(os.path.join(run_dir, "metrics.csv"))
    seconds = [_number(row.get("seconds")) or 0.0 for row in metrics]
    extras = [_number(row.get("extras_seconds")) or 0.0 for row in metrics]
    result = {
        "run": os.path.basename(os.path.normpath(run_dir)),
        "setting": setting,
        "flags": flag_lines,
        **{key: summary.get(key) for key in _SUMMARY_FIELDS},
        "label_issues_estimated": (summary.get("label_issues") or {}).get("num_estimated"),
        # Training and per-epoch diagnostics; not loading, compiling or the final files.
        "epoch_seconds": round(sum(seconds) + sum(extras), 1),
        "wall_seconds": wall_seconds,
        "test_accuracy_per_epoch": [_number(row.get("test_accuracy")) for row in metrics],
        "memorization": _rows(os.path.join(run_dir, "memorization.csv")),
    }
    if note:
        result["note"] = note
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        line = json.dumps(record(_RUN.value, _SETTING.value, _NOTE.value, _WALL.value))
    except (OSError, ValueError) as error:
        raise SystemExit(f"record_run.py: {error}") from None
    with open(_OUT.value, "a") as f:
        f.write(line + "\n")
    print(line[:300])


if __name__ == "__main__":
    app.run(main)
