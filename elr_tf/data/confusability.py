"""The auxiliary classifier of instance-dependent noise (`noise.instance_dependent`).

A linear softmax classifier trained by SGD on the clean labels; its
predictions, averaged over its epochs, say which examples look like another
class. Pure numpy, so the noise needs no accelerator and no model zoo.
"""

import numpy as np

# SGD batch size, the least number of epochs and of steps (small data sets
# get more epochs), and the power-iteration steps that estimate the step size.
BATCH_SIZE = 128
MIN_EPOCHS = 5
MIN_STEPS = 2000
POWER_ITERATIONS = 30


def check_features(features, n):
    """`features` as a float32 `[n, d]` copy, each example flattened; ValueError if unusable."""
    try:
        x = np.asarray(features)
    except (TypeError, ValueError) as error:
        raise ValueError(
            "`features` must be a numeric array [n, ...]. "
            f"Received: features of type {type(features).__name__}"
        ) from error
    if x.ndim < 1 or x.shape[0] != n:
        raise ValueError(
            f"`features` must have one row per label ({n} rows). Received: "
            f"features with shape {x.shape}"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"`features` must be numeric. Received: features with dtype {x.dtype}")
    # A copy: the standardisation below works in place.
    x = x.reshape(n, int(np.prod(x.shape[1:]))).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("`features` must be finite. Received: features containing NaN or inf")
    return x


def epoch_averaged_probabilities(x, labels, num_classes, rng):
    """A linear softmax classifier's predictions, averaged over its SGD epochs.

    Trained on `labels` from zero weights with minibatch SGD (batch 128; at
    least 5 epochs and 2,000 steps), the batches shuffled by `rng`.

    Args:
        x: float32 `[n, d]` features (`check_features`), standardised here
            in place.
        labels: int64 `[n]` labels in `[0, num_classes)`.
        num_classes: number of classes.
        rng: a `np.random.Generator`.

    Returns:
        float32 `[n, num_classes]`: each example's predicted probabilities,
        averaged over the epochs.
    """
    # `x` is standardised in place, each feature to mean 0 and variance 1
    # (a constant feature to 0).
    n, dim = x.shape
    x -= x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    x /= scale
    # Gradient descent on the softmax loss is stable for steps below 4 / L,
    # with L the largest eigenvalue of the features' second moment (the
    # softmax curvature is at most 1/2); 2 / L leaves a margin for the power
    # iteration's underestimate and for minibatch noise, for any scaling or
    # correlation of the features. L >= 1: the bias sees a constant input.
    vector = rng.standard_normal(dim).astype(np.float32)
    largest = 1.0
    for _ in range(POWER_ITERATIONS):
        image = x.T @ (x @ vector) / n
        norm = float(np.linalg.norm(image))
        if norm == 0.0:
            break
        vector = image / norm
        largest = max(norm, 1.0)
    step = 2.0 / largest

    weights = np.zeros((dim, num_classes), np.float32)
    bias = np.zeros(num_classes, np.float32)
    steps_per_epoch = -(-n // BATCH_SIZE)
    epochs = max(MIN_EPOCHS, -(-MIN_STEPS // steps_per_epoch))
    averaged = np.zeros((n, num_classes), np.float32)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            inputs = x[batch]
            # The gradient of the batch's mean cross-entropy in the logits.
            grad = softmax(inputs @ weights + bias)
            grad[np.arange(batch.shape[0]), labels[batch]] -= 1.0
            grad /= batch.shape[0]
            weights -= step * (inputs.T @ grad)
            bias -= step * grad.sum(axis=0)
        averaged += softmax(x @ weights + bias)
    return averaged / epochs


def softmax(logits):
    """Row-wise softmax of a float `[n, k]` array, computed in place."""
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits
