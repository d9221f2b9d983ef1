"""ELRModel under MirroredStrategy must match a single-device run exactly.

Two logical CPU devices stand in for two GPUs (see conftest.py).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import elr_tf

NUM_EXAMPLES = 96
NUM_CLASSES = 4
BATCH = 16


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM_EXAMPLES, 6)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, NUM_EXAMPLES)
    return x, y


def _train(strategy, epochs=3, lam=3.0, num_examples=NUM_EXAMPLES, batch=BATCH):
    """Trains from fixed initial weights on a fixed data order."""
    x, y = _data()
    x, y = x[:num_examples], y[:num_examples]
    keras.utils.set_random_seed(7)
    with strategy.scope():
        backbone = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(16, activation="tanh"),
                keras.layers.Dense(NUM_CLASSES),
            ]
        )
        model = elr_tf.ELRModel(
            backbone,
            num_examples=num_examples,
            num_classes=NUM_CLASSES,
            beta=0.7,
            lam=lam,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    # A fixed permutation stands in for shuffling, identical in both runs.
    order = np.random.default_rng(1).permutation(num_examples)
    dataset = tf.data.Dataset.from_tensor_slices(
        ((x[order], order.astype("int64")), y[order])
    ).batch(batch)
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    return model, history.history


def _compare(reference, distributed):
    (model_a, hist_a), (model_b, hist_b) = reference, distributed
    table_a, table_b = model_a.target_table.numpy(), model_b.target_table.numpy()
    assert np.count_nonzero(table_a.sum(axis=1)) == table_a.shape[0]
    np.testing.assert_allclose(table_b, table_a, atol=1e-6)
    for w_a, w_b in zip(model_a.backbone.weights, model_b.backbone.weights):
        np.testing.assert_allclose(w_b.numpy(), w_a.numpy(), atol=1e-5)
    for key in ("loss", "ce", "elr"):
        np.testing.assert_allclose(hist_b[key], hist_a[key], rtol=1e-5, atol=1e-6)
    # The averaged margins (AUM) are gathered across replicas like the table.
    margins_a, margins_b = model_a.average_margins.numpy(), model_b.average_margins.numpy()
    assert np.isfinite(margins_a).all()
    np.testing.assert_allclose(margins_b, margins_a, atol=1e-5)
    np.testing.assert_array_equal(
        model_b.margin_tracker.counts().numpy(), model_a.margin_tracker.counts().numpy()
    )
    # So is the table averaged over training, and every copy holds all of it.
    mean_a = model_a.mean_target_table.numpy()
    assert np.count_nonzero(mean_a.sum(axis=1)) == mean_a.shape[0]
    np.testing.assert_allclose(model_b.mean_target_table.numpy(), mean_a, atol=1e-6)
    copies = model_b.target_layers[0].mean_sums.value
    for copy in getattr(copies, "values", [copies]):
        np.testing.assert_allclose(copy.numpy(), model_a.target_layers[0].mean_sums, atol=1e-5)


def test_two_replicas_match_single_device(mirrored):
    reference = _train(tf.distribute.get_strategy())
    strategy = mirrored(2)
    assert strategy.num_replicas_in_sync == 2
    _compare(reference, _train(strategy))


def test_one_replica_strategy_matches_single_device(mirrored):
    reference = _train(tf.distribute.get_strategy())
    _compare(reference, _train(mirrored(1)))


def test_elr_term_counted_once_across_replicas(mirrored):
    # With a large lambda the update is dominated by the ELR term: a
    # double-counted (or halved) term would move the weights visibly apart
    # after a single step.
    reference = _train(tf.distribute.get_strategy(), epochs=1, lam=50.0)
    _compare(reference, _train(mirrored(2), epochs=1, lam=50.0))


def test_uneven_last_batch_updates_every_row(mirrored):
    # 90 examples in batches of 16: the last batch of 10 is split 5/5 and a
    # batch of 16 8/8; with 91 the last batch of 11 is split unevenly (6/5).
    # Every row must be written, on every replica's copy.
    model, _ = _train(mirrored(2), epochs=1, num_examples=91)
    variable = model.target_layers[0].table.value
    copies = [v.numpy() for v in variable.values]
    assert len(copies) == 2
    np.testing.assert_array_equal(copies[0], copies[1])
    assert np.count_nonzero(copies[0].sum(axis=1)) == 91
    reference, _ = _train(tf.distribute.get_strategy(), epochs=1, num_examples=91)
    np.testing.assert_allclose(copies[0], reference.target_table.numpy(), atol=1e-6)
    margin_copies = [v.numpy() for v in model.margin_tracker.sums.value.values]
    np.testing.assert_array_equal(margin_copies[0], margin_copies[1])
    np.testing.assert_array_equal(margin_copies[0][:, 1], np.ones(91))
    np.testing.assert_allclose(
        model.average_margins.numpy(), reference.average_margins.numpy(), atol=1e-5
    )


@pytest.mark.parametrize("aggregation", ["none", "only_first_replica"])
def test_local_scatter_alone_would_be_wrong(mirrored, aggregation):
    # Documents why TargetTable gathers ids across replicas: a plain scatter
    # of each replica's own rows into a mirrored variable raises no error but
    # leaves rows missing from (some) copies.
    strategy = mirrored(2)
    with strategy.scope():
        var = tf.Variable(
            tf.zeros([4, 1]),
            aggregation={
                "none": tf.VariableAggregation.NONE,
                "only_first_replica": tf.VariableAggregation.ONLY_FIRST_REPLICA,
            }[aggregation],
        )

    @tf.function
    def step(ids):
        def replica_fn(local_ids):
            var.scatter_update(tf.IndexedSlices(tf.ones([tf.size(local_ids), 1]), local_ids))

        strategy.run(replica_fn, args=(ids,))

    ids = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(
            [2 * ctx.replica_id_in_sync_group, 2 * ctx.replica_id_in_sync_group + 1], tf.int64
        )
    )
    step(ids)
    copies = [v.numpy().ravel() for v in var.values]
    assert not all(np.array_equal(c, np.ones(4)) for c in copies)
