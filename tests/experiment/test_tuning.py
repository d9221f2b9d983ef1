"""Tests of the KerasTuner search (elr_tf.tuning, scripts/tune.py).

Searches run offline on 600 Fashion-MNIST examples, `tiny_cnn`, 1-2 epochs.
"""

import csv
import dataclasses
import os
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest
from absl import flags

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.experiment import flags as elr_flags
from elr_tf.experiment import tuning
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.train import train
from elr_tf.models import ELRModel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION = os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
needs_fashion = pytest.mark.skipif(not FASHION, reason="dataset-fashion-mnist not installed")
# keras-tuner 1.4.8 calls `threading.currentThread().getName()`.
pytestmark = pytest.mark.filterwarnings("ignore:(currentThread|getName):DeprecationWarning")


def _config(tmp_path, *argv):
    return config_from_argv(
        [
            "--flagfile=" + os.path.join(REPO, "configs/fashion_mnist_sym.cfg"),
            "--arch=tiny_cnn",
            "--num_train=600",
            "--epochs=1",
            "--bs=64",
            "--verbose=0",
            f"--output_dir={tmp_path}",
            *argv,
        ]
    )


class _Recorder(keras.callbacks.Callback):
    """Records each fit's target table and optimiser step at its start and end.

    KerasTuner deep-copies the callbacks of every trial, so the records live
    on the class.
    """

    records = []

    def on_train_begin(self, logs=None):
        self._record("begin")

    def on_train_end(self, logs=None):
        self._record("end")

    def _record(self, when):
        self.records.append(
            {
                "when": when,
                "lam": self.model.lam,
                "table": self.model.target_table.numpy(),
                "step": int(self.model.optimizer.iterations.numpy()),
            }
        )


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@needs_fashion
def test_random_search_end_to_end(tmp_path):
    _Recorder.records = []
    config = _config(tmp_path)
    options = tuning.TuningOptions(
        tuner="random",
        max_trials=2,
        objective="probe_accuracy",
        probe_size=30,
        noise_seeds=(1, 2),
        lambda_min=0.3,
        lambda_max=30.0,
    )
    result = tuning.run_search(config, options, callbacks=[_Recorder()])

    # trials.csv: one row per trial; mean and spread over the two seeds.
    rows = _read_csv(result.trials_csv)
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "COMPLETED"
        assert 0.3 <= float(row["lambda"]) <= 30.0
        assert float(row["beta"]) == config.beta
        seeds = [float(row["seed_1"]), float(row["seed_2"])]
        assert float(row["mean"]) == pytest.approx(np.mean(seeds))
        assert float(row["std"]) == pytest.approx(np.std(seeds, ddof=1))
        for metric in ("val_accuracy", "table_agreement", "noise_rate"):
            assert 0.0 <= float(row[metric]) <= 1.0, metric
    best_row = max(rows, key=lambda r: float(r["mean"]))
    assert best_row["best"] == "1"
    assert result.best_hyperparameters["lambda"] == pytest.approx(float(best_row["lambda"]))
    assert result.best_std == pytest.approx(float(best_row["std"]))
    for name in ("trials", "search.cfg", "best.cfg"):
        assert os.path.exists(os.path.join(result.directory, name)), name
    # search.cfg reruns (resumes) the same search.
    flag_values = flags.FlagValues()
    config_holders = elr_flags.define_flags(flag_values=flag_values)
    tuning_holders = elr_flags.define_flags(tuning.TuningOptions, flag_values)
    flag_values(["tune", "--flagfile=" + os.path.join(result.directory, "search.cfg")])
    assert elr_flags.config_from_flags(config_holders) == config
    assert elr_flags.config_from_flags(tuning_holders, tuning.TuningOptions) == options

    # Only the first seed's fits get the search's callbacks: one per trial.
    ends = [r for r in _Recorder.records if r["when"] == "end"]
    assert len(ends) == 2
    trained = next(r for r in ends if r["lam"] == result.best_hyperparameters["lambda"])

    # The best model comes back trained, its target table included.
    model = result.tuner.get_best_models(1)[0]
    assert isinstance(model, ELRModel)
    assert model.lam == result.best_hyperparameters["lambda"]
    table = model.target_table.numpy()
    assert np.abs(table).sum() > 0
    np.testing.assert_array_equal(table, trained["table"])
    logits = model.predict(np.zeros((3, 28, 28, 1), "float32"), verbose=0)
    assert logits.shape == (3, 10) and np.isfinite(logits).all()

    # best.cfg is a flagfile that retrains the winner.
    retrain = config_from_argv([f"--flagfile={result.best_flagfile}", "--epochs=1"])
    assert retrain.lam == result.best_hyperparameters["lambda"]
    assert retrain.seed == 1
    assert retrain.output_dir == str(tmp_path)
    summary = train(retrain)
    assert summary["epochs"] == 1
    assert summary["run_dir"].startswith(os.path.join(str(tmp_path), f"{config.name}-best"))


