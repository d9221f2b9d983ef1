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

Each trial trains one model per noise seed (`noise_seeds`; default the
config's `seed` only). The seed replaces the config's `seed` as a whole, so
the split, the noise draw, the initialisation and the batch order all change
with it: each repetition is exactly the run `scripts/train.py --seed=<s>
--lambda=<trial's lambda>` would make for the trial's number of epochs. The
trial's score is the mean over seeds of the objective at each run's best
epoch (KerasTuner's convention; that epoch's weights and target table are
what `get_best_models()` restores); `<objective>_std` is the sample standard
deviation over seeds (0 for a single seed), `<objective>_final` the mean at
the last epoch. Only the first seed's model is checkpointed, receives the
callbacks given to `search`, and is continued by Hyperband; the other seeds
train from scratch for the trial's full number of epochs (so Hyperband's
savings apply to the first seed only).

Objectives (`TuningOptions.objective`), all maximised:

- `val_accuracy`: accuracy on the noisy validation split, what a
  practitioner has. With symmetric noise (labels redrawn uniformly) its
  expectation is `(1 - r) * clean_accuracy + r / C`, an increasing function
  of clean accuracy, so it ranks models as clean accuracy would, but its
  noise is that of a validation set `(1 - r)` times smaller. With
  class-dependent noise (asymmetric flips, human label noise such as
  CIFAR-10N) it is biased: a mistake that repeats the noise (truck predicted
  as automobile when trucks are often labelled automobile) is rewarded, so
  it leans towards models that have partly memorised the noise, i.e.
  towards smaller lambda.
