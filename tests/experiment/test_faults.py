"""Faults: half-written checkpoints, random kills, repeatability."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.experiment import checkpointing
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.outputs import read_metrics
from elr_tf.experiment.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="dataset-fashion-mnist not installed",
)
ARGS = [
    "--flagfile=" + os.path.join(REPO, "configs/fashion_mnist_sym.cfg"),
    "--arch=tiny_cnn",
    "--num_train=300",
    "--bs=50",
    "--percent=0.4",
    "--t0=1",
    "--verbose=0",
]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_DETERMINISTIC_OPS="1")


def test_same_seed_same_noise_same_table(tmp_path):
    a = train(config_from_argv([*ARGS, "--epochs=2", f"--output_dir={tmp_path}/a"]))
    b = train(config_from_argv([*ARGS, "--epochs=2", f"--output_dir={tmp_path}/b"]))
    for name in ("noisy_labels.npy", "targets.npy"):
        np.testing.assert_array_equal(
            np.load(os.path.join(a["run_dir"], name)), np.load(os.path.join(b["run_dir"], name))
        )
    c = train(config_from_argv([*ARGS, "--epochs=1", "--seed=7", f"--output_dir={tmp_path}/c"]))
    assert not np.array_equal(
        np.load(os.path.join(a["run_dir"], "noisy_labels.npy")),
        np.load(os.path.join(c["run_dir"], "noisy_labels.npy")),
    )


def test_half_written_checkpoint_is_never_loaded(tmp_path):
    straight = train(
        config_from_argv([*ARGS, "--epochs=3", "--name=straight", f"--output_dir={tmp_path}"])
    )
    # Run two epochs, then leave what a kill during the third epoch's
    # checkpoint write leaves behind: a truncated weights file and a
    # half-written pointer, beside the whole checkpoint of epoch 2.
    config = config_from_argv([*ARGS, "--epochs=2", "--name=broken", f"--output_dir={tmp_path}"])
    train(config)
    run_dir = os.path.join(tmp_path, "broken")
    ckpt = os.path.join(run_dir, "checkpoints")
    whole = os.path.join(ckpt, "epoch-0002.weights.h5")
    with open(whole, "rb") as f:
        head = f.read(1000)
    with open(os.path.join(ckpt, "partial-epoch-0003.weights.h5"), "wb") as f:
        f.write(head)
    with open(os.path.join(ckpt, checkpointing.POINTER + ".tmp"), "w") as f:
        f.write('{"epoch": 3, "weights": "epo')
    assert checkpointing.latest_checkpoint(ckpt) == (2, whole)
    # Resume to the full three epochs.
    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)
    saved["epochs"] = 3
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(saved, f)
    os.remove(os.path.join(run_dir, "summary.json"))
    resumed = train(TrainConfig(resume=run_dir, verbose=0))
    assert resumed["epochs"] == 3
    np.testing.assert_allclose(
        np.load(os.path.join(run_dir, "targets.npy")),
        np.load(os.path.join(straight["run_dir"], "targets.npy")),
        atol=1e-6,
    )


@pytest.mark.slow
def test_random_kills_then_resume_end_like_an_uninterrupted_run(tmp_path):
    epochs = 6
    args = [*ARGS, f"--epochs={epochs}", f"--output_dir={tmp_path}"]
    started = time.perf_counter()
    straight = subprocess.run(
        [sys.executable, "scripts/train.py", *args, "--name=straight"],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    duration = time.perf_counter() - started
    run_dir = os.path.join(tmp_path, "killed")
    rng = random.Random(0)
    command = [sys.executable, "scripts/train.py", *args, "--name=killed"]
    kills = 0
    for _ in range(12):
        process = subprocess.Popen(command, cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
        # Kill anywhere between start-up and the end of a whole run, so
        # kills land in epochs, evaluations and checkpoint writes alike.
        try:
            process.wait(timeout=rng.uniform(0.3, 0.9) * duration)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        if process.returncode == 0:
            if kills:
                break
            # It ended before the first kill (the straight run was slowed by
            # a busy machine): start over and kill sooner.
            shutil.rmtree(run_dir)
            duration /= 2
            continue
        command = [sys.executable, "scripts/train.py", f"--resume={run_dir}"]
        time.sleep(0.1)
    else:
        final = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True)
        assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 1
    np.testing.assert_allclose(
        np.load(os.path.join(run_dir, "targets.npy")),
        np.load(os.path.join(tmp_path, "straight", "targets.npy")),
        atol=1e-5,
    )
    metrics = read_metrics(os.path.join(run_dir, "metrics.csv"))
    assert metrics["epoch"] == list(range(epochs))
