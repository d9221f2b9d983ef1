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

Example:

```python
import reference_torch

result = reference_torch.train("elr", x_train, y_train, x_test, y_test, seed=0)
result["test_accuracy"], result["seconds_per_epoch"]
```
"""

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
METHODS = ("ce", "elr", "elr_plus")

# Probability clamp of the ELR regulariser.
_CLAMP = 1e-4
# Test-set forward batch (inference only; does not affect results).
_EVAL_BATCH = 1000
# Number of arrays in Keras `plain_cnn.get_weights()`.
_NUM_KERAS_WEIGHTS = 14


def build_cnn():
    """Builds the PyTorch twin of the Keras `plain_cnn` backbone.

    conv3x3(32, no bias)-BN-ReLU-maxpool2, conv3x3(64, no bias)-BN-ReLU-
    maxpool2, flatten, Linear(3136, 256)-ReLU, Linear(256, 10). Batch norms
    use PyTorch's defaults (eps 1e-5, momentum 0.1), which the Keras model
    matches. The weights are PyTorch's default initialisation, drawn from
    the global torch generator.

    Returns:
        A `torch.nn.Sequential` mapping NCHW images `[n, 1, 28, 28]` to
        logits `[n, 10]`.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32, eps=1e-5, momentum=0.1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64, eps=1e-5, momentum=0.1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 256),
        nn.ReLU(),
        nn.Linear(256, NUM_CLASSES),
    )


