"""python scripts/benchmarks/compare_cleanlab.py --flagfile=configs/fashion_mnist_sym.cfg \
    --arch=mini_cnn --num_train=3000 --epochs=15 --t0=15 \
    --grid=sym:0.2,sym:0.4,sym:0.6,sym:0.8,asym:0.4,idn:0.2,idn:0.4 --noise_seeds=1,2

On the annotators' mistakes of CIFAR-10N (DIR as ../shared/data/cifar10n/make_npz.py
writes it), a class-balanced 10,000 of the 50,000 per seed, the CPU recipe:

python scripts/benchmarks/compare_cleanlab.py --flagfile=configs/cifar10n_cpu.cfg \
    --data_dir=DIR --num_train=10000 --grid=cifar10n:worst,cifar10n:aggre,cifar10n:random1 \
    --noise_seeds=1,2

Finds the wrong labels two ways on the same noisy data: ELR vs cleanlab.
Needs the benchmark packages first
(`pip install -r scripts/benchmarks/requirements-bench.txt`).

For every noise setting of `--grid` and every seed of `--noise_seeds` (the
seed draws the subset, the split, the noisy labels and the initial weights),
on the same noisy data (a `cifar10n:SET` setting reads the human label set
SET instead of adding noise; the seed then draws the subset, the split and
the weights):

(a) ELR: trains one network with ELR and calls `elr_tf.find_label_issues`
    on it: the target table and the averaged logit margins it kept during
    that run and, with `--audit_neighbours=K` (default 30), the labels of
    each example's K nearest neighbours in the network's embedding (one
    forward pass, timed with the run); `--audit_score`, `--audit_flag`
    choose the score and the rule.
(a') ELR table alone (with `--audit_neighbours` > 0): the same run, the
    table and margins only, flagging the estimated number by score (the
    finder before the neighbours and the per-pair rule).
(b) ELR, argmax rule: the same run, flagging `argmax(T[i]) != y[i]`.
(c) cleanlab (confident learning): trains the same backbone with plain
    cross-entropy for the same epochs on k-1 of `--folds` stratified folds,
    predicts the held-out fold, and runs `cleanlab.filter.find_label_issues`
    on the out-of-sample probabilities; ranks by cleanlab's label quality
    score.
(d) cleanlab on ELR's table: `find_label_issues` with the normalised table
    as `pred_probs` (no extra training).

Prints one table: per setting and method, the mean over seeds of precision,
recall, F1, AUROC, average precision, the estimated and the true number of
wrong labels, the error of the estimate, the error of its split over the
(given, true) pairs (`confusions.pair_count_error`; cleanlab's pairs are
the off-diagonal of its uncalibrated confident joint) and the wall time (training
included); then the ceiling, the F1
of each score when exactly the true number of examples is flagged.
"""

import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fitting  # noqa: E402
import numpy as np  # noqa: E402
import run_arrays  # noqa: E402
from absl import app, flags  # noqa: E402
from grid_settings import (  # noqa: E402, F401 (re-exported for the other scripts)
    GRID_KINDS,
    REAL_KINDS,
    count_error,
    grid_fields,
    parse_grid,
    parse_seeds,
    setting_config,
    setting_label,
)

from elr_tf import checks, diagnostics  # noqa: E402
from elr_tf.diagnostics import confusions, neighbours, suspects, tables  # noqa: E402
from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment.assemble import load_noisy_data  # noqa: E402
from elr_tf.experiment.settings import flag_name  # noqa: E402

_COLUMNS = (
    ("precision", "prec", ".3f"),
    ("recall", "recall", ".3f"),
    ("f1", "F1", ".3f"),
    ("auroc", "AUROC", ".4f"),
    ("auprc", "AUPRC", ".3f"),
    ("num_estimated", "est.", ".0f"),
    ("num_noisy", "true", ".0f"),
    ("count_error", "err.", "+.0%"),
    ("pair_error", "pairs", ".0%"),
    ("seconds", "s", ".0f"),
)
ELR = "ELR find_label_issues"
ELR_TABLE = "ELR table alone"
ELR_ARGMAX = "ELR table, argmax rule"
ON_TABLE = "cleanlab on ELR table"
# Scores whose ceiling (F1 at the true count) is printed.
CEILING_SCORES = ("combined", "margin", "self_confidence", "aum")


