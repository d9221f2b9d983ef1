"""The model zoo: image classifiers that output logits.

One builder per family with variant arguments, plus `PRESETS`, a dict of
named variants, and `build_backbone` to build one by name. Every model maps
images to **logits** (no softmax), and its last layer is a Dense with
`dtype="float32"` so that logits, hence the ELR loss, stay float32 under a
`mixed_float16` policy.

Example:

```python
model = build_backbone("cifar_resnet34", num_classes=10)
logits = model(images)  # [batch, 10], float32
```

Weight decay: every builder takes `weight_decay`, the coefficient of
PyTorch-style (coupled) SGD weight decay as the ELR reference code uses it.
It is added as an L2 penalty of `weight_decay / 2` on every trainable
weight (conv and dense kernels, biases, batch-norm scale and offset), whose
gradient `weight_decay * w` is exactly what `torch.optim.SGD(weight_decay=...)`
adds. Leave it at 0 to use the optimizer's own (decoupled) `weight_decay`
instead.
"""

import os
import re
import urllib.error

import keras

from elr_tf import checks

# Matches PyTorch's BatchNorm2d defaults (momentum 0.1 there means 0.9 here),
# as in the reference code, rather than Keras's 0.99 / 1e-3.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5

# Each keras.applications architecture: its constructor, the name of the
# no-top ImageNet weights file that Keras downloads into
# `<KERAS_HOME or ~/.keras>/models/`, and the input preprocessing those
# weights expect. Keras does not expose the file names publicly, so they are
# written here; the error message prefers the URL Keras reports.
_APPLICATIONS = {
    "resnet50": (
        "ResNet50",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        keras.applications.resnet.preprocess_input,
    ),
    "inception_resnet_v2": (
        "InceptionResNetV2",
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        keras.applications.inception_resnet_v2.preprocess_input,
    ),
}

_REGULARIZED_ARGUMENTS = (
    "kernel_regularizer",
    "bias_regularizer",
    "gamma_regularizer",
    "beta_regularizer",
)


