import numpy as np
import pytest
import tensorflow as tf

from elr_tf.inputs import check_index, split_index, with_index


def test_with_index_arrays_keeps_ids_with_their_examples():
    x = np.arange(10, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    y = np.arange(10) % 3
    seen = []
    for (xb, ids), yb in with_index(x, y, batch_size=4, seed=0):
        np.testing.assert_array_equal(xb.numpy()[:, 0], ids.numpy())
        np.testing.assert_array_equal(yb.numpy(), ids.numpy() % 3)
        assert ids.dtype == tf.int64
        seen.extend(ids.numpy())
    assert sorted(seen) == list(range(10))


def test_with_index_reshuffles_each_epoch_with_stable_ids():
    ds = with_index(np.arange(32.0)[:, None], np.zeros(32, "int64"), batch_size=32, seed=1)
    first = next(iter(ds))[0][1].numpy()
    second = next(iter(ds))[0][1].numpy()
    assert not np.array_equal(first, second)
    assert sorted(first) == sorted(second) == list(range(32))


def test_with_index_from_dataset_uses_element_position():
    base = tf.data.Dataset.from_tensor_slices((tf.range(6.0)[:, None] * 10, tf.range(6)))
    for (xb, ids), yb in with_index(base, batch_size=6, shuffle=False):
        np.testing.assert_array_equal(ids.numpy(), np.arange(6))
        np.testing.assert_array_equal(yb.numpy(), np.arange(6))
        np.testing.assert_array_equal(xb.numpy()[:, 0], np.arange(6) * 10)


def test_split_index_forms():
    x, ids = tf.zeros([2, 3]), tf.constant([4, 5])
    assert split_index((x, ids))[1] is ids
    assert split_index({"inputs": x, "index": ids})[1] is ids
    assert split_index(x, required=False) == (x, None)


def test_split_index_missing_index_names_the_forms():
    with pytest.raises(ValueError, match="sample id"):
        split_index(tf.zeros([2, 3]))


def test_split_index_dict_without_inputs_key():
    with pytest.raises(ValueError, match="'inputs'"):
        split_index({"index": tf.constant([1])})


def test_check_index_rejects_float_ids():
    with pytest.raises(ValueError, match="index.*float32"):
        check_index(tf.constant([1.0, 2.0]))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((3, 2)), np.zeros(2)), {}, "same length"),
        ((np.zeros((3, 2)),), {}, "`y` is required"),
        ((np.zeros((3, 2)), np.zeros(3)), {"batch_size": 0}, "batch_size"),
        (
            (tf.data.Dataset.from_tensor_slices((np.zeros(3), np.zeros(3))), np.zeros(3)),
            {},
            "`y` must be None",
        ),
        ((tf.data.Dataset.range(3),), {}, r"\(x, y\)"),
    ],
)
def test_with_index_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        with_index(*args, **kwargs)


def _examples():
    return tf.data.Dataset.from_tensor_slices((np.zeros((10, 3), "float32"), np.arange(10) % 2))


@pytest.mark.parametrize(
    "make",
    [
        lambda ds: ds.batch(4),
        lambda ds: ds.batch(5, drop_remainder=True),
        lambda ds: ds.map(lambda x, y: (x, tf.one_hot(y, 2))).batch(4),
    ],
)
def test_with_index_refuses_a_batched_dataset(make):
    with pytest.raises(ValueError, match=r"must be an unbatched dataset .* looks batched"):
        with_index(make(_examples()))


def test_with_index_refuses_a_dataset_reshuffled_every_epoch():
    with pytest.raises(ValueError, match=r"must not be shuffled: .*ShuffleDataset"):
        with_index(_examples().shuffle(10))
    with pytest.raises(ValueError, match="must not be shuffled"):
        with_index(_examples().map(lambda x, y: (x, y)).shuffle(10, seed=3))
    # A shuffle fixed once (the same order every epoch) keeps the ids stable.
    ds = with_index(_examples().shuffle(10, seed=1, reshuffle_each_iteration=False), shuffle=False)
    first = np.concatenate([y.numpy() for (_, _), y in ds])
    again = np.concatenate([y.numpy() for (_, _), y in ds])
    np.testing.assert_array_equal(first, again)


def test_with_index_refuses_a_repeated_dataset():
    with pytest.raises(ValueError, match="must be a finite dataset"):
        with_index(_examples().repeat())
