"""Tests for elr_tf.data.example_set: ExampleSet and NoisyData."""

import os

import numpy as np
import pytest

from elr_tf.data import ExampleSet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_example_set_validation(tiny):
    example_set = tiny.train
    relabelled = example_set.with_labels(np.zeros(len(example_set), np.int32))
    assert relabelled.labels.dtype == np.int64 and not relabelled.labels.any()
    np.testing.assert_array_equal(relabelled.true_labels, example_set.true_labels)
    with pytest.raises(ValueError, match="length 50. Received: length=3"):
        example_set.with_labels([0, 1, 2])
    with pytest.raises(ValueError, match="integer array. Received: dtype=float"):
        example_set.with_labels(np.zeros(len(example_set)))
    with pytest.raises(ValueError, match="Exactly one of `features` and `paths`"):
        ExampleSet(ids=[0], labels=[0])
    with pytest.raises(ValueError, match="unique"):
        ExampleSet(ids=[1, 1], labels=[0, 0], paths=["a", "b"])


def test_with_labels_by_id(tiny):
    table = tiny.labels_by_id()
    assert (table >= 0).all() and len(table) == 60
    noisy = tiny.with_labels_by_id((table + 1) % 10, label_source="sym")
    np.testing.assert_array_equal(noisy.val.labels, (tiny.val.labels + 1) % 10)
    assert noisy.label_source == "sym" and noisy.test is tiny.test
    with pytest.raises(ValueError, match=r"label in \[0, 10\)"):
        tiny.with_labels_by_id(table + 10)


def test_subset_keeps_ids_and_every_field(tiny):
    train = tiny.train
    part = train.subset([3, 0])
    np.testing.assert_array_equal(part.ids, train.ids[[3, 0]])
    np.testing.assert_array_equal(part.labels, train.labels[[3, 0]])
    np.testing.assert_array_equal(part.true_labels, train.true_labels[[3, 0]])
    np.testing.assert_array_equal(part.features, train.features[[3, 0]])
    mask = np.zeros(len(train), bool)
    mask[[1, 2]] = True
    np.testing.assert_array_equal(train.subset(mask).ids, train.ids[[1, 2]])
    with pytest.raises(ValueError, match="mask must have shape"):
        train.subset(mask[:-1])
    with pytest.raises(ValueError, match="`positions` must be a 1-D integer array"):
        train.subset([0.5])