def cleanlab_name(folds):
    return f"cleanlab, {folds}-fold CE"


def compare(config, folds=5, pictures=None, arrays=None):
    """Runs the label-error detectors on one noisy data set; returns their figures.

    Args:
        config: a `TrainConfig` whose wrong labels are known: synthetic
            noise (`noise_rate` > 0 or a noise matrix) or real noise beside
            the truth (CIFAR-10N from its files).
            `config.loss` is ignored: (a) uses ELR, (c) cross-entropy.
        folds: number of cross-validation folds for cleanlab, >= 2; 0 skips
            cleanlab (c, d), e.g. to keep a run's arrays for ELR alone.
        pictures: optional path prefix; ELR's `suspects.png` and
            `confusions.png` of this run are written as `<prefix>_suspects.png`
            and `<prefix>_confusions.png` (not timed).
        arrays: optional `.npz` path; the run's arrays are written there
            (`run_arrays`): the labels, ELR's table after every epoch, its
            margins and embedding, and cleanlab's out-of-sample probabilities.

    Returns:
        dict of method name to `diagnostics.detection_metrics` figures plus
        `seconds` (wall time, training included), `num_estimated`,
        `count_error` (`num_estimated / num_noisy - 1`) and
        `ceiling_f1` (F1 when the true number of examples is flagged by the
        method's score); the ELR entry also has `test_accuracy` and
        `ceiling_f1_<score>` for each of `CEILING_SCORES`. The key `"data"`
        describes the data.
    """
    if folds != 0 and checks.positive_int("folds", folds) < 2:
        raise ValueError(f"`folds` must be 0 or an integer >= 2. Received: folds={folds!r}")
    if folds:
        import cleanlab  # noqa: F401 (fails before any training when it is missing)

    config.validate()
    loaded = load_noisy_data(config)
    data, realised = loaded
    train = data.train
    if train.true_labels is None or (train.true_labels < 0).any():
        raise ValueError(
            "The comparison needs the true label of every training example: use a data "
            "set with synthetic noise, or CIFAR-10N from its files (--data_dir holding "
            f"cifar10.npz and CIFAR-10_human.npz). Received: dataset={config.dataset!r}"
        )
    noisy = train.labels != train.true_labels
    results = {
        "data": {
            "dataset": config.dataset,
            "num_train": len(train),
            "noise_rate_requested": config.noise_rate,
            "noise_rate_realised": realised,
            "noise": (
                f"{config.dataset}:{config.cifar_n_label}"
                if config.cifar_n_label
                else config.noise_model
            ),
            "seed": config.seed,
            "epochs": config.epochs,
            "arch": config.arch,
            "folds": folds,
        }
    }
    score = None if config.audit_score == "auto" else config.audit_score

    start = time.perf_counter()
    snapshots = [run_arrays.TableSnapshots(train.ids)] if arrays else []
    run = fitting.fit(dataclasses.replace(config, loss="elr"), loaded, extra_callbacks=snapshots)
    model = run.model
    k = config.audit_neighbours
    features = neighbours.embeddings(model, run.eval_dataset(train)) if k else None

    def find(score, flag=config.audit_flag, features=features):
        return diagnostics.find_label_issues(
            model,
            train.labels,
            train.ids,
            train.true_labels,
            score=score,
            flag=flag,
            embeddings=features,
            neighbours=k,
        )

    report = find(score)
    elr = report.metrics()
    elr["seconds"] = time.perf_counter() - start
    elr["pair_counts"] = report.pair_counts.tolist()
    true_pairs = report.true_pair_counts()
    elr["true_pair_counts"] = true_pairs.tolist()
    if pictures:
        names = data.class_names
        suspects.plot_suspects(report, train, f"{pictures}_suspects.png", class_names=names)
        confusions.plot_confusions(
            report.pair_counts,
            f"{pictures}_confusions.png",
            class_names=names,
            true_counts=report.true_pair_counts(),
            title=f"{config.noise_model} noise {config.noise_rate:g}, seed {config.seed}",
        )
    elr["ceiling_f1"] = ceiling_f1(report.score, report.is_noisy)
    for name in CEILING_SCORES:
        ranked = find(name)
        elr[f"ceiling_f1_{name}"] = ceiling_f1(ranked.score, ranked.is_noisy)
        elr[f"auroc_{name}"] = ranked.metrics()["auroc"]
    elr["test_accuracy"] = _accuracy(model, run.eval_dataset(data.test), data.test.labels)
    results[ELR] = elr
    if arrays:
        run_arrays.save(
            arrays,
            labels=train.labels,
            true_labels=train.true_labels,
            tables=np.stack(snapshots[0].tables),
            margins=model.average_margins.numpy()[train.ids],
            mean_table=model.mean_target_table.numpy()[train.ids],
            class_names=np.asarray(data.class_names or [], str),
            embeddings=features if k else neighbours.embeddings(model, run.eval_dataset(train)),
            elr_seconds=elr["seconds"],
            test_accuracy=elr["test_accuracy"],
        )

    if k:
        alone = find(score, flag="estimate", features=None).metrics()
        alone["seconds"] = elr["seconds"]
        alone["ceiling_f1"] = elr["ceiling_f1"]
        results[ELR_TABLE] = alone

    argmax = find(score, flag="argmax", features=None).metrics()
    argmax["seconds"] = elr["seconds"]
    argmax["num_estimated"] = argmax["num_flagged"]
    argmax["ceiling_f1"] = elr["ceiling_f1"]
    results[ELR_ARGMAX] = argmax

    if not folds:
        return _with_count_errors(results)
    start = time.perf_counter()
    pred_probs = fitting.cross_validated_probs(
        dataclasses.replace(config, loss="ce"), loaded, folds
    )
    results[cleanlab_name(folds)] = _cleanlab(train.labels, pred_probs, noisy, true_pairs)
    results[cleanlab_name(folds)]["seconds"] = time.perf_counter() - start
    if arrays:
        run_arrays.save(
            arrays, pred_probs=pred_probs, cleanlab_seconds=results[cleanlab_name(folds)]["seconds"]
        )

    start = time.perf_counter()
    table, _ = tables.shares(model.target_table.numpy()[train.ids])
    results[ON_TABLE] = _cleanlab(train.labels, table, noisy, true_pairs)
    results[ON_TABLE]["seconds"] = time.perf_counter() - start + elr["seconds"]
    return _with_count_errors(results)


