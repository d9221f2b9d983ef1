"""Tests for elr_tf.experiment.assemble: the one place a run is set up."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from elr_tf.callbacks import Mixup, WeightAveraging
from elr_tf.data import FASHION_MNIST_DIR, make_train_dataset
from elr_tf.experiment.assemble import assemble, load_noisy_data
from elr_tf.experiment.callbacks import EpochClock
from elr_tf.experiment.config import TrainConfig
from elr_tf.models import ELRModel, ELRPlusModel

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="needs the Fashion-MNIST files (scripts/setup.sh installs them)",
)


def _config(**overrides):
    values = dict(arch="tiny_cnn", num_train=300, batch_size=32, epochs=1, noise_rate=0.4, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def _first_images(run):
    (images, ids), _ = next(iter(run.train_ds))
    return images.numpy(), ids.numpy()


def test_elr_run_has_compiled_model_data_and_clock():
    run = assemble(_config())
    assert isinstance(run.model, ELRModel) and run.model.lam == 3.0
    assert run.model.optimizer.built
    assert run.noise_rate == pytest.approx(
        np.mean(run.data.train.labels != run.data.train.true_labels)
    )
    assert run.steps_per_epoch == int(np.ceil(len(run.data.train) / 32))
    assert [type(c) for c in run.callbacks()] == [EpochClock]
    assert assemble(_config(loss="ce")).model.lam == 0.0


def test_elr_plus_run_honours_table_options_and_adds_its_callbacks():
    run = assemble(_config(loss="elr_plus", table_dtype="bfloat16", mixup_alpha=0.5))
    assert isinstance(run.model, ELRPlusModel)
    assert [layer.table.dtype for layer in run.model.target_layers] == ["bfloat16"] * 2
    kinds = [type(c) for c in run.callbacks()]
    assert kinds == [EpochClock, WeightAveraging, Mixup]
    assert run.callbacks()[2].alpha == 0.5
    no_mixup = assemble(_config(loss="elr_plus", mixup_alpha=0.0))
    assert [type(c) for c in no_mixup.callbacks()] == [EpochClock, WeightAveraging]


def test_augment_flag_reaches_the_pipeline():
    plain_images, plain_ids = _first_images(assemble(_config(augment=False)))
    augmented_images, augmented_ids = _first_images(assemble(_config(augment=True)))
    np.testing.assert_array_equal(plain_ids, augmented_ids)  # Same order, only the pixels move.
    assert not np.allclose(plain_images, augmented_images)


def test_an_applications_backbone_gets_raw_pixels_and_brings_its_preprocessing():
    # The pipeline does not normalise for a `keras.applications` preset; the
    # model's own preprocessing layer is the only stage that touches pixels.
    data, _ = load_noisy_data(_config(arch="resnet50", num_train=100))
    assert data.mean is None and data.std is None
    (images, ids), _ = next(iter(make_train_dataset(data, 8, seed=0, augment=False)))
    by_id = {int(i): k for k, i in enumerate(data.train.ids)}
    expected = data.train.features[[by_id[int(i)] for i in ids.numpy()]].astype("float32")
    np.testing.assert_array_equal(images.numpy(), expected)
    assert load_noisy_data(_config())[0].mean == (0.286,)


def test_same_seed_same_initialisation_and_reused_data():
    config = _config()
    loaded = load_noisy_data(config)
    first = assemble(config, data=loaded)
    second = assemble(config, data=loaded)
    assert first.data is second.data
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_precision_policy_follows_the_config(precision):
    try:
        run = assemble(_config(precision=precision))
        assert keras.mixed_precision.global_policy().name == precision
        assert run.model.target_layers[0].table.dtype == "float32"
        assemble(_config())
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_backbone_fn_replaces_the_preset():
    def backbone_fn(num_classes, input_shape):
        return keras.Sequential(
            [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        )

    run = assemble(_config(), backbone_fn=backbone_fn)
    assert [type(layer) for layer in run.model.backbone.layers] == [
        keras.layers.Flatten,
        keras.layers.Dense,
    ]
    assert isinstance(run.strategy, tf.distribute.Strategy)


def test_steps_per_execution_reaches_the_compiled_model():
    run = assemble(_config(steps_per_execution=4))
    assert run.model.steps_per_execution == 4
