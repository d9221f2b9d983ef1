"""python scripts/benchmarks/compare_reference.py --frameworks=pytorch  # imports this module

An independent PyTorch (CPU) implementation of CE, ELR and ELR+ training.

Benchmark-only. `scripts/benchmarks/compare_reference.py` imports this module to train
one small setting (the `plain_cnn` backbone on 28x28x1 images, 10 classes)
both here and in the Keras implementation (`elr_tf`) and print the two side
by side. It was written from the method specification
(`ELR-SPEC.md`, sections 1 and 3), with the public reference code
(`shengliu66/ELR`) read only to settle details of order; none of that code
is reused here.

What is trained:

- `"ce"`: plain cross-entropy on the (noisy) labels.
- `"elr"` (spec section 1): a target table `T` of shape `[n_train, 10]`,
  zero at the start, indexed by the example's position in the training
  arrays. Each step: `p = clamp(softmax(z), 1e-4, 1 - 1e-4)`, then
  `T[i] <- beta * T[i] + (1 - beta) * p / sum(p)` (no gradient), then
  `loss = CE(z, y) + lam * mean(log(1 - sum(T[i] * p)))`. The table is
  updated before the loss reads it.
- `"elr_plus"` (spec section 3): two networks `f1`, `f2`, an averaged copy
  of each (`ema1`, `ema2`, started as copies of `f1`, `f2`), two tables, two
  optimizers and two independent shuffles. The schedule follows the single-
  device path of the reference trainer: in every epoch network 1 first makes
  its full pass over its own shuffle, taking targets from `ema2` (which does
  not move during that pass, since `f2` is not training), and then network 2
  makes its full pass with targets from `ema1` as network 1 left it. A step
  of network `k` with partner `o`: targets from `softmax(ema_o(x))` on the
  un-mixed batch update `T_k[i]`; mixup with `l ~ Beta(alpha, alpha)`,
  `l = max(l, 1 - l)` and a random permutation of the batch mixes images,
  one-hot labels and the rows `T_k[i]`; the loss is the soft cross-entropy
  on the mixed labels plus `lam * mean(log(1 - sum(q * p)))`; after the
  optimizer step, `ema_k <- a * ema_k + (1 - a) * f_k` over the parameters
  (batch-norm buffers are left alone) with
  `a = sigmoid_rampup(s_k + 1, ema_step) * ema_alpha`, where `s_k` is the
  number of optimizer steps network `k` has taken including the one just
  taken. Test accuracy uses `(f1(x) + f2(x)) / 2` in eval mode.

Details checked in the reference trainer (`ELR_plus/trainer/trainer.py`,
`ELR_plus/base/base_trainer.py`):

- Mode of the averaged copies: at the start of its pass each network's own
  averaged copy is put in train mode, and no averaged copy is ever put in
  eval mode (validation and test switch only `f1`, `f2`). So the partner's
  averaged copy produces targets **in train mode**: its batch norms
  normalise with the statistics of the current (un-mixed) batch, and its
  running statistics drift with those forwards but are never used. This
  module does the same (the teacher forward runs under `no_grad`, in train
  mode).
- Step count: the trainer passes `global_step + local_step` to its EMA
  update, after `local_step` has been incremented for the step just taken,
  and `global_step` grows by one network's steps per epoch; the update then
  evaluates the ramp at that count plus one. With equal-length passes that
  count is `s_k` above, so the ramp is evaluated at `s_k + 1` (2 after the
  first step).
- The reference builds its averaged copies as separately initialised
  networks, not copies; as the ramp makes the first momenta tiny
  (`a` is about 0.007 after the first step for `ema_step=500`) the two
  differ only in the targets of network 1's very first step. This module
  starts them as copies, as the comparison setting asks.

Differences from the reference that the setting fixes: the learning rate is
cosine-decayed per optimizer step from `lr` to `lr_min` over the whole run
(each network counts its own steps), there is no ramp on `lam`
(`coef_step = 0`) and, with 10 classes, no reweighting of the mixed labels.

CIFAR-sized colour images (`scripts/benchmarks/compare_reference_cifar10n.py`)
are trained as elr_tf's program trains them with `--arch=resnet9_w32`; the
networks, the augmentation and the schedules are in `reference_torch_parts.py`.

Example:

```python
import reference_torch

result = reference_torch.train("elr", x_train, y_train, x_test, y_test, seed=0)
result["test_accuracy"], result["seconds_per_epoch"]
```
"""