def _with_count_errors(results):
    for method, figures in results.items():
        if method != "data":
            figures["count_error"] = count_error(figures["num_estimated"], figures["num_noisy"])
    return results


def ceiling_f1(scores, positives):
    """F1 when exactly the `positives.sum()` highest scores are flagged."""
    scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
    positives = np.asarray(positives, bool)
    count = int(positives.sum())
    if count == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:count]
    # Flagging as many as there are positives makes precision = recall = F1.
    return float(positives[top].mean())


def _cleanlab(labels, pred_probs, noisy, true_pairs):
    import cleanlab.count
    import cleanlab.filter
    import cleanlab.rank

    issues = cleanlab.filter.find_label_issues(labels, pred_probs)
    quality = cleanlab.rank.get_label_quality_scores(labels, pred_probs)
    result = diagnostics.detection_metrics(issues, 1.0 - quality, noisy)
    result["num_estimated"] = int(cleanlab.count.num_label_issues(labels, pred_probs))
    result["ceiling_f1"] = ceiling_f1(1.0 - quality, noisy)
    # Its count comes from the off-diagonal of the uncalibrated confident
    # joint (given, true), less the examples whose prediction is close to
    # their label: that matrix is its estimate per pair.
    joint = cleanlab.count.compute_confident_joint(labels, pred_probs, calibrate=False)
    result["pair_error"] = confusions.pair_count_error(joint, true_pairs)
    return result


