"""Mixup maths on hand values and the `Mixup` callback."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf
from elr_tf.callbacks import mixup
from elr_tf.callbacks.weight_averaging import WeightAveraging
from elr_tf.models import ELRPlusModel

N, D, C = 24, 4, 3


def test_mix_hand_values_for_inputs_labels_and_targets():
    x = tf.constant([[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]])
    onehot = tf.one_hot([0, 1, 2], 3)
    rows = tf.constant([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.1, 0.1, 0.1]])
    order = tf.constant([2, 0, 1])
    np.testing.assert_allclose(
        mixup.mix(x, order, 0.75).numpy(), [[2.0, 4.0], [3.0, 5.0], [7.0, 9.0]]
    )
    np.testing.assert_allclose(
        mixup.mix(onehot, order, 0.75).numpy(),
        [[0.75, 0.0, 0.25], [0.25, 0.75, 0.0], [0.0, 0.25, 0.75]],
    )
    np.testing.assert_allclose(
        mixup.mix(rows, order, 0.75).numpy(),
        [[0.25, 0.025, 0.025], [0.075, 0.225, 0.0], [0.075, 0.15, 0.075]],
        rtol=1e-6,
    )


def test_mix_nested_inputs_in_graph_and_identity_at_one():
    values = {"a": tf.constant([[1.0], [3.0]]), "b": tf.constant([[10.0], [20.0]])}
    mixed = tf.function(lambda v: mixup.mix(v, tf.constant([1, 0]), 0.5))(values)
    np.testing.assert_allclose(mixed["a"].numpy(), [[2.0], [2.0]])
    np.testing.assert_allclose(mixed["b"].numpy(), [[15.0], [15.0]])
    x = tf.constant([[1.5, -2.0], [3.0, 0.25]])
    np.testing.assert_array_equal(mixup.mix(x, tf.constant([1, 0]), 1.0).numpy(), x.numpy())


def test_mix_rejects_integer_inputs():
    with pytest.raises(ValueError, match="dtype int32"):
        mixup.mix(tf.constant([[1], [2]]), tf.constant([1, 0]), 0.5)


def test_permutation_is_a_seeded_permutation():
    seed = tf.constant([3, 17], tf.int64)
    first = mixup.permutation(10, seed).numpy()
    np.testing.assert_array_equal(np.sort(first), np.arange(10))
    np.testing.assert_array_equal(mixup.permutation(10, seed).numpy(), first)
    graph = tf.function(lambda n, s: mixup.permutation(n, s))(tf.constant(10), seed)
    np.testing.assert_array_equal(graph.numpy(), first)
    other_stream = mixup.permutation(10, seed, stream=1).numpy()
    other_step = mixup.permutation(10, tf.constant([3, 18], tf.int64)).numpy()
    assert not np.array_equal(first, other_stream) and not np.array_equal(first, other_step)


def test_draw_lambdas_takes_the_larger_of_l_and_one_minus_l():
    raw = np.random.default_rng([4, 12]).beta(1.0, 1.0, size=2)
    drawn = mixup.draw_lambdas(1.0, seed=4, step=12)
    np.testing.assert_allclose(drawn, np.maximum(raw, 1 - raw), rtol=1e-6)
    many = np.concatenate([mixup.draw_lambdas(1.5, 0, step) for step in range(200)])
    assert many.min() >= 0.5 and many.max() <= 1.0
    assert np.any(raw < 0.5) or np.any(many < 0.75)  # the rule actually folds draws
    np.testing.assert_array_equal(mixup.draw_lambdas(1.0, 4, 12), drawn)
    assert not np.array_equal(mixup.draw_lambdas(1.0, 4, 13), drawn)


class _Recorder(keras.callbacks.Callback):
    """Records the model's mixup variables as each batch starts."""

    def __init__(self):
        super().__init__()
        self.lambdas, self.seeds = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.lambdas.append(self.model.mixup_lambda.numpy().copy())
        self.seeds.append(self.model.mixup_seed.numpy().copy())


def _dense():
    return keras.Sequential([keras.Input((D,)), keras.layers.Dense(C)])


def test_callback_draws_from_seed_and_step_and_resets(seed):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(N, D)).astype("float32"), rng.integers(0, C, N)
    model = ELRPlusModel(_dense(), _dense(), num_examples=N, num_classes=C)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    recorder = _Recorder()
    model.fit(
        elr_tf.with_index(x, y, batch_size=8, shuffles=2),
        epochs=2,
        verbose=0,
        callbacks=[mixup.Mixup(alpha=0.5, seed=9), recorder, WeightAveraging(0.9)],
    )
    assert len(recorder.lambdas) == 6
    for step, (lambdas, seeds) in enumerate(zip(recorder.lambdas, recorder.seeds)):
        np.testing.assert_allclose(lambdas, mixup.draw_lambdas(0.5, 9, step))
        np.testing.assert_array_equal(seeds, [9, step])
    np.testing.assert_array_equal(model.mixup_lambda.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("alpha", [0, 0.0, -1.0, "1", True, float("inf")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        mixup.Mixup(alpha)


@pytest.mark.parametrize("seed_value", [-1, 1.5, "0"])
def test_bad_seed(seed_value):
    with pytest.raises(ValueError, match="seed"):
        mixup.Mixup(1.0, seed=seed_value)


def test_callback_needs_an_elr_plus_model():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(N, D)).astype("float32"), rng.integers(0, C, N)
    model = elr_tf.ELRModel(_dense(), num_examples=N, num_classes=C)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="ELRModel"):
        model.fit((x, np.arange(N)), y, epochs=1, verbose=0, callbacks=[mixup.Mixup(1.0)])
