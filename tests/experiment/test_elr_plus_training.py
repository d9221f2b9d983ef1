"""One end-to-end epoch of every ELR+ config through the training program."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from file_layouts import write_clothing1m, write_webvision

from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.outputs import read_metrics
from elr_tf.experiment.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--arch=tiny_resnet", "--epochs=1", "--verbose=0"]


def _run(tmp_path, config_file, *extra):
    config = config_from_argv(
        [
            "--flagfile=" + os.path.join(REPO, "configs", config_file),
            *SMALL,
            f"--output_dir={tmp_path / 'runs'}",
            *extra,
        ]
    )
    assert config.loss == "elr_plus"
    summary = train(config)
    run_dir = summary["run_dir"]
    tables = [np.load(os.path.join(run_dir, f"targets{k}.npy")) for k in (1, 2)]
    assert tables[0].shape == tables[1].shape
    assert np.count_nonzero(tables[0].sum(axis=1)) > 0
    # Each network's table is fed by the other network's averaged copy, so
    # the two tables differ.
    assert not np.array_equal(tables[0], tables[1])
    metrics = read_metrics(os.path.join(run_dir, "metrics.csv"))
    for column in ("loss", "ce1", "ce2", "elr1", "elr2", "test_accuracy"):
        assert np.isfinite(metrics[column][0]), column
    return summary


@pytest.mark.parametrize(
    "config_file",
    ["elr_plus_cifar10_sym.cfg", "elr_plus_cifar10_asym.cfg", "elr_plus_cifar100_sym.cfg"],
)
def test_cifar_elr_plus_configs_on_mock_data(tmp_path, config_file):
    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        summary = _run(tmp_path, config_file, "--bs=32")
    assert summary["epochs"] == 1


def test_clothing1m_elr_plus_config_on_tiny_folder(tmp_path):
    write_clothing1m(str(tmp_path / "clothing1m"))
    summary = _run(
        tmp_path,
        "elr_plus_clothing1m.cfg",
        f"--data_dir={tmp_path / 'clothing1m'}",
        "--image_size=16",
        "--bs=8",
        "--balanced_batches=2",
    )
    assert summary["num_train"] == 28
    # 30 neighbours asked for, fewer trained examples to vote (class-balanced
    # sampling leaves some of the 28 unseen): every other one votes, and the
    # summary says how many.
    table = np.load(os.path.join(summary["run_dir"], "targets.npy"))
    trained = int(np.count_nonzero(table.sum(axis=1) > 0))
    assert summary["label_issues"]["neighbours"] == trained - 1 < 28


def test_webvision_elr_plus_config_on_tiny_folder(tmp_path):
    write_webvision(str(tmp_path / "webvision"))
    summary = _run(
        tmp_path,
        "elr_plus_webvision.cfg",
        f"--data_dir={tmp_path / 'webvision'}",
        "--image_size=16",
        "--bs=4",
    )
    assert summary["final_ilsvrc12_accuracy"] is not None