def load_keras_weights(module, keras_weights):
    """Copies the weights of a Keras `plain_cnn` into a `build_cnn()` module.

    Conv kernels go from HWIO to OIHW, dense kernels from `(in, out)` to
    `(out, in)`. The hidden layer's input rows are reordered too: Keras
    flattens NHWC feature maps in `(h, w, c)` order, PyTorch flattens NCHW
    ones in `(c, h, w)` order. Batch-norm moving statistics become the
    running buffers.

    Args:
        module: a module from `build_cnn()`; modified in place.
        keras_weights: the list from the Keras model's `get_weights()`:
            conv1 kernel, conv1_bn gamma, beta, moving mean, moving variance,
            the same five for conv2, hidden kernel and bias, logits kernel
            and bias.

    Raises:
        ValueError: if the list does not have 14 arrays of the expected
            shapes.
    """
    weights = [np.asarray(w, dtype=np.float32) for w in keras_weights]
    if len(weights) != _NUM_KERAS_WEIGHTS:
        raise ValueError(
            f"`keras_weights` must be the {_NUM_KERAS_WEIGHTS} arrays of plain_cnn's "
            f"get_weights(). Received {len(weights)} arrays."
        )
    conv1, bn1, conv2, bn2, hidden, logits = (module[i] for i in (0, 1, 4, 5, 9, 11))
    (k1, g1, b1, m1, v1, k2, g2, b2, m2, v2, kh, bh, kl, bl) = weights

    # The hidden kernel's rows in Keras order are (h, w, c) of the 7x7x64 map.
    channels = conv2.out_channels
    side = math.isqrt(hidden.in_features // channels)
    kh_torch = kh.reshape(side, side, channels, -1).transpose(2, 0, 1, 3).reshape(kh.shape[0], -1)

    targets = [
        (conv1.weight, k1.transpose(3, 2, 0, 1)),
        (bn1.weight, g1),
        (bn1.bias, b1),
        (bn1.running_mean, m1),
        (bn1.running_var, v1),
        (conv2.weight, k2.transpose(3, 2, 0, 1)),
        (bn2.weight, g2),
        (bn2.bias, b2),
        (bn2.running_mean, m2),
        (bn2.running_var, v2),
        (hidden.weight, kh_torch.T),
        (hidden.bias, bh),
        (logits.weight, kl.T),
        (logits.bias, bl),
    ]
    for position, (tensor, value) in enumerate(targets):
        if tuple(tensor.shape) != value.shape:
            raise ValueError(
                f"Keras weight {position} has shape {weights[position].shape}, which does not "
                f"fit the torch tensor of shape {tuple(tensor.shape)}."
            )
    with torch.no_grad():
        for tensor, value in targets:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def epoch_order(n, generator):
    """One epoch's shuffle: a random permutation of the sample ids `0..n-1`.

    Args:
        n: number of training examples.
        generator: the `torch.Generator` of this shuffle stream.

    Returns:
        int64 tensor `[n]`.
    """
    return torch.randperm(n, generator=generator)


def sigmoid_rampup(step, length):
    """`exp(-5 (1 - min(step, length) / length)^2)`, or 1 when `length == 0`."""
    if length == 0:
        return 1.0
    phase = 1.0 - min(max(float(step), 0.0), float(length)) / length
    return math.exp(-5.0 * phase * phase)


def cosine_lr(step, total_steps, lr, lr_min):
    """The learning rate of optimizer step `step` (0-based) of `total_steps`."""
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def train(
    method,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    seed,
    init_weights=None,
    epochs=20,
    batch_size=128,
    lr=0.02,
    lr_min=1e-3,
    momentum=0.9,
    weight_decay=5e-4,
    beta=0.7,
    lam=3.0,
    mixup_alpha=1.0,
    ema_alpha=0.997,
    ema_step=500,
    threads=None,
    log=print,
):
    """Trains one method on the CPU and returns its final test accuracy.

    Args:
        method: `"ce"`, `"elr"` or `"elr_plus"`.
        x_train: float32 images `[n, 28, 28, 1]` (NHWC), already normalised.
        y_train: integer (noisy) labels `[n]` in `0..9`.
        x_test: float32 test images, NHWC.
        y_test: integer (clean) test labels.
        seed: seeds every random draw: the initialisation (when
            `init_weights` is None), the shuffles and the mixup draws.
        init_weights: None for PyTorch's own initialisation; for `"ce"` and
            `"elr"` a Keras `plain_cnn.get_weights()` list; for
            `"elr_plus"` a pair of such lists (network 1, network 2).
        epochs: number of epochs (for ELR+, each is a pass of both networks).
        batch_size: batch size; the last partial batch is kept.
        lr: initial learning rate.
        lr_min: final learning rate of the per-step cosine decay.
        momentum: SGD momentum.
        weight_decay: PyTorch SGD (coupled) weight decay, on every parameter.
        beta: temporal-ensembling momentum of the target table.
        lam: weight of the ELR regulariser.
        mixup_alpha: ELR+ mixup `Beta(alpha, alpha)`; `<= 0` turns mixup off.
        ema_alpha: ELR+ final averaging momentum.
        ema_step: ELR+ ramp length of the averaging momentum, in steps.
        threads: if given, `torch.set_num_threads(threads)` (process-wide).
        log: called with one short line per epoch.

    Returns:
        dict with `"test_accuracy"` (float, in `[0, 1]`),
        `"seconds_per_epoch"` (mean training seconds per epoch, evaluation
        excluded; for ELR+ both networks' passes) and `"epochs"`.

    Raises:
        ValueError: for an unknown `method` or malformed `init_weights`.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    x_train_t = _to_nchw(x_train)
    y_train_t = torch.as_tensor(np.asarray(y_train), dtype=torch.int64)
    x_test_t = _to_nchw(x_test)
    y_test_t = torch.as_tensor(np.asarray(y_test), dtype=torch.int64)
    if len(x_train_t) != len(y_train_t) or len(x_test_t) != len(y_test_t):
        raise ValueError("Images and labels must have the same number of examples.")

    # Independent streams, all from `seed`: initialisation; per network, its
    # shuffle, its mixup coefficients and its mixup permutations.
    init_seed, *streams = (
        int(s) for s in np.random.SeedSequence(seed).generate_state(7, dtype=np.uint64) >> 1
    )
    networks = _initial_networks(method, init_weights, init_seed)
    shuffles = [torch.Generator().manual_seed(streams[k]) for k in range(2)]
    mixups = [
        (np.random.default_rng(streams[2 + k]), torch.Generator().manual_seed(streams[4 + k]))
        for k in range(2)
    ]

    n_train = len(x_train_t)
    steps_per_epoch = math.ceil(n_train / batch_size)
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

    def schedule(run):
        for group in run.optimizer.param_groups:
            group["lr"] = cosine_lr(run.steps, run.total_steps, lr, lr_min)

    seconds = []
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
                x, y = x_train_t[idx], y_train_t[idx]
                schedule(run)
                if method == "ce":
                    loss = F.cross_entropy(run.net(x), y)
                elif method == "elr":
                    loss = _elr_loss(run.net(x), y, run.table, idx, beta, lam)
                else:
                    loss = _elr_plus_loss(
                        run.net, teacher, x, y, run.table, idx, beta, lam, mixup_alpha, *mixups[k]
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
        log(
            f"[torch {method}] epoch {epoch}/{epochs} loss {loss_text} "
            f"lr {cosine_lr(runs[0].steps, runs[0].total_steps, lr, lr_min):.5f} "
            f"{seconds[-1]:.1f}s"
        )

    accuracy = _test_accuracy([run.net for run in runs], x_test_t, y_test_t)
    log(f"[torch {method}] test accuracy {accuracy:.4f}")
    return {
        "test_accuracy": accuracy,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else 0.0,
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


def _to_nchw(images):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"Images must be NHWC [n, h, w, c]. Received shape {images.shape}.")
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def _initial_networks(method, init_weights, init_seed):
    count = 2 if method == "elr_plus" else 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        networks = [build_cnn() for _ in range(count)]
    if init_weights is None:
        return networks
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


def _elr_loss(logits, labels, table, idx, beta, lam):
    """Spec section 1: update `table[idx]` from the batch, then CE + ELR term."""
    probs = torch.clamp(F.softmax(logits, dim=1), _CLAMP, 1.0 - _CLAMP)
    with torch.no_grad():
        frozen = probs.detach()
        table[idx] = beta * table[idx] + (1.0 - beta) * frozen / frozen.sum(dim=1, keepdim=True)
        targets = table[idx]
    regulariser = torch.log(1.0 - (targets * probs).sum(dim=1)).mean()
    return F.cross_entropy(logits, labels) + lam * regulariser


def _elr_plus_loss(net, teacher, x, labels, table, idx, beta, lam, alpha, rng, perm_generator):
    """Spec section 3: partner-EMA targets, mixup, soft CE + ELR term."""
    with torch.no_grad():
        teacher_probs = F.softmax(teacher(x), dim=1)
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
    logits = net(x)
    soft_ce = -(onehot * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    probs = torch.clamp(F.softmax(logits, dim=1), _CLAMP, 1.0 - _CLAMP)
    regulariser = torch.log(1.0 - (rows * probs).sum(dim=1)).mean()
    return soft_ce + lam * regulariser


def _ema_update(ema, net, momentum):
    """`ema <- momentum * ema + (1 - momentum) * net` over parameters only."""
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), net.parameters()):
            averaged.mul_(momentum).add_(current.detach(), alpha=1.0 - momentum)


def _test_accuracy(networks, images, labels):
    """Accuracy of the logits averaged over `networks`, in eval mode."""
    for net in networks:
        net.eval()
    correct = 0
    with torch.no_grad():
        for begin in range(0, len(images), _EVAL_BATCH):
            batch = images[begin : begin + _EVAL_BATCH]
            logits = sum(net(batch) for net in networks) / len(networks)
            correct += int((logits.argmax(dim=1) == labels[begin : begin + _EVAL_BATCH]).sum())
    return correct / max(len(images), 1)