def cifar_resnet(
    num_classes,
    input_shape=(32, 32, 3),
    block_sizes=(3, 4, 6, 3),
    preact=False,
    width=64,
    weight_decay=0.0,
    name=None,
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
        weight_decay: coupled SGD weight decay coefficient (see module
            docstring); 0 adds no penalty.
        name: model name; defaults to `"cifar_resnet{depth}"` or
            `"preact_resnet{depth}"` with `depth = 2 * sum(block_sizes) + 2`.

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
    input_shape = _check_input_shape(input_shape)
    if (
        not isinstance(block_sizes, (tuple, list))
        or not block_sizes
        or not all(_is_positive_int(size) for size in block_sizes)
    ):
        raise ValueError(
            "`block_sizes` must be a non-empty tuple of positive integers, "
            f"one per stage. Received: block_sizes={block_sizes!r}"
        )
    regularizer = _regularizer(weight_decay)
    if name is None:
        depth = 2 * sum(block_sizes) + 2
        name = f"{'preact' if preact else 'cifar'}_resnet{depth}"

    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(width, 3, 1, regularizer, "stem_conv")(inputs)
    x = _batch_norm(regularizer, "stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    block = _preact_block if preact else _basic_block
    for stage, num_blocks in enumerate(block_sizes):
        filters = width * 2**stage
        for index in range(num_blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            prefix = f"stage{stage + 1}_block{index + 1}"
            x = block(x, filters, stride, regularizer, prefix)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _logits(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def small_cnn(
    num_classes,
    input_shape=(28, 28, 1),
    width=32,
    num_blocks=3,
    weight_decay=0.0,
    name="small_cnn",
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
            docstring); 0 adds no penalty.
        name: model name.

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
    input_shape = _check_input_shape(input_shape)
    regularizer = _regularizer(weight_decay)

    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for block in range(num_blocks):
        filters = width * 2**block
        for layer in range(2):
            prefix = f"block{block + 1}_conv{layer + 1}"
            x = _conv(filters, 3, 1, regularizer, prefix)(x)
            x = _batch_norm(regularizer, f"{prefix}_bn")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        if block < num_blocks - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _logits(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def plain_cnn(
    num_classes,
    input_shape=(28, 28, 1),
    filters=(32, 64),
    hidden=256,
    weight_decay=0.0,
    name="plain_cnn",
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
        weight_decay: coupled SGD weight decay coefficient (see module
            docstring); 0 adds no penalty.
        name: model name.

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
    input_shape = _check_input_shape(input_shape)
    regularizer = _regularizer(weight_decay)

    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for stage, width in enumerate(filters, start=1):
        x = _conv(width, 3, 1, regularizer, f"conv{stage}")(x)
        x = _batch_norm(regularizer, f"conv{stage}_bn")(x)
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
    outputs = _logits(num_classes, regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def applications_backbone(
    name,
    num_classes,
    input_shape,
    weights="imagenet",
    weight_decay=0.0,
):
    """A `keras.applications` network with a new float32 logits head.

    The network is built with `include_top=False, pooling="avg"` and
    followed by a Dense layer of `num_classes` logits. ELR+ uses ResNet-50
    for Clothing1M and InceptionResNetV2 for WebVision, both starting from
    ImageNet weights.

    Inputs must be prepared as the pretrained weights expect: RGB in
    [0, 255] passed through `keras.applications.resnet.preprocess_input`
    (ResNet-50) or `keras.applications.inception_resnet_v2.preprocess_input`
    (InceptionResNetV2). The preset entries carry that function under
    `"preprocessing"`.

    Args:
        name: `"resnet50"` or `"inception_resnet_v2"`.
        num_classes: number of output logits.
        input_shape: `(height, width, 3)` of the images (at least 32x32 for
            ResNet-50 and 75x75 for InceptionResNetV2).
        weights: `"imagenet"`, `None` (random initialisation) or the path
            of a weights file for the no-top network.
        weight_decay: coupled SGD weight decay coefficient (see module
            docstring); 0 adds no penalty.

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Raises:
        RuntimeError: if `weights="imagenet"` and the weights file is not in
            the Keras cache and cannot be downloaded (e.g. offline).

    Example:

    ```python
    model = applications_backbone(
        "resnet50", num_classes=14, input_shape=(224, 224, 3)
    )
    ```
    """
    if name not in _APPLICATIONS:
        raise ValueError(f"`name` must be one of {sorted(_APPLICATIONS)}. Received: name={name!r}")
    num_classes = checks.positive_int("num_classes", num_classes)
    input_shape = _check_input_shape(input_shape)
    regularizer = _regularizer(weight_decay)
    constructor_name, weights_file, _ = _APPLICATIONS[name]
    constructor = getattr(keras.applications, constructor_name)

    try:
        base = constructor(
            include_top=False,
            weights=weights,
            input_shape=input_shape,
            pooling="avg",
        )
    except Exception as error:
        if weights == "imagenet" and _is_download_failure(error):
            raise RuntimeError(
                _download_failure_message(name, constructor_name, weights_file, error)
            ) from error
        raise

    if regularizer is not None:
        base = with_regularizer(base, regularizer)
    outputs = _logits(num_classes, regularizer)(base.output)
    return keras.Model(base.input, outputs, name=name)


# Named variants. Each entry: the builder, the keyword arguments it is
# called with (callers may override any of them), the function the inputs
# must be prepared with (`None`: the data pipeline's own normalisation), and
# a one-line description.
PRESETS = {
    "tiny_cnn": {
        "builder": small_cnn,
        "config": {"width": 4, "num_blocks": 2, "name": "tiny_cnn"},
        "preprocessing": None,
        "description": "Two-block CNN of ~1.3k weights, for tests.",
    },
    "small_cnn": {
        "builder": small_cnn,
        "config": {"width": 32, "num_blocks": 3, "name": "small_cnn"},
        "preprocessing": None,
        "description": "Three-block CNN for Fashion-MNIST on CPU.",
    },
    "mini_cnn": {
        "builder": small_cnn,
        "config": {"width": 16, "num_blocks": 3, "name": "mini_cnn"},
        "preprocessing": None,
        "description": "small_cnn at half width (~1/4 of its compute), for the demo.",
    },
    "plain_cnn": {
        "builder": plain_cnn,
        "config": {"name": "plain_cnn"},
        "preprocessing": None,
        "description": "conv32-pool, conv64-pool, dense 256: the reference comparison's CNN.",
    },
    "tiny_resnet": {
        "builder": cifar_resnet,
        "config": {"block_sizes": (1, 1), "width": 8, "name": "tiny_resnet"},
        "preprocessing": None,
        "description": "Two-stage ResNet-6 of width 8, for tests.",
    },
    "cifar_resnet18": {
        "builder": cifar_resnet,
        "config": {"block_sizes": (2, 2, 2, 2), "name": "cifar_resnet18"},
        "preprocessing": None,
        "description": "CIFAR ResNet-18.",
    },
    "cifar_resnet34": {
        "builder": cifar_resnet,
        "config": {"block_sizes": (3, 4, 6, 3), "name": "cifar_resnet34"},
        "preprocessing": None,
        "description": "CIFAR ResNet-34, the ELR backbone for CIFAR.",
    },
    "preact_resnet18": {
        "builder": cifar_resnet,
        "config": {
            "block_sizes": (2, 2, 2, 2),
            "preact": True,
            "name": "preact_resnet18",
        },
        "preprocessing": None,
        "description": "PreAct ResNet-18, the ELR+ backbone for CIFAR.",
    },
    "resnet50": {
        "builder": applications_backbone,
        "config": {"name": "resnet50", "input_shape": (224, 224, 3)},
        "preprocessing": _APPLICATIONS["resnet50"][2],
        "description": "ImageNet ResNet-50, the ELR+ backbone for Clothing1M.",
    },
    "inception_resnet_v2": {
        "builder": applications_backbone,
        # The reference trains WebVision on 227x227 random crops.
        "config": {"name": "inception_resnet_v2", "input_shape": (227, 227, 3)},
        "preprocessing": _APPLICATIONS["inception_resnet_v2"][2],
        "description": "ImageNet InceptionResNetV2, the ELR+ backbone for WebVision.",
    },
}


def build_backbone(arch, num_classes, input_shape=None, **overrides):
    """Builds a preset from `PRESETS` by name.

    Args:
        arch: a key of `PRESETS`, e.g. `"cifar_resnet34"`.
        num_classes: number of output logits.
        input_shape: `(height, width, channels)`; `None` keeps the preset's
            or builder's default.
        **overrides: keyword arguments of the builder that replace the
            preset's, e.g. `weight_decay=5e-4` or `weights=None`.

    Returns:
        A functional `keras.Model` mapping images to float32 logits.

    Example:

    ```python
    model = build_backbone("preact_resnet18", num_classes=100, weight_decay=5e-4)
    ```
    """
    if arch not in PRESETS:
        raise ValueError(f"`arch` must be one of {sorted(PRESETS)}. Received: arch={arch!r}")
    preset = PRESETS[arch]
    kwargs = {**preset["config"], **overrides}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    return preset["builder"](num_classes=num_classes, **kwargs)


def _basic_block(x, filters, stride, regularizer, prefix):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _projection(x, filters, stride, regularizer, prefix)
        shortcut = _batch_norm(regularizer, f"{prefix}_proj_bn")(shortcut)
    x = _conv(filters, 3, stride, regularizer, f"{prefix}_conv1")(x)
    x = _batch_norm(regularizer, f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
    x = _conv(filters, 3, 1, regularizer, f"{prefix}_conv2")(x)
    x = _batch_norm(regularizer, f"{prefix}_bn2")(x)
    x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{prefix}_out")(x)


def _preact_block(x, filters, stride, regularizer, prefix):
    x = _batch_norm(regularizer, f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
    # Both shortcuts, identity and projection, take the pre-activated input,
    # as in the ELR+ reference network (not the block input of He et al.).
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _projection(x, filters, stride, regularizer, prefix)
    x = _conv(filters, 3, stride, regularizer, f"{prefix}_conv1")(x)
    x = _batch_norm(regularizer, f"{prefix}_bn2")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu2")(x)
    x = _conv(filters, 3, 1, regularizer, f"{prefix}_conv2")(x)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, x])


def _projection(x, filters, stride, regularizer, prefix):
    # A strided 1x1 convolution is the same map as subsampling followed by a
    # stride-1 1x1 convolution. It is written the second way because
    # TensorFlow 2.21's oneDNN CPU kernel for a bias-free strided 1x1
    # convolution crashes the process (segfault) on some batch sizes (odd
    # last batches, e.g. 21); see tests/test_backbones.py.
    if stride != 1:
        x = keras.layers.MaxPooling2D(
            pool_size=1, strides=stride, padding="same", name=f"{prefix}_proj_subsample"
        )(x)
    return _conv(filters, 1, 1, regularizer, f"{prefix}_proj")(x)


def _conv(filters, kernel_size, stride, regularizer, name):
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


def _batch_norm(regularizer, name):
    return keras.layers.BatchNormalization(
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPSILON,
        gamma_regularizer=regularizer,
        beta_regularizer=regularizer,
        name=name,
    )


def _logits(num_classes, regularizer):
    # float32 even under mixed_float16, so softmax, log and the ELR target
    # table never see float16 logits.
    return keras.layers.Dense(
        num_classes,
        kernel_regularizer=regularizer,
        bias_regularizer=regularizer,
        dtype="float32",
        name="logits",
    )


def _regularizer(weight_decay):
    if checks.number_in("weight_decay", weight_decay, 0.0) == 0:
        return None
    # L2(c) adds c * sum(w**2), whose gradient is 2 * c * w: halve so the
    # gradient matches PyTorch SGD's weight_decay * w.
    return keras.regularizers.L2(weight_decay / 2)


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


def _is_positive_int(value):
    return checks.is_int(value) and value > 0


def _check_input_shape(input_shape):
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(size is None or _is_positive_int(size) for size in input_shape[:2])
        or not _is_positive_int(input_shape[2])
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) of positive "
            "integers (height and width may be None). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(None if size is None else int(size) for size in input_shape)
