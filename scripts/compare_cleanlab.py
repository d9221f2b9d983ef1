"""Find the wrong labels two ways on the same noisy data: ELR vs cleanlab.

    pip install -r scripts/requirements-bench.txt
    python scripts/compare_cleanlab.py --percent=0.4 --num_train=3000 --epochs=3

(a) ELR: trains one network with ELR and audits its target table
    (`elr_tf.audit_labels`, flags `argmax(T[i]) != y[i]`, ranks by
    `1 - T[i, y] / sum(T[i])`).
(b) cleanlab (confident learning): trains the same backbone with plain
    cross-entropy for the same epochs on k-1 of `--folds` stratified folds,
    predicts the held-out fold, and runs `cleanlab.filter.find_label_issues`
    on the out-of-sample probabilities; ranks by `1 - p[i, y]` (cleanlab's
    self-confidence quality score).
(c) cleanlab on ELR's table: `find_label_issues` with the normalised ELR
    table as `pred_probs` (no extra training; the table is an in-sample
    temporal ensemble, not out-of-sample).

All training flags of `scripts/train.py` apply (data set, noise, backbone,
optimiser, schedule); `--percent` defaults to 0.4 here. Prints precision,
recall, F1, AUROC and average precision of each method and its wall time.
"""

import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from elr_tf import checks, diagnostics  # noqa: E402
from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment.assemble import assemble, load_noisy_data  # noqa: E402

_COLUMNS = ("precision", "recall", "f1", "auroc", "auprc", "num_flagged", "seconds")


def compare(config, folds=5):
    """Runs the three label-error detectors; returns `{method: metrics}`.

    Args:
        config: a `TrainConfig` with synthetic noise (`noise_rate` > 0
            or a noise matrix) so that the wrong labels are known.
            `config.loss` is ignored: (a) uses ELR, (b) cross-entropy.
        folds: number of cross-validation folds for cleanlab, >= 2.

    Returns:
        dict of method name to `diagnostics.detection_metrics` figures plus
        `seconds` (wall time, training included); the ELR entry also has
        `test_accuracy`. The key `"data"` describes the data.
    """
    import cleanlab.filter
    import cleanlab.rank

    if checks.positive_int("folds", folds) < 2:
        raise ValueError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    config.validate()
    loaded = load_noisy_data(config)
    data, realised = loaded
    train = data.train
    if train.true_labels is None or (train.true_labels < 0).any():
        raise ValueError(
            "The comparison needs the true label of every training example: use a data "
            f"set with synthetic noise. Received: dataset={config.dataset!r}"
        )
    noisy = train.labels != train.true_labels
    results = {
        "data": {
            "dataset": config.dataset,
            "num_train": len(train),
            "noise_rate_requested": config.noise_rate,
            "noise_rate_realised": realised,
            "epochs": config.epochs,
            "arch": config.arch,
            "folds": folds,
        }
    }

    start = time.perf_counter()
    run = _fit(dataclasses.replace(config, loss="elr"), loaded)
    model = run.model
    report = diagnostics.audit(model, train.labels, ids=train.ids, true_labels=train.true_labels)
    elr = report.metrics()
    elr["seconds"] = time.perf_counter() - start
    elr["test_accuracy"] = _accuracy(model, run.eval_dataset(data.test), data.test.labels)
    results["ELR table"] = elr

    start = time.perf_counter()
    pred_probs = _cross_validated_probs(dataclasses.replace(config, loss="ce"), loaded, folds)
    issues = cleanlab.filter.find_label_issues(train.labels, pred_probs)
    quality = cleanlab.rank.get_label_quality_scores(train.labels, pred_probs)
    confident = diagnostics.detection_metrics(issues, 1.0 - quality, noisy)
    confident["seconds"] = time.perf_counter() - start
    results[f"cleanlab, {folds}-fold CE"] = confident

    start = time.perf_counter()
    table = model.target_table.numpy()[train.ids].astype(np.float64)
    table /= table.sum(axis=1, keepdims=True)
    issues = cleanlab.filter.find_label_issues(train.labels, table)
    quality = cleanlab.rank.get_label_quality_scores(train.labels, table)
    on_table = diagnostics.detection_metrics(issues, 1.0 - quality, noisy)
    on_table["seconds"] = time.perf_counter() - start + elr["seconds"]
    results["cleanlab on ELR table"] = on_table
    return results


def format_results(results):
    """The results of `compare` as a plain-text table."""
    info = results["data"]
    realised = info["noise_rate_realised"]
    lines = [
        f"{info['dataset']}: {info['num_train']} training examples, symmetric noise "
        f"{info['noise_rate_requested']:.0%} requested, {realised:.1%} wrong labels; "
        f"{info['arch']}, {info['epochs']} epochs, cleanlab {info['folds']} folds",
        f"{'method':<26}" + "".join(f"{c:>12}" for c in _COLUMNS),
    ]
    for method, metrics in results.items():
        if method == "data":
            continue
        cells = []
        for column in _COLUMNS:
            value = metrics[column]
            cells.append(f"{value:>12d}" if column == "num_flagged" else f"{value:>12.3f}")
        lines.append(f"{method:<26}" + "".join(cells))
    elr = results["ELR table"]
    lines.append(
        f"(actually wrong: {elr['num_noisy']}; ELR model test accuracy "
        f"{elr['test_accuracy']:.3f}; seconds include training)"
    )
    return "\n".join(lines)


def _fit(config, loaded):
    # The run `train` would set up, fitted without its run directory, test
    # evaluation and TensorBoard, so that wall times compare the methods.
    run = assemble(config, data=loaded)
    run.model.fit(
        run.train_ds,
        epochs=config.epochs,
        verbose=config.verbose,
        shuffle=False,
        callbacks=run.callbacks(),
    )
    return run


def _cross_validated_probs(config, loaded, folds):
    """Out-of-sample softmax probabilities of every training example."""
    data, realised = loaded
    train = data.train
    fold_of = _stratified_folds(train.labels, folds, config.seed)
    probs = np.zeros((len(train), data.num_classes))
    for fold in range(folds):
        held_out = fold_of == fold
        fold_data = dataclasses.replace(data, train=train.subset(~held_out))
        run = _fit(dataclasses.replace(config, seed=config.seed + fold), (fold_data, realised))
        logits = run.model.predict(run.eval_dataset(train.subset(held_out)), verbose=0)
        probs[held_out] = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    return probs


def _stratified_folds(labels, folds, seed):
    # Every class spread evenly over the folds, as cleanlab's own
    # cross-validation does with scikit-learn's StratifiedKFold.
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), np.int64)
    offset = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return fold_of


def _accuracy(model, dataset, labels):
    logits = model.predict(dataset, verbose=0)
    return float(np.mean(np.asarray(logits).argmax(-1) == labels))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = elr_flags.config_from_flags(_HOLDERS)
    try:
        results = compare(config, folds=_FOLDS.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    except ImportError as error:
        raise app.UsageError(
            f"{error}. Install the benchmark packages: pip install -r "
            "scripts/requirements-bench.txt"
        ) from error
    print(format_results(results))


if __name__ == "__main__":
    # Defined here rather than at import so that tests can import `compare`
    # next to other programs defining the same training flags.
    _HOLDERS = elr_flags.define_flags()
    _FOLDS = flags.DEFINE_integer("folds", 5, "Cross-validation folds for cleanlab.")
    flags.FLAGS.set_default("percent", 0.4)
    flags.FLAGS.set_default("verbose", 0)
    app.run(main)
