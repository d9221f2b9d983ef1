"""Small CNNs: a VGG-style one for Fashion-MNIST and the comparison's plain one."""

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


def small_cnn(
    num_classes,
    input_shape=(28, 28, 1),
    width=32,
    num_blocks=3,
    weight_decay=0.0,
    name="small_cnn",
    preprocessing=None,
):
    """A small VGG-style CNN that trains on Fashion-MNIST in minutes on CPU.

    Block `b` is two 3x3 conv-BN-ReLU layers with `width * 2**b` channels;
    all blocks but the last end in a 2x2 max-pool; global average pooling
    and a float32 Dense layer give the logits. With the defaults it has
    about 0.29M parameters.

    Args:
        num_classes: number of output logits.
        input_shape: `(height, width, channels)` of the images.
        width: channels of the first block.
        num_blocks: number of conv blocks.
        weight_decay: coupled SGD weight decay coefficient (see module
            docstring of `elr_tf.models.backbones`); 0 adds no penalty.
        name: model name.
        preprocessing: None, or a function the model applies to its
            images before the first layer (see `image_input`).

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Example:

    ```python
    model = small_cnn(num_classes=10)
    model(np.zeros((2, 28, 28, 1))).shape  # (2, 10)
    ```
    """
    num_classes = checks.positive_int("num_classes", num_classes)
    width = checks.positive_int("width", width)
    num_blocks = checks.positive_int("num_blocks", num_blocks)
    input_shape = check_input_shape(input_shape)
    regularizer = coupled_weight_decay(weight_decay)

    inputs, x = image_input(input_shape, preprocessing)
    for block in range(num_blocks):
        filters = width * 2**block
        for layer in range(2):
            prefix = f"block{block + 1}_conv{layer + 1}"
            x = conv(filters, 3, 1, regularizer, prefix)(x)
            x = batch_norm(regularizer, f"{prefix}_bn")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        if block < num_blocks - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = logits_head(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def plain_cnn(
    num_classes,
    input_shape=(28, 28, 1),
    filters=(32, 64),
    hidden=256,
    weight_decay=0.0,
    name="plain_cnn",
    preprocessing=None,
):
    """A plain CNN: conv-BN-ReLU-max-pool stages, a hidden Dense, logits.

    With the defaults: conv3x3(32)-BN-ReLU-pool, conv3x3(64)-BN-ReLU-pool,
    flatten, Dense(256)-ReLU, Dense(num_classes). It is the network of the
    side-by-side comparison with a PyTorch implementation
    (`scripts/compare_reference.py`), small enough for many runs on a CPU.
    The convolutions have no bias (batch norm follows).

    Args:
        num_classes: number of output logits.
        input_shape: `(height, width, channels)` of the images.
        filters: channels of each conv stage.
        hidden: width of the hidden Dense layer.
        weight_decay, name, preprocessing: as in `small_cnn`.

    Returns:
        A functional `keras.Model` mapping images to float32 logits.
    """
    num_classes = checks.positive_int("num_classes", num_classes)
    hidden = checks.positive_int("hidden", hidden)
    filters = tuple(filters)
    if not filters:
        raise ValueError("`filters` must name at least one conv stage. Received: filters=()")
    for width in filters:
        checks.positive_int("filters", width)
    input_shape = check_input_shape(input_shape)
    regularizer = coupled_weight_decay(weight_decay)

    inputs, x = image_input(input_shape, preprocessing)
    for stage, width in enumerate(filters, start=1):
        x = conv(width, 3, 1, regularizer, f"conv{stage}")(x)
        x = batch_norm(regularizer, f"conv{stage}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{stage}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"conv{stage}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        hidden,
        activation="relu",
        kernel_regularizer=regularizer,
        bias_regularizer=regularizer,
        name="hidden",
    )(x)
    outputs = logits_head(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)
