"""The named backbones: `PRESETS`, and `build_backbone` to build one by name.

Adding a preset is one entry in `PRESETS` (and its line in
`tests/models/test_backbones.py`).
"""

from elr_tf import checks
from elr_tf.models.backbones.applications import (
    applications_backbone,
    inception_resnet_v2_preprocessing,
    resnet_preprocessing,
)
from elr_tf.models.backbones.cnn import plain_cnn, small_cnn
from elr_tf.models.backbones.layers import INITS, reference_init
from elr_tf.models.backbones.resnet import cifar_resnet
from elr_tf.models.backbones.resnet9 import resnet9

# Named variants. Each entry: the builder, the keyword arguments it is
# called with (callers may override any of them), the preprocessing the
# model applies to its images inside itself (None: the model takes the data
# pipeline's normalised images; a function: it takes raw RGB pixels in
# [0, 255], as pretrained `keras.applications` weights need), and a
# one-line description.
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
    "tiny_resnet9": {
        "builder": resnet9,
        "config": {"width": 4, "name": "tiny_resnet9"},
        "preprocessing": None,
        "description": "ResNet-9 of width 4, for tests.",
    },
    "resnet9_w32": {
        "builder": resnet9,
        "config": {"width": 32, "name": "resnet9_w32"},
        "preprocessing": None,
        "description": "ResNet-9 at half width: the CIFAR-10N CPU recipe's network.",
    },
    "resnet9": {
        "builder": resnet9,
        "config": {"width": 64, "name": "resnet9"},
        "preprocessing": None,
        "description": "ResNet-9 (DAWNBench), fast CIFAR training on GPUs.",
    },
    "resnet50": {
        "builder": applications_backbone,
        "config": {"name": "resnet50", "input_shape": (224, 224, 3)},
        "preprocessing": resnet_preprocessing,
        "description": "ImageNet ResNet-50, the ELR+ backbone for Clothing1M.",
    },
    "inception_resnet_v2": {
        "builder": applications_backbone,
        # The reference trains WebVision on 227x227 random crops.
        "config": {"name": "inception_resnet_v2", "input_shape": (227, 227, 3)},
        "preprocessing": inception_resnet_v2_preprocessing,
        "description": "ImageNet InceptionResNetV2, the ELR+ backbone for WebVision.",
    },
}


def build_backbone(arch, num_classes, input_shape=None, *, init=None, **overrides):
    """Builds a preset from `PRESETS` by name.

    A preset with `preprocessing` gives a model that applies it to its
    images itself, so that model takes raw RGB pixels in [0, 255].

    Every preset of this project's own families (the CNNs and CIFAR
    ResNets) starts by default as the ELR reference code's PyTorch models
    start, `init="reference"`: every conv and dense kernel and bias from
    `U(+-1/sqrt(fan_in))` (`layers.reference_init`). That is the start the
    paper's results were trained from; Keras's own initialisers
    (`init="keras"`) start these networks about 2.4 times larger per layer,
    and measured here that moves a 20-epoch Fashion-MNIST run by up to 3
    points (docs/model.md). `keras.applications` presets keep their
    (pretrained) weights and refuse `"reference"`.

    Args:
        arch: a key of `PRESETS`, e.g. `"cifar_resnet34"`.
        num_classes: number of output logits.
        input_shape: `(height, width, channels)`; `None` keeps the preset's
            or builder's default.
        init: `"reference"`, `"keras"`, or None for the preset's default
            (`"reference"`, or Keras's own for `keras.applications`).
        **overrides: keyword arguments of the builder that replace the
            preset's, e.g. `weight_decay=5e-4`, `weights=None` or
            `preprocessing=None`.

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
    pretrained = preset["builder"] is applications_backbone
    if init is None:
        init = "keras" if pretrained else "reference"
    checks.one_of("init", init, INITS)
    if init == "reference" and pretrained:
        raise ValueError(
            f"`init='reference'` does not apply to {arch!r}, a keras.applications "
            "backbone that keeps its (pretrained) weights. Received: init='reference'"
        )
    kwargs = {"preprocessing": preset["preprocessing"], **preset["config"], **overrides}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    model = preset["builder"](num_classes=num_classes, **kwargs)
    return reference_init(model) if init == "reference" else model
