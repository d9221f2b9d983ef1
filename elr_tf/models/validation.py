"""What the models check about what they are given.

Hyper-parameters, networks, label batches and logits: the checks `ELRModel`
and `ELRPlusModel` share, each failing with the argument, the value received
and what was expected.
"""

import keras
import tensorflow as tf

from elr_tf import checks
from elr_tf import inputs as inputs_lib


def validate_hyperparameters(beta, lam):
    """Raises ValueError for `beta` outside [0, 1) or `lam` not finite and >= 0."""
    checks.number_in("beta", beta, 0.0, 1.0, high_open=True)
    checks.number_in("lam", lam, 0.0)


def output_width(backbone):
    """The static width of `backbone`'s output, or None when not yet known."""
    try:
        shape = backbone.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        raise ValueError(
            "The backbone must have a single output of logits. Received a "
            f"backbone with output shapes {shape}"
        )
    return shape[-1]


def check_output_width(width, num_classes):
    """Raises ValueError when a known output `width` is not `num_classes`."""
    if width is not None and width != num_classes:
        raise ValueError(
            "`num_classes` must equal the width of the backbone's output "
            f"(its logits). Received: num_classes={num_classes}, backbone "
            f"output width={width}"
        )


def check_labels(labels, num_classes):
    """Flattens integer labels to `[batch]` and checks their range."""
    shape = list(labels.shape)
    if len(shape) > 1 and not (len(shape) == 2 and shape[-1] == 1):
        raise ValueError(
            "ELRModel expects class indices of shape [batch] (or [batch, 1]), "
            "not one-hot or soft labels: pass `labels.argmax(-1)`. Received "
            f"labels of shape {shape} and dtype {tf.as_dtype(labels.dtype).name}"
        )
    labels = tf.reshape(labels, [-1])
    if not labels.dtype.is_integer:
        raise ValueError(
            "ELRModel expects integer class labels of shape [batch]. "
            f"Received labels of dtype {labels.dtype.name}"
        )
    return checks.assert_in_range("labels", labels, "num_classes", num_classes)


def check_not_softmax(backbone, argument="backbone"):
    """Raises ValueError when `backbone`'s last layer is a softmax.

    ELR needs logits: on probabilities the model's own softmax is applied a
    second time, which flattens the targets to near-uniform rows.
    """
    layers = getattr(backbone, "layers", None)
    if not layers:
        return
    last = layers[-1]
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax) or activation in (
        keras.activations.softmax,
        tf.nn.softmax,
    ):
        raise ValueError(
            f"`{argument}` must output logits, but its last layer "
            f"{last.name!r} applies a softmax. Remove it (e.g. "
            "`Dense(num_classes)` without `activation='softmax'`); the model "
            "applies the softmax itself. Received: last layer "
            f"{type(last).__name__}({last.name!r})"
        )


def check_logits(logits, step):
    """Checks a training batch's logits; returns them.

    Fails naming `step` when a row is non-finite (the table would store
    NaN) or when every row is already a probability vector (a softmax at the
    end of a subclassed backbone, which `check_not_softmax` cannot see).
    Like the id checks, XLA (`jit_compile=True`) drops these checks.
    """
    logits = tf.convert_to_tensor(logits)
    values = tf.cast(logits, tf.float32)
    finite = tf.reduce_all(tf.math.is_finite(values))
    sums = tf.reduce_sum(values, axis=-1)
    probabilities = tf.logical_and(
        tf.reduce_all(values >= 0.0), tf.reduce_all(tf.abs(sums - 1.0) < 1e-4)
    )
    assertions = [
        tf.debugging.Assert(
            finite,
            [
                "Non-finite logits in the training step (optimizer step",
                step,
                "); the target table would store NaN. Check the inputs and the learning rate.",
            ],
        ),
        tf.debugging.Assert(
            tf.logical_not(probabilities),
            [
                "The backbone's outputs already sum to 1 in every row (optimizer step",
                step,
                "): it ends in a softmax. ELR needs logits: remove the final softmax.",
            ],
        ),
    ]
    with tf.control_dependencies(assertions):
        return tf.identity(logits)


def check_built(argument, network):
    """Raises ValueError unless `network` is a Keras model with weights."""
    if not isinstance(network, keras.Model):
        raise ValueError(
            f"`{argument}` must be a Keras model. Received: {argument} of type "
            f"{type(network).__name__}"
        )
    if not network.built or not network.weights:
        raise ValueError(
            f"`{argument}` must be a built model with weights (give it an "
            "`Input` or call it once on a batch). Received: an unbuilt "
            f"{type(network).__name__} named {network.name!r}"
        )


def check_same_architecture(argument, network, reference):
    """Raises ValueError unless `network`'s weight shapes are `reference`'s, in order."""
    shapes = [tuple(v.shape) for v in network.weights]
    expected = [tuple(v.shape) for v in reference.weights]
    if shapes != expected:
        raise ValueError(
            f"`{argument}` must have the same architecture (the same weight "
            f"shapes, in order) as the network it pairs with. Received: "
            f"{argument} weight shapes {shapes[:6]}{'...' if len(shapes) > 6 else ''} "
            f"({len(shapes)} weights), expected {expected[:6]}"
            f"{'...' if len(expected) > 6 else ''} ({len(expected)} weights)"
        )


def check_teacher_span(teacher_span):
    """Returns a valid `teacher_span`: None, `"epoch"` or a positive int."""
    if teacher_span is None or teacher_span == "epoch":
        return teacher_span
    if checks.is_int(teacher_span) and teacher_span >= 1:
        return int(teacher_span)
    raise ValueError(
        "`teacher_span` must be None (the averaged copies teach every step), "
        "'epoch' or a positive number of steps. Received: "
        f"teacher_span={teacher_span!r}"
    )


def check_data_order(data_order, data):
    """Whether an ELR+ training element is paired; fails if it does not fit `data_order`.

    `"separate"` needs one batch per network (keys `inputs.PAIRED_KEYS`),
    `"shared"` one batch.
    """
    paired = inputs_lib.is_paired(data)
    if data_order == "separate" and not paired:
        raise ValueError(
            "ELRPlusModel(data_order='separate') trains each network on its own "
            "shuffle, so each training element must hold one batch per network: "
            f"{{{inputs_lib.PAIRED_KEYS[0]!r}: batch, {inputs_lib.PAIRED_KEYS[1]!r}: "
            "batch}, as `elr_tf.with_index(x, y, shuffles=2)` makes; or build the "
            "model with data_order='shared' to train both networks on the same "
            f"batches. Received a training element with structure {inputs_lib.describe(data)}"
        )
    if data_order == "shared" and paired:
        raise ValueError(
            "ELRPlusModel(data_order='shared') trains both networks on one batch, "
            "but the training elements hold one batch per network (keys "
            f"{inputs_lib.PAIRED_KEYS}). Build the model with data_order='separate' "
            "or give one batch per step (`elr_tf.with_index(x, y)`)."
        )
    return paired
