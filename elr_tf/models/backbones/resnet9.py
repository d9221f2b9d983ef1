"""ResNet-9, the fast CIFAR network: few layers, wide, pooled early."""

import keras

from elr_tf import checks
from elr_tf.models.backbones.layers import (
    batch_norm,
    check_input_shape,
    conv,
    coupled_weight_decay,
    image_input,
    logits_head,
)


def resnet9(
    num_classes,
    input_shape=(32, 32, 3),
    width=64,
    logit_scale=0.125,
    weight_decay=0.0,
    name="resnet9",
    preprocessing=None,
):
    """ResNet-9 of the DAWNBench CIFAR-10 entries, with a width argument.

    A conv-BN-ReLU stem of `width` channels, then three stages of `2 *
    width`, `4 * width` and `8 * width` channels, each opening with a conv
    and a 2x2 max-pool; the first and last stages add a residual block of
    two conv-BN-ReLU layers. Global max pooling, features scaled by
    `logit_scale`, and a float32 Dense layer give the logits. Each stage
    pools *before* its batch norm: the same map up to the batch statistics,
    at a quarter of the normalisation's cost.

    Eight convolutions and most of their work at 16x16 and below make it
    the network with the best accuracy per training FLOP among the presets
    on CIFAR; at `width=32` it trains an epoch of CIFAR-10 in about the
    time `small_cnn` takes for two, on CPU (docs/benchmarks.md).

    Args:
        num_classes: number of output logits.
        input_shape: `(height, width, channels)` of the images.
        width: channels of the stem; the stages have 2, 4 and 8 times as many.
        logit_scale: factor on the pooled features before the logits layer,
            which keeps the logits small at the high learning rates this
            network trains with (0.125 in the DAWNBench network).
        weight_decay: coupled SGD weight decay coefficient (see
            `elr_tf.models.backbones`); 0 adds no penalty.
        name: model name.
        preprocessing: None, or a function applied to the images inside the
            model (`layers.image_input`).

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Example:

    ```python
    model = resnet9(num_classes=10, width=32)
    model(np.zeros((2, 32, 32, 3))).shape  # (2, 10)
    ```

    References:
        - Page, How to train your ResNet (Myrtle.ai, 2018), the DAWNBench
          CIFAR-10 network.
    """
    num_classes = checks.positive_int("num_classes", num_classes)
    width = checks.positive_int("width", width)
    logit_scale = checks.number_in("logit_scale", logit_scale, 0.0, low_open=True)
    input_shape = check_input_shape(input_shape)
    regularizer = coupled_weight_decay(weight_decay)

    inputs, x = image_input(input_shape, preprocessing)
    x = _conv_bn_relu(x, width, regularizer, "stem")
    for stage, (factor, residual) in enumerate(((2, True), (4, False), (8, True)), start=1):
        x = _conv_bn_relu(x, factor * width, regularizer, f"stage{stage}", pool=True)
        if residual:
            shortcut = x
            x = _conv_bn_relu(x, factor * width, regularizer, f"stage{stage}_res1")
            x = _conv_bn_relu(x, factor * width, regularizer, f"stage{stage}_res2")
            x = keras.layers.Add(name=f"stage{stage}_add")([shortcut, x])
    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = logits_head(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn_relu(x, filters, regularizer, prefix, pool=False):
    x = conv(filters, 3, 1, regularizer, f"{prefix}_conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
    x = batch_norm(regularizer, f"{prefix}_bn")(x)
    return keras.layers.ReLU(name=f"{prefix}_relu")(x)
