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
