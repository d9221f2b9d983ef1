"""`ELRHyperModel`: ELR as a KerasTuner `HyperModel` over lambda (and beta).

`TuningOptions` says how to search; `run_search` in `elr_tf.experiment.tuning`
runs the search and writes its directory.
"""

import dataclasses
import math

import keras
import keras_tuner
import numpy as np

from elr_tf import checks
from elr_tf.data import make_eval_dataset
from elr_tf.experiment.assemble import (
    assemble,
    eval_batch_size,
    load_noisy_data,
    make_strategy,
)
from elr_tf.experiment.settings import between, check_fields, choice, setting, to_flagfile

TUNERS = ("random", "grid", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "probe_accuracy", "table_agreement")
BETA_CHOICES = (0.7, 0.9, 0.99)

_lambda_bound = between(0.0, low_open=True)


def _seeds(name, value):
    seeds = tuple(value)
    if any(not checks.is_int(s) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"`{name}` must be distinct non-negative integers. "
            f"Received: {name}={','.join(map(str, seeds))}"
        )
    return seeds


def _factor(name, value):
    if not checks.is_int(value) or value < 2:
        raise ValueError(f"`{name}` must be an integer >= 2. Received: {name}={value!r}")
    return value


@dataclasses.dataclass
class TuningOptions:
    """How to search; the model and data settings come from a `TrainConfig`.

    Fields are declared like `TrainConfig`'s (one flag each, see
    `elr_tf.experiment.flags`). Objectives, all maximised: `val_accuracy`
    (noisy validation split), `probe_accuracy` (`probe_size` validation
    examples with their clean labels) and `table_agreement` (agreement of
    `argmax T[i]` with the noisy labels: a memorisation diagnostic, biased
    towards small lambda). Each trial trains once per noise seed; its score
    is the mean over seeds of the objective at each run's best epoch.
    """

    tuner: str = setting("random", f"One of {', '.join(TUNERS)}.", check=choice(TUNERS))
    max_trials: int = setting(10, "Trials (ignored by hyperband).", check=checks.positive_int)
    objective: str = setting(
        "val_accuracy",
        f"One of {', '.join(OBJECTIVES)}; see the README for which to trust.",
        check=choice(OBJECTIVES),
    )
    lambda_min: float = setting(
        0.1, "Lower end of lambda's log-uniform range, > 0.", check=_lambda_bound
    )
    lambda_max: float = setting(10.0, "Upper end of lambda's range.", check=_lambda_bound)
    tune_beta: bool = setting(False, f"Also search beta in {BETA_CHOICES}.")
    noise_seeds: tuple = setting(
        (), "Seeds each trial is repeated over (default: --seed).", check=_seeds
    )
    probe_size: int = setting(
        0, "Clean probe examples from the val split; 0: none.", check=checks.non_negative_int
    )
    hyperband_factor: int = setting(3, "Hyperband reduction factor.", check=_factor)
    tuning_dir: str | None = setting(None, "Output directory (default <output_dir>/<name>-tuning).")
    overwrite: bool = setting(False, "Start afresh instead of resuming.")

    def validate(self, config=None):
        """Raises ValueError naming the first bad option (and config field)."""
        check_fields(self)
        if self.lambda_max <= self.lambda_min:
            raise ValueError(
                "`--lambda_max` must be greater than --lambda_min="
                f"{self.lambda_min}. Received: --lambda_max={self.lambda_max}"
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
        return to_flagfile(self)


@dataclasses.dataclass
class _SeedData:
    """A noise seed's data and evaluation pipelines, built once for all trials."""

    data: tuple
    val_ds: object
    probe_ds: object


class ELRHyperModel(keras_tuner.HyperModel):
    """A KerasTuner `HyperModel` of `ELRModel` whose search space is lambda (and beta).

    `build(hp)` declares `hp.Float("lambda", lambda_min, lambda_max,
    sampling="log")` and, with `tune_beta`, `hp.Choice("beta", [0.7, 0.9,
    0.99])`, and returns the model `assemble` builds for the config with
    those values. `fit(hp, model, ...)` trains it on the first noise seed,
    then a fresh model on each further seed, and returns the objective
    averaged over seeds, its spread `<objective>_std`, `<objective>_final`
    and per-seed values `<objective>_seed<s>`. The hypermodel owns the data,
    so call `tuner.search(epochs=...)` without `x`.

    Args:
        config: the `TrainConfig` every trial starts from (its `lam`, `beta`
            and `seed` are replaced per trial and seed).
        options: a `TuningOptions` (range, objective, seeds, probe).
        backbone_fn: optional `backbone_fn(num_classes, input_shape)`
            returning a Keras model that outputs logits; default: the
            config's `arch` preset.
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
        self.strategy = make_strategy(config.gpus)
        self._cache = {}
        self._runs = {}

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
        return self._assemble(lam, beta, self.seeds[0]).model

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
            run = self._runs.pop(id(model)) if k == 0 else self._assemble(lam, beta, seed)
            histories.append(
                self._fit_seed(
                    run,
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
        loaded = load_noisy_data(config)
        data = loaded[0]
        eval_bs = eval_batch_size(config)
        val_ds = None
        if len(data.val) > 0:
            val_ds = make_eval_dataset(data.val, data, eval_bs)
        elif self.options.objective == "val_accuracy":
            raise ValueError(
                "`--objective=val_accuracy` needs a validation split. "
                f"Received: --val_fraction={config.val_fraction}"
            )
        probe_ds = None
        if self.options.probe_size:
            probe = _probe_set(data.val, self.options.probe_size, seed)
            probe_ds = make_eval_dataset(probe, data, eval_bs)
        return _SeedData(data=loaded, val_ds=val_ds, probe_ds=probe_ds)

    def _assemble(self, lam, beta, seed):
        # Every trial starts from the same initialisation for a given seed, so
        # trials differ by their hyperparameters, not by their luck.
        config = dataclasses.replace(self.config, lam=lam, beta=beta, seed=seed)
        run = assemble(
            config,
            data=self._seed_data(seed).data,
            strategy=self.strategy,
            backbone_fn=self.backbone_fn,
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        self._runs[id(run.model)] = run
        return run

    def _fit_seed(self, run, seed, epochs, initial_epoch, callbacks, fit_kwargs):
        entry = self._seed_data(seed)
        data = run.data
        history = run.model.fit(
            run.train_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=entry.val_ds,
            # Ours first: the tuner's best-epoch checkpoint, its callbacks and
            # `History` must see the metrics `TrialMetrics` adds.
            callbacks=[
                *run.callbacks(),
                TrialMetrics(data.train.ids, data.train.labels, entry.probe_ds),
                keras.callbacks.TerminateOnNaN(),
                *callbacks,
            ],
            shuffle=False,
            **fit_kwargs,
        ).history
        self._runs.pop(id(run.model), None)
        losses = history.get("loss", [])
        if not losses or not all(math.isfinite(v) for v in losses):
            raise keras_tuner.errors.FailedTrialError(
                f"Training with lambda={run.model.lam}, beta={run.model.beta}, seed={seed} "
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
        rates = [self._seed_data(s).data[1] for s in self.seeds]
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
    probe = val.subset(pick)
    return probe.with_labels(probe.true_labels)


class TrialMetrics(keras.callbacks.Callback):
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