def run_grid(config, settings, seeds, folds=5, log=print, pictures_dir=None, arrays_dir=None):
    """`compare` for every `(kind, rate)` of `settings` and every seed.

    Args:
        config: the base `TrainConfig`; each run replaces its noise rate,
            noise model and `seed` (a `REAL_KINDS` setting: its data set
            and label set).
        settings: sequence of `(kind, rate)`, kind one of `GRID_KINDS`, or
            `(kind, label_set)`, kind one of `REAL_KINDS`.
        seeds: sequence of int seeds.
        folds: cleanlab's cross-validation folds.
        log: called with a one-line summary after each run.
        pictures_dir: optional folder for each run's ELR `suspects.png` and
            `confusions.png` (`<kind>_<rate>_seed<seed>_*.png`).
        arrays_dir: optional folder for each run's arrays
            (`run_arrays.path_for`).

    Returns:
        list of `((kind, rate), seed, results)`.
    """
    grid = []
    for kind, value in settings:
        tag = value if kind in REAL_KINDS else f"{value:g}"
        for seed in seeds:
            pictures = None
            if pictures_dir:
                os.makedirs(pictures_dir, exist_ok=True)
                pictures = os.path.join(pictures_dir, f"{kind}_{tag}_seed{seed}")
            arrays = run_arrays.path_for(arrays_dir, (kind, value), seed) if arrays_dir else None
            results = compare(setting_config(config, (kind, value), seed), folds, pictures, arrays)
            grid.append(((kind, value), seed, results))
            log(
                f"{kind} {tag} seed {seed}: "
                + "; ".join(
                    f"{method} F1 {m['f1']:.3f} AUROC {m['auroc']:.4f} est {m['num_estimated']}"
                    f"/{m['num_noisy']} ceiling {m['ceiling_f1']:.3f} {m['seconds']:.0f} s"
                    for method, m in results.items()
                    if method != "data"
                )
            )
    return grid


def format_grid(grid):
    """The results of `run_grid` as plain-text tables (means over seeds)."""
    first = grid[0][2]
    info = first["data"]
    methods = [m for m in first if m != "data"]
    cleanlab_info = f"cleanlab {info['folds']} folds" if info["folds"] else "no cleanlab"
    lines = [
        f"{info['dataset']}, {info['num_train']} training examples, {info['arch']}, "
        f"{info['epochs']} epochs, {cleanlab_info}; means over seeds "
        f"{sorted({seed for _, seed, _ in grid})}; seconds include training",
        f"{'noise':<18}{'method':<26}" + "".join(f"{label:>8}" for _, label, _ in _COLUMNS),
    ]
    settings = list(dict.fromkeys(setting for setting, _, _ in grid))
    for setting in settings:
        runs = [results for s, _, results in grid if s == setting]
        realised = np.mean([r["data"]["noise_rate_realised"] for r in runs])
        label = setting_label(setting)
        for method in methods:
            cells = []
            for key, _, fmt in _COLUMNS:
                # Grids saved before a column existed show NaN there.
                value = np.mean([r[method].get(key, np.nan) for r in runs])
                cells.append(format(value, fmt).rjust(8))
            lines.append(f"{label:<18}{method:<26}" + "".join(cells))
            label = f"({realised:.1%})" if label == setting_label(setting) else ""
    lines.append("")
    lines.append(
        "Ceiling: F1 when exactly the true number of wrong labels is flagged by each score "
        "(and its AUROC)"
    )
    cleanlab = [cleanlab_name(info["folds"])] if info["folds"] else []
    header = [f"ELR {name}" for name in CEILING_SCORES] + cleanlab
    lines.append(f"{'noise':<18}" + "".join(f"{h:>24}" for h in header))
    for setting in settings:
        runs = [results for s, _, results in grid if s == setting]
        pairs = [
            (
                np.mean([r[ELR][f"ceiling_f1_{name}"] for r in runs]),
                np.mean([r[ELR][f"auroc_{name}"] for r in runs]),
            )
            for name in CEILING_SCORES
        ]
        pairs += [
            (
                np.mean([r[name]["ceiling_f1"] for r in runs]),
                np.mean([r[name]["auroc"] for r in runs]),
            )
            for name in cleanlab
        ]
        cells = "".join(f"{f'{f1:.3f} / {auroc:.4f}':>24}" for f1, auroc in pairs)
        lines.append(f"{setting_label(setting):<18}" + cells)
    accuracy = np.mean([r[ELR]["test_accuracy"] for _, _, r in grid])
    lines.append(f"(ELR models' mean test accuracy {accuracy:.3f})")
    return "\n".join(lines)


