"""The layers every backbone family is built from.

Shared by the builders of this package: convolutions and batch norm set up
as the ELR reference code sets them, the float32 logits head, the coupled
weight decay, and the image input with optional preprocessing.
"""

import keras
import numpy as np

from elr_tf import checks

# Matches PyTorch's BatchNorm2d defaults (momentum 0.1 there means 0.9 here),
# as in the reference code, rather than Keras's 0.99 / 1e-3.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def image_input(input_shape, preprocessing=None):
    """`(inputs, x)`: a model's image input and what its first layer reads.

    Without `preprocessing`, `x` is `inputs`; with it, `x` is
    `preprocessing(inputs)`, computed inside the model in float32 (also
    under `mixed_float16`: the keras.applications functions subtract
    ImageNet means from 0-255 pixels).
    """
    inputs = keras.Input(shape=input_shape, name="images")
    if preprocessing is None:
        return inputs, inputs
    layer = keras.layers.Lambda(preprocessing, dtype="float32", name="preprocessing")
    return inputs, layer(inputs)


def conv(filters, kernel_size, stride, regularizer, name):
    """A bias-free, he-normal, same-padded `Conv2D`."""
    # No bias: a batch norm follows (or, in pre-activation blocks, the next
    # block's batch norm absorbs it), as in the reference.
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name=name,
    )


def batch_norm(regularizer, name):
    """`BatchNormalization` with PyTorch's momentum and epsilon."""
    return keras.layers.BatchNormalization(
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPSILON,
        gamma_regularizer=regularizer,
        beta_regularizer=regularizer,
        name=name,
    )


def logits_head(num_classes, regularizer):
    """The `Dense` layer of logits, float32 under every dtype policy."""
    # float32 even under mixed_float16, so softmax, log and the ELR target
    # table never see float16 logits.
    return keras.layers.Dense(
        num_classes,
        kernel_regularizer=regularizer,
        bias_regularizer=regularizer,
        dtype="float32",
        name="logits",
    )


def coupled_weight_decay(weight_decay):
    """The L2 regularizer of coupled SGD weight decay, or None for 0."""
    if checks.number_in("weight_decay", weight_decay, 0.0) == 0:
        return None
    # L2(c) adds c * sum(w**2), whose gradient is 2 * c * w: halve so the
    # gradient matches PyTorch SGD's weight_decay * w.
    return keras.regularizers.L2(weight_decay / 2)


def is_positive_int(value):
    """True for an int > 0 (not a bool)."""
    return checks.is_int(value) and value > 0


def check_input_shape(input_shape):
    """`input_shape` as a `(height, width, channels)` tuple; height and width may be None."""
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(size is None or is_positive_int(size) for size in input_shape[:2])
        or not is_positive_int(input_shape[2])
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) of positive "
            "integers (height and width may be None). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(None if size is None else int(size) for size in input_shape)


# How `build_backbone` starts a network's weights (`init=`).
INITS = ("keras", "reference")


def reference_init(model):
    """Re-draws every conv and dense kernel and bias as PyTorch's defaults do.

    PyTorch initialises `nn.Conv2d` and `nn.Linear` with kaiming-uniform
    (`a = sqrt(5)`), that is `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, and the
    bias with the same bound; the ELR reference models set no initialiser
    of their own, so these apply there. Batch-norm scale and offset start at
    1 and 0 in both frameworks and are left as they are. Keras's defaults
    (glorot-uniform, he-normal) start this project's networks about 2.4
    times larger per layer. The draws follow Keras's global seed
    (`keras.utils.set_random_seed`).

    Args:
        model: a built `keras.Model`; its weights are replaced in place.

    Returns:
        `model`.
    """
    seed = keras.random.SeedGenerator()
    for layer in _leaf_layers(model):
        # Keras kernels are (..., fan_in, out): a conv's fan-in is its window
        # times its input channels; a depthwise conv reads one channel.
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            fan_in = int(np.prod(layer.kernel.shape[:-2]))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            fan_in = int(np.prod(layer.kernel.shape[:-1]))
        else:
            continue
        bound = 1.0 / np.sqrt(fan_in)
        for weight in (layer.kernel, getattr(layer, "bias", None)):
            if weight is not None:
                weight.assign(
                    keras.random.uniform(weight.shape, -bound, bound, dtype=weight.dtype, seed=seed)
                )
    return model


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer
