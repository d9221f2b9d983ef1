"""The model zoo: image classifiers that output logits.

One builder per family with variant arguments (`resnet.py`: `cifar_resnet`;
`cnn.py`: `small_cnn`, `plain_cnn`; `applications.py`:
`applications_backbone`), plus `PRESETS`, a dict of named variants, and
`build_backbone` to build one by name (`presets.py`). Every model maps
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

Preprocessing: every builder takes `preprocessing`, a function the model
applies to its images before the first layer. The `keras.applications`
presets set it to their weights' own preprocessing, so those models take
raw RGB pixels in [0, 255].
"""

from elr_tf.models.backbones.applications import applications_backbone, with_regularizer
from elr_tf.models.backbones.cnn import plain_cnn, small_cnn
from elr_tf.models.backbones.layers import INITS, reference_init
from elr_tf.models.backbones.presets import PRESETS, build_backbone
from elr_tf.models.backbones.resnet import cifar_resnet

__all__ = [
    "INITS",
    "PRESETS",
    "applications_backbone",
    "build_backbone",
    "cifar_resnet",
    "plain_cnn",
    "reference_init",
    "small_cnn",
    "with_regularizer",
]
