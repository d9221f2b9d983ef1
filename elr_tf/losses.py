"""The ELR loss as pure functions.

The training models call these; keeping them free of state lets each term be
checked on hand-computed values (see `tests/test_losses.py`).
"""

import tensorflow as tf

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
