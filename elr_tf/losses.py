"""The ELR loss as pure functions.

The training models call these; keeping them free of state lets each term be
checked on hand-computed values (see `tests/test_losses.py`).
"""

import tensorflow as tf

from elr_tf import checks

# Probabilities are clipped to this range before they enter the regulariser,
# so that `log(1 - <t, p>)` stays finite when `p` and `t` are both one-hot
# (ELR-SPEC §1, step 1).
PROB_CLIP = 1e-4


def clipped_softmax(logits):
    """Softmax in float32, clipped to `[1e-4, 1 - 1e-4]`.

    Args:
        logits: `[batch, num_classes]` tensor, any float dtype.

    Returns:
        float32 `[batch, num_classes]` probabilities (rows no longer sum
        exactly to 1 because of the clip).
    """
    probs = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    return tf.clip_by_value(probs, PROB_CLIP, 1.0 - PROB_CLIP)


def target_estimate(probs):
    """The per-example contribution to the temporal ensemble.

    Args:
        probs: output of `clipped_softmax`.

    Returns:
        `probs` renormalised to sum to 1 per row, with the gradient stopped:
        the targets are constants for the optimiser (ELR-SPEC §1, step 2).
    """
    probs = tf.stop_gradient(probs)
    return probs / tf.reduce_sum(probs, axis=-1, keepdims=True)


def ensemble_targets(old_targets, estimate, beta):
    """Temporal ensembling: `beta * old + (1 - beta) * estimate`.

    Args:
        old_targets: current table rows `T[i]`, `[batch, num_classes]`.
        estimate: `target_estimate(p)` for the same examples.
        beta: momentum in `[0, 1)`.

    Returns:
        The new table rows.
    """
    return beta * old_targets + (1.0 - beta) * estimate


def elr_regularizer(targets, probs):
    """Per-example ELR term `log(1 - <targets, probs>)`.

    Minimising it pushes `probs` toward `targets`; its gradient is what keeps
    the network from memorising wrong labels (Liu et al. 2020, §4).

    Args:
        targets: `[batch, num_classes]` rows of the target table. Treated as
            constants (the gradient is stopped here as well).
        probs: `[batch, num_classes]` clipped probabilities.

    Returns:
        float32 `[batch]` per-example values (not averaged).
    """
    inner = tf.reduce_sum(tf.stop_gradient(targets) * probs, axis=-1)
    return tf.math.log(1.0 - inner)


def cross_entropy(labels, logits):
    """Per-example sparse cross-entropy from logits, in float32.

    Args:
        labels: int `[batch]` class ids.
        logits: `[batch, num_classes]`.

    Returns:
        float32 `[batch]`.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )


def elr_loss(labels, logits, targets, lam):
    """The full ELR loss for one batch, averaged over the batch.

    `CE(z, y) + lam * mean(log(1 - <T[i], p>))`, ELR-SPEC §1 step 4. The
    target rows must already include this batch's update.

    Args:
        labels: int `[batch]`.
        logits: `[batch, num_classes]`.
        targets: updated target rows `[batch, num_classes]`.
        lam: regularisation strength (lambda in the paper), `>= 0`.

    Returns:
        `(total, ce, reg)`, each a float32 scalar; `total = ce + lam * reg`.

    Example:

    >>> logits = tf.constant([[2.0, 0.0]])
    >>> total, ce, reg = elr_loss([0], logits, tf.constant([[1.0, 0.0]]), 3.0)
    """
    ce = tf.reduce_mean(cross_entropy(labels, logits))
    reg = tf.reduce_mean(elr_regularizer(targets, clipped_softmax(logits)))
    return ce + lam * reg, ce, reg


# --- ELR+ -------------------------------------------------------------------


def sigmoid_rampup(step, length):
    """The sigmoid-shaped ramp `exp(-5 (1 - min(step, L) / L)^2)` of ELR+.

    ELR+ multiplies the regulariser by this ramp (`L = coef_step`) and
    ramps the weight-averaging momentum with it (`L = ema_step`), so that
    neither acts at full strength while the networks are still random
    (ELR-SPEC §3, steps 4 and 5).

    Args:
        step: the (1-based) training step, a number or scalar tensor.
        length: ramp length `L`, a Python number `>= 0`. `L = 0` means no
            ramp: the value is 1 from the first step.

    Returns:
        float32 scalar in `(0, 1]`: `exp(-5) ~ 0.0067` at step 0, 1 from
        step `L` on.

    Example:

    >>> round(float(sigmoid_rampup(50, 100)), 4)  # exp(-5 * 0.5**2)
    0.2865
    """
    checks.number_in("length", length, 0.0)
    if length == 0:
        return tf.constant(1.0, tf.float32)
    step = tf.clip_by_value(tf.cast(step, tf.float32), 0.0, float(length))
    phase = 1.0 - step / float(length)
    return tf.exp(-5.0 * phase * phase)


def soft_cross_entropy(soft_labels, logits):
    """Per-example cross-entropy `-sum(y * log_softmax(z))` with soft labels.

    Args:
        soft_labels: `[batch, num_classes]` label distributions (e.g. mixed
            one-hot labels).
        logits: `[batch, num_classes]`.

    Returns:
        float32 `[batch]`.
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    return -tf.reduce_sum(tf.cast(soft_labels, tf.float32) * log_probs, axis=-1)


