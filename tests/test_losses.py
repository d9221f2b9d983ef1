import math

import numpy as np
import pytest
import tensorflow as tf

from elr_tf import losses


def test_clipped_softmax_clips_both_ends():
    probs = losses.clipped_softmax(tf.constant([[100.0, 0.0]])).numpy()
    np.testing.assert_allclose(probs, [[1 - 1e-4, 1e-4]], rtol=1e-6)


def test_clipped_softmax_is_float32_for_float16_logits():
    probs = losses.clipped_softmax(tf.constant([[1.0, 2.0]], tf.float16))
    assert probs.dtype == tf.float32


def test_target_estimate_renormalises_and_stops_gradient():
    probs = tf.Variable([[1 - 1e-4, 1e-4, 1e-4]])
    with tf.GradientTape() as tape:
        estimate = losses.target_estimate(probs)
    np.testing.assert_allclose(estimate.numpy().sum(), 1.0, rtol=1e-6)
    assert tape.gradient(estimate, probs) is None


def test_ensemble_targets_hand_values():
    new = losses.ensemble_targets(tf.constant([[0.5, 0.5]]), tf.constant([[1.0, 0.0]]), 0.7)
    np.testing.assert_allclose(new.numpy(), [[0.65, 0.35]], rtol=1e-6)


def test_cross_entropy_hand_value():
    # softmax([0, ln 3]) = [1/4, 3/4]; CE for label 0 is ln 4.
    ce = losses.cross_entropy(tf.constant([0]), tf.constant([[0.0, math.log(3)]]))
    np.testing.assert_allclose(ce.numpy(), [math.log(4)], rtol=1e-6)


def test_elr_regularizer_hand_value():
    targets = tf.constant([[0.075, 0.225]])
    probs = tf.constant([[0.25, 0.75]])
    reg = losses.elr_regularizer(targets, probs)
    # <t, p> = 0.01875 + 0.16875 = 0.1875.
    np.testing.assert_allclose(reg.numpy(), [math.log(1 - 0.1875)], rtol=1e-6)


def test_elr_loss_hand_value_one_step_from_zero_table():
    logits = tf.constant([[0.0, math.log(3)]])
    probs = losses.clipped_softmax(logits)
    targets = losses.ensemble_targets(tf.zeros([1, 2]), losses.target_estimate(probs), beta=0.7)
    np.testing.assert_allclose(targets.numpy(), [[0.075, 0.225]], rtol=1e-5)
    total, ce, reg = losses.elr_loss(tf.constant([0]), logits, targets, lam=3.0)
    np.testing.assert_allclose(ce.numpy(), math.log(4), rtol=1e-6)
    np.testing.assert_allclose(reg.numpy(), math.log(0.8125), rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), math.log(4) + 3 * math.log(0.8125), rtol=1e-5)


def test_elr_gradient_flows_through_probs_only():
    logits = tf.Variable([[0.3, -0.2, 1.0]])
    targets = tf.Variable([[0.2, 0.3, 0.5]])
    with tf.GradientTape(persistent=True) as tape:
        reg = tf.reduce_mean(losses.elr_regularizer(targets, losses.clipped_softmax(logits)))
    assert tape.gradient(reg, targets) is None
    grad = tape.gradient(reg, logits)
    assert grad is not None and np.all(np.isfinite(grad.numpy()))


def test_regularizer_pulls_prediction_toward_target():
    # One gradient step on the ELR term alone increases <t, p>.
    logits = tf.Variable([[2.0, 0.0, 0.0]])
    targets = tf.constant([[0.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        reg = losses.elr_regularizer(targets, losses.clipped_softmax(logits))[0]
    logits.assign_sub(tape.gradient(reg, logits))
    before = tf.nn.softmax([[2.0, 0.0, 0.0]])[0, 1]
    after = tf.nn.softmax(logits)[0, 1]
    assert after > before


@pytest.mark.parametrize("lam", [0.0, 1.0, 7.0])
def test_elr_loss_is_sum_of_parts(lam):
    logits = tf.random.stateless_normal([8, 5], seed=[1, 2])
    targets = tf.nn.softmax(tf.random.stateless_normal([8, 5], seed=[3, 4]))
    labels = tf.constant([0, 1, 2, 3, 4, 0, 1, 2])
    total, ce, reg = losses.elr_loss(labels, logits, targets, lam)
    np.testing.assert_allclose(total.numpy(), ce.numpy() + lam * reg.numpy(), rtol=1e-6)


# --- ELR+ ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "step, length, expected",
    [
        (0, 100, math.exp(-5.0)),
        (50, 100, math.exp(-5.0 * 0.25)),
        (100, 100, 1.0),
        (250, 100, 1.0),
        (-3, 100, math.exp(-5.0)),
        (7, 0, 1.0),
    ],
)
def test_sigmoid_rampup_hand_values(step, length, expected):
    assert float(losses.sigmoid_rampup(step, length)) == pytest.approx(expected, rel=1e-6)


def test_sigmoid_rampup_in_graph_and_bad_length():
    ramp = tf.function(lambda step: losses.sigmoid_rampup(step, 40000))
    assert float(ramp(tf.constant(20000.0))) == pytest.approx(math.exp(-1.25), rel=1e-6)
    with pytest.raises(ValueError, match="length=-1"):
        losses.sigmoid_rampup(1, -1)


def test_reweighted_labels_hand_values():
    labels = tf.constant([[0.75, 0.25, 0.0], [1.0, 0.0, 0.0]])
    targets = tf.constant([[0.2, 0.6, 0.2], [0.0, 0.5, 0.5]])
    # Row 1: [0.15, 0.15, 0] / 0.3; row 2: all zero -> zeros, not NaN.
    np.testing.assert_allclose(
        losses.reweighted_labels(labels, targets).numpy(), [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    )


def test_elr_plus_loss_hand_values():
    labels = np.array([[0.7, 0.3]], "float32")
    logits = np.array([[1.0, 0.0]], "float32")
    targets = np.array([[0.2, 0.1]], "float32")
    p = np.exp(logits) / np.exp(logits).sum()
    ce = -np.sum(labels * np.log(p))
    reg = np.log(1.0 - np.sum(targets * p))
    total, got_ce, got_reg = losses.elr_plus_loss(labels, logits, targets, lam=3.0, ramp=0.5)
    np.testing.assert_allclose([got_ce, got_reg, total], [ce, reg, ce + 1.5 * reg], rtol=1e-6)
    # With reweighting the label is [0.14, 0.03] / 0.17.
    reweighted = labels * targets / np.sum(labels * targets)
    _, got_ce, _ = losses.elr_plus_loss(labels, logits, targets, 3.0, label_reweighting=True)
    np.testing.assert_allclose(got_ce, -np.sum(reweighted * np.log(p)), rtol=1e-6)


def test_elr_plus_loss_sample_weight_weighs_each_mix_before_the_mean():
    # Two examples, weights 2 and 0: both terms are (2 * term_0 + 0) / 2.
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    logits = np.array([[0.0, math.log(3)], [0.0, 0.0]], "float32")
    targets = np.array([[0.075, 0.225], [0.5, 0.5]], "float32")
    total, ce, reg = losses.elr_plus_loss(
        labels, logits, targets, lam=3.0, sample_weight=np.array([2.0, 0.0])
    )
    # Example 0: p = [1/4, 3/4], CE = ln 4, <t, p> = 0.1875.
    np.testing.assert_allclose(ce.numpy(), math.log(4), rtol=1e-6)
    np.testing.assert_allclose(reg.numpy(), math.log(0.8125), rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), math.log(4) + 3 * math.log(0.8125), rtol=1e-5)
