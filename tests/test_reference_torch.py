"""Tests of the PyTorch reference implementation in `scripts/benchmarks/reference_torch.py`."""

import numpy as np
import pytest
from script_loader import load_script

torch = pytest.importorskip("torch")

from elr_tf.models import backbones  # noqa: E402


@pytest.fixture(scope="module")
def reference_torch():
    return load_script("reference_torch")


def test_keras_weights_give_the_same_logits(reference_torch, seed):
    model = backbones.build_backbone("plain_cnn", 10)
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    # Non-trivial batch-norm parameters and statistics, so that their
    # transfer is tested too.
    for index in (1, 2, 3, 6, 7, 8):
        weights[index] = rng.normal(0.0, 0.5, weights[index].shape).astype(np.float32)
    for index in (4, 9):
        weights[index] = rng.uniform(0.5, 2.0, weights[index].shape).astype(np.float32)
    model.set_weights(weights)
    net = reference_torch.build_cnn()
    reference_torch.load_keras_weights(net, model.get_weights())
    net.eval()
    images = rng.normal(size=(4, 28, 28, 1)).astype(np.float32)

    expected = np.asarray(model(images, training=False))
    with torch.no_grad():
        actual = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()

    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_two_generators_give_different_orders(reference_torch):
    first = reference_torch.epoch_order(256, torch.Generator().manual_seed(1))
    second = reference_torch.epoch_order(256, torch.Generator().manual_seed(2))

    assert sorted(first.tolist()) == list(range(256))
    assert not torch.equal(first, second)


def test_one_elr_epoch_returns_an_accuracy(reference_torch):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(256, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 256)

    result = reference_torch.train(
        "elr", images, labels, images[:64], labels[:64], seed=0, epochs=1, log=lambda line: None
    )

    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["epochs"] == 1
    assert np.isfinite(result["seconds_per_epoch"])


def test_unknown_method_is_named(reference_torch):
    with pytest.raises(ValueError, match="'elr_pluss'"):
        reference_torch.train("elr_pluss", None, None, None, None, seed=0)