import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference_torch_parts import (  # noqa: E402, F401 (re-exported: the tests and scripts use them)
    NUM_CLASSES,
    build_cnn,
    build_resnet9,
    epoch_order,
    learning_rate,
    load_keras_weights,
    pad_crop_flip,
    sigmoid_rampup,
)

INPUT_SHAPE = (28, 28, 1)
METHODS = ("ce", "elr", "elr_plus")
NETWORKS = ("plain_cnn", "resnet9")
PRECISIONS = ("float32", "bfloat16")

# Probability clamp of the ELR regulariser.
_CLAMP = 1e-4
# Test-set forward batch (inference only; does not affect results).
_EVAL_BATCH = 500


def train(
    method,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    seed,
    init_weights=None,
    network="plain_cnn",
    width=64,
    normalization=None,
    augment=False,
    epochs=20,
    batch_size=128,
    lr=0.02,
    lr_min=1e-3,
    warmup_epochs=0,
    momentum=0.9,
    weight_decay=5e-4,
    beta=0.7,
    lam=3.0,
    mixup_alpha=1.0,
    ema_alpha=0.997,
    ema_step=500,
    precision="float32",
    test_every_epoch=False,
    threads=None,
    log=print,
):
    """Trains one method on the CPU and returns its test accuracy.

    Args:
        method: `"ce"`, `"elr"` or `"elr_plus"`.
        x_train: images `[n, h, w, c]` (NHWC): float32, already normalised,
            or, with `normalization`, uint8 pixels.
        y_train: integer (noisy) labels `[n]` in `0..9`.
        x_test: test images, NHWC, as `x_train`.
        y_test: integer (clean) test labels.
        seed: seeds every random draw: the initialisation (when
            `init_weights` is None), the shuffles, the augmentation and the
            mixup draws.
        init_weights: None for PyTorch's own initialisation; for `"ce"` and
            `"elr"` a Keras `plain_cnn.get_weights()` list; for
            `"elr_plus"` a pair of such lists (network 1, network 2).
            `network="plain_cnn"` only.
        network: `"plain_cnn"` (`build_cnn`, 28x28x1 images) or
            `"resnet9"` (`build_resnet9`).
        width: `build_resnet9`'s width.
        normalization: None, or `(mean, std)` per channel on the [0, 1]
            scale: the images are then uint8 pixels, normalised batch by
            batch as `(x / 255 - mean) / std`.
        augment: pad, crop and flip each training batch (`pad_crop_flip`,
            on the pixels before normalisation); needs `normalization`.
        epochs: number of epochs (for ELR+, each is a pass of both networks).
        batch_size: batch size; the last partial batch is kept.
        lr: initial learning rate.
        lr_min: final learning rate of the per-step cosine decay.
        warmup_epochs: epochs of the linear warmup factor (`learning_rate`);
            0 for none.
        momentum: SGD momentum.
        weight_decay: PyTorch SGD (coupled) weight decay, on every parameter.
        beta: temporal-ensembling momentum of the target table.
        lam: weight of the ELR regulariser.
        mixup_alpha: ELR+ mixup `Beta(alpha, alpha)`; `<= 0` turns mixup off.
        ema_alpha: ELR+ final averaging momentum.
        ema_step: ELR+ ramp length of the averaging momentum, in steps.
        precision: `"float32"`, or `"bfloat16"` for the network's forward
            under CPU autocast (logits layer, losses and tables in float32).
        test_every_epoch: evaluate on the test set after every epoch,
            not only after the last.
        threads: if given, `torch.set_num_threads(threads)` (process-wide).
        log: called with one short line per epoch.

    Returns:
        dict with `"test_accuracy"` (after the last epoch, in `[0, 1]`),
        `"test_accuracies"` (after every epoch with `test_every_epoch`,
        else the last only), `"best_test_accuracy"` (their maximum),
        `"seconds_per_epoch"` (mean training seconds per epoch, evaluation
        excluded; for ELR+ both networks' passes), `"epoch_seconds"` (each
        epoch's), `"train_seconds"` (their sum), `"total_seconds"` (the
        epochs and the evaluations) and `"epochs"`.

    Raises:
        ValueError: for an unknown `method`, `network` or `precision`, or
            inconsistent images, `augment` or `init_weights`.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    if network not in NETWORKS:
        raise ValueError(f"`network` must be one of {NETWORKS}. Received: network={network!r}")
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    if augment and normalization is None:
        raise ValueError(
            "`augment=True` pads raw pixels, so it needs uint8 images and `normalization`. "
            "Received: normalization=None"
        )
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise ValueError(
            f"`warmup_epochs` must be an int >= 0. Received: warmup_epochs={warmup_epochs!r}"
        )
    if threads is not None:
        torch.set_num_threads(int(threads))
    train_images = _Images(x_train, normalization)
    y_train_t = torch.as_tensor(np.asarray(y_train), dtype=torch.int64)
    test_images = _Images(x_test, normalization)
    y_test_t = torch.as_tensor(np.asarray(y_test), dtype=torch.int64)
    if len(train_images) != len(y_train_t) or len(test_images) != len(y_test_t):
        raise ValueError("Images and labels must have the same number of examples.")

    # Independent streams, all from `seed`: initialisation; per network, its
    # shuffle, its mixup coefficients, its mixup permutations and its
    # augmentation (the augmentation streams come last, so the others keep
    # the values they had before augmentation existed).
    init_seed, *streams = (
        int(s) for s in np.random.SeedSequence(seed).generate_state(9, dtype=np.uint64) >> 1
    )
    networks = _initial_networks(
        method, init_weights, init_seed, network, width, train_images.channels
    )
    shuffles = [torch.Generator().manual_seed(streams[k]) for k in range(2)]
    mixups = [
        (np.random.default_rng(streams[2 + k]), torch.Generator().manual_seed(streams[4 + k]))
        for k in range(2)
    ]
    augmentations = [
        torch.Generator().manual_seed(streams[6 + k]) if augment else None for k in range(2)
    ]

    n_train = len(train_images)
    steps_per_epoch = math.ceil(n_train / batch_size)
    warmup_steps = warmup_epochs * steps_per_epoch
    runs = [
        _Run(
            net,
            torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay),
            torch.zeros(n_train, NUM_CLASSES),
            epochs * steps_per_epoch,
        )
        for net in networks
    ]
    if method == "elr_plus":
        for run in runs:
            run.ema = copy.deepcopy(run.net)
            for param in run.ema.parameters():
                param.requires_grad_(False)

    def rate(run):
        return learning_rate(run.steps, run.total_steps, lr, lr_min, warmup_steps)

    def forward(net, x):
        return _logits(net, x, precision)

    seconds, accuracies = [], []
    run_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = []
        for k, run in enumerate(runs):
            run.net.train()
            teacher = runs[1 - k].ema if method == "elr_plus" else None
            if teacher is not None:
                teacher.train()  # as the reference: targets from a train-mode forward
            total, count = 0.0, 0
            order = epoch_order(n_train, shuffles[k])
            for begin in range(0, n_train, batch_size):
                idx = order[begin : begin + batch_size]
                x, y = train_images.batch(idx, augmentations[k]), y_train_t[idx]
                for group in run.optimizer.param_groups:
                    group["lr"] = rate(run)
                if method == "ce":
                    loss = F.cross_entropy(forward(run.net, x), y)
                elif method == "elr":
                    loss = _elr_loss(forward(run.net, x), y, run.table, idx, beta, lam)
                else:
                    loss = _elr_plus_loss(
                        forward,
                        run.net,
                        teacher,
                        x,
                        y,
                        run.table,
                        idx,
                        beta,
                        lam,
                        mixup_alpha,
                        *mixups[k],
                    )
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                run.optimizer.step()
                run.steps += 1
                if run.ema is not None:
                    _ema_update(
                        run.ema, run.net, sigmoid_rampup(run.steps + 1, ema_step) * ema_alpha
                    )
                total += loss.item() * len(idx)
                count += len(idx)
            losses.append(total / count)
        seconds.append(time.perf_counter() - start)
        loss_text = " ".join(f"{value:.4f}" for value in losses)
        line = (
            f"[torch {method}] epoch {epoch}/{epochs} loss {loss_text} "
            f"lr {rate(runs[0]):.5f} {seconds[-1]:.1f}s"
        )
        if test_every_epoch or epoch == epochs:
            accuracies.append(
                _test_accuracy([run.net for run in runs], test_images, y_test_t, forward)
            )
            line += f" test {accuracies[-1]:.4f}"
        log(line)
    total_seconds = time.perf_counter() - run_start

    accuracy = accuracies[-1] if accuracies else 0.0
    log(f"[torch {method}] test accuracy {accuracy:.4f}")
    return {
        "test_accuracy": accuracy,
        "test_accuracies": accuracies,
        "best_test_accuracy": max(accuracies, default=0.0),
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else 0.0,
        "epoch_seconds": seconds,
        "train_seconds": float(sum(seconds)),
        "total_seconds": total_seconds,
        "epochs": epochs,
    }


class _Run:
    """One network's training state: model, optimizer, table, step count."""

    def __init__(self, net, optimizer, table, total_steps):
        self.net = net
        self.optimizer = optimizer
        self.table = table
        self.total_steps = total_steps
        self.steps = 0
        self.ema = None


