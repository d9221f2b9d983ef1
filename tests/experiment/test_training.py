"""End-to-end tests of the training program (elr_tf.training, scripts/train.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.diagnostics import issue_count
from elr_tf.experiment import checkpointing
from elr_tf.experiment.assemble import make_strategy
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.outputs import read_metrics
from elr_tf.experiment.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION = os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
needs_fashion = pytest.mark.skipif(not FASHION, reason="dataset-fashion-mnist not installed")

QUICK = ["--arch=tiny_cnn", "--num_train=400", "--epochs=2", "--verbose=0", "--bs=64"]


def _config(tmp_path, *argv):
    return config_from_argv(
        [
            "--flagfile=" + os.path.join(REPO, "configs/fashion_mnist_sym.cfg"),
            *QUICK,
            f"--output_dir={tmp_path}",
            *argv,
        ]
    )


@needs_fashion
def test_fashion_mnist_run_writes_its_directory(tmp_path):
    summary = train(_config(tmp_path, "--percent=0.6", "--name=fm"))
    run_dir = summary["run_dir"]
    for name in (
        "flags.cfg",
        "config.json",
        "metrics.csv",
        "model.keras",
        "targets.npy",
        "noisy_labels.npy",
        "true_labels.npy",
        "summary.json",
        "tensorboard",
        "audit.csv",
        "memorization.csv",
        "memorization.png",
        "suspects.png",
        "confusions.png",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "summary.json")) as f:
        written = json.load(f)
    for key in (
        "final_test_accuracy",
        "best_test_accuracy",
        "epochs",
        "noise_rate_realised",
        "seconds_per_epoch",
    ):
        assert written[key] is not None, key
    assert written["epochs"] == 2
    detection = written["label_detection"]
    assert detection["num_examples"] == summary["num_train"]
    issues = written["label_issues"]
    assert (issues["score"], issues["flag"]) == ("combined", "pairs")
    assert issues["num_estimated"] == detection["num_estimated"] > 0
    assert issues["num_flagged"] == detection["num_flagged"]
    # The per-pair estimate sums to the count; the truth beside it sums to
    # the wrong labels.
    assert issues["neighbours"] == 30
    # The run kept its averaged table; the count's source follows count_lost
    # and the unplaced share.
    assert issues["table"] == "averaged" and -1 <= issues["count_lost"] <= 1
    assert 0 <= issues["unplaced"] <= 1
    calibrated = (
        issues["count_lost"] >= issue_count.MEMORISED or issues["unplaced"] >= issue_count.UNPLACED
    )
    assert issues["count_source"] == (
        "averaged table, calibrated" if calibrated else "table + neighbours"
    )
    assert np.sum(issues["pair_counts"]) == issues["num_estimated"]
    assert np.trace(issues["pair_counts"]) == 0
    assert np.sum(detection["true_pair_counts"]) == detection["num_noisy"]
    assert detection["pair_error"] == pytest.approx(
        np.abs(np.subtract(issues["pair_counts"], detection["true_pair_counts"])).sum()
        / detection["num_noisy"]
    )
    assert 0 <= detection["precision"] <= 1 and 0 <= detection["auroc"] <= 1
    # 60% symmetric noise, true class included: about 0.6 * 0.9 wrong.
    assert 0.45 < written["noise_rate_realised"] < 0.63
    metrics = read_metrics(os.path.join(run_dir, "metrics.csv"))
    for column in (
        "loss",
        "ce",
        "elr",
        "val_accuracy",
        "test_accuracy",
        "test_top5",
        "audit_f1",
        "audit_auroc",
        "mem_clean_correct",
        "mem_noisy_memorized",
    ):
        assert len(metrics[column]) == 2 and all(np.isfinite(metrics[column]))
    table = np.load(os.path.join(run_dir, "targets.npy"))
    noisy = np.load(os.path.join(run_dir, "noisy_labels.npy"))
    assert table.shape == (60000, 10)
    # Rows of training ids are filled; rows of unused ids stay zero.
    assert np.count_nonzero(table.sum(axis=1)) == summary["num_train"]
    assert (noisy >= 0).sum() == 400


@needs_fashion
def test_resolved_flags_rerun_the_same_config(tmp_path):
    config = _config(tmp_path, "--percent=0.3", "--lambda=5", "--name=again")
    summary = train(config)
    rerun = config_from_argv(["--flagfile=" + os.path.join(summary["run_dir"], "flags.cfg")])
    assert rerun == config


@needs_fashion
def test_a_resume_whose_config_lacks_a_setting_is_refused(tmp_path):
    # A config.json without track_margins is not given a default the run
    # may not have had: the resume names the file and the missing setting.
    summary = train(_config(tmp_path, "--epochs=1", "--name=old"))
    path = os.path.join(summary["run_dir"], "config.json")
    with open(path) as f:
        saved = json.load(f)
    del saved["track_margins"]
    with open(path, "w") as f:
        json.dump(saved, f)
    with pytest.raises(ValueError, match=r"config.json .*Missing settings \['track_margins'\]"):
        train(config_from_argv([f"--resume={summary['run_dir']}", "--epochs=2"]))


def _kill_script(run_args, kill_epoch, kill_batch):
    return f"""