@needs_fashion
def test_hyperband_continues_a_trial_with_its_table_and_optimizer(tmp_path):
    _Recorder.records = []
    config = _config(tmp_path, "--epochs=2")
    options = tuning.TuningOptions(tuner="hyperband", hyperband_factor=2, objective="val_accuracy")
    result = tuning.run_search(config, options, callbacks=[_Recorder()])

    rows = {row["trial_id"]: row for row in _read_csv(result.trials_csv)}
    continued = [row for row in rows.values() if row["continued_from"]]
    assert continued, rows
    row = continued[0]
    parent = rows[row["continued_from"]]
    assert row["lambda"] == parent["lambda"]
    assert (int(parent["epochs"]), int(row["epochs"])) == (1, 2)

    # The continued fit starts from the parent's final table and step count.
    lam = float(row["lambda"])
    ends = [r for r in _Recorder.records if r["when"] == "end" and r["lam"] == lam]
    begins = [r for r in _Recorder.records if r["when"] == "begin" and r["lam"] == lam]
    resumed = [r for r in begins if r["step"] > 0]
    assert len(resumed) == 1
    assert np.abs(resumed[0]["table"]).sum() > 0
    np.testing.assert_array_equal(resumed[0]["table"], ends[0]["table"])
    assert resumed[0]["step"] == ends[0]["step"]
    assert ends[1]["step"] == 2 * ends[0]["step"]


@needs_fashion
@pytest.mark.parametrize("tuner", ["grid", "bayesian"])
def test_grid_and_bayesian_run_a_trial(tmp_path, tuner):
    built = []

    def backbone_fn(num_classes, input_shape):
        # Any builder plugs in; the grid case uses this one, bayesian the preset.
        built.append((num_classes, input_shape))
        return keras.Sequential(
            [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        )

    config = _config(tmp_path)
    options = tuning.TuningOptions(tuner=tuner, max_trials=1, tune_beta=True)
    result = tuning.run_search(
        config, options, backbone_fn=backbone_fn if tuner == "grid" else None
    )
    assert (built[-1] == (10, (28, 28, 1))) if tuner == "grid" else not built
    (row,) = _read_csv(result.trials_csv)
    assert row["status"] == "COMPLETED"
    assert float(row["beta"]) in tuning.BETA_CHOICES
    assert 0.1 <= float(row["lambda"]) <= 10.0
    if tuner == "grid":
        # The grid starts at the defaults: the config's lambda and beta.
        assert float(row["lambda"]) == config.lam
        assert float(row["beta"]) == config.beta
    retrain = config_from_argv([f"--flagfile={result.best_flagfile}"])
    assert retrain.beta == result.best_hyperparameters["beta"]


def test_table_agreement_counts_rows_whose_argmax_is_the_label():
    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model = ELRModel(backbone, num_examples=4, num_classes=3)
    model.target_layers[0].table.assign(
        [[0.5, 0.2, 0.3], [0.0, 0.0, 0.0], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]]
    )
    callback = tuning.TrialMetrics(ids=np.array([0, 2, 3]), labels=np.array([0, 2, 0]))
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    # Ids 0 and 2 agree (argmax 0 and 2); id 3's argmax is 1, not 0. Id 1 is
    # not a training id.
    assert logs["table_agreement"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tuner": "sgd"}, "--tuner='sgd'"),
        ({"objective": "test_accuracy"}, "--objective='test_accuracy'"),
        ({"max_trials": 0}, "--max_trials=0"),
        ({"lambda_min": 0.0}, "--lambda_min=0.0"),
        ({"lambda_min": 2.0, "lambda_max": 1.0}, "--lambda_max=1.0"),
        ({"noise_seeds": (1, 1)}, "--noise_seeds=1,1"),
        ({"noise_seeds": (-1,)}, "--noise_seeds=-1"),
        ({"probe_size": -5}, "--probe_size=-5"),
        ({"objective": "probe_accuracy"}, "--probe_size=0"),
        ({"hyperband_factor": 1}, "--hyperband_factor=1"),
    ],
)
def test_bad_options_raise_naming_the_option(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        tuning.run_search(_config(tmp_path), tuning.TuningOptions(**options))


def test_bad_config_for_tuning_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--loss='ce'"):
        tuning.run_search(dataclasses.replace(_config(tmp_path), loss="ce"))
    with pytest.raises(ValueError, match="--percent=1.5"):
        tuning.run_search(_config(tmp_path, "--percent=1.5"))


@needs_fashion
def test_probe_larger_than_the_validation_split_is_refused(tmp_path):
    # 600 examples leave 60 for validation.
    with pytest.raises(ValueError, match=r"60 validation examples.*--probe_size=100"):
        tuning.run_search(_config(tmp_path), tuning.TuningOptions(probe_size=100))


def test_noise_seeds_flag_must_be_integers():
    flag_values = flags.FlagValues()
    holders = elr_flags.define_flags(tuning.TuningOptions, flag_values)
    flag_values(["tune", "--noise_seeds=1,a", "--tuner=grid"])
    with pytest.raises(ValueError, match="--noise_seeds=1,a"):
        elr_flags.config_from_flags(holders, tuning.TuningOptions)
    flag_values(["tune", "--noise_seeds=3,4"])
    assert elr_flags.config_from_flags(holders, tuning.TuningOptions).noise_seeds == (3, 4)


def test_search_with_data_arguments_is_fatal(tmp_path):
    hypermodel = tuning.ELRHyperModel(_config(tmp_path))
    with pytest.raises(keras_tuner.errors.FatalValueError, match="without data"):
        hypermodel.fit(keras_tuner.HyperParameters(), None, np.zeros((2, 28, 28, 1)))


def test_script_reports_a_bad_tuning_flag_and_exits_non_zero():
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "tune.py"),
            "--flagfile=" + os.path.join(REPO, "configs/fashion_mnist_sym.cfg"),
            "--tuner=sgd",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode != 0
    assert "--tuner='sgd'" in result.stderr
