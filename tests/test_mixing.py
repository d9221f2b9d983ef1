"""Mixup's mixing maths on hand-computed values (ELR-SPEC §3, step 2)."""

import numpy as np
import pytest
import tensorflow as tf

from elr_tf import mixing


def test_mix_hand_values_for_inputs_labels_and_targets():
    x = tf.constant([[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]])
    onehot = tf.one_hot([0, 1, 2], 3)
    rows = tf.constant([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.1, 0.1, 0.1]])
    order = tf.constant([2, 0, 1])
    np.testing.assert_allclose(
        mixing.mix(x, order, 0.75).numpy(), [[2.0, 4.0], [3.0, 5.0], [7.0, 9.0]]
    )
    np.testing.assert_allclose(
        mixing.mix(onehot, order, 0.75).numpy(),
        [[0.75, 0.0, 0.25], [0.25, 0.75, 0.0], [0.0, 0.25, 0.75]],
    )
    np.testing.assert_allclose(
        mixing.mix(rows, order, 0.75).numpy(),
        [[0.25, 0.025, 0.025], [0.075, 0.225, 0.0], [0.075, 0.15, 0.075]],
        rtol=1e-6,
    )


def test_mix_nested_inputs_in_graph_and_identity_at_one():
    values = {"a": tf.constant([[1.0], [3.0]]), "b": tf.constant([[10.0], [20.0]])}
    mixed = tf.function(lambda v: mixing.mix(v, tf.constant([1, 0]), 0.5))(values)
    np.testing.assert_allclose(mixed["a"].numpy(), [[2.0], [2.0]])
    np.testing.assert_allclose(mixed["b"].numpy(), [[15.0], [15.0]])
    x = tf.constant([[1.5, -2.0], [3.0, 0.25]])
    np.testing.assert_array_equal(mixing.mix(x, tf.constant([1, 0]), 1.0).numpy(), x.numpy())


def test_mix_rejects_integer_inputs():
    with pytest.raises(ValueError, match="dtype int32"):
        mixing.mix(tf.constant([[1], [2]]), tf.constant([1, 0]), 0.5)


def test_permutation_is_a_seeded_permutation():
    seed = tf.constant([3, 17], tf.int64)
    first = mixing.permutation(10, seed).numpy()
    np.testing.assert_array_equal(np.sort(first), np.arange(10))
    np.testing.assert_array_equal(mixing.permutation(10, seed).numpy(), first)
    graph = tf.function(lambda n, s: mixing.permutation(n, s))(tf.constant(10), seed)
    np.testing.assert_array_equal(graph.numpy(), first)
    other_stream = mixing.permutation(10, seed, stream=1).numpy()
    other_step = mixing.permutation(10, tf.constant([3, 18], tf.int64)).numpy()
    assert not np.array_equal(first, other_stream) and not np.array_equal(first, other_step)


def test_draw_lambdas_takes_the_larger_of_l_and_one_minus_l():
    raw = np.random.default_rng([4, 12]).beta(1.0, 1.0, size=2)
    drawn = mixing.draw_lambdas(1.0, seed=4, step=12)
    np.testing.assert_allclose(drawn, np.maximum(raw, 1 - raw), rtol=1e-6)
    many = np.concatenate([mixing.draw_lambdas(1.5, 0, step) for step in range(200)])
    assert many.min() >= 0.5 and many.max() <= 1.0
    assert np.any(raw < 0.5) or np.any(many < 0.75)  # the rule actually folds draws
    np.testing.assert_array_equal(mixing.draw_lambdas(1.0, 4, 12), drawn)
    assert not np.array_equal(mixing.draw_lambdas(1.0, 4, 13), drawn)
