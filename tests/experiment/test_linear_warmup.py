"""Tests for elr_tf.experiment.linear_warmup and the program's --warmup_epochs."""

import keras
import numpy as np
import pytest

from elr_tf.experiment.assemble import learning_rate_schedule
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.linear_warmup import LinearWarmup


def test_a_constant_rate_ramps_up_by_hand():
    lr = LinearWarmup(0.1, warmup_steps=4)
    np.testing.assert_allclose(
        [float(lr(s)) for s in range(6)], [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]
    )


def test_the_warmup_multiplies_the_schedule_so_it_still_ends_where_it_ended():
    cosine = keras.optimizers.schedules.CosineDecayRestarts(0.2, first_decay_steps=10, alpha=0.0)
    lr = LinearWarmup(cosine, warmup_steps=2)
    assert float(lr(0)) == pytest.approx(0.5 * float(cosine(0)))
    for step in (2, 5, 9):
        assert float(lr(step)) == pytest.approx(float(cosine(step)))
    assert float(lr(10)) == pytest.approx(float(cosine(10)))


def test_config_round_trip():
    cosine = keras.optimizers.schedules.CosineDecayRestarts(0.2, first_decay_steps=10, alpha=0.0)
    for inner in (0.3, cosine):
        lr = LinearWarmup(inner, warmup_steps=3)
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lr))
        assert isinstance(again, LinearWarmup)
        for step in (0, 1, 4, 7):
            assert float(again(step)) == pytest.approx(float(lr(step)))


def test_warmup_steps_must_be_positive():
    with pytest.raises(ValueError, match="warmup_steps"):
        LinearWarmup(0.1, warmup_steps=0)


def test_the_program_warms_up_over_whole_epochs():
    config = TrainConfig(schedule="cosine", restart_epochs=4, min_lr=0.0, warmup_epochs=1)
    lr = learning_rate_schedule(config, steps_per_epoch=5)
    assert isinstance(lr, LinearWarmup) and lr.warmup_steps == 5
    assert float(lr(0)) == pytest.approx(0.2 * config.learning_rate)
    assert not isinstance(learning_rate_schedule(TrainConfig(warmup_epochs=0), 5), LinearWarmup)
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1)