def _accuracy(model, dataset, labels):
    logits = model.predict(dataset, verbose=0)
    return float(np.mean(np.asarray(logits).argmax(-1) == labels))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = elr_flags.config_from_flags(_HOLDERS)
    try:
        settings = parse_grid(_GRID.value)
        seeds = parse_seeds(_SEEDS.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    # The grid sets the noise and the seed of every run (and, for a human
    # label set, the data set and the label set): flags or a flagfile's
    # lines that set them are not used, and the program says so.
    replaced = [
        f"--{flag_name(field)}={getattr(config, field.name)}"
        for field in dataclasses.fields(config)
        if field.name in grid_fields(settings) and field.name in elr_flags.given_fields(_HOLDERS)
    ]
    if replaced:
        print(
            f"Not used: {' '.join(replaced)}; --grid and --noise_seeds set the noise and "
            "the seed of every run."
        )
    try:
        grid = run_grid(
            config,
            settings,
            seeds,
            folds=_FOLDS.value,
            pictures_dir=_PICTURES.value,
            arrays_dir=_ARRAYS.value,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    except ImportError as error:
        raise app.UsageError(
            f"{error}. Install the benchmark packages: pip install -r "
            "scripts/benchmarks/requirements-bench.txt"
        ) from error
    if _SAVE.value:
        with open(_SAVE.value, "w") as f:
            json.dump([[list(setting), seed, results] for setting, seed, results in grid], f)
    print(format_grid(grid))


def load_grids(paths):
    """The grids `--save` wrote to `paths`, as one `run_grid` list (to merge runs)."""
    grid = []
    for path in paths:
        with open(path) as f:
            grid += [(tuple(setting), seed, results) for setting, seed, results in json.load(f)]
    return grid


if __name__ == "__main__":
    # Defined here rather than at import so that tests can import `compare`
    # next to other programs defining the same training flags.
    _HOLDERS = elr_flags.define_flags()
    _FOLDS = flags.DEFINE_integer("folds", 5, "Cross-validation folds for cleanlab; 0: ELR alone.")
    _GRID = flags.DEFINE_string(
        "grid",
        "sym:0.2,sym:0.4,sym:0.6,sym:0.8,asym:0.4,idn:0.2,idn:0.4",
        "Noise settings, comma-separated kind:rate with kind sym (symmetric), asym "
        "(asymmetric) or idn (instance-dependent).",
    )
    _SEEDS = flags.DEFINE_list("noise_seeds", ["1", "2"], "Seeds; each draws its own noise.")
    _PICTURES = flags.DEFINE_string(
        "pictures_dir", None, "Write each run's ELR suspects.png and confusions.png here."
    )
    _SAVE = flags.DEFINE_string(
        "save",
        None,
        "Also write the figures to this JSON file; `load_grids` merges several "
        "(e.g. one process per seed) for `format_grid`.",
    )
    _ARRAYS = flags.DEFINE_string(
        "arrays_dir",
        None,
        "Write each run's arrays (labels, ELR's per-epoch tables, margins, embedding, "
        "cleanlab's out-of-sample probabilities) here, one .npz per setting and seed.",
    )
    flags.FLAGS.set_default("verbose", 0)
    app.run(main)
