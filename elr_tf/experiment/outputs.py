"""The files a run leaves: labels, final tables, model, audit, pictures and summary.

Each file is written under a temporary name and renamed into place, so none
is ever left truncated under its final name.
"""

import csv
import json
import math
import os

import numpy as np
from absl import logging

from elr_tf.diagnostics import confusions, find_label_issues, neighbours, suspects
from elr_tf.diagnostics.tables import count_seen
from elr_tf.experiment.checkpointing import atomic_path, atomic_write_text


def save_labels(run_dir, data):
    """Writes `noisy_labels.npy` and `true_labels.npy` (by id; -1: unused or unknown)."""
    _save_npy(os.path.join(run_dir, "noisy_labels.npy"), data.labels_by_id())
    _save_npy(os.path.join(run_dir, "true_labels.npy"), data.labels_by_id(true_labels=True))


def audit(model, data, audit_neighbours, train_eval, audit_settings):
    """The run's `find_label_issues` report of its training labels (`audit.csv`).

    Args:
        model: the trained `ELRModel` or `ELRPlusModel`.
        data: its `NoisyData`.
        audit_neighbours: `--audit_neighbours`, how many embedding
            neighbours vote; at most every other trained example does.
        train_eval: an evaluation pipeline of `data.train`, for the
            embeddings.
        audit_settings: `find_label_issues` keywords (`score`, `flag`).
    """
    # The summary records how many neighbours voted.
    k = min(audit_neighbours, count_seen(model, data.train.ids) - 1)
    features = neighbours.embeddings(model, train_eval) if k > 0 else None
    return find_label_issues(
        model,
        data.train.labels,
        ids=data.train.ids,
        true_labels=data.train.true_labels,
        embeddings=features,
        neighbours=k,
        **audit_settings,
    )


def audit_keywords(config):
    """The `find_label_issues` keywords of `--audit_score` and `--audit_flag`."""
    return {
        "score": None if config.audit_score == "auto" else config.audit_score,
        "flag": config.audit_flag,
    }


def save_final(run, run_dir, out_dir, chief, audit_settings, timer):
    """Writes the final files of a trained `run`; returns the summary dict.

    Args:
        run: the `assemble.Run`, trained.
        run_dir: the run directory (the chief's files).
        out_dir: this worker's directory (`run_dir` on the chief).
        chief: whether this process writes the shared files.
        audit_settings: `find_label_issues` keywords (`score`, `flag`).
        timer: the run's `EpochTimer`.
    """
    config, data, model = run.config, run.data, run.model
    _save_npy(os.path.join(out_dir, "targets.npy"), model.target_table.numpy())
    if len(model.target_tables) > 1:
        for k, table in enumerate(model.target_tables, start=1):
            _save_npy(os.path.join(out_dir, f"targets{k}.npy"), table.numpy())
    if chief:
        with atomic_path(os.path.join(run_dir, "model.keras")) as tmp:
            model.save(tmp)
    train_eval = run.eval_dataset(data.train)
    report = audit(model, data, config.audit_neighbours, train_eval, audit_settings)
    with atomic_path(os.path.join(out_dir, "audit.csv")) as tmp:
        report.to_csv(tmp, class_names=data.class_names)
    known = has_true_labels(data.train)
    true_pairs = report.true_pair_counts() if known else None
    if chief and len(report):
        with atomic_path(os.path.join(out_dir, suspects.FILE_NAME)) as tmp:
            suspects.plot_suspects(report, data.train, tmp, class_names=data.class_names)
        with atomic_path(os.path.join(out_dir, confusions.FILE_NAME)) as tmp:
            confusions.plot_confusions(
                report.pair_counts,
                tmp,
                class_names=data.class_names,
                true_counts=true_pairs,
                title=f"Wrong labels by class pair ({config.dataset}, {len(report)} examples)",
            )
    csv_path = os.path.join(out_dir, "metrics.csv")
    summary = summarise(config, run_dir, csv_path, run.noise_rate, timer, data)
    summary["label_issues"] = {
        "score": report.score_name,
        "flag": report.flag_rule,
        "num_flagged": int(np.count_nonzero(report.flagged)),
        "num_estimated": report.num_estimated,
        "neighbours": report.neighbours,
        "table": report.table,
        "count_lost": report.count_lost,
        "unplaced": report.unplaced,
        "count_source": report.count_source,
        "pair_counts": report.pair_counts.tolist(),
    }
    if known:
        summary["label_detection"] = {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in report.metrics().items()
        }
        summary["label_detection"]["true_pair_counts"] = true_pairs.tolist()
    atomic_write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    logging.info("%s", issue_line(report, data.class_names, summary.get("label_detection")))
    return summary


