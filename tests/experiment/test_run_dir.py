"""Runs never share a folder: claims, locks and unique temporary files, with real processes."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.experiment import run_dir as run_dir_lib
from elr_tf.experiment.checkpointing import atomic_path
from elr_tf.experiment.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
needs_fashion = pytest.mark.skipif(
    not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="needs the Fashion-MNIST files (scripts/setup.sh installs them)",
)

# A process that claims <output_dir>/<name> like a run, prints its folder,
# then holds it until its standard input closes.
_CLAIMER = textwrap.dedent(
    """
    import sys
    from elr_tf.experiment import run_dir
    from elr_tf.experiment.config import TrainConfig
    output_dir, name, resume = sys.argv[1], sys.argv[2], sys.argv[3] or None
    config = TrainConfig(output_dir=output_dir, name=name, resume=resume)
    try:
        folder, claim = run_dir.claim_run_dir(config)
    except ValueError as error:
        print("refused:", error, flush=True)
        sys.exit(3)
    print(folder, flush=True)
    sys.stdin.read()
    claim.release()
    """
)


def _claimer(output_dir, name, resume=""):
    return subprocess.Popen(
        [sys.executable, "-c", _CLAIMER, str(output_dir), name, resume],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def test_processes_claiming_one_name_together_each_get_their_own_folder(tmp_path):
    processes = [_claimer(tmp_path, "same") for _ in range(6)]
    folders = [p.stdout.readline().strip() for p in processes]
    for p in processes:
        p.communicate("")
        assert p.returncode == 0
    expected = {str(tmp_path / "same")} | {f"{tmp_path / 'same'}-{k}" for k in range(2, 7)}
    assert set(folders) == expected
    for folder in folders:
        with open(os.path.join(folder, run_dir_lib.OWNER)) as f:
            assert json.load(f)["pid"] in [p.pid for p in processes]


def test_a_resume_of_a_run_another_process_holds_is_refused_until_it_ends(tmp_path):
    holder = _claimer(tmp_path, "held")
    folder = holder.stdout.readline().strip()
    config = TrainConfig(resume=folder)
    refusal = rf"--resume={folder}` is being trained by another process \(pid {holder.pid} "
    with pytest.raises(ValueError, match=refusal):
        run_dir_lib.claim_run_dir(config)
    holder.kill()  # Killed, not released: the lock dies with the process.
    holder.wait()
    resumed, claim = run_dir_lib.claim_run_dir(config)
    with claim:
        assert resumed == folder
        # While this process holds it, another process's resume is refused.
        other = _claimer(tmp_path, "held", resume=folder)
        out, _ = other.communicate("")
        assert other.returncode == 3 and "being trained by another process" in out


def test_a_name_in_use_takes_the_next_free_one_and_says_so(tmp_path, caplog):
    config = TrainConfig(output_dir=str(tmp_path), name="run")
    first, first_claim = run_dir_lib.claim_run_dir(config)
    (tmp_path / "run" / "config.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        second, second_claim = run_dir_lib.claim_run_dir(config)
    assert (first, second) == (str(tmp_path / "run"), str(tmp_path / "run-2"))
    assert "--name=run is in use by a run started at 2" in caplog.text
    assert f"this run is {tmp_path / 'run-2'}" in caplog.text
    # A folder of foreign files is in use too; an empty one is taken.
    (tmp_path / "run-3").mkdir()
    (tmp_path / "run-3" / "notes.txt").write_text("mine")
    (tmp_path / "run-4").mkdir()
    third, third_claim = run_dir_lib.claim_run_dir(config)
    assert third == str(tmp_path / "run-4")
    for claim in (first_claim, second_claim, third_claim):
        claim.release()


def test_an_abandoned_claim_leaves_no_folder(tmp_path):
    folder, claim = run_dir_lib.claim_run_dir(TrainConfig(output_dir=str(tmp_path), name="x"))
    claim.abandon()
    assert not os.path.exists(folder)


def test_temporary_files_are_unique_to_each_write(tmp_path):
    path = str(tmp_path / "summary.json")
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second
        assert os.path.basename(first).startswith(".partial-summary-")
        for tmp, text in ((first, "a"), (second, "b")):
            with open(tmp, "w") as f:
                f.write(text)
    with open(path) as f:
        assert f.read() in ("a", "b")
    assert os.listdir(tmp_path) == ["summary.json"]


@needs_fashion
def test_two_training_runs_started_together_with_one_name_both_keep_their_results(tmp_path):
    args = [
        "scripts/train.py",
        "--arch=tiny_cnn",
        "--num_train=300",
        "--bs=64",
        "--epochs=2",
        "--noaugment",
        "--percent=0.4",
        "--verbose=0",
        f"--output_dir={tmp_path}",
        "--name=twin",
    ]
    runs = [
        subprocess.Popen(
            [sys.executable, *args, f"--seed={seed}"],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-2000:]
    folders = sorted(os.listdir(tmp_path))
    assert folders == ["twin", "twin-2"]
    seeds = set()
    for folder in folders:
        with open(tmp_path / folder / "summary.json") as f:
            summary = json.load(f)
        assert summary["run_dir"] == str(tmp_path / folder)
        with open(tmp_path / folder / "config.json") as f:
            seeds.add(json.load(f)["seed"])
        assert os.path.exists(tmp_path / folder / "checkpoints" / "epoch-0002.weights.h5")
        assert not [n for n in os.listdir(tmp_path / folder) if n.startswith(".partial-")]
    assert seeds == {1, 2}  # Each folder holds its own run's results.
    logs = "".join(err for _, err in outputs)
    assert logs.count("--name=twin is in use by a run started at") == 1


def test_a_failed_start_removes_what_it_wrote_but_a_started_run_is_kept(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path), name="start")
    folder, claim = run_dir_lib.claim_run_dir(config)
    for name in ("config.json", "flags.cfg", "noisy_labels.npy", ".partial-x-1-ab.npy"):
        (tmp_path / "start" / name).write_text("")
    claim.abandon()
    assert not os.path.exists(folder)
    folder, claim = run_dir_lib.claim_run_dir(config)
    (tmp_path / "start" / "config.json").write_text("")
    (tmp_path / "start" / "metrics.csv").write_text("epoch\n0\n")
    claim.abandon()
    assert sorted(os.listdir(folder)) == [run_dir_lib.OWNER, "config.json", "metrics.csv"]


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "/tmp/elsewhere", "a/b"])
def test_a_run_name_must_be_one_folder_inside_the_output_dir(name):
    with pytest.raises(ValueError, match=r"`--name` must be one folder name inside --output_dir"):
        TrainConfig(name=name)
