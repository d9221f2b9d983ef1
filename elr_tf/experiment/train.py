"""The training program behind `scripts/train.py`, callable without flags.

`train(TrainConfig(...))` sets the run up with `assemble` (data, label
noise, strategy, compiled `ELRModel` / `ELRPlusModel`, or the cross-entropy
baseline through `ELRModel` with `lam=0`), trains it and writes one run
directory:

    <output_dir>/<name>/
        flags.cfg        absl flagfile that reruns this run
        config.json      the same settings, read back by `--resume`
        metrics.csv      per-epoch loss parts, noisy-val and test accuracy
        tensorboard/     TensorBoard logs
        checkpoints/     per-epoch checkpoints (weights, optimiser, target
                         table), written atomically; `--resume` loads the
                         newest
        model.keras      final model, table included
        targets.npy      final target table [num_examples, num_classes]
        noisy_labels.npy labels used for training, by id (-1: unused id)
        true_labels.npy  clean labels by id where known (-1: unknown)
        audit.csv        per-example label audit from the final target table and
                         averaged margins, most suspicious first
                         (elr_tf.find_label_issues)
        suspects.png     the 64 most suspicious training images, captioned
        memorization.csv per-epoch memorisation fractions on (up to 10,000)
        memorization.png training examples, and their figure (true labels known)
        summary.json     final/best test accuracy, noise rate, timings
"""

import csv
import dataclasses
import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from elr_tf.callbacks import NonFiniteGuard
from elr_tf.data import find_unreadable_images
from elr_tf.diagnostics import AuditCallback, MemorizationMonitor, find_label_issues, suspects
from elr_tf.experiment import checkpointing
from elr_tf.experiment.assemble import (
    assemble,
    cluster_size,
    eval_batch_size,
    is_chief,
    make_strategy,
)
from elr_tf.experiment.callbacks import (
    EpochLine,
    EpochTimer,
    PeriodicDiagnostics,
    TestEvaluation,
)
from elr_tf.experiment.checkpointing import atomic_path, atomic_write_text
from elr_tf.experiment.config import TrainConfig, flag_name

# Training examples predicted after each epoch to draw the memorisation
# curves: enough for fractions to about +-1%, few enough to cost a few percent
# of an epoch.
_MEMORIZATION_EXAMPLES = 10_000
# Settings a resumed run takes from the command line (see `resume_config`).
_RESUME_OVERRIDES = ("resume", "epochs", "verbose")


def resolve_run_dir(config, multi_worker=False):
    """Creates (or, on resume, reopens) the run directory.

    A new run never overwrites an old one: an existing non-empty `<name>`
    gets a time stamp appended (an empty one, e.g. left by a failed start,
    is reused). Multi-worker runs keep the plain name so that all workers
    agree on it.
    """
    if config.resume:
        return config.resume
    run_dir = os.path.join(config.output_dir, config.name)
    # Any existing content (even checkpoints without a config.json) belongs
    # to another run: never train on top of it.
    if not multi_worker and os.path.isdir(run_dir) and os.listdir(run_dir):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = f"{run_dir}-{stamp}"
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the run directory {run_dir} ({error.strerror}): "
            "`--output_dir` and `--name` must name a directory that can be created. "
            f"Received: --output_dir={config.output_dir!r}, --name={config.name!r}"
        ) from None
    return run_dir


