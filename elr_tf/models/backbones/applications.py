"""`keras.applications` networks with a new float32 logits head."""

import os
import re
import urllib.error

import keras

from elr_tf import checks
from elr_tf.models.backbones.layers import (
    check_input_shape,
    coupled_weight_decay,
    image_input,
    logits_head,
)

# Each keras.applications architecture: its constructor and the name of the
# no-top ImageNet weights file that Keras downloads into
# `<KERAS_HOME or ~/.keras>/models/`. Keras does not expose the file names
# publicly, so they are written here; the error message prefers the URL
# Keras reports.
APPLICATIONS = {
    "resnet50": ("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "inception_resnet_v2": (
        "InceptionResNetV2",
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
}


# The preprocessing of each architecture's ImageNet weights, as named and
# registered functions, so that a model applying one in a `Lambda` layer is
# saved with it and loads back (Keras's own `preprocess_input` functions are
# saved without their module and cannot be found again on loading).
@keras.saving.register_keras_serializable(package="elr_tf")
def resnet_preprocessing(images):
    """`keras.applications.resnet.preprocess_input`: RGB in [0, 255] to BGR minus ImageNet means."""
    return keras.applications.resnet.preprocess_input(images)


@keras.saving.register_keras_serializable(package="elr_tf")
def inception_resnet_v2_preprocessing(images):
    """`keras.applications.inception_resnet_v2.preprocess_input`: [0, 255] to [-1, 1]."""
    return keras.applications.inception_resnet_v2.preprocess_input(images)


_REGULARIZED_ARGUMENTS = (
    "kernel_regularizer",
    "bias_regularizer",
    "gamma_regularizer",
    "beta_regularizer",
)


def applications_backbone(
    name,
    num_classes,
    input_shape,
    weights="imagenet",
    weight_decay=0.0,
    preprocessing=None,
):
    """A `keras.applications` network with a new float32 logits head.

    The network is built with `include_top=False, pooling="avg"` and
    followed by a Dense layer of `num_classes` logits. ELR+ uses ResNet-50
    for Clothing1M and InceptionResNetV2 for WebVision, both starting from
    ImageNet weights.

    Pretrained weights expect their own preprocessing of RGB images in
    [0, 255]: `keras.applications.resnet.preprocess_input` (ResNet-50) or
    `keras.applications.inception_resnet_v2.preprocess_input`
    (InceptionResNetV2), here `resnet_preprocessing` and
    `inception_resnet_v2_preprocessing`. Pass it as `preprocessing` to have
    the model apply it itself, to raw pixels; the presets do.

    Args:
        name: `"resnet50"` or `"inception_resnet_v2"`.
        num_classes: number of output logits.
        input_shape: `(height, width, 3)` of the images (at least 32x32 for
            ResNet-50 and 75x75 for InceptionResNetV2).
        weights: `"imagenet"`, `None` (random initialisation) or the path
            of a weights file for the no-top network.
        weight_decay: coupled SGD weight decay coefficient (see the
            docstring of `elr_tf.models.backbones`); 0 adds no penalty.
        preprocessing: None (the inputs arrive prepared), or a function the
            model applies to its images before the network.

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Raises:
        ConnectionError: if `weights="imagenet"` and the weights file is not
            in the Keras cache and cannot be downloaded (e.g. offline).

    Example:

    ```python
    model = applications_backbone(
        "resnet50", num_classes=14, input_shape=(224, 224, 3),
        preprocessing=resnet_preprocessing,
    )
    logits = model(raw_pixels)  # RGB in [0, 255]
    ```
    """
    if name not in APPLICATIONS:
        raise ValueError(f"`name` must be one of {sorted(APPLICATIONS)}. Received: name={name!r}")
    num_classes = checks.positive_int("num_classes", num_classes)
    input_shape = check_input_shape(input_shape)
    regularizer = coupled_weight_decay(weight_decay)
    constructor_name, weights_file = APPLICATIONS[name]
    constructor = getattr(keras.applications, constructor_name)
    inputs, x = image_input(input_shape, preprocessing)

    try:
        # Built on `x`, so that the preprocessing is a layer of the network;
        # `input_shape` as well, for Keras's checks of it against `weights`.
        base = constructor(
            include_top=False,
            weights=weights,
            input_tensor=x,
            input_shape=input_shape,
            pooling="avg",
        )
    except Exception as error:
        if weights == "imagenet" and _is_download_failure(error):
            raise ConnectionError(
                _download_failure_message(name, constructor_name, weights_file, error)
            ) from error
        raise

    if regularizer is not None:
        base = with_regularizer(base, regularizer)
    outputs = logits_head(num_classes, regularizer)(base.output)
    # One input tensor, not the one-element list a network built on
    # `input_tensor` has, so that calls pass the images as they are.
    return keras.Model(base.inputs[0], outputs, name=name)


def with_regularizer(model, regularizer):
    """Returns a copy of a built model whose weighted layers carry `regularizer`.

    The copy has the model's weights (pretrained ones included); use it to
    add weight decay to a `keras.applications` network.

    Args:
        model: a built functional or Sequential Keras model.
        regularizer: a `keras.regularizers.Regularizer`, e.g. `L2(5e-4)`.
    """
    # Regularizers are constructor arguments, so the network is rebuilt
    # layer by layer from its configs with the penalty added, then given back
    # its weights. Going through configs keeps the penalty in the model's own
    # config, so it survives saving.
    serialized = keras.regularizers.serialize(regularizer)

    def rebuild(layer):
        config = layer.get_config()
        for argument in _REGULARIZED_ARGUMENTS:
            if argument in config:
                config[argument] = serialized
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=rebuild)
    clone.set_weights(model.get_weights())
    return clone


def _is_download_failure(error):
    # keras.utils.get_file turns urllib's URLError / HTTPError into a bare
    # Exception("URL fetch failure on <url>: ...") and a bad checksum into a
    # ValueError; catch those, and urllib errors in case a later Keras
    # re-raises them as they are.
    message = str(error)
    return (
        isinstance(error, urllib.error.URLError)
        or message.startswith("URL fetch failure")
        or "Incomplete or corrupted file detected" in message
    )


def _download_failure_message(name, constructor_name, weights_file, error):
    match = re.search(r"URL fetch failure on (\S+?): ", str(error))
    origin = match.group(1) if match else None
    if origin:
        weights_file = origin.rsplit("/", 1)[-1]
    cache_dir = os.path.join(
        os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")),
        "models",
    )
    source = f" from {origin}" if origin else ""
    return (
        f"Could not download the ImageNet weights for {name!r} "
        f"(keras.applications.{constructor_name}); this machine may be "
        f"offline. Keras said: {error}. Either pre-populate the Keras cache "
        f"by copying '{weights_file}'{source} into '{cache_dir}/', or pass "
        "weights=None to start from random weights, or pass weights='<path "
        f"to {weights_file}>' to load a local copy."
    )
