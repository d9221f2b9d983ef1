"""python scripts/benchmarks/compare_reference_cifar10n.py --data_dir=DIR --method=elr

The PyTorch side of ELR against elr_tf on CIFAR-10N with ResNet-9: trains
`scripts/benchmarks/reference_torch.py` as elr_tf's program trains the
recipe, so the two accuracies can be put side by side. Needs PyTorch
(`pip install -r requirements.txt -r scripts/benchmarks/requirements-bench.txt`).

    python scripts/benchmarks/compare_reference_cifar10n.py --data_dir=DIR \\
        --cifar_n_label=worst --method=elr --width=32 --epochs=12 --bs=256 \\
        --lr=0.2 --weight_decay=5e-4 --eta_min=0 --noaugment \\
        --lam=3 --beta=0.7 --precision=bfloat16 --seed=0 --save=torch_cifar10n.jsonl

    # the elr_tf run beside it, the CPU recipe with the same hyper-parameters:
    python scripts/train.py --flagfile=configs/cifar10n_cpu.cfg --data_dir=DIR \\
        --cifar_n_label=worst

The setting: `DIR/cifar10.npz` (the `keras.datasets.cifar10` arrays) and
`DIR/CIFAR-10_human.npz` (the CIFAR-10N label sets); all 50,000 training
images with the human labels of `--cifar_n_label` (no validation split;
`--num_train` takes a class-stratified subset for quick checks) and the
10,000 clean test images. The network is elr_tf's `resnet9` (`--width=32`
is its preset `resnet9_w32`) in PyTorch's default initialisation (elr_tf's
`init=reference`); inputs are scaled to [0, 1] and normalised with the
CIFAR-10 statistics of the ELR reference code, training batches (with
`--augment`, the default) zero-padded by 4, randomly cropped and flipped,
fresh each epoch; SGD with
momentum 0.9 and coupled weight decay on every parameter; the learning
rate per batch is a cosine from `--lr` to `--eta_min` over the whole run
(elr_tf's `--schedule=cosine --t0=EPOCHS`), times a linear warmup over
`--warmup_epochs` (elr_tf's `--warmup_epochs`); the last partial batch is
kept, as elr_tf's pipeline keeps it. `--precision=bfloat16` runs the
network under CPU autocast, as Keras's `mixed_bfloat16`.

Prints one line per epoch (training loss, learning rate, training seconds,
test accuracy) and a summary; `--save` appends the run as one JSON line:
the setting, final and best test accuracy, the accuracy after every epoch,
training and total seconds and the torch version.
"""

import json
import os
import sys

import numpy as np
from absl import app, flags

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
IMAGES_FILE = "cifar10.npz"
HUMAN_FILE = "CIFAR-10_human.npz"
# `--cifar_n_label` -> its key in `HUMAN_FILE`.
LABEL_KEYS = {"worst": "worse_label", "aggre": "aggre_label", "random1": "random_label1"}

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, f"Folder holding {IMAGES_FILE} and {HUMAN_FILE}.", required=True
)
_LABEL = flags.DEFINE_enum("cifar_n_label", "worst", list(LABEL_KEYS), "CIFAR-10N label set.")
_METHOD = flags.DEFINE_enum("method", "elr", ["ce", "elr"], "Loss: cross-entropy or ELR.")
_WIDTH = flags.DEFINE_integer("width", 32, "ResNet-9 width (32: resnet9_w32).", lower_bound=1)
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Epochs.", lower_bound=1)
_BS = flags.DEFINE_integer("bs", 128, "Batch size.", lower_bound=1)
_LR = flags.DEFINE_float("lr", 0.02, "Peak learning rate.", lower_bound=0.0)
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", 1e-3, "Coupled SGD weight decay on every parameter.", lower_bound=0.0
)
_ETA_MIN = flags.DEFINE_float(
    "eta_min", 1e-3, "Learning rate at the end of the cosine.", lower_bound=0.0
)
_WARMUP = flags.DEFINE_integer(
    "warmup_epochs", 0, "Epochs of the linear warmup factor; 0: none.", lower_bound=0
)
_LAM = flags.DEFINE_float("lam", 3.0, "ELR regulariser weight lambda.", lower_bound=0.0)
_BETA = flags.DEFINE_float(
    "beta", 0.7, "Target-table momentum beta.", lower_bound=0.0, upper_bound=1.0
)
_PRECISION = flags.DEFINE_enum(
    "precision", "float32", ["float32", "bfloat16"], "bfloat16: CPU autocast of the network."
)
_AUGMENT = flags.DEFINE_bool(
    "augment", True, "Pad-crop-flip training images (elr_tf's --augment; the CPU recipe: off)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of subset, initialisation, shuffle, augmentation.")
_THREADS = flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default).", lower_bound=0)
_NUM_TRAIN = flags.DEFINE_integer(
    "num_train", None, "Class-stratified training subset (quick checks).", lower_bound=1
)
_SAVE = flags.DEFINE_string("save", None, "JSON-lines file the run is appended to.")