class _Images:
    """A set's images and how a batch of them reaches the network (NCHW float32).

    Without `normalization` the images are stored normalised, NCHW; with it
    they stay uint8 NHWC pixels and each batch is (augmented,) scaled and
    normalised when it is drawn, which keeps 50,000 CIFAR images at 150 MB.
    """

    def __init__(self, images, normalization):
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"Images must be NHWC [n, h, w, c]. Received shape {images.shape}.")
        self.channels = images.shape[-1]
        if normalization is None:
            self.pixels = None
            self.data = torch.from_numpy(
                np.ascontiguousarray(images.astype(np.float32).transpose(0, 3, 1, 2))
            )
            return
        if images.dtype != np.uint8:
            raise ValueError(
                f"With `normalization`, images must be uint8 pixels. Received dtype {images.dtype}."
            )
        mean, std = (torch.tensor(v, dtype=torch.float32).reshape(-1, 1, 1) for v in normalization)
        if mean.numel() != self.channels or std.numel() != self.channels:
            raise ValueError(
                f"`normalization` must be (mean, std) of {self.channels} channels each. "
                f"Received: normalization={normalization!r}"
            )
        self.pixels = torch.from_numpy(np.ascontiguousarray(images))
        self.mean, self.std = mean, std

    def __len__(self):
        return len(self.data if self.pixels is None else self.pixels)

    def batch(self, idx, augmentation=None):
        """Examples `idx` (a tensor or slice); augmented when given a generator."""
        if self.pixels is None:
            return self.data[idx]
        pixels = self.pixels[idx]
        if augmentation is not None:
            pixels = pad_crop_flip(pixels, augmentation)
        x = pixels.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return ((x - self.mean) / self.std).contiguous()


def _initial_networks(method, init_weights, init_seed, network="plain_cnn", width=64, channels=1):
    count = 2 if method == "elr_plus" else 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if network == "plain_cnn":
            networks = [build_cnn() for _ in range(count)]
        else:
            networks = [build_resnet9(width, in_channels=channels) for _ in range(count)]
    if init_weights is None:
        return networks
    if network != "plain_cnn":
        raise ValueError(
            "`init_weights` are Keras plain_cnn weights; they need network='plain_cnn'. "
            f"Received: network={network!r}"
        )
    if method == "elr_plus":
        if not isinstance(init_weights, (list, tuple)) or len(init_weights) != 2:
            raise ValueError(
                "For method='elr_plus', `init_weights` must be a pair of Keras weight lists "
                "(network 1, network 2)."
            )
        weight_lists = list(init_weights)
    else:
        weight_lists = [init_weights]
    for net, weights in zip(networks, weight_lists):
        load_keras_weights(net, weights)
    return networks


def _logits(net, x, precision):
    """float32 logits of a `Sequential` network whose last module is the logits layer.

    With `"bfloat16"`, all but that layer run under CPU autocast, and the
    layer itself in float32, as Keras's `mixed_bfloat16` runs elr_tf's
    backbones with their float32 logits head.
    """
    if precision == "float32":
        return net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = net[:-1](x)
    return net[-1](features.float())


