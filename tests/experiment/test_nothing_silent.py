"""Faults that must never pass silently: each either works or says so."""

import errno
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from file_layouts import write_clothing1m

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.experiment import checkpointing
from elr_tf.experiment.checkpointing import DiskFullError, atomic_path
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.outputs import read_metrics
from elr_tf.experiment.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_fashion = pytest.mark.skipif(
    not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="needs the Fashion-MNIST files (scripts/setup.sh installs them)",
)
TINY = ["--arch=tiny_cnn", "--num_train=300", "--bs=64", "--noaugment", "--verbose=0"]


def _config(tmp_path, *extra):
    return config_from_argv([*TINY, f"--output_dir={tmp_path}", "--percent=0.4", *extra])


def test_label_file_with_synthetic_noise_is_refused_unless_asked(tmp_path):
    labels = tmp_path / "labels.npy"
    argv = ["--flagfile=configs/fashion_mnist_sym.cfg", f"--noisy_labels_file={labels}"]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with pytest.raises(ValueError, match=r"brings its own labels.*--percent=0.4.*--percent=0"):
            config_from_argv(argv).validate()
        config_from_argv([*argv, "--noise_on_label_file"]).validate()
        config_from_argv([*argv, "--percent=0"]).validate()
        with pytest.raises(ValueError, match="`--noise_on_label_file` applies only"):
            config_from_argv([*argv, "--percent=0", "--noise_on_label_file"]).validate()
    finally:
        os.chdir(cwd)


@needs_fashion
def test_resume_applies_epochs_and_refuses_every_other_change(tmp_path):
    train(_config(tmp_path, "--name=r", "--epochs=1"))
    run_dir = str(tmp_path / "r")
    given = {"resume", "lam", "epochs", "batch_size"}
    changed = TrainConfig(resume=run_dir, lam=7.0, epochs=5, batch_size=32)
    with pytest.raises(ValueError, match=r"refused: --bs=32 --lambda=7.0\. Only --epochs"):
        train(changed, given=given)
    # Without `given`, every field that differs from its default counts.
    with pytest.raises(ValueError, match=r"--lambda=7.0"):
        train(TrainConfig(resume=run_dir, lam=7.0))
    # A flag given with the run's own value is no conflict; --epochs extends the run.
    summary = train(
        TrainConfig(resume=run_dir, lam=3.0, epochs=2, verbose=0), given={"lam", "epochs"}
    )
    assert summary["epochs"] == 2
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["epochs"] == 2  # A later plain --resume keeps the new length.
    with pytest.raises(ValueError, match=r"at least the 2 epochs.*--epochs=1"):
        train(TrainConfig(resume=run_dir, epochs=1, verbose=0), given={"epochs"})


@needs_fashion
def test_blow_up_on_an_epochs_last_step_is_never_checkpointed_or_logged(tmp_path):
    class PoisonLastStep(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 4:  # The last of 5 steps: the loss was finite.
                weight = self.model.backbone.trainable_weights[0]
                weight.assign(weight * np.nan)

    with pytest.raises(FloatingPointError, match=r"after epoch 2.*last good checkpoint"):
        train(_config(tmp_path, "--name=b", "--epochs=3"), callbacks=[PoisonLastStep()])
    run_dir = tmp_path / "b"
    epoch, _ = checkpointing.latest_checkpoint(str(run_dir / "checkpoints"))
    assert epoch == 1
    assert read_metrics(str(run_dir / "metrics.csv"))["epoch"] == [0.0]
    assert not (run_dir / "model.keras").exists()


@needs_fashion
def test_corrupt_pointer_and_truncated_newest_checkpoint_fall_back(tmp_path, caplog):
    train(_config(tmp_path, "--name=c", "--epochs=2"))
    run_dir = tmp_path / "c"
    ckpt = run_dir / "checkpoints"
    newest = ckpt / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])  # Truncated.
    (ckpt / "checkpoint.json").write_text("{not json")
    with caplog.at_level("WARNING"):
        summary = train(TrainConfig(resume=str(run_dir), epochs=3, verbose=0), given={"epochs"})
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "checkpoint.json" in messages and "epoch-0002.weights.h5" in messages
    assert "epoch-0001.weights.h5 (epoch 1)" in messages
    assert summary["epochs"] == 3


def test_atomic_files_keep_the_old_file_and_name_a_full_disk(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")

    def fill_disk(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"No space left to write .*model.keras.*MiB free"):
        with atomic_path(str(path)) as tmp:
            fill_disk(tmp)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.keras"]
    with atomic_path(str(tmp_path / "targets.npy")) as tmp:
        assert tmp.endswith(".npy")
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "targets.npy"), np.arange(3))


