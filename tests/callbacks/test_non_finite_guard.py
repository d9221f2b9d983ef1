"""Tests for NonFiniteGuard and the models' own non-finite and softmax checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf

N, C = 32, 3


def _data(nan_rows=()):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype("float32")
    x[list(nan_rows)] = np.nan
    return x, rng.integers(0, C, N)


def _model(jit_compile=False, activation=None):
    # tanh, not relu: in a graph TensorFlow's oneDNN CPU kernels fuse
    # MatMul + BiasAdd + Relu, and the fused relu turns NaN into 0, so NaN
    # inputs would give finite logits (and NaN gradients).
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(C)]
    )
    if activation is not None:
        backbone.add(keras.layers.Activation(activation))
    model = elr_tf.ELRModel(backbone, num_examples=N, num_classes=C)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    return model


def test_nan_inputs_are_refused_at_the_table_update_naming_the_step():
    x, y = _data(nan_rows=[20])
    model = _model()
    ds = elr_tf.with_index(x, y, batch_size=8, shuffle=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Non-finite logits.*step\] \[3\]"):
        model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(model.target_table.numpy()).all()  # Step 3 wrote nothing.


def test_guard_catches_what_xla_lets_through_before_later_callbacks_run(tmp_path):
    # XLA drops the in-step checks: NaN inputs reach weights and table.
    x, y = _data(nan_rows=[5])
    model = _model(jit_compile=True)
    csv_path = tmp_path / "log.csv"
    with pytest.raises(FloatingPointError, match="epoch 1"):
        model.fit(
            elr_tf.with_index(x, y, batch_size=8, shuffle=False),
            epochs=2,
            verbose=0,
            callbacks=[elr_tf.NonFiniteGuard(), keras.callbacks.CSVLogger(str(csv_path))],
        )
    assert not csv_path.exists() or len(csv_path.read_text().splitlines()) <= 1


def test_guard_names_non_finite_weights_while_the_loss_stays_finite():
    model = _model()
    x, y = _data()

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:  # After the epoch's last step: the loss was fine.
                table = self.model.target_layers[0].table
                table.assign(table * np.nan)

    with pytest.raises(FloatingPointError, match=r"after epoch 1 in 1 weights.*targets"):
        model.fit(
            elr_tf.with_index(x, y, batch_size=8, shuffle=False),
            epochs=1,
            verbose=0,
            callbacks=[Poison(), elr_tf.NonFiniteGuard(advice="Look at the inputs.")],
        )


def test_guard_is_silent_on_a_healthy_run():
    x, y = _data()
    model = _model()
    history = model.fit(
        elr_tf.with_index(x, y, batch_size=8),
        epochs=2,
        verbose=0,
        callbacks=[elr_tf.NonFiniteGuard()],
    )
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("activation", ["softmax", keras.layers.Softmax])
def test_backbone_ending_in_softmax_is_refused_at_construction(activation):
    if isinstance(activation, type):
        layers = [keras.layers.Dense(C), activation()]
    else:
        layers = [keras.layers.Dense(C, activation=activation)]
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), *layers])
    with pytest.raises(ValueError, match="must output logits.*softmax"):
        elr_tf.ELRModel(backbone, num_examples=N, num_classes=C)
    with pytest.raises(ValueError, match="`network1` must output logits"):
        elr_tf.ELRPlusModel(backbone, None, num_examples=N, num_classes=C)


def test_subclassed_backbone_ending_in_softmax_is_refused_at_the_first_step():
    class Probabilities(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(C)

        def call(self, x):
            return tf.nn.softmax(self.dense(x))

    model = elr_tf.ELRModel(Probabilities(), num_examples=N, num_classes=C)
    model.compile(optimizer="sgd")
    x, y = _data()
    with pytest.raises(tf.errors.InvalidArgumentError, match="already sum to 1.*remove the final"):
        model.fit(elr_tf.with_index(x, y, batch_size=8), epochs=1, verbose=0)


def test_one_hot_labels_get_a_clear_error_with_the_shape():
    x, y = _data()
    model = _model()
    one_hot = np.eye(C, dtype="int64")[y]
    with pytest.raises(
        ValueError, match=r"class indices.*not one-hot.*shape \[None, 3\]|shape \[8, 3\]"
    ):
        model.fit((x, np.arange(N)), one_hot, batch_size=8, epochs=1, verbose=0)