def _elr_loss(logits, labels, table, idx, beta, lam):
    """Spec section 1: update `table[idx]` from the batch, then CE + ELR term."""
    probs = torch.clamp(F.softmax(logits, dim=1), _CLAMP, 1.0 - _CLAMP)
    with torch.no_grad():
        frozen = probs.detach()
        table[idx] = beta * table[idx] + (1.0 - beta) * frozen / frozen.sum(dim=1, keepdim=True)
        targets = table[idx]
    regulariser = torch.log(1.0 - (targets * probs).sum(dim=1)).mean()
    return F.cross_entropy(logits, labels) + lam * regulariser


def _elr_plus_loss(
    forward, net, teacher, x, labels, table, idx, beta, lam, alpha, rng, perm_generator
):
    """Spec section 3: partner-EMA targets, mixup, soft CE + ELR term."""
    with torch.no_grad():
        teacher_probs = F.softmax(forward(teacher, x), dim=1)
        table[idx] = beta * table[idx] + (1.0 - beta) * teacher_probs / teacher_probs.sum(
            dim=1, keepdim=True
        )
        rows = table[idx]
    onehot = F.one_hot(labels, NUM_CLASSES).to(x.dtype)
    if alpha > 0:
        mix = float(rng.beta(alpha, alpha))
        mix = max(mix, 1.0 - mix)
        perm = torch.randperm(len(x), generator=perm_generator)
        x = mix * x + (1.0 - mix) * x[perm]
        onehot = mix * onehot + (1.0 - mix) * onehot[perm]
        rows = mix * rows + (1.0 - mix) * rows[perm]
    logits = forward(net, x)
    soft_ce = -(onehot * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    probs = torch.clamp(F.softmax(logits, dim=1), _CLAMP, 1.0 - _CLAMP)
    regulariser = torch.log(1.0 - (rows * probs).sum(dim=1)).mean()
    return soft_ce + lam * regulariser


def _ema_update(ema, net, momentum):
    """`ema <- momentum * ema + (1 - momentum) * net` over parameters only."""
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), net.parameters()):
            averaged.mul_(momentum).add_(current.detach(), alpha=1.0 - momentum)


def _test_accuracy(networks, images, labels, forward):
    """Accuracy of the logits averaged over `networks`, in eval mode."""
    for net in networks:
        net.eval()
    correct = 0
    with torch.no_grad():
        for begin in range(0, len(images), _EVAL_BATCH):
            batch = images.batch(slice(begin, begin + _EVAL_BATCH))
            logits = sum(forward(net, batch) for net in networks) / len(networks)
            correct += int((logits.argmax(dim=1) == labels[begin : begin + _EVAL_BATCH]).sum())
    return correct / max(len(images), 1)