def test_output_dir_under_a_file_and_name_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"Cannot create the run directory.*--output_dir="):
        train(config_from_argv([*TINY, f"--output_dir={tmp_path / 'file'}", "--epochs=1"]))
    with pytest.raises(ValueError, match=r"Cannot create the run directory.*--name='file'"):
        train(config_from_argv([*TINY, f"--output_dir={tmp_path}", "--name=file", "--epochs=1"]))


def test_failed_start_leaves_no_stub(tmp_path):
    config = _config(tmp_path, "--name=s", "--percent=0", f"--noisy_labels_file={tmp_path}/no.npy")
    with pytest.raises(FileNotFoundError, match="no.npy"):
        train(config)
    assert not (tmp_path / "s").exists()


def test_truncated_jpeg_in_a_file_list_is_named(tmp_path):
    root = tmp_path / "clothing1m"
    write_clothing1m(str(root))
    jpeg = root / "images" / "0" / "train_000.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:40])  # Valid header, truncated data.
    config = config_from_argv(
        [
            "--dataset=clothing1m",
            f"--data_dir={root}",
            "--arch=tiny_cnn",
            "--image_size=16",
            "--bs=8",
            "--epochs=1",
            "--verbose=0",
            f"--output_dir={tmp_path}",
        ]
    )
    with pytest.raises(ValueError, match=r"1 image file\(s\) cannot be read.*train_000.jpg"):
        train(config)


def test_script_prints_one_line_and_exits_non_zero_without_traceback(tmp_path):
    command = [sys.executable, "scripts/train.py", f"--resume={tmp_path}/nothing"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Error: `--resume` must be a run directory" in result.stderr
    assert "Traceback" not in result.stderr
    debug = subprocess.run(
        [*command, "--debug"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@needs_fashion
@pytest.mark.slow
def test_full_disk_while_checkpointing_exits_cleanly_naming_the_path(tmp_path):
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        # small_cnn's first checkpoint (weights and momentum, about 6.5 MiB)
        # does not fit in 4 MiB.
        command = [
            sys.executable,
            "scripts/train.py",
            "--num_train=300",
            "--epochs=2",
            "--verbose=0",
            f"--output_dir={mount_point}",
            "--name=full",
        ]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "No space left to write" in result.stderr and "epoch-0001.weights.h5" in result.stderr
    assert "MiB free" in result.stderr and "Traceback" not in result.stderr


def _script(*args):
    return subprocess.run(
        [sys.executable, "scripts/train.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_an_image_size_past_the_bound_is_one_line_and_leaves_no_folder(tmp_path):
    result = _script(
        "--dataset=folder",
        f"--data_dir={tmp_path}",
        "--image_size=100000",
        f"--output_dir={tmp_path}/runs",
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error: `--image_size` must be at most 4096 pixels a side" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "content, message",
    [("[1, 2]", "must be a mapping of settings"), ("not json", "is not valid JSON")],
)
def test_a_resume_of_a_config_json_that_is_not_settings_names_the_file(tmp_path, content, message):
    (tmp_path / "config.json").write_text(content)
    result = _script(f"--resume={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path}/config.json" in result.stderr and message in result.stderr


def test_data_errors_in_the_program_name_the_flags(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data_dir='"):
        train(_config(tmp_path, "--dataset=folder", f"--data_dir={tmp_path}/none", "--percent=0"))
    with pytest.raises(
        ValueError, match=r"`--image_size` applies only to .*--dataset='fashion_mnist'"
    ):
        train(_config(tmp_path, "--image_size=8"))
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    (tmp_path / "pets" / "dog").mkdir()
    with pytest.raises(ValueError, match=r"pass --skip_unreadable to drop"):
        train(_config(tmp_path, "--dataset=folder", f"--data_dir={tmp_path}/pets", "--percent=0"))
    assert not (tmp_path / "run").exists()


def test_a_short_write_without_errno_is_named_as_a_full_disk(tmp_path):
    # numpy's tofile reports a full disk as "N requested and M written".
    path = str(tmp_path / "targets.npy")
    with pytest.raises(DiskFullError, match="targets.npy"), atomic_path(path):
        raise OSError("600000 requested and 45024 written")


def test_an_unreadable_noise_matrix_names_the_flag(tmp_path):
    (tmp_path / "m.txt").write_text("0.5 0.5")
    with pytest.raises(ValueError, match=r"`--noise_matrix` must be a .npy file .*m.txt"):
        train(_config(tmp_path, "--percent=0", f"--noise_matrix={tmp_path / 'm.txt'}"))
    np.save(tmp_path / "m.npy", np.eye(3))
    with pytest.raises(
        ValueError, match=r"--noise_matrix=.*m.npy: `num_classes` must equal the matrix size 3"
    ):
        train(_config(tmp_path, "--percent=0", f"--noise_matrix={tmp_path / 'm.npy'}"))
