"""python scripts/benchmarks/finder_on_arrays.py DIR/*.npz

The label finder measured again on runs `compare_cleanlab.py --arrays_dir=DIR`
kept (`run_arrays`), without training: for every file, the finder as it is
now (`find_label_issues` with the table averaged over training, the
averaged margins and the 30 nearest neighbours in the run's embedding), the
finder on the final table (`table="final"`, the default before the average
was kept), and, when the run kept them, cleanlab on its out-of-sample
probabilities. Prints per setting (the file name without its seed) the
means over the files of F1, AUROC, the count's error, the per-pair error
and the wall time the run recorded (training included), the setting's
`count_lost` (how much of the averaged table's count the final table
lost) and where the default took its count from. With `--pictures_dir`,
the default's `confusions.png` of every run, the true matrix beside it,
is written there as `<file name>_confusions.png`.

A run saved before the model kept its averaged table has the table of
every epoch; their mean (each row scaled to sum to 1) is that average,
since every example's row is updated once per epoch.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_cleanlab  # noqa: E402
import numpy as np  # noqa: E402
import run_arrays  # noqa: E402
from absl import app, flags  # noqa: E402

from elr_tf.diagnostics import confusions, find_label_issues, neighbours  # noqa: E402

NOW = "ELR, averaged table"
BEFORE = "ELR, final table"
CLEANLAB = "cleanlab"


def figures(arrays, k=neighbours.DEFAULT_NEIGHBOURS):
    """`{method: (F1, AUROC, count error, per-pair error, seconds)}` of one run, and the report."""
    labels, true_labels = arrays["labels"], arrays["true_labels"]
    averaged = arrays.get("mean_table")
    if averaged is None:
        averaged = run_arrays.averaged(arrays["tables"])
    common = dict(
        labels=labels,
        true_labels=true_labels,
        margins=arrays["margins"],
        embeddings=arrays["embeddings"],
        neighbours=k,
    )
    final = arrays["tables"][-1]
    reports = {
        NOW: find_label_issues(final, mean_table=averaged, **common),
        BEFORE: find_label_issues(final, table="final", **common),
    }
    result = {}
    for name, report in reports.items():
        m = report.metrics()
        error = compare_cleanlab.count_error(m["num_estimated"], m["num_noisy"])
        result[name] = (m["f1"], m["auroc"], error, m["pair_error"], float(arrays["elr_seconds"]))
    if "pred_probs" in arrays:
        noisy = labels != true_labels
        true_pairs = reports[NOW].true_pair_counts()
        m = compare_cleanlab._cleanlab(labels, arrays["pred_probs"], noisy, true_pairs)
        error = compare_cleanlab.count_error(m["num_estimated"], m["num_noisy"])
        seconds = float(arrays["cleanlab_seconds"])
        result[CLEANLAB] = (m["f1"], m["auroc"], error, m["pair_error"], seconds)
    return result, reports[NOW]


def main(argv):
    paths = argv[1:]
    if not paths:
        raise app.UsageError("Give the .npz files compare_cleanlab.py --arrays_dir wrote.")
    groups = {}
    for path in paths:
        setting = os.path.basename(path).rsplit("_seed", 1)[0]
        result, report = figures(run_arrays.load(path), _K.value)
        print(
            f"{os.path.basename(path)}: count_lost {report.count_lost:.2f}, unplaced "
            f"{report.unplaced:.2f}, count from "
            f"{report.count_source}; "
            + "; ".join(
                f"{name} F1 {row[0]:.3f} count {row[2]:+.0%}" for name, row in result.items()
            ),
            flush=True,
        )
        groups.setdefault(setting, []).append((result, report.count_lost))
        if _PICTURES.value:
            _picture(path, report)
    header = f"{'F1':>7}{'AUROC':>8}{'count':>7}{'pairs':>7}{'s':>7}  runs"
    print(f"\n{'setting':<18}{'method':<22}{header}")
    for setting, runs in groups.items():
        for name in runs[0][0]:
            rows = [result[name] for result, _ in runs if name in result]
            f1, auroc, error, pairs, seconds = np.mean(rows, axis=0)
            print(
                f"{setting:<18}{name:<22}{f1:7.3f}{auroc:8.4f}{error:+7.0%}{pairs:7.0%}"
                f"{seconds:7.0f}  {len(rows)}"
            )
        lost = ", ".join(f"{value:.2f}" for _, value in runs)
        print(f"{'':<18}count_lost {lost}")


def _picture(path, report):
    names = run_arrays.load(path).get("class_names")
    names = list(names) if names is not None and len(names) else _NAMES.value
    os.makedirs(_PICTURES.value, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    confusions.plot_confusions(
        report.pair_counts,
        os.path.join(_PICTURES.value, f"{stem}_confusions.png"),
        class_names=names,
        true_counts=report.true_pair_counts(),
        title=f"{stem}: estimated {report.num_estimated:,}, true {report.is_noisy.sum():,}",
    )


if __name__ == "__main__":
    _PICTURES = flags.DEFINE_string("pictures_dir", None, "Write each run's confusions.png here.")
    _NAMES = flags.DEFINE_list(
        "class_names", None, "Class names for runs saved without them (in label order)."
    )
    _K = flags.DEFINE_integer("neighbours", neighbours.DEFAULT_NEIGHBOURS, "Neighbours that vote.")
    app.run(main)