- `probe_accuracy`: accuracy on a small clean probe set, `probe_size`
  examples drawn (seeded) from the validation split with their clean
  labels. The probe never overlaps the training examples (their noisy
  labels are fitted) nor the test set (which must stay untouched to report
  the winner's accuracy). A practitioner gets it by cleanly re-labelling a
  few hundred held-out examples. Unbiased for clean accuracy; its standard
  error is about `sqrt(a (1 - a) / probe_size)` (~2 points at 500
  examples), which is often the size of the differences between good
  lambdas, hence the seed repetition.
- `table_agreement`: fraction of training examples whose target-table row
  `argmax T[i]` equals their (noisy) training label. Biased by design:
  ELR works by keeping `T[i]` on the class learnt early, which for a
  mislabelled example is *not* its label, so a well-regularised model
  agrees on about `1 - (fraction of wrong labels)` of the examples, while a
  model that memorises (lambda -> 0) agrees on all of them. Maximising it
  therefore selects the smallest lambda of the range. Use it as a
  diagnostic, logged for every trial: agreement close to 1 at a known
  substantial noise rate means the network memorised; agreement near
  `1 - noise_rate` (the realised rate is logged as `noise_rate` when the
  true labels are known) means the table flags about as many labels as are
  wrong.

Which objective to trust when:

1. A clean probe exists (synthetic-noise studies, where the validation
   split's clean labels are known, or a practitioner's few hundred
   re-labelled examples): use `probe_accuracy`; take a probe of at least a
   few hundred examples and several noise seeds. Report the winner on the
   clean test set, never on the probe it was selected on.
2. No clean labels, noise roughly symmetric: `val_accuracy` is sound; use
   several noise seeds because the noisy split is a weaker signal.
3. No clean labels, strongly class-dependent noise: `val_accuracy` is the
   only choice but biased towards small lambda; treat its pick as a lower
   bound, prefer the larger of near-tied lambdas, or label a probe.
4. Never choose lambda by maximising `table_agreement`; read it beside the
   other objectives to detect memorisation.
5. Whatever the objective, give trials enough epochs to reach the phase
   where cross-entropy memorises the noise. Before it, ELR's term mostly
   slows learning, so every objective prefers small lambda. (12 epochs on
   2,700 Fashion-MNIST examples at 60% symmetric noise, `small_cnn`: probe
   accuracy 0.69 at lambda = 3 and 0.75 at lambda = 0.16; agreement 0.34 to
   0.38, still below `1 - noise_rate` = 0.47, i.e. nothing memorised yet.)
   Hyperband's short brackets share this bias.

Example:

```python
config = TrainConfig(dataset="fashion_mnist", percent=0.4, epochs=20)
result = run_search(config, TuningOptions(objective="probe_accuracy",
                                          probe_size=500, max_trials=8,
                                          noise_seeds=(1, 2, 3)))
result.best_hyperparameters    # {"lambda": ..., "beta": ...}
model = result.tuner.get_best_models(1)[0]  # trained, target table restored
```
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from absl import flags, logging

from elr_tf import datasets, training
from elr_tf.elr_model import ELRModel
from elr_tf.training import check_choice, check_positive_int, check_range

TUNERS = ("random", "grid", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "probe_accuracy", "table_agreement")
BETA_CHOICES = (0.7, 0.9, 0.99)

# KerasTuner's project folder inside the tuning directory.
_PROJECT = "trials"


@dataclasses.dataclass
class TuningOptions:
    """How to search; the model and data settings come from a `TrainConfig`.

    Attributes:
        tuner: `random`, `grid`, `bayesian` or `hyperband`.
        max_trials: number of trials (random, grid, bayesian). Hyperband's
            budget is set by the config's `epochs` (its `max_epochs`) and
            `hyperband_factor` instead.
        objective: `val_accuracy`, `probe_accuracy` or `table_agreement`
            (see the module docstring for which to trust when).
        lambda_min: lower end of lambda's log-uniform range, > 0 (lambda = 0
            is the cross-entropy baseline: train it with `--loss=ce`).
        lambda_max: upper end, > `lambda_min`.
        tune_beta: also search beta in `BETA_CHOICES`; otherwise the
            config's `beta` is used.
        noise_seeds: seeds each trial is repeated over (see the module
            docstring); empty: the config's `seed` only. The first seed is
            the one `best.cfg` and `get_best_models()` use.
        probe_size: number of validation examples whose clean labels form
            the probe set; 0: no probe. Required by `probe_accuracy`; when
            positive, `probe_accuracy` is logged whatever the objective.
        hyperband_factor: Hyperband's reduction factor, >= 2.
        tuning_dir: output directory; None: `<output_dir>/<name>-tuning`.
        overwrite: start afresh instead of resuming a search found in
            `tuning_dir`.
    """

    tuner: str = "random"
    max_trials: int = 10
    objective: str = "val_accuracy"
    lambda_min: float = 0.1
    lambda_max: float = 10.0
    tune_beta: bool = False
    noise_seeds: tuple = ()
    probe_size: int = 0
    hyperband_factor: int = 3
    tuning_dir: str | None = None
    overwrite: bool = False

    def validate(self, config=None):
        """Raises ValueError naming the first bad option (and config field)."""
        check_choice("tuner", self.tuner, TUNERS)
        check_choice("objective", self.objective, OBJECTIVES)
        check_positive_int("max_trials", self.max_trials)
        check_range("lambda_min", self.lambda_min, 0.0, math.inf, low_open=True, high_open=True)
        check_range(
            "lambda_max", self.lambda_max, self.lambda_min, math.inf, low_open=True, high_open=True
        )
        if isinstance(self.hyperband_factor, bool) or not (
            isinstance(self.hyperband_factor, int) and self.hyperband_factor >= 2
        ):
            raise ValueError(
                "`--hyperband_factor` must be an integer >= 2. "
                f"Received: --hyperband_factor={self.hyperband_factor!r}"
            )
        seeds = tuple(self.noise_seeds)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(
            set(seeds)
        ) != len(seeds):
            raise ValueError(
                "`--noise_seeds` must be distinct non-negative integers. "
                f"Received: --noise_seeds={','.join(map(str, seeds))}"
            )
        if isinstance(self.probe_size, bool) or not (
            isinstance(self.probe_size, int) and self.probe_size >= 0
        ):
            raise ValueError(
                "`--probe_size` must be an integer >= 0. "
                f"Received: --probe_size={self.probe_size!r}"
            )
        if self.objective == "probe_accuracy" and self.probe_size == 0:
            raise ValueError(
                "`--objective=probe_accuracy` needs a clean probe set: set "
                "`--probe_size` to a positive number of validation examples. "
                "Received: --probe_size=0"
            )
        if config is not None:
            if config.loss != "elr":
                raise ValueError(
                    "Tuning searches lambda, which the cross-entropy baseline "
                    f"ignores; use `--loss=elr`. Received: --loss={config.loss!r}"
                )
            if config.resume:
                raise ValueError(
                    "`--resume` continues a training run and does not apply to "
                    "tuning (a search resumes from its `tuning_dir` by itself). "
                    f"Received: --resume={config.resume!r}"
                )
            config.validate()
        return self

    def seeds(self, config):
        """The noise seeds, the config's `seed` when none are given."""
        return tuple(self.noise_seeds) or (config.seed,)

    def to_flagfile(self):
        """The options as absl flagfile lines (`--flag=value`)."""
        lines = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, (tuple, list)):
                value = ",".join(map(str, value))
            lines.append(f"--{field.name}={value}")
        return "\n".join(lines) + "\n"


@dataclasses.dataclass
class _SeedData:
    """A noise seed's data and pipelines, built once and reused by trials."""

    data: datasets.NoisyData
    noise_rate: float | None
    train_ds: object
    val_ds: object
    probe_ds: object
    epoch: tf.Variable
    steps_per_epoch: int


class ELRHyperModel(keras_tuner.HyperModel):
    """A KerasTuner `HyperModel` of `ELRModel` whose search space is lambda (and beta).

    `build(hp)` declares the search space: `hp.Float("lambda", lambda_min,
    lambda_max, sampling="log")` and, with `tune_beta`, `hp.Choice("beta",
    [0.7, 0.9, 0.99])`. It returns an `ELRModel` built from the config (or
    from `backbone_fn`) and compiled as `elr_tf.training.train` compiles it.
    The hypermodel owns the data (loaded from the config, once per noise
    seed), so `search` takes no `x`: call `tuner.search(epochs=...)`.

    `fit(hp, model, ...)` trains the model on the first noise seed's data,
    then a fresh model on each further seed, adding `table_agreement` (and
    `probe_accuracy` when a probe is set) to each epoch's logs so that
    KerasTuner's best-epoch checkpoint is chosen on the objective. It
    returns the trial's metrics: the objective averaged over seeds, its
    spread `<objective>_std`, `<objective>_final` and per-seed values
    `<objective>_seed<s>`. Works with every KerasTuner tuner; Hyperband's
    `epochs`/`initial_epoch` continue the first seed's model (target table
    and optimiser state come back from the previous trial's checkpoint, so
    the learning-rate schedule and the batch order continue too).

    Args:
        config: the `TrainConfig` every trial starts from (its `lam`, `beta`
            and `seed` are replaced per trial and seed).
        options: a `TuningOptions` (range, objective, seeds, probe).
        backbone_fn: optional `backbone_fn(num_classes, input_shape)`
            returning a Keras model that outputs logits; default: the
            config's `arch` preset through `training.build_model`.
        **kwargs: passed to `keras_tuner.HyperModel` (`name`, `tunable`).

    Example:

    ```python
    hypermodel = ELRHyperModel(config, TuningOptions(lambda_min=0.3))
    tuner = keras_tuner.RandomSearch(
        hypermodel, keras_tuner.Objective("val_accuracy", "max"),
        max_trials=5, directory="/tmp/search")
    tuner.search(epochs=10, verbose=0)
    ```

    References:
        Liu et al., "Early-Learning Regularization Prevents Memorization of
        Noisy Labels", NeurIPS 2020 (the reference tunes lambda in
        {1, 3, 5, 7, 10} and beta in {0.1, 0.3, 0.5, 0.7, 0.9, 0.99}).
    """

    def __init__(self, config, options=None, backbone_fn=None, **kwargs):
        super().__init__(**kwargs)
        self.options = (options or TuningOptions()).validate(config)
        self.config = config
        self.backbone_fn = backbone_fn
        self.seeds = self.options.seeds(config)
        self._strategy = training.make_strategy(config.gpus)
        self._cache = {}

    def declare_hyperparameters(self, hp):
        """Registers lambda (and beta) in `hp`; returns their values."""
        o, c = self.options, self.config
        lam = hp.Float(
            "lambda",
            min_value=o.lambda_min,
            max_value=o.lambda_max,
            sampling="log",
            # GridSearch's first trial takes the default: the config's lambda.
            default=min(max(c.lam, o.lambda_min), o.lambda_max),
        )
        beta = c.beta
        if o.tune_beta:
            default = c.beta if c.beta in BETA_CHOICES else None
            beta = hp.Choice("beta", list(BETA_CHOICES), default=default)
        return float(lam), float(beta)

    def build(self, hp):
        lam, beta = self.declare_hyperparameters(hp)
        return self._build_model(lam, beta, self.seeds[0])

    def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=None, **kwargs):
        """Trains the trial on every noise seed; returns the trial's metrics."""
        if args or {"x", "y", "validation_data"} & set(kwargs):
            # Fatal: KerasTuner would otherwise record every trial as invalid.
            raise keras_tuner.errors.FatalValueError(
                "ELRHyperModel trains on the data of its config; call "
                "`tuner.search(epochs=...)` without data arguments. Received: "
                f"{len(args)} positional and keyword arguments {sorted(kwargs)}"
            )
        epochs = self.config.epochs if epochs is None else epochs
        kwargs.setdefault("verbose", self.config.verbose)
        lam, beta = self.declare_hyperparameters(hp)
        histories = []
        for k, seed in enumerate(self.seeds):
            if k > 0:
                model = self._build_model(lam, beta, seed)
            histories.append(
                self._fit_seed(
                    model,
                    seed,
                    epochs,
                    initial_epoch if k == 0 else 0,
                    list(callbacks or []) if k == 0 else [],
                    kwargs,
                )
            )
        return self._summarise(histories)

    def prepare(self):
        """Loads every noise seed's data now, raising on bad settings early."""
        for seed in self.seeds:
            self._seed_data(seed)
        return self

    def _seed_data(self, seed):
        if seed not in self._cache:
            self._cache[seed] = self._load(seed)
        return self._cache[seed]

    def _load(self, seed):
        config = dataclasses.replace(self.config, seed=seed)
        data, noise_rate = training.load_noisy_data(config)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        train_ds = training.make_train_input(config, data, epoch)
        eval_bs = training.eval_batch_size(config)
        val_ds = None
        if len(data.val) > 0:
            val_ds = datasets.make_eval_dataset(data.val, data, eval_bs)
        elif self.options.objective == "val_accuracy":
            raise ValueError(
                "`--objective=val_accuracy` needs a validation split. "
                f"Received: --val_fraction={config.val_fraction}"
            )
        probe_ds = None
        if self.options.probe_size:
            probe = _probe_set(data.val, self.options.probe_size, seed)
            probe_ds = datasets.make_eval_dataset(probe, data, eval_bs)
        return _SeedData(
            data=data,
            noise_rate=noise_rate,
            train_ds=train_ds,
            val_ds=val_ds,
            probe_ds=probe_ds,
            epoch=epoch,
            steps_per_epoch=int(train_ds.cardinality()),
        )

    def _build_model(self, lam, beta, seed):
        # Every trial starts from the same initialisation for a given seed, so
        # trials differ by their hyperparameters, not by their luck.
        keras.utils.set_random_seed(seed)
        entry = self._seed_data(seed)
        config = dataclasses.replace(self.config, lam=lam, beta=beta, seed=seed)
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        data = entry.data
        with self._strategy.scope():
            if self.backbone_fn is None:
                model = training.build_model(config, data)
            else:
                backbone = self.backbone_fn(data.num_classes, data.image_shape)
                model = ELRModel(
                    backbone,
                    num_examples=data.num_examples,
                    num_classes=data.num_classes,
                    beta=beta,
                    lam=lam,
                )
            training.compile_model(
                model,
                config,
                entry.steps_per_epoch,
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            )
            if model.built:
                # Built now so that loading a checkpoint (Hyperband's
                # continuation, `get_best_models`) restores the optimiser's
                # momentum and step count, hence the schedule's position.
                model.optimizer.build(model.trainable_variables)
        return model

    def _fit_seed(self, model, seed, epochs, initial_epoch, callbacks, fit_kwargs):
        entry = self._seed_data(seed)
        history = model.fit(
            entry.train_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=entry.val_ds,
            # Ours first: the tuner's best-epoch checkpoint, its callbacks and
            # `History` must see the metrics `_TrialMetrics` adds.
            callbacks=[
                training.EpochClock(entry.epoch),
                _TrialMetrics(entry.data.train.ids, entry.data.train.labels, entry.probe_ds),
                keras.callbacks.TerminateOnNaN(),
                *callbacks,
            ],
            shuffle=False,
            **fit_kwargs,
        ).history
        losses = history.get("loss", [])
        if not losses or not all(math.isfinite(v) for v in losses):
            raise keras_tuner.errors.FailedTrialError(
                f"Training with lambda={model.lam}, beta={model.beta}, seed={seed} "
                f"gave a non-finite loss (losses per epoch: {losses})."
            )
        return history

    def _summarise(self, histories):
        name = self.options.objective
        best_rows, finals = [], []
        for history in histories:
            values = history[name]
            best_rows.append({k: v[int(np.argmax(values))] for k, v in history.items()})
            finals.append(values[-1])
        best = [row[name] for row in best_rows]
        metrics = {
            metric: float(np.mean([row[metric] for row in best_rows]))
            for metric in OBJECTIVES
            if metric in best_rows[0]
        }
        metrics[f"{name}_std"] = float(np.std(best, ddof=1)) if len(best) > 1 else 0.0
        metrics[f"{name}_final"] = float(np.mean(finals))
        for seed, value in zip(self.seeds, best):
            metrics[f"{name}_seed{seed}"] = float(value)
        rates = [self._seed_data(s).noise_rate for s in self.seeds]
        if all(r is not None for r in rates):
            metrics["noise_rate"] = float(np.mean(rates))
        return metrics