def issue_line(report, class_names=None, detection=None):
    """One line on how dirty the training labels look, for the end of a run.

    Example: `Label issues: estimated 1,203 wrong labels of 4,500 (26.7%);
    largest pairs shirt->T-shirt 210, coat->pullover 180; true 1,180 (estimate
    +1.9%, per pair off by 12.0%); 1,203 flagged in audit.csv`.
    """
    seen = int(np.count_nonzero(report.seen))
    share = report.num_estimated / seen if seen else float("nan")
    pairs = ", ".join(
        f"{given}->{suggested} {count:,}"
        for given, suggested, count in confusions.top_pairs(report.pair_counts, class_names, 3)
    )
    text = f"Label issues: estimated {report.num_estimated:,} wrong labels of {seen:,}"
    text += f" ({share:.1%})"
    text += f"; largest pairs {pairs}" if pairs else ""
    if detection is not None and detection.get("num_noisy"):
        error = report.num_estimated / detection["num_noisy"] - 1.0
        text += f"; true {detection['num_noisy']:,} (estimate {error:+.1%}"
        pair_error = detection.get("pair_error")
        text += f", per pair off by {pair_error:.1%})" if pair_error is not None else ")"
    return text + f"; {int(np.count_nonzero(report.flagged)):,} flagged in audit.csv"


def has_true_labels(example_set):
    """True when some clean labels of `example_set` are known."""
    true = example_set.true_labels
    return true is not None and bool((true >= 0).any())


def _save_npy(path, array):
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def read_metrics(csv_path):
    """Reads `metrics.csv` into a dict of column -> list of floats."""
    if not os.path.exists(csv_path):
        return {}
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    # A resumed run may repeat the row of an epoch (see `train`): keep the last.
    by_epoch = {int(row["epoch"]): row for row in rows}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    return {key: [_float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def _float(text):
    # CSVLogger writes "NA" for a metric missing in an epoch (e.g. no val set).
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def summarise(config, run_dir, csv_path, realised, timer, data):
    """The summary of a run from its `metrics.csv`: accuracies, noise, timings."""
    metrics = read_metrics(csv_path)
    test = metrics.get("test_accuracy", [])
    seconds = metrics.get("seconds", timer.seconds)
    summary = {
        "run_dir": run_dir,
        "dataset": config.dataset,
        "arch": config.arch,
        "loss": config.loss,
        "epochs": len(test),
        "final_test_accuracy": test[-1] if test else None,
        "best_test_accuracy": float(np.nanmax(test)) if test else None,
        "final_test_top5": metrics.get("test_top5", [None])[-1],
        "final_val_accuracy": metrics.get("val_accuracy", [None])[-1],
        "noise_rate_requested": config.noise_rate,
        "noise_rate_realised": realised,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "extras_seconds_per_epoch": (
            float(np.mean(metrics["extras_seconds"])) if metrics.get("extras_seconds") else None
        ),
        "num_train": len(data.train),
        "num_examples": data.num_examples,
        "class_names": list(data.class_names) if data.class_names else None,
    }
    for name in data.extra_tests:
        summary[f"final_{name}_accuracy"] = metrics.get(f"{name}_accuracy", [None])[-1]
        summary[f"final_{name}_top5"] = metrics.get(f"{name}_top5", [None])[-1]
    return summary
