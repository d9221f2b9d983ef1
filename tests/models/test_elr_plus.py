"""ELRPlusModel (ELR-SPEC §3); its loss functions are tested in tests/test_losses.py."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf
from elr_tf import mixing
from elr_tf.callbacks import Mixup, WeightAveraging
from elr_tf.margin_tracker import label_margin
from elr_tf.models import ELRPlusModel

N, D, C = 32, 5, 3


def _data(n=N, num_classes=C):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, D)).astype("float32"), rng.integers(0, num_classes, n)


def _dense(num_classes=C, hidden=8):
    return keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(num_classes),
        ]
    )


def _model(lr=0.05, num_examples=N, num_classes=C, **kwargs):
    kwargs.setdefault("beta", 0.7)
    kwargs.setdefault("lam", 3.0)
    # The hand-computed steps below use one batch for both networks and the
    # latest averages as teachers; the reference's schedule is tested apart.
    kwargs.setdefault("data_order", "shared")
    kwargs.setdefault("teacher_span", None)
    model = ELRPlusModel(
        _dense(num_classes),
        _dense(num_classes),
        num_examples=num_examples,
        num_classes=num_classes,
        **kwargs,
    )
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), metrics=["accuracy"])
    return model


def _ordered(x, y, batch=16):
    return tf.data.Dataset.from_tensor_slices(((x, np.arange(len(x))), y)).batch(batch)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --- one step by hand ---------------------------------------------------------


def _expected_step(model, x, y, lambdas, seed, beta, lam, ramp, reweight):
    """NumPy ELR+ step from the model's initial weights (networks == copies)."""
    logits_ema = [net(x).numpy() for net in model.networks]
    expected = {}
    for k in range(2):
        rows = (1 - beta) * _softmax(logits_ema[1 - k])
        order = mixing.permutation(len(x), seed, stream=k).numpy()
        lam_k = lambdas[k]
        x_mix = lam_k * x + (1 - lam_k) * x[order]
        onehot = np.eye(C)[y]
        y_mix = lam_k * onehot + (1 - lam_k) * onehot[order]
        q = lam_k * rows + (1 - lam_k) * rows[order]
        logits = model.networks[k](x_mix).numpy()
        p = np.clip(_softmax(logits), 1e-4, 1 - 1e-4)
        label = y_mix * q / np.sum(y_mix * q, axis=1, keepdims=True) if reweight else y_mix
        ce = np.mean(-np.sum(label * np.log(_softmax(logits)), axis=1))
        reg = np.mean(np.log(1 - np.sum(q * p, axis=1)))
        expected[f"rows{k + 1}"] = rows
        expected[f"ce{k + 1}"], expected[f"elr{k + 1}"] = ce, reg
    expected["loss"] = sum(expected[f"ce{k}"] + ramp * lam * expected[f"elr{k}"] for k in (1, 2))
    return expected


