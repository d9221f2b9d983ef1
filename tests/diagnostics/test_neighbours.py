import keras
import numpy as np
import pytest

import elr_tf
from elr_tf.diagnostics import find_label_issues, neighbours
from elr_tf.models.backbones import build_backbone


def test_neighbour_label_shares_by_hand():
    # Two tight groups on the unit circle; example 2 sits in the first group
    # but is labelled 1, example 5 in the second but labelled 0.
    angles = np.array([0.0, 0.1, 0.2, 1.5, 1.6, 1.7])
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1) * [[1], [3], [2], [1], [5], [1]]
    labels = np.array([0, 0, 1, 1, 1, 0])
    shares = neighbours.neighbour_label_shares(features, labels, 2, k=2)
    # Cosine ignores the lengths. Neighbours (itself excluded): 0 -> 1, 2;
    # 1 -> 0, 2; 2 -> 1, 0; 3 -> 4, 5; 4 -> 3, 5 (0.1 either way, the lower
    # position first); 5 -> 4, 3.
    np.testing.assert_allclose(
        shares, [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]]
    )
    # Example 2's neighbours say 0, against its label 1; example 5's say 1.
    with pytest.raises(ValueError, match="`k` must be below the number of examples \\(6\\)"):
        neighbours.neighbour_label_shares(features, labels, 2, k=6)
    with pytest.raises(ValueError, match="`labels` must be in \\[0, 2\\)"):
        neighbours.neighbour_label_shares(features, labels + 1, 2, k=2)
    with pytest.raises(ValueError, match="`features` must be a finite"):
        neighbours.neighbour_label_shares(features[:, :, None], labels, 2, k=2)


def test_blocks_give_the_same_shares_as_one_block(monkeypatch):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 4))
    labels = rng.integers(0, 3, 50)
    whole = neighbours.neighbour_label_shares(features, labels, 3, k=5)
    monkeypatch.setattr(neighbours, "_BLOCK_ROWS", 7)
    blocked = neighbours.neighbour_label_shares(features, labels, 3, k=5)
    np.testing.assert_array_equal(blocked, whole)
    # Brute force in NumPy.
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    expected = np.stack([np.bincount(labels[row], minlength=3) / 5 for row in nearest])
    np.testing.assert_allclose(whole, expected)


def test_embeddings_are_the_input_of_the_last_dense_layer(seed):
    backbone = build_backbone("tiny_cnn", input_shape=(8, 8, 1), num_classes=3)
    model = elr_tf.ELRModel(backbone, num_examples=20, num_classes=3)
    x = np.random.default_rng(0).normal(size=(20, 8, 8, 1)).astype("float32")
    features = neighbours.embeddings(model, x, batch_size=8)
    width = backbone.layers[-1].kernel.shape[0]
    assert features.shape == (20, width)
    # The Dense layer of these features gives the backbone's logits.
    last = backbone.layers[-1]
    np.testing.assert_allclose(
        features @ last.kernel.numpy() + last.bias.numpy(),
        backbone.predict(x, verbose=0),
        rtol=1e-4,
        atol=1e-5,
    )
    plus = elr_tf.ELRPlusModel(
        build_backbone("tiny_cnn", input_shape=(8, 8, 1), num_classes=3),
        build_backbone("tiny_cnn", input_shape=(8, 8, 1), num_classes=3),
        num_examples=20,
        num_classes=3,
    )
    both = neighbours.embeddings(plus, x)
    assert both.shape == (20, 2 * width)
    # Each network's half is scaled to unit length.
    np.testing.assert_allclose(np.linalg.norm(both[:, :width], axis=1), 1.0, rtol=1e-5)


def test_embeddings_under_mirrored_strategy_equal_one_device(mirrored, seed):
    x = np.random.default_rng(1).normal(size=(37, 8, 8, 1)).astype("float32")
    backbone = build_backbone("tiny_cnn", input_shape=(8, 8, 1), num_classes=3)
    single = neighbours.embeddings(backbone, x, batch_size=8)
    with mirrored(2).scope():
        copy = build_backbone("tiny_cnn", input_shape=(8, 8, 1), num_classes=3)
        copy.set_weights(backbone.get_weights())
    np.testing.assert_allclose(neighbours.embeddings(copy, x, batch_size=8), single, atol=1e-5)


def test_a_network_without_a_last_dense_layer_is_refused():
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Activation("softmax")(keras.layers.Dense(3)(inputs)))
    with pytest.raises(ValueError, match="last layer is Activation.*`embeddings=`"):
        neighbours.embedding_model(network)


def test_neighbours_see_a_flip_the_table_has_learnt():
    # Six examples of class 0 and six of class 1 in two clusters; examples 0
    # and 1 (cluster 0) are labelled 1, and the table has learnt the flip.
    features = np.repeat([[1.0, 0.0], [0.0, 1.0]], 6, axis=0)
    features += np.random.default_rng(0).normal(scale=0.01, size=features.shape)
    labels = np.repeat([0, 1], 6)
    labels[:2] = 1
    table = np.full((12, 2), 0.1)
    table[np.arange(12), labels] = 0.9
    # Alone, the table cannot tell the flips from the clean examples.
    alone = find_label_issues(table, labels, true_labels=np.repeat([0, 1], 6))
    assert alone.metrics()["auroc"] == pytest.approx(0.5)
    seen = find_label_issues(
        table, labels, true_labels=np.repeat([0, 1], 6), embeddings=features, neighbours=5
    )
    assert seen.neighbours == 5
    # Rows 0 and 1: table 0.9 for label 1, neighbours (4 of their 5 labelled
    # 0) 0.2: their mean, 0.55, is the lowest share of a given label; the
    # other rows of cluster 0 have 0.9 and (3 of 5) 0.6, those of cluster 1
    # 0.9 and 1.0.
    assert set(seen.ids[:2]) == {0, 1}
    assert seen.metrics()["auroc"] == 1.0
    np.testing.assert_allclose(seen.score[:2], 0.45)
    with pytest.raises(ValueError, match="`embeddings` must be a \\[n, d\\] array with one row"):
        find_label_issues(table, labels, embeddings=features[:5])
