"""The training program on CIFAR-10N read from cifar10.npz and CIFAR-10_human.npz."""

import csv
import json
import logging
import os

import keras
import pytest
from file_layouts import CIFAR10N_FLIPS, cifar10n_arrays, write_cifar10n

from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.train import train

TINY = ["--arch=tiny_cnn", "--bs=8", "--epochs=1", "--verbose=0", "--dataset=cifar10_n"]


def test_cifar10n_files_train_and_are_audited_against_cifar10s_labels(tmp_path, caplog):
    root = write_cifar10n(tmp_path / "cifar10n", *cifar10n_arrays(n_train=60, n_test=20))
    argv = [*TINY, f"--data_dir={root}", "--cifar_n_label=worst", f"--output_dir={tmp_path}"]
    # Every example trains (no validation split), so the realised noise is the file's.
    with caplog.at_level(logging.INFO):
        summary = train(config_from_argv([*argv, "--val_fraction=0", "--name=n"]))
    run_dir = summary["run_dir"]
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    assert summary["noise_rate_realised"] == CIFAR10N_FLIPS["worse_label"] / 60
    assert summary["label_detection"]["num_noisy"] == CIFAR10N_FLIPS["worse_label"]
    assert summary["class_names"][3] == "cat"
    with open(os.path.join(run_dir, "audit.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60
    names = {r["true_label_name"] for r in rows}
    assert names == set(summary["class_names"]) and "truck" in names
    assert {r["label_name"] for r in rows} <= names
    for name in ("suspects.png", "confusions.png", "memorization.png", "memorization.csv"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    # The console line names the classes of its largest pairs.
    line = next(r.getMessage() for r in caplog.records if "Label issues" in r.getMessage())
    assert "; true 10 " in line
    assert f"per pair off by {summary['label_detection']['pair_error']:.1%})" in line
    given, suggested = line.split("largest pairs ")[1].split()[0].split("->")
    assert {given, suggested} <= names


def test_a_missing_label_set_is_named_with_the_flag(tmp_path):
    images, human = cifar10n_arrays()
    del human["random_label2"]
    root = write_cifar10n(tmp_path / "cifar10n", images, human)
    argv = [*TINY, f"--data_dir={root}", "--cifar_n_label=random2", f"--output_dir={tmp_path}"]
    with pytest.raises(ValueError, match=r"random_label2.*--cifar_n_label='random2'"):
        train(config_from_argv(argv))


def test_the_cpu_recipe_runs_as_its_flagfile_says(tmp_path):
    # configs/cifar10n_cpu.cfg as shipped (resnet9_w32, mixed_bfloat16, no
    # augmentation, no validation split), one epoch on a tiny CIFAR-10N folder.
    root = write_cifar10n(tmp_path / "cifar10n", *cifar10n_arrays(n_train=60, n_test=20))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = config_from_argv(
        [
            "--flagfile=" + os.path.join(repo, "configs", "cifar10n_cpu.cfg"),
            f"--data_dir={root}",
            "--epochs=1",
            "--t0=1",
            "--verbose=0",
            f"--output_dir={tmp_path}",
        ]
    )
    assert (config.arch, config.precision, config.augment) == (
        "resnet9_w32",
        "mixed_bfloat16",
        False,
    )
    assert (config.val_fraction, config.cifar_n_label) == (0.0, "worst")
    try:
        summary = train(config)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert summary["noise_rate_realised"] == CIFAR10N_FLIPS["worse_label"] / 60
    assert 0 <= summary["final_test_accuracy"] <= 1
