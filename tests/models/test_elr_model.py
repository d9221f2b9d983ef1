import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf
from elr_tf import losses

N, D, C = 48, 5, 3


def _data(n=N):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, D)).astype("float32"), rng.integers(0, C, n)


def _sequential():
    return keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(C)]
    )


def _functional():
    inputs = keras.Input((D,))
    return keras.Model(inputs, keras.layers.Dense(C)(keras.layers.Dense(8)(inputs)))


class SubclassedBackbone(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(C)

    def call(self, x):
        return self.out(self.hidden(x))


def _model(backbone=None, lr=0.05, **kwargs):
    kwargs.setdefault("beta", 0.7)
    kwargs.setdefault("lam", 3.0)
    model = elr_tf.ELRModel(backbone or _sequential(), num_examples=N, num_classes=C, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), metrics=["accuracy"])
    return model


def _ordered(x, y, batch=16):
    return tf.data.Dataset.from_tensor_slices(((x, np.arange(len(x))), y)).batch(batch)


def test_one_step_updates_table_before_loss_reads_it(seed):
    x, y = _data()
    model = _model(lr=0.0, beta=0.7, lam=3.0)
    logits = model.backbone(x[:N]).numpy()
    history = model.fit(_ordered(x, y, batch=N), epochs=1, verbose=0, shuffle=False)

    probs = np.clip(tf.nn.softmax(logits).numpy(), 1e-4, 1 - 1e-4)
    expected_rows = 0.3 * probs / probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.target_table.numpy(), expected_rows, rtol=1e-5, atol=1e-7)
    ce = np.mean(-np.log(tf.nn.softmax(logits).numpy()[np.arange(N), y]))
    reg = np.mean(np.log(1 - np.sum(expected_rows * probs, axis=1)))
    np.testing.assert_allclose(history.history["ce"][0], ce, rtol=1e-5)
    np.testing.assert_allclose(history.history["elr"][0], reg, rtol=1e-5)
    np.testing.assert_allclose(history.history["loss"][0], ce + 3.0 * reg, rtol=1e-5)


@pytest.mark.parametrize("backbone_fn", [_sequential, _functional, SubclassedBackbone])
def test_fit_on_indexed_dataset_reports_real_losses(seed, backbone_fn):
    x, y = _data()
    model = _model(backbone_fn())
    history = model.fit(
        elr_tf.with_index(x, y, batch_size=16, seed=0),
        epochs=2,
        validation_data=(x, y),
        verbose=0,
    ).history
    for key in ("loss", "ce", "elr", "accuracy", "val_loss", "val_accuracy"):
        assert key in history and all(math.isfinite(v) for v in history[key])
    assert history["ce"][0] > 0 and history["elr"][0] < 0
    np.testing.assert_allclose(
        history["loss"], np.array(history["ce"]) + 3.0 * np.array(history["elr"]), rtol=1e-4
    )
    assert "val_elr" not in history
    assert np.count_nonzero(model.target_table.numpy().sum(axis=1)) == N
    assert model.predict(x[:4], verbose=0).shape == (4, C)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_fit_on_numpy_arrays_with_keras_shuffling(seed, form):
    x, y = _data()
    index = np.arange(N)
    inputs = (x, index) if form == "tuple" else {"inputs": x, "index": index}
    model = _model()
    model.fit(inputs, y, batch_size=8, epochs=1, shuffle=True, verbose=0)
    table = model.target_table.numpy()
    # Each row was written once, from that example's own prediction: the
    # table's argmax agrees with the prediction of a model that barely moved
    # for most rows, and every row is filled.
    assert np.count_nonzero(table.sum(axis=1)) == N
    np.testing.assert_allclose(table.sum(axis=1), 0.3, rtol=1e-5)


def test_dict_form_and_tuple_form_give_the_same_table(seed):
    x, y = _data()
    tables = []
    for form in ("tuple", "dict"):
        keras.utils.set_random_seed(3)
        model = _model()
        ds = tf.data.Dataset.from_tensor_slices(((x, np.arange(N)), y)).batch(16)
        if form == "dict":
            ds = ds.map(lambda xi, yb: ({"inputs": xi[0], "index": xi[1]}, yb))
        model.fit(ds, epochs=2, verbose=0, shuffle=False)
        tables.append(model.target_table.numpy())
    np.testing.assert_allclose(tables[0], tables[1], atol=1e-7)


def test_jit_compile_on_and_off_agree():
    x, y = _data()
    tables = []
    for jit in (False, True):
        keras.utils.set_random_seed(5)
        model = elr_tf.ELRModel(_sequential(), num_examples=N, num_classes=C)
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit)
        model.fit(_ordered(x, y), epochs=2, verbose=0, shuffle=False)
        tables.append(model.target_table.numpy())
    np.testing.assert_allclose(tables[0], tables[1], atol=1e-5)


def test_mixed_precision_keeps_table_float32(seed):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        backbone = keras.Sequential(
            [keras.Input((D,)), keras.layers.Dense(8), keras.layers.Dense(C, dtype="float32")]
        )
        model = _model(backbone)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        history = model.fit(_ordered(*_data()), epochs=1, verbose=0, shuffle=False).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.target_layers[0].table.dtype == "float32"
    assert model.target_table.dtype == tf.float32
    assert math.isfinite(history["loss"][0])
    assert np.count_nonzero(model.target_table.numpy().sum(axis=1)) == N


def test_save_and_load_round_trip(tmp_path, seed):
    x, y = _data()
    model = _model(_functional(), beta=0.9, lam=2.0)
    model.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, elr_tf.ELRModel)
    assert (loaded.beta, loaded.lam, loaded.num_examples) == (0.9, 2.0, N)
    np.testing.assert_array_equal(loaded.target_table.numpy(), model.target_table.numpy())
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The compile state comes back too, so training simply continues.
    loaded.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False)


def test_get_config_round_trip():
    model = _model(beta=0.5, lam=1.5)
    clone = elr_tf.ELRModel.from_config(model.get_config())
    assert (clone.beta, clone.lam, clone.num_classes) == (0.5, 1.5, C)
    assert clone.target_layers[0].table.shape == (N, C)


@pytest.mark.parametrize("model_class", ["ELRModel", "ELRPlusModel"])
def test_config_missing_a_field_is_refused_naming_it(model_class):
    # Every constructor argument is saved; a config without one was not
    # written by this version and gets no default.
    if model_class == "ELRModel":
        model = _model()
    else:
        model = elr_tf.ELRPlusModel(_sequential(), None, num_examples=N, num_classes=C)
    config = model.get_config()
    del config["track_margins"], config["beta"]
    with pytest.raises(
        ValueError,
        match=rf"argument of {model_class}\. Received a config missing \['beta', 'track_margins'\]",
    ):
        type(model).from_config(config)


def test_tf_train_checkpoint_restores_table(tmp_path, seed):
    x, y = _data()
    model = _model()
    model.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False)
    saved = model.target_table.numpy()
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    model.target_layers[0].table.assign(np.zeros_like(saved))
    tf.train.Checkpoint(model=model).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(model.target_table.numpy(), saved)


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_backup_and_restore_resumes_with_table(tmp_path):
    x, y = _data()

    def run(callbacks):
        keras.utils.set_random_seed(11)
        model = _model()
        model.fit(_ordered(x, y), epochs=3, verbose=0, shuffle=False, callbacks=callbacks)
        return model

    uninterrupted = run([])
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        run([keras.callbacks.BackupAndRestore(backup), _StopAfter(1)])
    resumed = run([keras.callbacks.BackupAndRestore(backup)])
    np.testing.assert_allclose(
        resumed.target_table.numpy(), uninterrupted.target_table.numpy(), atol=1e-6
    )
    for a, b in zip(resumed.backbone.weights, uninterrupted.backbone.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


# --- bad input ---------------------------------------------------------------


def test_missing_index_error():
    x, y = _data()
    with pytest.raises(ValueError, match="sample id"):
        _model().fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [N, N + 5, -1])
def test_index_out_of_range_error(bad):
    x, y = _data()
    index = np.arange(N)
    index[3] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="index"):
        _model().fit((x, index), y, batch_size=N, epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [C, -1])
def test_labels_out_of_range_error(bad):
    x, y = _data()
    y = y.copy()
    y[0] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels"):
        _model().fit((x, np.arange(N)), y, batch_size=N, epochs=1, verbose=0)


def test_float_labels_error():
    x, _ = _data()
    with pytest.raises(ValueError, match="integer class labels"):
        _model().fit((x, np.arange(N)), np.zeros(N, "float32"), epochs=1, verbose=0)


def test_num_classes_mismatch_error():
    with pytest.raises(ValueError, match=r"num_classes=4.*width=3"):
        elr_tf.ELRModel(_sequential(), num_examples=N, num_classes=4)


def test_num_classes_mismatch_error_for_unbuilt_subclassed_backbone():
    model = elr_tf.ELRModel(SubclassedBackbone(), num_examples=N, num_classes=5)
    with pytest.raises(ValueError, match="num_classes=5"):
        model(np.zeros((2, D), "float32"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beta=1.0), "beta"),
        (dict(beta=-0.2), "beta"),
        (dict(beta="0.7"), "beta"),
        (dict(lam=-1.0), "lam"),
        (dict(num_examples=0), "num_examples"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    args = dict(num_examples=N, num_classes=C)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        elr_tf.ELRModel(_sequential(), **args)


def test_pure_loss_matches_model_step(seed):
    # The pure function and the model compute the same loss for one step.
    x, y = _data()
    model = _model(lr=0.0)
    logits = model.backbone(x)
    probs = losses.clipped_softmax(logits)
    targets = losses.ensemble_targets(tf.zeros([N, C]), losses.target_estimate(probs), 0.7)
    total, _, _ = losses.elr_loss(y, logits, targets, 3.0)
    history = model.fit(_ordered(x, y, batch=N), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["loss"][0], total.numpy(), rtol=1e-5)
