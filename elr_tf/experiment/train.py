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
        confusions.png   estimated wrong labels per (given, suggested) class
                         pair, the true counts beside them when known
        memorization.csv per-epoch memorisation fractions on (up to 10,000)
        memorization.png training examples, and their figure (true labels known)
        summary.json     final/best test accuracy, noise rate, timings, the
                         estimated wrong labels overall and per class pair
"""

import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from elr_tf.callbacks import NonFiniteGuard
from elr_tf.data import find_unreadable_images
from elr_tf.diagnostics import AuditCallback, MemorizationMonitor, neighbours
from elr_tf.experiment import checkpointing, outputs
from elr_tf.experiment import run_dir as run_dir_lib
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

# Training examples predicted after each epoch to draw the memorisation
# curves: enough for fractions to about +-1%, few enough to cost a few percent
# of an epoch.
_MEMORIZATION_EXAMPLES = 10_000


def train(config, callbacks=(), given=None):
    """Runs (or resumes) one training run; returns its summary dict.

    Args:
        config: a `TrainConfig`. With `config.resume` set, the run
            directory's saved settings are used (see `run_dir.resume_config`)
            and training continues from its last checkpoint.
        callbacks: extra Keras callbacks (e.g. for tests).
        given: with `resume`, the names of the fields the user set.

    Returns:
        The dict also written to `summary.json`.
    """
    if config.resume:
        config = run_dir_lib.resume_config(config, given)
    # Before any other TF op: a multi-worker strategy must come first.
    strategy = make_strategy(config.gpus)
    chief = is_chief(strategy)
    run_dir, claim = run_dir_lib.claim_run_dir(config, multi_worker=cluster_size() > 1)
    with claim:
        try:
            run = assemble(config, strategy=strategy)
            return _train_in(run, run_dir, chief, callbacks)
        except BaseException:
            # A failed start leaves no stub behind, so a retry gets the same
            # name; a folder with checkpoints or logs is kept.
            if not config.resume and chief:
                claim.abandon()
            raise


def _train_in(run, run_dir, chief, callbacks):
    config, strategy = run.config, run.strategy
    # Other workers of a multi-worker run write their logs and checkpoints
    # beside the chief's, never over them.
    out_dir = (
        run_dir if chief else os.path.join(run_dir, f"worker-{strategy.cluster_resolver.task_id}")
    )
    os.makedirs(out_dir, exist_ok=True)
    if chief:
        run_dir_lib.write_settings(run_dir, config)
        outputs.save_labels(run_dir, run.data)
    checkpoint_dir = os.path.join(out_dir, "checkpoints")
    initial_epoch = checkpointing.restore_latest(run.model, checkpoint_dir)
    if initial_epoch > config.epochs:
        raise ValueError(
            f"`--epochs` must be at least the {initial_epoch} epochs {run_dir} has "
            f"already trained. Received: --epochs={config.epochs}"
        )
    _check_audit_neighbours(run)
    audit_settings = outputs.audit_keywords(config)
    timer = EpochTimer()
    guard = NonFiniteGuard(
        advice=f"The last good checkpoint in {checkpoint_dir} is intact (resume with --resume)."
    )
    # verbose=1: Keras's progress bar in a terminal, one concise line per
    # epoch elsewhere; verbose=2: the concise line; 0: silent.
    line_per_epoch = config.verbose == 2 or (config.verbose == 1 and not sys.stdout.isatty())
    all_callbacks = [
        *run.callbacks(),
        timer,
        _diagnostics(run, out_dir, initial_epoch, audit_settings),
        guard,
        *([EpochLine(config.epochs)] if line_per_epoch else []),
        # The CSV row is written before the checkpoint: a kill between the two
        # repeats the epoch's row on resume (`read_metrics` keeps the last)
        # instead of losing it.
        keras.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=initial_epoch > 0),
        checkpointing.EpochCheckpoint(checkpoint_dir),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
        *callbacks,
    ]
    if initial_epoch < config.epochs:
        _fit(run, initial_epoch, all_callbacks, 0 if line_per_epoch else config.verbose, guard)
    return outputs.save_final(run, run_dir, out_dir, chief, audit_settings, timer)


def _check_audit_neighbours(run):
    # Refused before training, not after it: the final audit reads the
    # embedding of every training example.
    k = run.config.audit_neighbours
    if not k:
        return
    for network in neighbours.networks_of(run.model):
        try:
            neighbours.embedding_model(network)
        except ValueError as error:
            raise ValueError(
                f"`--audit_neighbours={k}` reads the network's embedding, which this "
                f"network does not expose: {error} Pass --audit_neighbours=0 to audit "
                "with the target table alone."
            ) from error


def _diagnostics(run, out_dir, initial_epoch, audit_settings):
    # The periodic test evaluation and, with known true labels, the label
    # audit and the memorisation monitor.
    config, data = run.config, run.data
    test_sets = {"test": data.test, **data.extra_tests}
    final = {name: run.eval_dataset(s) for name, s in test_sets.items()}
    periodic = final
    if config.eval_examples:
        periodic = {
            name: run.eval_dataset(_sample(s, config.eval_examples, config.seed))
            for name, s in test_sets.items()
        }
    watchers = []
    if outputs.has_true_labels(data.train):
        # Before CSVLogger, which takes its columns from the first epoch's logs.
        train = data.train
        watchers = [
            AuditCallback(train.ids, train.labels, train.true_labels, **audit_settings),
            MemorizationMonitor.from_examples(
                train,
                data,
                max_examples=min(_MEMORIZATION_EXAMPLES, config.eval_examples or math.inf),
                seed=config.seed,
                batch_size=eval_batch_size(config),
                output_dir=out_dir,
                append=initial_epoch > 0,
                title=_plot_title(config, data),
            ),
        ]
    return PeriodicDiagnostics(
        [TestEvaluation(periodic, final, config.epochs), *watchers],
        config.eval_every,
        config.epochs,
    )


def _fit(run, initial_epoch, callbacks, verbose, guard):
    data = run.data
    try:
        run.model.fit(
            run.train_ds,
            epochs=run.config.epochs,
            initial_epoch=initial_epoch,
            validation_data=run.eval_dataset(data.val) if len(data.val) > 0 else None,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    except tf.errors.ResourceExhaustedError:
        config = run.config
        raise ValueError(
            f"Training ran out of memory with batches of --bs={config.batch_size} images of "
            f"{'x'.join(map(str, data.image_shape))} on --arch={config.arch}. Lower --bs or "
            "--image_size, or use a smaller --arch. The last good checkpoint, if any, is "
            "kept (resume with --resume)."
        ) from None
    except tf.errors.InvalidArgumentError as error:
        if "Non-finite logits" not in str(error):
            _raise_naming_unreadable_images(data)
            raise
        epoch, step = guard.position
        raise FloatingPointError(
            f"Non-finite logits at epoch {epoch}, step {step}. Training stopped; {guard.advice}"
        ) from None


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
    # Real noise (CIFAR-N) has no --percent: its label set names it.
    noise = f"noise {config.noise_rate:g}" if config.noise_rate else f"labels {data.label_source}"
    title = f"{config.dataset}, {config.loss}, {noise}"
    if data.class_names:
        names = ", ".join(data.class_names[:10])
        more = f", ... ({len(data.class_names)} classes)" if len(data.class_names) > 10 else ""
        title += f"\nclasses: {names}{more}"
    return title