@pytest.mark.parametrize("reweight", [False, True])
def test_one_step_by_hand(seed, reweight):
    # lr=0: the weights stay put, so the numbers are those of the initial
    # networks. The mixup draw is set by hand (no Mixup callback), the
    # ramp is at step 1 of coef_step=4.
    x, y = _data()
    model = _model(lr=0.0, beta=0.7, lam=3.0, coef_step=4, label_reweighting=reweight)
    lambdas, mix_seed = [0.7, 0.6], [5, 9]
    model.mixup_lambda.assign(lambdas)
    model.mixup_seed.assign(mix_seed)
    expected = _expected_step(
        model, x, y, lambdas, mix_seed, 0.7, 3.0, math.exp(-5 * 0.75**2), reweight
    )
    history = model.fit(
        _ordered(x, y, batch=N),
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[WeightAveraging(0.997)],
    ).history
    tables = [t.numpy() for t in model.target_tables]
    np.testing.assert_allclose(tables[0], expected["rows1"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tables[1], expected["rows2"], rtol=1e-5, atol=1e-7)
    for key in ("ce1", "ce2", "elr1", "elr2", "loss"):
        np.testing.assert_allclose(history[key][0], expected[key], rtol=1e-5, err_msg=key)


def test_co_targets_come_from_the_other_networks_average(seed):
    # Network 2's averaged copy outputs the constant logits b, so table 1
    # must hold (1 - beta) * softmax(b) for every example; table 2 is fed
    # by network 1's copy (still equal to network 1 before the update).
    x, y = _data()
    model = _model(lr=0.1, beta=0.6)
    bias = np.array([2.0, -1.0, 0.5], "float32")
    kernel, _, out_kernel, _ = model.ema_network2.get_weights()
    model.ema_network2.set_weights(
        [np.zeros_like(kernel), np.zeros(8, "float32"), np.zeros_like(out_kernel), bias]
    )
    expected_table2 = 0.4 * _softmax(model.network1(x).numpy())
    # With one batch for both networks each id gets two margins a step, one
    # from each teacher's logits: network 1's copy (still network 1) and
    # network 2's constant bias [2, -1, 0.5], whose margin is 2 - 0.5 = 1.5
    # for label 0, -1 - 2 = -3 for label 1 and 0.5 - 2 = -1.5 for label 2.
    bias_margins = np.array([1.5, -3.0, -1.5])[y]
    expected_margins = (label_margin(model.network1(x), y).numpy() + bias_margins) / 2
    model.fit(
        _ordered(x, y, batch=N),
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[Mixup(1.0), WeightAveraging(0.997)],
    )
    table1, table2 = (t.numpy() for t in model.target_tables)
    np.testing.assert_allclose(table1, np.tile(0.4 * _softmax(bias[None]), (N, 1)), rtol=1e-5)
    np.testing.assert_allclose(table2, expected_table2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        model.target_table.numpy(), (table1 + table2) / 2, rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(model.average_margins.numpy(), expected_margins, rtol=1e-5)
    np.testing.assert_array_equal(model.margin_tracker.counts().numpy(), np.full(N, 2.0))


# --- fit, input forms, evaluation ---------------------------------------------


def test_fit_reports_real_losses_and_predicts_the_network_average(seed):
    x, y = _data()
    model = _model()
    history = model.fit(
        elr_tf.with_index(x, y, batch_size=8, seed=0),
        epochs=2,
        validation_data=(x, y),
        verbose=0,
        callbacks=[Mixup(1.0, seed=3), WeightAveraging(0.9, ema_step=4)],
    ).history
    for key in ("loss", "ce1", "ce2", "elr1", "elr2", "accuracy", "val_loss", "val_accuracy"):
        assert key in history and all(math.isfinite(v) for v in history[key]), key
    assert history["elr1"][0] < 0 and history["ce2"][0] > 0
    assert "val_ce1" not in history
    for table in model.target_tables:
        assert np.count_nonzero(table.numpy().sum(axis=1)) == N
    expected = (model.network1(x).numpy() + model.network2(x).numpy()) / 2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}


def test_dict_form_and_tuple_form_give_the_same_tables():
    x, y = _data()
    tables = []
    for form in ("tuple", "dict"):
        keras.utils.set_random_seed(3)
        model = _model()
        ds = _ordered(x, y)
        if form == "dict":
            ds = ds.map(lambda xi, yb: ({"inputs": xi[0], "index": xi[1]}, yb))
        model.fit(
            ds, epochs=1, verbose=0, shuffle=False, callbacks=[Mixup(1.0), WeightAveraging(0.9)]
        )
        tables.append([t.numpy() for t in model.target_tables])
    np.testing.assert_allclose(tables[0], tables[1], atol=1e-7)


def test_batch_norm_copies_use_batch_statistics(seed):
    # The averaged copies run in training mode, as the reference's: batch
    # norm normalises with the un-mixed batch's statistics and the copies'
    # moving statistics follow their own forward passes.
    x, y = _data()

    def build():
        return keras.Sequential(
            [
                keras.Input((D,)),
                keras.layers.Dense(6, kernel_regularizer=keras.regularizers.L2(1e-3)),
                keras.layers.BatchNormalization(momentum=0.9),
                keras.layers.Dense(C),
            ]
        )

    model = ELRPlusModel(
        build(), build(), num_examples=N, num_classes=C, data_order="shared", teacher_span=None
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    moving = [v for v in model.ema_network1.weights if "moving_mean" in v.path]
    # network1 == its copy here; in inference mode (moving statistics 0 and
    # 1) the rows would differ.
    expected_rows = 0.3 * _softmax(model.network1(x, training=True).numpy())
    model.fit(_ordered(x, y, batch=N), epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])
    np.testing.assert_allclose(model.target_tables[1].numpy(), expected_rows, rtol=1e-5)
    assert not np.allclose(moving[0].numpy(), 0.0)
    # Only the networks' kernels carry weight decay, not the copies'.
    assert len(model.losses) == 2


def test_fit_without_weight_averaging_warns():
    x, y = _data()
    with pytest.warns(UserWarning, match="WeightAveraging"):
        with pytest.raises(ValueError, match="sample id"):
            _model().fit(x, y, epochs=1, verbose=0)


def test_the_weight_averaging_mark_lasts_one_fit():
    x, y = _data()
    model = _model()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*WeightAveraging")
        model.fit(
            _ordered(x, y), epochs=1, verbose=0, shuffle=False, callbacks=[WeightAveraging(0.9)]
        )
    assert not model.weight_averaging_attached
    with pytest.warns(UserWarning, match="without a WeightAveraging callback"):
        model.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False)


# --- distribution -------------------------------------------------------------


def _train(strategy, epochs=2, callbacks=(), num_examples=N, batch=16):
    x, y = _data(num_examples)
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = _model(lr=0.1, num_examples=num_examples, coef_step=3)
    order = np.random.default_rng(1).permutation(num_examples)
    dataset = tf.data.Dataset.from_tensor_slices(
        ((x[order], order.astype("int64")), y[order])
    ).batch(batch)
    callbacks = [WeightAveraging(0.9, ema_step=5), *callbacks]
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    return model, history.history


def test_two_replicas_match_single_device_without_mixup(mirrored):
    # Mixup off (l = 1): each replica then computes exactly its share of the
    # single-device step. With mixup on, partners are drawn within each
    # replica's half of the batch, a different (equally valid) draw.
    model_a, hist_a = _train(tf.distribute.get_strategy())
    model_b, hist_b = _train(mirrored(2))
    for table_a, table_b in zip(model_a.target_tables, model_b.target_tables):
        assert np.count_nonzero(table_a.numpy().sum(axis=1)) == N
        np.testing.assert_allclose(table_b.numpy(), table_a.numpy(), atol=1e-6)
    for net_a, net_b in zip(
        model_a.networks + model_a.ema_networks, model_b.networks + model_b.ema_networks
    ):
        for w_a, w_b in zip(net_a.weights, net_b.weights):
            np.testing.assert_allclose(w_b.numpy(), w_a.numpy(), atol=1e-5)
    for key in ("loss", "ce1", "ce2", "elr1", "elr2"):
        np.testing.assert_allclose(hist_b[key], hist_a[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        model_b.average_margins.numpy(), model_a.average_margins.numpy(), atol=1e-5
    )
    for mean_a, mean_b in zip(model_a.mean_target_tables, model_b.mean_target_tables):
        assert np.count_nonzero(mean_a.numpy().sum(axis=1)) == N
        np.testing.assert_allclose(mean_b.numpy(), mean_a.numpy(), atol=1e-6)


def test_two_replicas_with_mixup_keep_copies_identical(mirrored):
    # 30 examples in batches of 16: the last batch splits 7/7 and the
    # averages and tables must stay identical on both devices.
    model, history = _train(mirrored(2), epochs=1, callbacks=[Mixup(1.0)], num_examples=30)
    for table in model.target_layers:
        copies = [v.numpy() for v in table.table.value.values]
        np.testing.assert_array_equal(copies[0], copies[1])
        assert np.count_nonzero(copies[0].sum(axis=1)) == 30
    for average, _ in model.averaging_pairs():
        copies = [v.numpy() for v in average.value.values]
        np.testing.assert_array_equal(copies[0], copies[1])
    assert all(math.isfinite(v) for v in history["loss"])


# --- saving and resuming ------------------------------------------------------


def test_save_and_load_round_trip(tmp_path, seed):
    x, y = _data()
    model = _model(beta=0.9, lam=2.0, coef_step=10, label_reweighting=True)
    callbacks = [Mixup(1.0), WeightAveraging(0.9)]
    model.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, ELRPlusModel)
    assert (loaded.beta, loaded.lam, loaded.coef_step, loaded.label_reweighting) == (
        0.9,
        2.0,
        10,
        True,
    )
    for a, b in zip(loaded.target_tables, model.target_tables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # The copies are not simply re-copied from the networks on load.
    assert not np.allclose(
        loaded.ema_network1.weights[0].numpy(), loaded.network1.weights[0].numpy()
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(_ordered(x, y), epochs=1, verbose=0, shuffle=False, callbacks=callbacks)


def test_get_config_round_trip():
    model = _model(beta=0.5, lam=1.5, coef_step=7)
    clone = ELRPlusModel.from_config(model.get_config())
    assert (clone.beta, clone.lam, clone.coef_step, clone.num_classes) == (0.5, 1.5, 7, C)
    assert clone.label_reweighting is None and not clone.use_label_reweighting
    assert clone.target_layers[1].table.shape == (N, C)
    assert len(clone.averaging_pairs()) == len(model.averaging_pairs()) == 8


def test_table_storage_options_apply_to_both_tables(seed):
    model = _model(table_dtype="bfloat16", table_placement="host")
    for layer in model.target_layers:
        assert layer.table.dtype == "bfloat16"
        assert "CPU" in layer.table.value.device.upper()
    x, y = _data()
    model.fit(
        elr_tf.with_index(x, y, batch_size=16),
        epochs=1,
        verbose=0,
        callbacks=[elr_tf.WeightAveraging(0.9)],
    )
    assert all(table.dtype == tf.float32 for table in model.target_tables)
    assert all(float(tf.reduce_sum(table)) > 0 for table in model.target_tables)
    clone = ELRPlusModel.from_config(model.get_config())
    assert [layer.storage_dtype for layer in clone.target_layers] == ["bfloat16"] * 2
    assert [layer.placement for layer in clone.target_layers] == ["host"] * 2


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_backup_and_restore_resumes_exactly(tmp_path):
    x, y = _data()

    def run(extra):
        keras.utils.set_random_seed(11)
        model = _model()
        callbacks = [*extra, Mixup(1.0, seed=5), WeightAveraging(0.9, ema_step=6)]
        model.fit(_ordered(x, y), epochs=3, verbose=0, shuffle=False, callbacks=callbacks)
        return model

    uninterrupted = run([])
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        run([keras.callbacks.BackupAndRestore(backup), _StopAfter(1)])
    resumed = run([keras.callbacks.BackupAndRestore(backup)])
    for a, b in zip(resumed.target_tables, uninterrupted.target_tables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    for a, b in zip(resumed.weights, uninterrupted.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beta=1.0), "beta"),
        (dict(beta=-0.1), "beta"),
        (dict(lam=-1.0), "lam"),
        (dict(coef_step=-1), "coef_step=-1"),
        (dict(coef_step=2.5), "coef_step=2.5"),
        (dict(label_reweighting="yes"), "label_reweighting='yes'"),
        (dict(num_classes=4), "num_classes=4"),
        (dict(num_examples=0), "num_examples"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    args = dict(num_examples=N, num_classes=C)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ELRPlusModel(_dense(), _dense(), **args)


def test_mismatched_networks_error():
    with pytest.raises(ValueError, match=r"`network2` must have the same architecture"):
        ELRPlusModel(_dense(), _dense(hidden=6), num_examples=N, num_classes=C)
    with pytest.raises(ValueError, match=r"`ema_network1` must have the same architecture"):
        ELRPlusModel(
            _dense(), _dense(), num_examples=N, num_classes=C, ema_network1=_dense(hidden=4)
        )


def test_same_or_unbuilt_network_error():
    net = _dense()
    with pytest.raises(ValueError, match="different model object"):
        ELRPlusModel(net, net, num_examples=N, num_classes=C)
    ema = _dense()
    with pytest.raises(ValueError, match="`ema_network2` must be a separate copy"):
        ELRPlusModel(
            _dense(), _dense(), num_examples=N, num_classes=C, ema_network1=ema, ema_network2=ema
        )
    unbuilt = keras.Sequential([keras.layers.Dense(C)])
    with pytest.raises(ValueError, match="`network2` must be a built model"):
        ELRPlusModel(_dense(), unbuilt, num_examples=N, num_classes=C)


def test_network2_none_clones_with_fresh_weights():
    model = ELRPlusModel(_dense(), None, num_examples=N, num_classes=C)
    assert not np.allclose(model.network1.weights[0].numpy(), model.network2.weights[0].numpy())
    np.testing.assert_array_equal(
        model.ema_network2.weights[0].numpy(), model.network2.weights[0].numpy()
    )


def test_label_reweighting_defaults_to_hundred_classes():
    model = ELRPlusModel(_dense(100), _dense(100), num_examples=N, num_classes=100)
    assert model.use_label_reweighting
    model = ELRPlusModel(
        _dense(100), _dense(100), num_examples=N, num_classes=100, label_reweighting=False
    )
    assert not model.use_label_reweighting