def _probe_set(val, size, seed):
    """`size` validation examples (seeded draw) labelled with their clean labels."""
    known = np.zeros(0, np.int64)
    if val.true_labels is not None:
        known = np.flatnonzero(val.true_labels >= 0)
    if size > len(known):
        raise ValueError(
            f"`--probe_size` exceeds the {len(known)} validation examples whose "
            f"clean label is known. Received: --probe_size={size}"
        )
    pick = np.sort(np.random.default_rng(seed).choice(known, size, replace=False))
    return datasets.ExampleSet(
        ids=val.ids[pick],
        labels=val.true_labels[pick],
        true_labels=val.true_labels[pick],
        images=None if val.images is None else val.images[pick],
        paths=None if val.paths is None else val.paths[pick],
    )


class _TrialMetrics(keras.callbacks.Callback):
    """Adds `table_agreement` (and `probe_accuracy`) to each epoch's logs."""

    def __init__(self, ids, labels, probe_ds=None):
        super().__init__()
        self.ids = ids
        self.labels = labels
        self.probe_ds = probe_ds

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        table = keras.ops.convert_to_numpy(self.model.target_table)
        logs["table_agreement"] = float(np.mean(table[self.ids].argmax(-1) == self.labels))
        if self.probe_ds is not None:
            result = self.model.evaluate(self.probe_ds, verbose=0, return_dict=True)
            logs["probe_accuracy"] = result["accuracy"]


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
        common["distribution_strategy"] = hypermodel._strategy
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
            "picks the smallest lambda; see elr_tf.tuning's docstring."
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


