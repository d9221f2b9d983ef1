"""The CIFAR path of `scripts/benchmarks/reference_torch.py` and
`scripts/benchmarks/compare_reference_cifar10n.py` (skipped without torch).

The script runs in a subprocess: its flags share names with
`compare_reference.py`'s, which absl refuses to define twice in one process.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from script_loader import BENCHMARKS, load_script

torch = pytest.importorskip("torch")

from elr_tf.experiment.assemble import learning_rate_schedule  # noqa: E402
from elr_tf.experiment.config import TrainConfig  # noqa: E402
from elr_tf.models.backbones.resnet9 import resnet9  # noqa: E402

SCRIPT = os.path.join(BENCHMARKS, "compare_reference_cifar10n.py")


@pytest.fixture(scope="module")
def reference_torch():
    return load_script("reference_torch")


def _load_resnet9_weights(net, keras_model):
    """Keras resnet9 weights into `build_resnet9`, both in layer order."""
    tensors = [t for name, t in net.state_dict().items() if "num_batches_tracked" not in name]
    weights = keras_model.get_weights()
    assert len(tensors) == len(weights)
    with torch.no_grad():
        for tensor, value in zip(tensors, weights):
            if value.ndim == 4:  # HWIO -> OIHW
                value = value.transpose(3, 2, 0, 1)
            elif value.ndim == 2:  # (in, out) -> (out, in)
                value = value.T
            assert tuple(tensor.shape) == value.shape
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def test_resnet9_has_keras_resnet9s_weights_and_logits(reference_torch, seed):
    model = resnet9(10, width=4)
    rng = np.random.default_rng(seed)
    # Non-trivial batch-norm statistics, so that their use is compared too.
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
            if "variance" in v.path
            else rng.normal(0.0, 0.3, w.shape).astype(np.float32)
            for w, v in zip(model.get_weights(), model.weights)
        ]
    )
    net = reference_torch.build_resnet9(4)
    buffers = sum(b.numel() for name, b in net.named_buffers() if "running" in name)
    assert sum(p.numel() for p in net.parameters()) + buffers == model.count_params()
    _load_resnet9_weights(net, model)
    net.eval()
    images = rng.normal(size=(3, 32, 32, 3)).astype(np.float32)

    expected = np.asarray(model(images, training=False))
    with torch.no_grad():
        actual = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()

    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_pad_crop_flip_takes_windows_of_the_zero_padded_images(reference_torch):
    images = torch.randint(1, 256, (64, 6, 5, 3), dtype=torch.uint8)
    out = reference_torch.pad_crop_flip(images, torch.Generator().manual_seed(0), padding=2)
    padded = np.pad(images.numpy(), ((0, 0), (2, 2), (2, 2), (0, 0)))

    assert out.shape == images.shape and out.dtype == torch.uint8
    flips = 0
    for example, got in zip(padded, out.numpy()):
        windows = [
            (window, flip)
            for dy in range(5)
            for dx in range(5)
            for flip, window in enumerate(
                [example[dy : dy + 6, dx : dx + 5], example[dy : dy + 6, dx : dx + 5][:, ::-1]]
            )
        ]
        matches = [flip for window, flip in windows if np.array_equal(window, got)]
        assert matches
        flips += matches[0]
    assert 16 < flips < 48


def test_learning_rate_is_elr_tfs_warmed_up_cosine(reference_torch):
    steps_per_epoch, epochs = 5, 4
    config = TrainConfig(
        dataset="fashion_mnist",
        learning_rate=0.1,
        min_lr=1e-3,
        schedule="cosine",
        restart_epochs=epochs,
        warmup_epochs=1,
        epochs=epochs,
    )
    schedule = learning_rate_schedule(config, steps_per_epoch)
    total = epochs * steps_per_epoch

    expected = [float(schedule(step)) for step in range(total)]
    actual = [
        reference_torch.learning_rate(s, total, 0.1, 1e-3, steps_per_epoch) for s in range(total)
    ]

    np.testing.assert_allclose(actual, expected, rtol=1e-5)
    # By hand: the first step is a fifth of the cosine's start.
    assert actual[0] == pytest.approx(0.2 * (1e-3 + 0.099 * 0.5 * (1 + math.cos(0))))


def test_resnet9_epochs_on_augmented_pixels_in_bfloat16(reference_torch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 50)

    result = reference_torch.train(
        "elr",
        images,
        labels,
        images[:20],
        labels[:20],
        seed=0,
        network="resnet9",
        width=2,
        normalization=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        augment=True,
        epochs=2,
        batch_size=16,
        warmup_epochs=1,
        precision="bfloat16",
        test_every_epoch=True,
        log=lambda line: None,
    )

    assert len(result["test_accuracies"]) == 2 and len(result["epoch_seconds"]) == 2
    assert result["best_test_accuracy"] == max(result["test_accuracies"])
    assert result["test_accuracy"] == result["test_accuracies"][-1]
    assert 0 < result["train_seconds"] <= result["total_seconds"]


def test_augmenting_normalised_images_is_refused(reference_torch):
    images = np.zeros((4, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="normalization=None"):
        reference_torch.train(
            "ce", images, np.zeros(4), images, np.zeros(4), seed=0, network="resnet9", augment=True
        )


def _cifar10n_dir(folder, n_train=60, n_test=20):
    rng = np.random.default_rng(0)
    clean = np.arange(n_train) % 10
    np.savez(
        folder / "cifar10.npz",
        x_train=rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        y_train=clean[:, None],
        x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(n_test)[:, None] % 10,
    )
    worse = clean.copy()
    worse[:15] = (worse[:15] + 1) % 10
    np.savez(
        folder / "CIFAR-10_human.npz",
        clean_label=clean,
        worse_label=worse,
        aggre_label=clean,
        random_label1=clean,
    )
    return folder


def _run_script(*args):
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
    )


def test_script_appends_one_record(tmp_path):
    data_dir = _cifar10n_dir(tmp_path)
    save = tmp_path / "runs.jsonl"
    args = [f"--data_dir={data_dir}", "--num_train=30", "--epochs=1", "--width=2"]

    result = _run_script(*args, "--bs=16", "--threads=1", f"--save={save}")

    assert result.returncode == 0, result.stderr[-2000:]
    assert "final test accuracy" in result.stdout
    (record,) = [json.loads(line) for line in save.read_text().splitlines()]
    assert record["num_train"] == 30 and record["cifar_n_label"] == "worst"
    assert record["wrong"] == pytest.approx(15 / 60, abs=0.1)
    assert len(record["test_accuracies"]) == 1 and record["torch"] == torch.__version__


def test_script_refuses_a_folder_without_the_files_in_one_line(tmp_path):
    result = _run_script(f"--data_dir={tmp_path}")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"{tmp_path / 'cifar10.npz'} not found: --data_dir must hold cifar10.npz and "
        "CIFAR-10_human.npz."
    ]
