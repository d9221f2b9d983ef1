"""The `Mixup` callback: draws from seed and step, written into the model."""

import keras
import numpy as np
import pytest

import elr_tf
from elr_tf import mixing
from elr_tf.callbacks import Mixup, WeightAveraging
from elr_tf.models import ELRPlusModel

N, D, C = 24, 4, 3


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
        callbacks=[Mixup(alpha=0.5, seed=9), recorder, WeightAveraging(0.9)],
    )
    assert len(recorder.lambdas) == 6
    for step, (lambdas, seeds) in enumerate(zip(recorder.lambdas, recorder.seeds)):
        np.testing.assert_allclose(lambdas, mixing.draw_lambdas(0.5, 9, step))
        np.testing.assert_array_equal(seeds, [9, step])
    np.testing.assert_array_equal(model.mixup_lambda.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("alpha", [0, 0.0, -1.0, "1", True, float("inf")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        Mixup(alpha)


@pytest.mark.parametrize("seed_value", [-1, 1.5, "0"])
def test_bad_seed(seed_value):
    with pytest.raises(ValueError, match="seed"):
        Mixup(1.0, seed=seed_value)


def test_callback_needs_an_elr_plus_model():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(N, D)).astype("float32"), rng.integers(0, C, N)
    model = elr_tf.ELRModel(_dense(), num_examples=N, num_classes=C)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="ELRModel"):
        model.fit((x, np.arange(N)), y, epochs=1, verbose=0, callbacks=[Mixup(1.0)])