def reweighted_labels(mixed_labels, mixed_targets):
    """ELR+ label reweighting: `y_mix * q`, renormalised to sum to 1.

    The reference applies it to 100-class data: the label term's target
    keeps only the (mixed) labelled classes, weighted by how much the
    target table believes in each (ELR-SPEC §3, step 3). A row whose
    product is all zero (possible only if the targets underflow to exactly
    0 on the labelled classes) gives a zero row instead of NaN.

    Args:
        mixed_labels: `[batch, num_classes]` mixed one-hot labels `y_mix`.
        mixed_targets: `[batch, num_classes]` mixed target rows `q`.

    Returns:
        float32 `[batch, num_classes]`, constant for the optimiser.

    Example:

    >>> reweighted_labels([[0.75, 0.25, 0.0]], [[0.2, 0.6, 0.2]]).numpy()
    array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    product = tf.cast(mixed_labels, tf.float32) * tf.stop_gradient(
        tf.cast(mixed_targets, tf.float32)
    )
    return tf.math.divide_no_nan(product, tf.reduce_sum(product, axis=-1, keepdims=True))


def elr_plus_loss(
    mixed_labels, logits, mixed_targets, lam, ramp=1.0, label_reweighting=False, sample_weight=None
):
    """The ELR+ loss of one network on one mixed batch, averaged.

    `softCE(z, y') + ramp * lam * mean(log(1 - <q, p>))` with
    `p = clipped_softmax(z)` and `y' = y_mix`, or
    `reweighted_labels(y_mix, q)` with `label_reweighting`
    (ELR-SPEC §3, steps 3-4). `q` must already include this batch's update.

    Args:
        mixed_labels: `[batch, num_classes]` mixed one-hot labels.
        logits: `[batch, num_classes]` logits of the network on the mixed
            inputs.
        mixed_targets: `[batch, num_classes]` mixed target rows `q`.
        lam: regularisation strength (lambda), `>= 0`.
        ramp: the current value of `sigmoid_rampup(step, coef_step)`.
        label_reweighting: use `y_mix * q` (renormalised) as the label.
        sample_weight: None, or `[batch]` weights; the weight of example `i`
            applies to its mix (where example `i` dominates), and both terms
            are averaged over the batch after weighting.

    Returns:
        `(total, ce, reg)` float32 scalars; `total = ce + ramp * lam * reg`.

    Example:

    >>> total, ce, reg = elr_plus_loss(
    ...     [[0.7, 0.3]], [[1.0, 0.0]], [[0.3, 0.0]], lam=3.0)
    """
    labels = mixed_labels
    if label_reweighting:
        labels = reweighted_labels(mixed_labels, mixed_targets)
    ce = soft_cross_entropy(labels, logits)
    reg = elr_regularizer(mixed_targets, clipped_softmax(logits))
    if sample_weight is not None:
        weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        ce, reg = ce * weight, reg * weight
    ce, reg = tf.reduce_mean(ce), tf.reduce_mean(reg)
    return ce + ramp * lam * reg, ce, reg
