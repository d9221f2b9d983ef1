"""KerasTuner search for ELR's lambda (and beta), callable without flags.

`run_search(TrainConfig(...), TuningOptions(...))` runs a KerasTuner search
over `ELRHyperModel` and writes one directory:

    <tuning_dir>/                (default <output_dir>/<name>-tuning)
        search.cfg   absl flagfile that reruns (or resumes) this search
        trials/      KerasTuner's project: one folder per trial with its
                     trial.json and best-epoch checkpoint (network,
                     optimiser and target table)
        trials.csv   one row per trial: lambda, beta, objective mean, std
                     over noise seeds, final-epoch mean, per-seed values and
                     every other metric computed
        best.cfg     absl flagfile that retrains the winner with
                     `scripts/train.py`

Which objective to trust when is discussed in the README ("Tuning lambda
with KerasTuner").

Example:

```python
config = TrainConfig(dataset="fashion_mnist", noise_rate=0.4, epochs=20)
result = run_search(config, TuningOptions(objective="probe_accuracy",
                                          probe_size=500, max_trials=8,
                                          noise_seeds=(1, 2, 3)))
result.best_hyperparameters    # {"lambda": ..., "beta": ...}
model = result.tuner.get_best_models(1)[0]  # trained, target table restored
```
"""

import csv
import dataclasses
import os

import keras_tuner
from absl import logging

from elr_tf.experiment.hypermodel import (
    BETA_CHOICES,
    OBJECTIVES,
    TUNERS,
    ELRHyperModel,
    TrialMetrics,
    TuningOptions,
)

__all__ = [
    "BETA_CHOICES",
    "OBJECTIVES",
    "TUNERS",
    "ELRHyperModel",
    "SearchResult",
    "TrialMetrics",
    "TuningOptions",
    "make_tuner",
    "run_search",
]

# KerasTuner's project folder inside the tuning directory.
_PROJECT = "trials"


@dataclasses.dataclass
class SearchResult:
    """What `run_search` found and wrote.

    Attributes:
        best_hyperparameters: `{"lambda": ..., "beta": ...}` of the best trial.
        best_trial_id: KerasTuner's id of the best trial.
        best_value: its objective, mean over noise seeds.
        best_std: the objective's standard deviation over noise seeds.
        trials: one dict per trial, the rows of `trials.csv`.
        directory: the tuning directory.
        trials_csv: path of `trials.csv`.
        best_flagfile: path of `best.cfg`.
        tuner: the KerasTuner tuner (e.g. `tuner.get_best_models()`).
    """

    best_hyperparameters: dict
    best_trial_id: str
    best_value: float
    best_std: float
    trials: list
    directory: str
    trials_csv: str
    best_flagfile: str
    tuner: keras_tuner.Tuner


def make_tuner(hypermodel, options, directory):
    """The KerasTuner tuner named by `options.tuner`, objective maximised."""
    config = hypermodel.config
    common = {
        "objective": keras_tuner.Objective(options.objective, direction="max"),
        "directory": directory,
        "project_name": _PROJECT,
        "overwrite": options.overwrite,
        "seed": hypermodel.seeds[0],
    }
    if config.gpus:
        common["distribution_strategy"] = hypermodel.strategy
    if options.tuner == "hyperband":
        return keras_tuner.Hyperband(
            hypermodel, max_epochs=config.epochs, factor=options.hyperband_factor, **common
        )
    tuner_class = {
        "random": keras_tuner.RandomSearch,
        "grid": keras_tuner.GridSearch,
        "bayesian": keras_tuner.BayesianOptimization,
    }[options.tuner]
    return tuner_class(hypermodel, max_trials=options.max_trials, **common)


