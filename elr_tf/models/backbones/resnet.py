"""CIFAR-style ResNets, post-activation (ELR) and pre-activation (ELR+)."""

import keras

from elr_tf import checks
from elr_tf.models.backbones.layers import (
    batch_norm,
    check_input_shape,
    conv,
    coupled_weight_decay,
    image_input,
    is_positive_int,
    logits_head,
)


def cifar_resnet(
    num_classes,
    input_shape=(32, 32, 3),
    block_sizes=(3, 4, 6, 3),
    preact=False,
    width=64,
    weight_decay=0.0,
    name=None,
    preprocessing=None,
):
    """CIFAR-style ResNet with basic blocks.

    The stem is a single 3x3 stride-1 convolution with no max-pool, so a
    32x32 image keeps its resolution into the first stage. Stage `s` has
    `width * 2**s` channels and `block_sizes[s]` basic blocks; every stage
    after the first halves the resolution in its first block. Global average
    pooling and a float32 Dense layer give the logits.

    `preact=False` is the post-activation ResNet of the ELR reference
    (conv-BN-ReLU, conv-BN, add, ReLU; projection shortcuts are 1x1 conv +
    BN). `preact=True` is the PreAct ResNet used by ELR+ (BN-ReLU before
    each conv; the shortcut, identity and projection alike, is taken from
    the pre-activated input `relu(bn(x))` as in the ELR+ reference code,
    where He et al. 2016 take the identity from `x`; no BN on the
    shortcut). Both follow the reference in having a conv-BN-ReLU stem and
    no BN-ReLU after the last block.

    Variants: ResNet-34 is `block_sizes=(3, 4, 6, 3)` (~21.3M parameters
    for 10 classes), ResNet-18 is `(2, 2, 2, 2)` (~11.2M).

    Args:
        num_classes: number of output logits.
        input_shape: `(height, width, channels)` of the images.
        block_sizes: number of basic blocks in each stage.
        preact: whether to use pre-activation blocks.
        width: channels of the stem and first stage.
        weight_decay: coupled SGD weight decay coefficient (see
            `elr_tf.models.backbones`); 0 adds no penalty.
        name: model name; defaults to `"cifar_resnet{depth}"` or
            `"preact_resnet{depth}"` with `depth = 2 * sum(block_sizes) + 2`.
        preprocessing: None, or a function applied to the images inside the
            model (`layers.image_input`).

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Example:

    ```python
    model = cifar_resnet(num_classes=100, block_sizes=(2, 2, 2, 2), preact=True)
    model.name  # "preact_resnet18"
    ```

    References:
        - He et al., Deep Residual Learning for Image Recognition, CVPR 2016.
        - He et al., Identity Mappings in Deep Residual Networks, ECCV 2016.
    """
    num_classes = checks.positive_int("num_classes", num_classes)
    width = checks.positive_int("width", width)
    input_shape = check_input_shape(input_shape)
    if (
        not isinstance(block_sizes, (tuple, list))
        or not block_sizes
        or not all(is_positive_int(size) for size in block_sizes)
    ):
        raise ValueError(
            "`block_sizes` must be a non-empty tuple of positive integers, "
            f"one per stage. Received: block_sizes={block_sizes!r}"
        )
    regularizer = coupled_weight_decay(weight_decay)
    if name is None:
        depth = 2 * sum(block_sizes) + 2
        name = f"{'preact' if preact else 'cifar'}_resnet{depth}"

    inputs, x = image_input(input_shape, preprocessing)
    x = conv(width, 3, 1, regularizer, "stem_conv")(x)
    x = batch_norm(regularizer, "stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    block = _preact_block if preact else _basic_block
    for stage, num_blocks in enumerate(block_sizes):
        filters = width * 2**stage
        for index in range(num_blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            prefix = f"stage{stage + 1}_block{index + 1}"
            x = block(x, filters, stride, regularizer, prefix)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = logits_head(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def _basic_block(x, filters, stride, regularizer, prefix):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _projection(x, filters, stride, regularizer, prefix)
        shortcut = batch_norm(regularizer, f"{prefix}_proj_bn")(shortcut)
    x = conv(filters, 3, stride, regularizer, f"{prefix}_conv1")(x)
    x = batch_norm(regularizer, f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
    x = conv(filters, 3, 1, regularizer, f"{prefix}_conv2")(x)
    x = batch_norm(regularizer, f"{prefix}_bn2")(x)
    x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{prefix}_out")(x)


def _preact_block(x, filters, stride, regularizer, prefix):
    x = batch_norm(regularizer, f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
    # Both shortcuts, identity and projection, take the pre-activated input,
    # as in the ELR+ reference network (not the block input of He et al.).
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _projection(x, filters, stride, regularizer, prefix)
    x = conv(filters, 3, stride, regularizer, f"{prefix}_conv1")(x)
    x = batch_norm(regularizer, f"{prefix}_bn2")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu2")(x)
    x = conv(filters, 3, 1, regularizer, f"{prefix}_conv2")(x)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, x])


def _projection(x, filters, stride, regularizer, prefix):
    # A strided 1x1 convolution is the same map as subsampling followed by a
    # stride-1 1x1 convolution. It is written the second way because
    # TensorFlow 2.21's oneDNN CPU kernel for a bias-free strided 1x1
    # convolution crashes the process (segfault) on some batch sizes (odd
    # last batches, e.g. 21); see tests/models/test_backbones.py.
    if stride != 1:
        x = keras.layers.MaxPooling2D(
            pool_size=1, strides=stride, padding="same", name=f"{prefix}_proj_subsample"
        )(x)
    return conv(filters, 1, 1, regularizer, f"{prefix}_proj")(x)
