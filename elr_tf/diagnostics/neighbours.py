"""What an example's nearest neighbours are labelled, in the network's own embedding.

A network that trains on a systematic flip (shirts labelled T-shirt) learns
the flip for the examples it sees, so its own prediction for a flipped
example agrees with the wrong label. The flipped example still *looks* like
the other members of its true class: in the embedding the network builds
(the input of its last Dense layer), its nearest neighbours are mostly of
the true class and mostly labelled so. The share of each label among the
`k` nearest neighbours is therefore a second opinion on every label that
the example's own label cannot sway (the example itself is left out).

Measured on Fashion-MNIST (docs/label_issues.md), the neighbours' shares
averaged with the target table rank wrong labels better than the table
alone under symmetric, asymmetric and instance-dependent noise, and let the
confident joint see the pairs of look-alike classes.

The search is exact: cosine similarity in blocks of rows, with `tf.math.top_k`,
so it runs where TensorFlow puts it (a GPU when there is one). It costs one
forward pass over the training set and `n^2 * d` multiply-adds, once, after
training (`scripts/benchmarks/benchmark_audit.py` measures it against a
training epoch; figures in docs/label_issues.md).

Example:

```python
features = embeddings(model, x_train)            # [n, d]
shares = neighbour_label_shares(features, y_train, num_classes=10, k=30)
shares[i]   # label shares among the 30 nearest neighbours of example i
```
"""

import keras
import numpy as np
import tensorflow as tf

from elr_tf import checks

# Neighbours read per example by default.
DEFAULT_NEIGHBOURS = 30
# Rows of the similarity matrix computed at once.
_BLOCK_ROWS = 1024


def embedding_model(network):
    """A model from `network`'s inputs to the input of its last layer (a Dense).

    Args:
        network: a built functional or Sequential Keras classifier whose last
            layer is the `Dense` that gives the logits (every preset of
            `build_backbone` is).

    Returns:
        A `keras.Model` giving the features `[batch, d]` the logits are made of.

    Raises:
        ValueError: if the last layer is not a Dense layer of a built graph.
    """
    layers = getattr(network, "layers", None)
    last = layers[-1] if layers else None
    if not isinstance(last, keras.layers.Dense) or not getattr(network, "inputs", None):
        kind = type(last).__name__ if last is not None else "no layers"
        raise ValueError(
            "The embedding is the input of the network's last Dense layer, so the "
            "network must be a built functional or Sequential model ending in one. "
            f"Received {getattr(network, 'name', network)!r}, whose last layer is {kind}; "
            "pass `embeddings=` computed by your own feature extractor instead."
        )
    return keras.Model(network.inputs, last.input)


def networks_of(model):
    """The classifier networks of an ELR model (ELR+ has two), or the model itself."""
    if hasattr(model, "network1") and hasattr(model, "network2"):
        return [model.network1, model.network2]
    if hasattr(model, "backbone"):
        return [model.backbone]
    return [model]


def embeddings(model, x, batch_size=512):
    """The embedding of every example of `x`, float32 `[n, d]`.

    For ELR+ the two networks' embeddings, each scaled to unit length, are
    placed side by side.

    Args:
        model: an `ELRModel`, `ELRPlusModel` or a Keras classifier (see
            `embedding_model`).
        x: the examples: an array, or a `tf.data.Dataset` yielding features
            or `(features, ...)` tuples in batches (e.g. an evaluation
            pipeline), in the order the shares should follow.
        batch_size: batch size when `x` is an array.

    Returns:
        float32 array `[n, d]`.
    """
    extractors = [embedding_model(network) for network in networks_of(model)]
    if isinstance(x, tf.data.Dataset):
        dataset = x.map(lambda *batch: batch[0][0] if isinstance(batch[0], tuple) else batch[0])
    else:
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(x)).batch(batch_size)
    parts = []
    for extractor in extractors:
        features = extractor.predict(dataset, verbose=0).astype(np.float32)
        parts.append(features.reshape(len(features), -1))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([_unit_rows(part) for part in parts], axis=1)


def neighbour_label_shares(features, labels, num_classes, k=DEFAULT_NEIGHBOURS):
    """The share of each label among every example's `k` nearest neighbours.

    Neighbours are by cosine similarity of `features`; an example is never
    its own neighbour, and ties go to the lower position.

    Args:
        features: float `[n, d]` embeddings.
        labels: int `[n]` the labels the neighbours vote with (the given,
            possibly noisy, labels).
        num_classes: number of classes `C`.
        k: neighbours per example, in `[1, n)`.

    Returns:
        float64 `[n, C]`; each row sums to 1.

    Example:

    >>> features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighbour_label_shares(features, [0, 0, 1, 0], 2, k=1)
    array([[1., 0.],
           [1., 0.],
           [1., 0.],
           [0., 1.]])
    """
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or not np.isfinite(features).all():
        raise ValueError(
            f"`features` must be a finite float [n, d] array. Received shape={features.shape}"
        )
    n = len(features)
    num_classes = checks.positive_int("num_classes", num_classes)
    labels = checks.labels_in_range("labels", checks.int_vector("labels", labels, n), num_classes)
    k = checks.positive_int("k", k)
    if k >= n:
        raise ValueError(
            f"`k` must be below the number of examples ({n}), since an example is not "
            f"its own neighbour. Received: k={k}"
        )
    unit = tf.constant(_unit_rows(features))
    label_of = tf.constant(labels)
    shares = np.zeros((n, num_classes))
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        similarity = tf.matmul(unit[start:stop], unit, transpose_b=True)
        own = tf.stack([tf.range(stop - start), tf.range(start, stop)], axis=1)
        similarity = tf.tensor_scatter_nd_update(similarity, own, tf.fill([stop - start], -np.inf))
        nearest = tf.math.top_k(similarity, k=k).indices
        votes = tf.one_hot(tf.gather(label_of, nearest), num_classes, dtype=tf.float64)
        shares[start:stop] = tf.reduce_mean(votes, axis=1).numpy()
    return shares


def _unit_rows(features):
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)
