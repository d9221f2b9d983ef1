"""ELR+'s schedule: each network its own data order, teachers held fixed for a span.

The reference trainer gives each network its own loader (its own shuffle)
and makes network 1's whole pass before network 2's, so a network's
teacher (the partner's averaged copy) does not move during its pass.
`ELRPlusModel(data_order="separate", teacher_span="epoch")` reproduces both
inside one `fit`; these tests pin them and the options beside them.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf
from elr_tf import inputs
from elr_tf.callbacks import WeightAveraging
from elr_tf.experiment.config import TrainConfig, teacher_span_argument
from elr_tf.models import ELRPlusModel

N, D, C, B = 32, 5, 3, 8


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, D)).astype("float32"), rng.integers(0, C, N)


def _dense(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(C)]
    )


def _model(lr=0.1, **kwargs):
    model = ELRPlusModel(_dense(1), _dense(2), num_examples=N, num_classes=C, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    return model


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _rows(table):
    return set(np.flatnonzero(np.abs(table.numpy()).sum(axis=1) > 0))


def test_defaults_are_the_reference_schedule():
    model = _model()
    assert model.data_order == "separate" and model.teacher_span == "epoch"
    assert model.teacher_networks[0] is model.teacher_network1
    assert model.teacher_network1 is not model.ema_network1


def test_with_index_two_shuffles_gives_each_network_its_own_order():
    x, y = _data()
    ds = elr_tf.with_index(x, y, batch_size=B, seed=4, shuffles=2)
    assert set(ds.element_spec) == set(inputs.PAIRED_KEYS)
    ids = {key: [] for key in inputs.PAIRED_KEYS}
    for element in ds:
        for key in inputs.PAIRED_KEYS:
            (_, index), labels = element[key]
            ids[key].append(index.numpy())
            np.testing.assert_array_equal(labels.numpy(), y[index.numpy()])
    first, second = (np.concatenate(ids[key]) for key in inputs.PAIRED_KEYS)
    # Each network makes a full pass over all examples, in its own order.
    assert sorted(first) == sorted(second) == list(range(N))
    assert not np.array_equal(first, second)


def test_in_a_step_the_two_networks_train_on_different_batches():
    x, y = _data()
    model = _model(lr=0.0)
    ds = elr_tf.with_index(x, y, batch_size=B, seed=4, shuffles=2)
    element = next(iter(ds))
    ((x1, id1), _), ((x2, id2), _) = (element[key] for key in inputs.PAIRED_KEYS)
    # The teachers of the first span are the initial copies of the networks.
    expected1 = 0.3 * _softmax(model.network2(x1, training=True).numpy())
    expected2 = 0.3 * _softmax(model.network1(x2, training=True).numpy())
    # (Each iteration of `ds` reshuffles: train on exactly this element.)
    one = tf.data.Dataset.from_tensors(element)
    model.fit(one, epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])
    first, second = model.target_tables
    assert _rows(first) == set(id1.numpy()) and _rows(second) == set(id2.numpy())
    assert _rows(first) != _rows(second)
    np.testing.assert_allclose(first.numpy()[id1.numpy()], expected1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(second.numpy()[id2.numpy()], expected2, rtol=1e-5, atol=1e-7)
    # Margins are kept for both networks' batches.
    counts = np.isfinite(model.average_margins.numpy())
    assert set(np.flatnonzero(counts)) == set(id1.numpy()) | set(id2.numpy())


@pytest.mark.parametrize("span", [2, "epoch"])
def test_teachers_are_held_fixed_for_the_span(span):
    x, y = _data()
    model = _model(teacher_span=span)
    steps_per_epoch = N // B
    refresh = 2 if span == 2 else steps_per_epoch
    seen = []

    class Record(keras.callbacks.Callback):
        # After WeightAveraging in the callback list: sees this step's update.
        def on_train_batch_end(self, batch, logs=None):
            seen.append(
                (
                    int(self.model.optimizer.iterations.numpy()),
                    [w.numpy().copy() for w in self.model.teacher_network2.weights],
                    [w.numpy().copy() for w in self.model.ema_network2.weights],
                )
            )

    initial = [w.numpy().copy() for w in model.teacher_network2.weights]
    model.fit(
        elr_tf.with_index(x, y, batch_size=B, seed=1, shuffles=2),
        epochs=2,
        verbose=0,
        callbacks=[WeightAveraging(0.5, ema_update=False), Record()],
    )
    assert [step for step, _, _ in seen] == list(range(1, 2 * steps_per_epoch + 1))
    held = initial
    for step, teacher, ema in seen:
        if step % refresh == 0:
            held = ema  # Refreshed from this step's averages...
        for a, b in zip(teacher, held):
            np.testing.assert_array_equal(a, b)  # ...and held until the next refresh.
    # The averages themselves moved every step.
    assert not np.allclose(seen[0][2][0], seen[1][2][0])


def test_no_span_means_the_latest_averages_teach():
    model = _model(teacher_span=None)
    assert model.teacher_networks == model.ema_networks
    assert model.teacher_network1 is None and model.teacher_pairs() == []


def test_epoch_span_needs_a_known_epoch_length():
    x, y = _data()
    model = _model()
    ds = elr_tf.with_index(x, y, batch_size=B, shuffles=2).filter(lambda element: True)
    with pytest.raises(ValueError, match="teacher_span='epoch'.*steps_per_epoch"):
        model.fit(ds, epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])


def test_shared_order_keeps_one_batch_for_both_networks():
    x, y = _data()
    model = _model(lr=0.0, data_order="shared", teacher_span=None)
    ds = elr_tf.with_index(x, y, batch_size=B, seed=4)
    element = next(iter(ds))
    (_, index), _ = element
    one = tf.data.Dataset.from_tensors(element)
    model.fit(one, epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])
    first, second = model.target_tables
    assert _rows(first) == _rows(second) == set(index.numpy())


@pytest.mark.parametrize(
    ("order", "paired", "match"),
    [
        ("separate", False, "one batch per network.*shuffles=2.*data_order='shared'"),
        ("shared", True, r"data_order='shared'\) trains both networks on one batch"),
    ],
)
def test_data_that_does_not_fit_the_order_is_refused(order, paired, match):
    x, y = _data()
    model = _model(data_order=order)
    ds = elr_tf.with_index(x, y, batch_size=B, shuffles=2 if paired else 1)
    with pytest.raises(ValueError, match=match):
        model.fit(ds, epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data_order": "both"}, "`data_order` must be one of.*'both'"),
        ({"teacher_span": 0}, "`teacher_span` must be None.*teacher_span=0"),
        ({"teacher_span": "batch"}, "`teacher_span`.*'batch'"),
    ],
)
def test_bad_schedule_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_with_index_refuses_two_shuffles_without_shuffling():
    x, y = _data()
    with pytest.raises(ValueError, match="shuffles=2.*shuffle=False"):
        elr_tf.with_index(x, y, shuffle=False, shuffles=2)
    with pytest.raises(ValueError, match="`shuffles` must be 1 or 2. Received: shuffles=3"):
        elr_tf.with_index(x, y, shuffles=3)


def test_program_flags():
    assert teacher_span_argument("epoch") == "epoch"
    assert teacher_span_argument("step") is None
    assert teacher_span_argument("71") == 71
    with pytest.raises(ValueError, match="--teacher_span.*'0'"):
        TrainConfig(teacher_span="0").validate()
    with pytest.raises(ValueError, match="--data_order"):
        TrainConfig(data_order="both").validate()
    assert (TrainConfig().data_order, TrainConfig().teacher_span) == ("separate", "epoch")


def test_paired_training_under_mirrored_strategy(mirrored):
    x, y = _data()
    with mirrored(2).scope():
        model = _model(lr=0.0)
    ds = elr_tf.with_index(x, y, batch_size=B, seed=2, shuffles=2)
    model.fit(ds, epochs=1, verbose=0, callbacks=[WeightAveraging(0.9)])
    # Each network passed over every example once: all rows of both tables.
    first, second = model.target_tables
    assert _rows(first) == _rows(second) == set(range(N))
