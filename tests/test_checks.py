"""Tests for elr_tf.checks: every check names the argument and the value."""

import math

import numpy as np
import pytest
import tensorflow as tf

from elr_tf import checks


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts(value):
    assert checks.positive_int("--bs", value) == int(value)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", None])
def test_positive_int_refuses(value):
    with pytest.raises(ValueError, match=r"`--bs` must be a positive integer\. Received: --bs="):
        checks.positive_int("--bs", value)


def test_non_negative_int():
    assert checks.non_negative_int("seed", 0) == 0
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0. Received: seed=-1"):
        checks.non_negative_int("seed", -1)


@pytest.mark.parametrize(
    "value, kwargs",
    [
        (0.0, {}),
        (1.0, {"high": 1.0}),
        (0.5, {"high": 1.0, "low_open": True, "high_open": True}),
    ],
)
def test_number_in_accepts(value, kwargs):
    assert checks.number_in("x", value, 0.0, **kwargs) == value


@pytest.mark.parametrize(
    "value, kwargs, interval",
    [
        (-0.1, {}, r"\[0.0, inf\]"),
        (0.0, {"low_open": True}, r"\(0.0, inf\]"),
        (1.0, {"high": 1.0, "high_open": True}, r"\[0.0, 1.0\)"),
        (math.inf, {}, r"\[0.0, inf\]"),
        (math.nan, {}, r"\[0.0, inf\]"),
        (True, {}, r"\[0.0, inf\]"),
        ("1", {}, r"\[0.0, inf\]"),
    ],
)
def test_number_in_refuses_with_interval_and_value(value, kwargs, interval):
    with pytest.raises(ValueError, match=rf"`--lr` must be a finite number in {interval}\. "):
        checks.number_in("--lr", value, 0.0, **kwargs)


def test_one_of():
    assert checks.one_of("--loss", "elr", ("ce", "elr")) == "elr"
    with pytest.raises(ValueError, match="`--loss` must be one of ce, elr. Received: --loss='x'"):
        checks.one_of("--loss", "x", ("ce", "elr"))


def test_int_vector():
    np.testing.assert_array_equal(checks.int_vector("ids", [3, 1]), [3, 1])
    assert checks.int_vector("ids", []).dtype == np.int64
    with pytest.raises(
        ValueError, match="`ids` must be a 1-D integer array. Received: dtype=float"
    ):
        checks.int_vector("ids", [1.0])
    with pytest.raises(ValueError, match="`ids` must have length 3. Received: length=2"):
        checks.int_vector("ids", [1, 2], length=3)


def test_labels_in_range():
    with pytest.raises(
        ValueError, match=r"`labels` must be in \[0, 3\).*\[3, -1\] \(2 out of range\)"
    ):
        checks.labels_in_range("labels", [0, 3, -1], 3)


def test_image_size():
    assert checks.image_size("image_size", 32) == (32, 32)
    assert checks.image_size("image_size", (24, 32)) == (24, 32)
    with pytest.raises(ValueError, match="Received: image_size=\\(0, 3\\)"):
        checks.image_size("image_size", (0, 3))


def test_assert_in_range_passes_values_and_names_the_bound_at_run_time():
    values = tf.constant([0, 2], tf.int64)
    np.testing.assert_array_equal(
        checks.assert_in_range("labels", values, "num_classes", 3), [0, 2]
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < num_classes=3"):
        checks.assert_in_range("labels", tf.constant([3]), "num_classes", 3)
    in_graph = tf.function(lambda v: checks.assert_in_range("ids", v, "num_examples", 5))
    with pytest.raises(tf.errors.InvalidArgumentError, match="ids must be >= 0"):
        in_graph(tf.constant([1, -1]))