def load_config(run_dir, **overrides):
    """Reads a run's `config.json` back into a `TrainConfig`."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(
            "`--resume` must be a run directory written by train (with a "
            f"config.json). Received: --resume={run_dir!r}"
        )
    with open(path) as f:
        return TrainConfig.from_dict(json.load(f), **overrides)


def resume_config(config, given=None):
    """The config a resumed run trains with: the saved one plus safe overrides.

    `--epochs` (to extend the run) and `--verbose` apply on resume. Any
    other setting that differs from the saved run is refused, naming each,
    rather than ignored.

    Args:
        config: a `TrainConfig` with `resume` set.
        given: names of the fields the user set (e.g. the flags given); None
            takes every field that differs from its default.
    """
    saved = load_config(config.resume)
    if given is None:
        given = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) != f.default}
    refused = [
        f"--{flag_name(field)}={getattr(config, field.name)}"
        for field in dataclasses.fields(config)
        if field.name in given
        and field.name not in _RESUME_OVERRIDES
        and getattr(config, field.name) != getattr(saved, field.name)
    ]
    if refused:
        raise ValueError(
            f"`--resume` continues {config.resume} with its saved settings; these flags "
            f"would change them and are refused: {' '.join(refused)}. Only --epochs (to "
            "extend the run) and --verbose apply on resume; start a new run to change "
            "anything else."
        )
    overrides = {"resume": config.resume, "verbose": config.verbose}
    if "epochs" in given:
        overrides["epochs"] = config.epochs
    return dataclasses.replace(saved, **overrides)


def train(config, callbacks=(), given=None):
    """Runs (or resumes) one training run; returns its summary dict.

    Args:
        config: a `TrainConfig`. With `config.resume` set, the run
            directory's saved settings are used (see `resume_config`) and
            training continues from its last checkpoint.
        callbacks: extra Keras callbacks (e.g. for tests).
        given: with `resume`, the names of the fields the user set; see
            `resume_config`.

    Returns:
        The dict also written to `summary.json`.
    """
    if config.resume:
        config = resume_config(config, given)
    config.validate()
    # Before any other TF op: a multi-worker strategy must come first.
    strategy = make_strategy(config.gpus)
    chief = is_chief(strategy)
    run_dir = resolve_run_dir(config, multi_worker=cluster_size() > 1)
    try:
        run = assemble(config, strategy=strategy)
    except BaseException:
        # A failed start leaves no stub behind, so a retry gets the same name.
        if not config.resume and not os.listdir(run_dir):
            os.rmdir(run_dir)
        raise
    # Other workers of a multi-worker run write their logs and checkpoints
    # beside the chief's, never over them.
    out_dir = (
        run_dir if chief else os.path.join(run_dir, f"worker-{strategy.cluster_resolver.task_id}")
    )
    os.makedirs(out_dir, exist_ok=True)
    data, model = run.data, run.model
    if chief:
        # Rewritten on resume too: a run extended with --epochs keeps its new length.
        saved = dataclasses.replace(config, resume=None)
        atomic_write_text(
            os.path.join(run_dir, "config.json"), json.dumps(dataclasses.asdict(saved), indent=2)
        )
        atomic_write_text(os.path.join(run_dir, "flags.cfg"), saved.to_flagfile())
        _save_labels(run_dir, data)
    val_ds = run.eval_dataset(data.val) if len(data.val) > 0 else None
    test_sets = {"test": data.test, **data.extra_tests}
    final_test_sets = {name: run.eval_dataset(s) for name, s in test_sets.items()}
    periodic_test_sets = final_test_sets
    if config.eval_examples:
        periodic_test_sets = {
            name: run.eval_dataset(_sample(s, config.eval_examples, config.seed))
            for name, s in test_sets.items()
        }

    checkpoint_dir = os.path.join(out_dir, "checkpoints")
    initial_epoch = checkpointing.restore_latest(model, checkpoint_dir)
    if initial_epoch > config.epochs:
        raise ValueError(
            f"`--epochs` must be at least the {initial_epoch} epochs {run_dir} has "
            f"already trained. Received: --epochs={config.epochs}"
        )
    timer = EpochTimer()
    csv_path = os.path.join(out_dir, "metrics.csv")
    truth_known = _has_true_labels(data.train)
    audit_score = None if config.audit_score == "auto" else config.audit_score
    label_watchers = []
    if truth_known:
        # Before CSVLogger, which takes its columns from the first epoch's logs.
        label_watchers = [
            AuditCallback(
                data.train.ids,
                data.train.labels,
                data.train.true_labels,
                score=audit_score,
                flag=config.audit_flag,
            ),
            MemorizationMonitor.from_examples(
                data.train,
                data,
                max_examples=min(_MEMORIZATION_EXAMPLES, config.eval_examples or math.inf),
                seed=config.seed,
                batch_size=eval_batch_size(config),
                output_dir=out_dir,
                append=initial_epoch > 0,
                title=_plot_title(config, data),
            ),
        ]
    # verbose=1: Keras's progress bar in a terminal, one concise line per
    # epoch elsewhere; verbose=2: the concise line; 0: silent.
    line_per_epoch = config.verbose == 2 or (config.verbose == 1 and not sys.stdout.isatty())
    guard = NonFiniteGuard(
        advice=f"The last good checkpoint in {checkpoint_dir} is intact (resume with --resume)."
    )
    all_callbacks = [
        *run.callbacks(),
        timer,
        PeriodicDiagnostics(
            [TestEvaluation(periodic_test_sets, final_test_sets, config.epochs), *label_watchers],
            config.eval_every,
            config.epochs,
        ),
        guard,
        *([EpochLine(config.epochs)] if line_per_epoch else []),
        # The CSV row is written before the checkpoint: a kill between the two
        # repeats the epoch's row on resume (`read_metrics` keeps the last)
        # instead of losing it.
        keras.callbacks.CSVLogger(csv_path, append=initial_epoch > 0),
        checkpointing.EpochCheckpoint(checkpoint_dir),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
        *callbacks,
    ]
    if initial_epoch < config.epochs:
        try:
            model.fit(
                run.train_ds,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                validation_data=val_ds,
                callbacks=all_callbacks,
                verbose=0 if line_per_epoch else config.verbose,
                shuffle=False,
            )
        except tf.errors.InvalidArgumentError as error:
            if "Non-finite logits" not in str(error):
                _raise_naming_unreadable_images(data)
                raise
            epoch, step = guard.position
            raise FloatingPointError(
                f"Non-finite logits at epoch {epoch}, step {step}. Training "
                f"stopped; the last good checkpoint in {checkpoint_dir} is intact "
                "(resume with --resume)."
            ) from None

    # Final files are written under a temporary name and renamed into place,
    # so none is ever left truncated under its final name.
    _save_npy(os.path.join(out_dir, "targets.npy"), model.target_table.numpy())
    if len(model.target_tables) > 1:
        for k, table in enumerate(model.target_tables, start=1):
            _save_npy(os.path.join(out_dir, f"targets{k}.npy"), table.numpy())
    if chief:
        with atomic_path(os.path.join(run_dir, "model.keras")) as tmp:
            model.save(tmp)
    report = find_label_issues(
        model,
        data.train.labels,
        ids=data.train.ids,
        true_labels=data.train.true_labels,
        score=audit_score,
        flag=config.audit_flag,
    )
    with atomic_path(os.path.join(out_dir, "audit.csv")) as tmp:
        report.to_csv(tmp, class_names=data.class_names)
    if chief and len(report):
        with atomic_path(os.path.join(out_dir, suspects.FILE_NAME)) as tmp:
            suspects.plot_suspects(report, data.train, tmp, class_names=data.class_names)
    summary = _summarise(config, run_dir, csv_path, run.noise_rate, timer, data)
    summary["label_issues"] = {
        "score": report.score_name,
        "flag": report.flag_rule,
        "num_flagged": int(np.count_nonzero(report.flagged)),
        "num_estimated": report.num_estimated,
    }
    if truth_known:
        summary["label_detection"] = {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in report.metrics().items()
        }
    atomic_write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    return summary


def _raise_naming_unreadable_images(data):
    # A corrupt image inside a running pipeline fails without its file name
    # (e.g. "Invalid JPEG data"); scanning the file-backed sets names it.
    sets = [data.train, data.val, data.test, *data.extra_tests.values()]
    unreadable = [p for s in sets if s.file_backed and len(s) for p in find_unreadable_images(s)]
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} image file(s) cannot be read or decoded, e.g. "
            f"{', '.join(unreadable[:5])}. Remove or replace them (or drop their lines "
            "from the file lists)."
        ) from None


def _sample(example_set, count, seed):
    # A fixed random subset (the same every epoch and on resume); 0: all.
    if not count or count >= len(example_set):
        return example_set
    positions = np.random.default_rng(seed).choice(len(example_set), count, replace=False)
    return example_set.subset(np.sort(positions))


def _plot_title(config, data):
    title = f"{config.dataset}, {config.loss}, noise {config.noise_rate:g}"
    if data.class_names:
        names = ", ".join(data.class_names[:10])
        more = f", ... ({len(data.class_names)} classes)" if len(data.class_names) > 10 else ""
        title += f"\nclasses: {names}{more}"
    return title


def _has_true_labels(example_set):
    true = example_set.true_labels
    return true is not None and bool((true >= 0).any())


def _save_labels(run_dir, data):
    _save_npy(os.path.join(run_dir, "noisy_labels.npy"), data.labels_by_id())
    _save_npy(os.path.join(run_dir, "true_labels.npy"), data.labels_by_id(true_labels=True))


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


def _summarise(config, run_dir, csv_path, realised, timer, data):
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