def run_search(config, options=None, backbone_fn=None, callbacks=()):
    """Searches lambda (and beta) and writes the tuning directory.

    Args:
        config: the `TrainConfig` every trial starts from.
        options: a `TuningOptions`; defaults to `TuningOptions()`.
        backbone_fn: optional `backbone_fn(num_classes, input_shape)`, see
            `ELRHyperModel`.
        callbacks: extra Keras callbacks for each trial's (first seed's) fit.

    Returns:
        A `SearchResult`.

    Raises:
        ValueError: naming the first bad option or config field.
    """
    options = options or TuningOptions()
    hypermodel = ELRHyperModel(config, options, backbone_fn=backbone_fn).prepare()
    directory = options.tuning_dir or os.path.join(config.output_dir, f"{config.name}-tuning")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "search.cfg"), "w") as f:
        # Rerunning this file resumes the search, never wipes it.
        f.write(config.to_flagfile() + dataclasses.replace(options, overwrite=False).to_flagfile())
    if options.objective == "table_agreement":
        logging.warning(
            "objective=table_agreement rewards memorising the noisy labels and "
            "picks the smallest lambda; see the README on tuning."
        )

    tuner = make_tuner(hypermodel, options, directory)
    tuner.search(epochs=config.epochs, callbacks=list(callbacks), verbose=config.verbose)

    best_trials = tuner.oracle.get_best_trials(1)
    if not best_trials:
        raise RuntimeError(f"No trial of the search in {directory} completed.")
    best = best_trials[0]
    trials = _trial_rows(tuner, hypermodel, best.trial_id)
    trials_csv = os.path.join(directory, "trials.csv")
    _write_csv(trials_csv, trials)
    best_hp = {
        "lambda": float(best.hyperparameters.get("lambda")),
        "beta": float(best.hyperparameters.get("beta") if options.tune_beta else config.beta),
    }
    std = best.metrics.get_last_value(f"{options.objective}_std")
    best_flagfile = os.path.join(directory, "best.cfg")
    with open(best_flagfile, "w") as f:
        f.write(_best_flagfile(config, options, hypermodel.seeds, best, best_hp, std, directory))
    return SearchResult(
        best_hyperparameters=best_hp,
        best_trial_id=best.trial_id,
        best_value=float(best.score),
        best_std=float(std),
        trials=trials,
        directory=directory,
        trials_csv=trials_csv,
        best_flagfile=best_flagfile,
        tuner=tuner,
    )


def _trial_rows(tuner, hypermodel, best_id):
    name = hypermodel.options.objective
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        values = trial.hyperparameters.values
        metrics = trial.metrics

        def last(metric, metrics=metrics):
            return metrics.get_last_value(metric) if metrics.exists(metric) else None

        row = {
            "trial_id": trial_id,
            "status": trial.status,
            "best": int(trial_id == best_id),
            "lambda": values.get("lambda"),
            "beta": values.get("beta", hypermodel.config.beta),
            "epochs": values.get("tuner/epochs", hypermodel.config.epochs),
            "continued_from": values.get("tuner/trial_id", ""),
            "objective": name,
            "mean": last(name),
            "std": last(f"{name}_std"),
            "final_mean": last(f"{name}_final"),
        }
        for seed in hypermodel.seeds:
            row[f"seed_{seed}"] = last(f"{name}_seed{seed}")
        for metric in (*OBJECTIVES, "noise_rate"):
            if metric != name:
                row[metric] = last(metric)
        rows.append(row)
    return rows


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _best_flagfile(config, options, seeds, best, best_hp, std, directory):
    winner = dataclasses.replace(
        config,
        lam=best_hp["lambda"],
        beta=best_hp["beta"],
        seed=seeds[0],
        name=f"{config.name}-best",
    )
    seed_text = ", ".join(map(str, seeds))
    header = [
        f"# python scripts/train.py --flagfile={os.path.join(directory, 'best.cfg')}",
        f"# Best trial {best.trial_id} of a {options.tuner} search on "
        f"{options.objective}: {best.score:.4f} +- {std:.4f} (mean +- std over "
        f"seeds {seed_text}; best epoch of "
        f"{best.hyperparameters.values.get('tuner/epochs', config.epochs)}).",
        "# All flags resolved (command-line overrides of the search included);",
        "# add e.g. --epochs=150 to retrain longer than the search's trials.",
    ]
    return "\n".join(header) + "\n" + winner.to_flagfile()
