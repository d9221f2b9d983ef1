"""Parts of the PyTorch reference (`reference_torch.py`): networks, augmentation, schedules.

CIFAR-sized colour images (`scripts/benchmarks/compare_reference_cifar10n.py`)
are trained as elr_tf's program trains them with `--arch=resnet9_w32`:

- `network="resnet9"`: the twin of elr_tf's `resnet9` backbone
  (`build_resnet9`), in PyTorch's default initialisation, the distribution
  elr_tf's `init="reference"` draws.
- `normalization=(mean, std)`: the images are uint8 pixels, scaled to
  [0, 1] and normalised per channel batch by batch; with `augment=True`
  each training batch is first zero-padded by 4 pixels, randomly cropped
  back and randomly flipped (`pad_crop_flip`), fresh each epoch. As in
  elr_tf's pipeline the padding is on the raw pixels, before
  normalisation, so padded pixels are black, not the channel mean.
- `warmup_epochs`: the learning rate is the cosine above times
  `min(1, (step + 1) / warmup_steps)`, as elr_tf's `LinearWarmup`: the
  ramp multiplies the cosine instead of delaying it, so the cosine still
  spans the whole run.
- `precision="bfloat16"`: the network runs under
  `torch.autocast("cpu", dtype=torch.bfloat16)` except its logits layer,
  which runs in float32 on float32 features, as elr_tf's float32 logits
  head under Keras's `mixed_bfloat16`; the losses and target tables stay
  float32.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
# Zero padding before the random crop of `pad_crop_flip`, elr_tf's.
CROP_PADDING = 4
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


def build_resnet9(width=64, num_classes=NUM_CLASSES, in_channels=3, logit_scale=0.125):
    """Builds the PyTorch twin of elr_tf's `resnet9` backbone.

    A conv-BN-ReLU stem of `width` channels; stage 1: conv(2w)-maxpool2-BN-
    ReLU, then `x + (conv-BN-ReLU, conv-BN-ReLU)(x)`; stage 2:
    conv(4w)-maxpool2-BN-ReLU; stage 3: conv(8w)-maxpool2-BN-ReLU and a
    residual block as in stage 1; global max pooling, features times
    `logit_scale`, `Linear(8w, num_classes)` with bias. Convolutions are
    3x3, padded to keep the size, without bias; batch norms use PyTorch's
    defaults (eps 1e-5, momentum 0.1), which elr_tf's match. The weights
    are PyTorch's default initialisation, U(+-1/sqrt(fan_in)) for kernels
    and the logits bias, drawn from the global torch generator.

    Args:
        width: channels of the stem; the stages have 2, 4 and 8 times as many.
        num_classes: number of logits.
        in_channels: channels of the images.
        logit_scale: factor on the pooled features.

    Returns:
        A `torch.nn.Sequential` mapping NCHW images to logits; its last
        module is the logits layer.

    Raises:
        ValueError: if `width` is not a positive int.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"`width` must be a positive int. Received: width={width!r}")

    def conv_bn_relu(cin, cout, pool=False):
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU()]
        return nn.Sequential(*layers)

    def residual(channels):
        return _Residual(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    return nn.Sequential(
        conv_bn_relu(in_channels, width),
        conv_bn_relu(width, 2 * width, pool=True),
        residual(2 * width),
        conv_bn_relu(2 * width, 4 * width, pool=True),
        conv_bn_relu(4 * width, 8 * width, pool=True),
        residual(8 * width),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        _Scale(logit_scale),
        nn.Linear(8 * width, num_classes),
    )


class _Residual(nn.Module):
    """`x + layers(x)`."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.layers(x)


class _Scale(nn.Module):
    """`x * factor`."""

    def __init__(self, factor):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x):
        return x * self.factor


def pad_crop_flip(images, generator, padding=CROP_PADDING):
    """Zero-pads, randomly crops back and randomly flips a batch of images.

    Each example gets its own crop offsets in `0..2 * padding` and a
    flip with probability 1/2, drawn from `generator`; one gather does
    crop and flip for the whole batch.

    Args:
        images: `[n, h, w, c]` tensor (NHWC), uint8 pixels in the comparison.
        generator: the `torch.Generator` of this augmentation stream.
        padding: zero padding on each side.

    Returns:
        `[n, h, w, c]` tensor of the same dtype.
    """
    n, height, width, _ = images.shape
    span = 2 * padding + 1
    dy = torch.randint(span, (n,), generator=generator)
    dx = torch.randint(span, (n,), generator=generator)
    flip = torch.randint(2, (n,), generator=generator).bool()
    padded = F.pad(images, (0, 0, padding, padding, padding, padding))
    rows = dy[:, None] + torch.arange(height)
    columns = torch.arange(width).expand(n, width)
    columns = torch.where(flip[:, None], columns.flip(1), columns) + dx[:, None]
    return padded[torch.arange(n)[:, None, None], rows[:, :, None], columns[:, None, :]]


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


def learning_rate(step, total_steps, lr, lr_min, warmup_steps=0):
    """`cosine_lr` times the linear warmup factor `min(1, (step + 1) / warmup_steps)`.

    The factor multiplies the cosine (elr_tf's `LinearWarmup`), so the
    cosine still ends at `lr_min` on the last step; no warmup for
    `warmup_steps == 0`.
    """
    rate = cosine_lr(step, total_steps, lr, lr_min)
    if warmup_steps:
        rate *= min(1.0, (step + 1) / warmup_steps)
    return rate