import os, signal, sys
sys.path.insert(0, {REPO!r})
import keras
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.train import train

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == {kill_epoch} and batch == {kill_batch}:
            os.kill(os.getpid(), signal.SIGKILL)

train(config_from_argv({run_args!r}), callbacks=[Kill()])
"""


@needs_fashion
def test_killed_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path):
    args = [
        "--flagfile=" + os.path.join(REPO, "configs/fashion_mnist_sym.cfg"),
        *QUICK,
        "--epochs=3",
        "--percent=0.4",
        "--t0=1",
        f"--output_dir={tmp_path}",
    ]
    env = dict(os.environ, TF_DETERMINISTIC_OPS="1", TF_CPP_MIN_LOG_LEVEL="2")
    # Killed hard (SIGKILL) in the middle of the second epoch.
    killed = subprocess.run(
        [sys.executable, "-c", _kill_script([*args, "--name=killed"], 1, 2)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = os.path.join(tmp_path, "killed")
    assert not os.path.exists(os.path.join(run_dir, "summary.json"))
    resumed = subprocess.run(
        [sys.executable, "scripts/train.py", f"--resume={run_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = subprocess.run(
        [sys.executable, "scripts/train.py", *args, "--name=straight"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    table_a = np.load(os.path.join(run_dir, "targets.npy"))
    table_b = np.load(os.path.join(tmp_path, "straight", "targets.npy"))
    np.testing.assert_allclose(table_a, table_b, atol=1e-5)
    metrics_a = read_metrics(os.path.join(run_dir, "metrics.csv"))
    metrics_b = read_metrics(os.path.join(tmp_path, "straight", "metrics.csv"))
    assert metrics_a["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(metrics_a["test_accuracy"], metrics_b["test_accuracy"], atol=1e-6)
    np.testing.assert_allclose(metrics_a["loss"], metrics_b["loss"], rtol=1e-4)
    for column in ("audit_f1", "mem_noisy_memorized"):
        np.testing.assert_allclose(metrics_a[column], metrics_b[column], atol=1e-6)


@needs_fashion
def test_non_finite_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    import keras

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                # Corrupt the weights as a diverging step would.
                weight = self.model.backbone.trainable_weights[0]
                weight.assign(weight * np.nan)

    config = _config(tmp_path, "--name=nan", "--percent=0.2")
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 3"):
        train(config, callbacks=[Poison()])
    run_dir = os.path.join(tmp_path, "nan")
    epoch, path = checkpointing.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert epoch == 1
    assert not os.path.exists(os.path.join(run_dir, "targets.npy"))
    # The checkpoint is finite and resumes.
    config = TrainConfig(resume=run_dir, verbose=0)
    summary = train(config)
    assert np.isfinite(summary["final_test_accuracy"])
    assert np.all(np.isfinite(np.load(os.path.join(run_dir, "targets.npy"))))


@pytest.mark.parametrize(
    "config_file, dataset",
    [
        ("cifar10_sym.cfg", "cifar10"),
        ("cifar10_asym.cfg", "cifar10"),
        ("cifar100_sym.cfg", "cifar100"),
        ("cifar100_asym.cfg", "cifar100"),
        ("cifar10n.cfg", "cifar10_n"),
    ],
)
def test_cifar_configs_run_end_to_end_on_mock_data(tmp_path, config_file, dataset):
    config = config_from_argv(
        [
            "--flagfile=" + os.path.join(REPO, "configs", config_file),
            "--arch=tiny_resnet",
            "--epochs=1",
            "--verbose=0",
            "--bs=32",
            f"--output_dir={tmp_path}",
        ]
    )
    assert config.dataset == dataset
    with tfds.testing.mock_data(num_examples=60, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train(config)
    assert summary["epochs"] == 1
    assert 0 <= summary["final_test_accuracy"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("config_file", ["cifar10_sym.cfg", "cifar100_sym.cfg"])
def test_cifar_configs_with_their_real_backbone_on_mock_data(tmp_path, config_file):
    config = config_from_argv(
        [
            "--flagfile=" + os.path.join(REPO, "configs", config_file),
            "--epochs=1",
            "--verbose=0",
            f"--output_dir={tmp_path}",
        ]
    )
    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = train(config)
    assert summary["epochs"] == 1


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--dataset=mnist", "--dataset"),
        ("--arch=vgg", "--arch"),
        ("--percent=1.5", "--percent"),
        ("--lambda=-1", "--lambda"),
        ("--beta=1", "--beta"),
        ("--loss=mse", "--loss"),
        ("--bs=0", "--bs"),
        ("--schedule=linear", "--schedule"),
        ("--milestones=80,40", "--milestones"),
        ("--audit_neighbours=-1", "--audit_neighbours"),
    ],
)
def test_bad_flag_values_raise_naming_the_flag(tmp_path, flag, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, flag).validate()


def test_synthetic_noise_on_real_noise_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--percent"):
        _config(tmp_path, "--dataset=cifar10_n", "--percent=0.2").validate()


def test_script_reports_bad_flag_and_exits_non_zero():
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--percent=2", "--epochs=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "--percent" in result.stderr and "Received: --percent=2" in result.stderr


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="--gpus"):
        make_strategy("7")


def test_resume_of_a_non_run_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--resume"):
        train(TrainConfig(resume=str(tmp_path)))


@needs_fashion
def test_new_run_never_trains_on_top_of_a_foreign_directory(tmp_path):
    stray = tmp_path / "fm" / "checkpoints"
    stray.mkdir(parents=True)
    (stray / "checkpoint.json").write_text('{"epoch": 99, "weights": "x.weights.h5"}')
    summary = train(_config(tmp_path, "--name=fm", "--epochs=1"))
    assert summary["run_dir"] != str(tmp_path / "fm")
    assert summary["epochs"] == 1


@pytest.mark.slow
@needs_fashion
def test_demo_script_runs_both_losses_and_draws_the_overlay(tmp_path):
    # The README's first command, shortened: both runs, the summary lines and
    # the overlaid memorisation figure.
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "demo.py"),
            "--epochs=4",
            "--num_train=600",
            "--eval_every=3",
            "--eval_examples=500",
            f"--output_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CE: final test accuracy" in result.stdout
    assert "ELR: final test accuracy" in result.stdout
    assert os.path.getsize(os.path.join(tmp_path, "ce_vs_elr.png")) > 0
    metrics = read_metrics(os.path.join(tmp_path, "elr", "metrics.csv"))
    # Epochs 1, 3 and 4 read the test set (the last one all of it), epoch 2 not.
    tested = [not np.isnan(value) for value in metrics["test_accuracy"]]
    assert tested == [True, False, True, True]