def load_cifar10n(data_dir, cifar_n_label, num_train=None, seed=0):
    """Reads the CIFAR-10N arrays of `data_dir`.

    Args:
        data_dir: folder holding `cifar10.npz` and `CIFAR-10_human.npz`.
        cifar_n_label: a key of `LABEL_KEYS`.
        num_train: None for every training image, else the size of a
            subset keeping each (noisy) class's share, drawn with `seed`.
        seed: seed of the subset.

    Returns:
        dict with `x_train` (uint8 `[n, 32, 32, 3]`), `y_train` (the human
        labels), `true_train` (CIFAR-10's), `x_test`, `y_test` and `wrong`
        (fraction of human labels that differ from CIFAR-10's).

    Raises:
        ValueError: a file is missing or does not hold the expected arrays,
            or `num_train` exceeds the training set.
    """
    arrays = {}
    for name, keys in (
        (IMAGES_FILE, ("x_train", "y_train", "x_test", "y_test")),
        (HUMAN_FILE, (LABEL_KEYS[cifar_n_label],)),
    ):
        path = os.path.join(os.path.expanduser(data_dir), name)
        if not os.path.isfile(path):
            raise ValueError(
                f"{path} not found: --data_dir must hold {IMAGES_FILE} and {HUMAN_FILE}."
            )
        with np.load(path) as stored:
            missing = [k for k in keys if k not in stored.files]
            if missing:
                raise ValueError(f"{path} lacks {', '.join(missing)}; it has {stored.files}.")
            arrays.update({k: stored[k] for k in keys})
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    true_train = arrays["y_train"].reshape(-1).astype(np.int64)
    y_test = arrays["y_test"].reshape(-1).astype(np.int64)
    noisy = arrays[LABEL_KEYS[cifar_n_label]].reshape(-1).astype(np.int64)
    for name, images, labels in (("train", x_train, noisy), ("test", x_test, y_test)):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(
                f"x_{name} must be uint8 [n, 32, 32, 3]. Received {images.dtype} {images.shape}."
            )
        if len(labels) != len(images) or labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"The {name} labels must be {len(images)} ints in 0..9.")
    if len(true_train) != len(x_train):
        raise ValueError(f"y_train must hold {len(x_train)} labels. Received {len(true_train)}.")
    if num_train is not None:
        if num_train > len(x_train):
            raise ValueError(
                f"--num_train must be at most {len(x_train)}. Received: --num_train={num_train}"
            )
        keep = _stratified(noisy, num_train, np.random.default_rng(seed))
        x_train, noisy, true_train = x_train[keep], noisy[keep], true_train[keep]
    return {
        "x_train": x_train,
        "y_train": noisy,
        "true_train": true_train,
        "x_test": x_test,
        "y_test": y_test,
        "wrong": float(np.mean(noisy != true_train)),
    }


def _stratified(labels, size, rng):
    """Sorted positions of `size` examples, each class's share rounded by largest remainder."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in zip(classes, quota)
    ]
    return np.sort(np.concatenate(chosen))


def main(argv):
    if len(argv) > 1:
        sys.exit(f"Unexpected arguments: {argv[1:]}")
    try:
        data = load_cifar10n(_DATA_DIR.value, _LABEL.value, _NUM_TRAIN.value, _SEED.value)
    except ValueError as error:
        sys.exit(str(error))
    import reference_torch
    import torch

    setting = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "dataset": "cifar10_n",
        "cifar_n_label": _LABEL.value,
        "method": _METHOD.value,
        "network": "resnet9",
        "width": _WIDTH.value,
        "num_train": len(data["x_train"]),
        "wrong": data["wrong"],
        "epochs": _EPOCHS.value,
        "bs": _BS.value,
        "lr": _LR.value,
        "weight_decay": _WEIGHT_DECAY.value,
        "eta_min": _ETA_MIN.value,
        "warmup_epochs": _WARMUP.value,
        "lam": _LAM.value if _METHOD.value == "elr" else 0.0,
        "beta": _BETA.value,
        "precision": _PRECISION.value,
        "augment": _AUGMENT.value,
        "seed": _SEED.value,
        "threads": _THREADS.value or torch.get_num_threads(),
    }
    print(
        f"PyTorch {setting['torch']} (threads: {setting['threads']}); CIFAR-10N "
        f"{_LABEL.value} ({data['wrong']:.1%} wrong), {setting['num_train']} examples, "
        f"resnet9 width {_WIDTH.value}, {_METHOD.value}, {_PRECISION.value}",
        flush=True,
    )
    result = reference_torch.train(
        _METHOD.value,
        data["x_train"],
        data["y_train"],
        data["x_test"],
        data["y_test"],
        seed=_SEED.value,
        network="resnet9",
        width=_WIDTH.value,
        normalization=(CIFAR10_MEAN, CIFAR10_STD),
        augment=_AUGMENT.value,
        epochs=_EPOCHS.value,
        batch_size=_BS.value,
        lr=_LR.value,
        lr_min=_ETA_MIN.value,
        warmup_epochs=_WARMUP.value,
        weight_decay=_WEIGHT_DECAY.value,
        beta=_BETA.value,
        lam=setting["lam"],
        precision=_PRECISION.value,
        test_every_epoch=True,
        threads=_THREADS.value or None,
        log=lambda line: print(line, flush=True),
    )
    accuracies = result["test_accuracies"]
    record = {
        **setting,
        "test_accuracy": result["test_accuracy"],
        "best_test_accuracy": result["best_test_accuracy"],
        "best_epoch": int(np.argmax(accuracies)) + 1,
        "test_accuracies": accuracies,
        "seconds_per_epoch": result["seconds_per_epoch"],
        "epoch_seconds": result["epoch_seconds"],
        "train_seconds": result["train_seconds"],
        "total_seconds": result["total_seconds"],
    }
    print(
        f"final test accuracy {record['test_accuracy']:.4f}, best "
        f"{record['best_test_accuracy']:.4f} (epoch {record['best_epoch']}); "
        f"{record['seconds_per_epoch']:.1f} s/epoch training, "
        f"{record['total_seconds']:.0f} s in all"
    )
    if _SAVE.value:
        with open(_SAVE.value, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app.run(main)
