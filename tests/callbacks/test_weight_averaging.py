"""The ELR+ averaging momentum and the `WeightAveraging` callback."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from elr_tf.callbacks import WeightAveraging, ema_decay
from elr_tf.models import ELRPlusModel

N, C = 16, 3


@pytest.mark.parametrize(
    "step, ema_step, expected",
    [
        # a = exp(-5 (1 - min(step + 1, L) / L)^2) * ema_alpha
        (1, 10, math.exp(-5 * 0.8**2) * 0.997),
        (4, 10, math.exp(-5 * 0.5**2) * 0.997),
        (9, 10, 0.997),
        (1000, 10, 0.997),
        (1, 40000, math.exp(-5 * (1 - 2 / 40000) ** 2) * 0.997),
        (3, 0, 0.997),
    ],
)
def test_ramped_momentum_hand_values(step, ema_step, expected):
    value = float(ema_decay(step, 0.997, ema_update=True, ema_step=ema_step))
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "step, ema_alpha, expected",
    [
        # a = min(1 - 1 / (step + 1), ema_alpha): the running mean at first.
        (1, 0.997, 0.5),
        (3, 0.997, 0.75),
        (99, 0.997, 0.99),
        (1000, 0.997, 0.997),
        (5, 0.0, 0.0),
    ],
)
def test_running_mean_momentum_hand_values(step, ema_alpha, expected):
    value = float(ema_decay(step, ema_alpha, ema_update=False, ema_step=-1))
    assert value == pytest.approx(expected, rel=1e-6)


def _model(with_batch_norm=False, **kwargs):
    def build():
        layers = [keras.layers.Dense(5)]
        if with_batch_norm:
            layers += [keras.layers.BatchNormalization(), keras.layers.Dense(4)]
            layers += [keras.layers.BatchNormalization()]
        return keras.Sequential([keras.Input((4,)), *layers, keras.layers.Dense(C)])

    kwargs.setdefault("data_order", "shared")
    kwargs.setdefault("teacher_span", None)
    model = ELRPlusModel(build(), build(), num_examples=N, num_classes=C, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def test_update_function_by_hand_skips_moving_statistics():
    model = _model(with_batch_norm=True)
    model.optimizer.iterations.assign(3)
    # Move the networks away from their copies, batch-norm statistics included.
    for network in model.networks:
        network.set_weights([w + 1.0 for w in network.get_weights()])
    before = [(average.numpy(), weight.numpy()) for average, weight in model.averaging_pairs()]
    moving = [v for v in model.ema_network1.weights if "moving" in v.path]
    moving_before = [v.numpy() for v in moving]
    assert len(moving) == 4
    callback = WeightAveraging(0.9, ema_update=False)
    update = callback.make_update_function(model)
    update()
    decay = 0.75  # min(1 - 1/(3 + 1), 0.9)
    for (average, _), (old, weight) in zip(model.averaging_pairs(), before):
        np.testing.assert_allclose(average.numpy(), decay * old + (1 - decay) * weight, rtol=1e-6)
    trainable = {id(w) for w in model.network1.trainable_weights}
    assert len(model.averaging_pairs()) == 2 * len(trainable)
    for variable, old in zip(moving, moving_before):
        np.testing.assert_array_equal(variable.numpy(), old)
    # One graph for all variables, traced once.
    update()
    assert update.experimental_get_tracing_count() == 1


def test_callback_applies_one_update_per_step(seed):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype("float32")
    y = rng.integers(0, C, N)
    model = _model()
    initial = [w.numpy() for w in model.ema_network2.weights]
    dataset = tf.data.Dataset.from_tensor_slices(((x, np.arange(N)), y)).batch(N)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[WeightAveraging(0.997, ema_step=10)])
    # After step 1: a = ramp(2) * 0.997; the copy started equal to the network.
    decay = math.exp(-5 * 0.8**2) * 0.997
    for average, start, weight in zip(model.ema_network2.weights, initial, model.network2.weights):
        np.testing.assert_allclose(
            average.numpy(), decay * start + (1 - decay) * weight.numpy(), rtol=1e-5, atol=1e-7
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ema_alpha=1.0), "ema_alpha=1.0"),
        (dict(ema_alpha=-0.1), "ema_alpha=-0.1"),
        (dict(ema_alpha="0.9"), "ema_alpha='0.9'"),
        (dict(ema_update=1), "ema_update=1"),
        (dict(ema_step=-1), "ema_step=-1"),
        (dict(ema_step=2.5), "ema_step=2.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightAveraging(**kwargs)


def test_negative_ema_step_allowed_without_ramp():
    # The reference's Clothing1M config carries ema_step=-1 with the ramp off.
    assert WeightAveraging(0.9999, ema_update=False, ema_step=-1).ema_step == -1


def test_callback_needs_an_elr_plus_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(C)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Sequential"):
        model.fit(np.zeros((4, 4)), np.zeros(4), epochs=1, verbose=0, callbacks=[WeightAveraging()])