def define_flags(flag_values=flags.FLAGS):
    """Defines one absl flag per `TuningOptions` field; returns the holders."""
    fv = {"flag_values": flag_values}
    d = TuningOptions()
    return {
        "tuner": flags.DEFINE_string("tuner", d.tuner, f"One of {', '.join(TUNERS)}.", **fv),
        "max_trials": flags.DEFINE_integer(
            "max_trials", d.max_trials, "Trials (ignored by hyperband).", **fv
        ),
        "objective": flags.DEFINE_string(
            "objective",
            d.objective,
            f"One of {', '.join(OBJECTIVES)}; see elr_tf/tuning.py for which to trust.",
            **fv,
        ),
        "lambda_min": flags.DEFINE_float("lambda_min", d.lambda_min, "Lambda range low.", **fv),
        "lambda_max": flags.DEFINE_float("lambda_max", d.lambda_max, "Lambda range high.", **fv),
        "tune_beta": flags.DEFINE_bool(
            "tune_beta", d.tune_beta, f"Also search beta in {BETA_CHOICES}.", **fv
        ),
        "noise_seeds": flags.DEFINE_list(
            "noise_seeds", [], "Seeds each trial is repeated over (default: --seed).", **fv
        ),
        "probe_size": flags.DEFINE_integer(
            "probe_size", d.probe_size, "Clean probe examples from the val split; 0: none.", **fv
        ),
        "hyperband_factor": flags.DEFINE_integer(
            "hyperband_factor", d.hyperband_factor, "Hyperband reduction factor.", **fv
        ),
        "tuning_dir": flags.DEFINE_string(
            "tuning_dir",
            d.tuning_dir,
            "Output directory (default <output_dir>/<name>-tuning).",
            **fv,
        ),
        "overwrite": flags.DEFINE_bool(
            "overwrite", d.overwrite, "Start afresh instead of resuming.", **fv
        ),
    }


def options_from_flags(holders):
    """Builds `TuningOptions` from parsed flag holders."""
    values = {field: holder.value for field, holder in holders.items()}
    seeds = []
    for text in values["noise_seeds"]:
        try:
            seeds.append(int(text))
        except ValueError:
            raise ValueError(
                "`--noise_seeds` must be comma-separated integers. "
                f"Received: --noise_seeds={','.join(values['noise_seeds'])}"
            ) from None
    values["noise_seeds"] = tuple(seeds)
    return TuningOptions(**values)
