"""MultiWorkerMirroredStrategy: two worker processes on loopback.

The 2-worker run (one CPU replica per worker) must end with the same target
table as a single-worker run with two replicas (two logical CPU devices):
both split every global batch in two and keep per-replica batch-norm
statistics, so they compute the same thing.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from elr_tf.data import FASHION_MNIST_DIR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
        reason="dataset-fashion-mnist not installed",
    ),
]

ARGS = [
    "--flagfile=configs/fashion_mnist_sym.cfg",
    "--arch=tiny_cnn",
    "--num_train=256",
    "--bs=32",
    "--epochs=2",
    "--percent=0.4",
    "--verbose=0",
]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_DETERMINISTIC_OPS="1")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _single_worker_two_replicas(output_dir):
    argv = [*ARGS, "--gpus=cpu:0,cpu:1", "--name=single", f"--output_dir={output_dir}"]
    script = f"""
import sys
sys.path.insert(0, {REPO!r})
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.train import train
train(config_from_argv({argv!r}))
"""
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=ENV)


def test_two_workers_on_loopback_match_single_worker(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = dict(
            ENV,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "scripts/train.py",
                    *ARGS,
                    "--name=multi",
                    f"--output_dir={tmp_path}",
                ],
                cwd=REPO,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    single = _single_worker_two_replicas(tmp_path)
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    assert single.wait(timeout=600) == 0

    chief = np.load(tmp_path / "multi" / "targets.npy")
    other = np.load(tmp_path / "multi" / "worker-1" / "targets.npy")
    reference = np.load(tmp_path / "single" / "targets.npy")
    trained = chief.sum(axis=1) > 0
    assert trained.sum() > 200
    np.testing.assert_array_equal(chief, other)
    np.testing.assert_allclose(chief, reference, atol=1e-5)
    with open(tmp_path / "multi" / "summary.json") as f:
        assert json.load(f)["epochs"] == 2
