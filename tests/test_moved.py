"""The flat module paths of earlier versions keep working after the move."""

import importlib
import warnings

import pytest

import elr_tf
from elr_tf import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_every_old_module_imports_and_names_its_new_home(old):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    homes = _moved.MOVED[old]
    assert any(home in str(w.message) for w in caught for home in homes) or caught == []
    for home in homes:
        assert importlib.import_module(home)
    assert module.__name__ == old


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("elr_tf.training", "train", "elr_tf.experiment.train"),
        ("elr_tf.training", "TrainConfig", "elr_tf.experiment.config"),
        ("elr_tf.training", "make_strategy", "elr_tf.experiment.assemble"),
        ("elr_tf.training", "make_train_input", "elr_tf.experiment.assemble"),
        ("elr_tf.training", "EpochClock", "elr_tf.experiment.callbacks"),
        ("elr_tf.datasets", "load_dataset", "elr_tf.data.sources"),
        ("elr_tf.datasets", "ExampleSet", "elr_tf.data.example_set"),
        ("elr_tf.datasets", "make_train_dataset", "elr_tf.data.pipeline"),
        ("elr_tf.audit", "detection_metrics", "elr_tf.diagnostics.ranking"),
        ("elr_tf.audit", "LabelAudit", "elr_tf.diagnostics.label_audit"),
        ("elr_tf.tuning", "ELRHyperModel", "elr_tf.experiment.tuning"),
        ("elr_tf.flags", "config_from_argv", "elr_tf.experiment.flags"),
        ("elr_tf.elr_plus_model", "ELRPlusModel", "elr_tf.models.elr_plus_model"),
        ("elr_tf.weight_averaging", "ema_decay", "elr_tf.callbacks.weight_averaging"),
    ],
)
def test_old_names_resolve_to_the_moved_objects(old, name, new):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_unknown_name_says_where_the_module_went():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("elr_tf.datasets")
    with pytest.raises(AttributeError, match="moved to elr_tf.data.sources"):
        module.no_such_name  # noqa: B018


def test_top_level_names_unchanged():
    for name in elr_tf.__all__:
        assert hasattr(elr_tf, name), name


def test_functions_whose_signature_changed_keep_the_old_one():
    from absl import flags

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_flags = importlib.import_module("elr_tf.flags")
        old_tuning = importlib.import_module("elr_tf.tuning")
        old_training = importlib.import_module("elr_tf.training")
        old_validation = importlib.import_module("elr_tf.validation")
    flag_values = flags.FlagValues()
    holders = old_flags.define_flags(flag_values)
    tuning_holders = old_tuning.define_flags(flag_values)
    flag_values(["test", "--bs=16", "--tuner=grid"])
    assert old_flags.config_from_flags(holders).batch_size == 16
    assert old_tuning.options_from_flags(tuning_holders).tuner == "grid"
    with pytest.raises(ValueError, match="Received: --bs=0"):
        old_training.check_positive_int("bs", 0)
    with pytest.raises(ValueError, match="Received: --beta=1"):
        old_training.check_range("beta", 1, 0.0, 1.0, high_open=True)
    assert list(old_validation.int_vector([1, 2], "ids")) == [1, 2]


def test_old_table_attribute_names_warn_and_return_the_layers():
    import keras

    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model = elr_tf.ELRModel(backbone, num_examples=4, num_classes=3)
    with pytest.warns(DeprecationWarning, match=r"target_layers\[0\]"):
        assert model.targets is model.target_layers[0]
    plus = elr_tf.ELRPlusModel(
        backbone, keras.models.clone_model(backbone), num_examples=4, num_classes=3
    )
    with pytest.warns(DeprecationWarning, match=r"target_layers\[1\]"):
        assert plus.targets2 is plus.target_layers[1]
    with pytest.raises(AttributeError, match="no attribute 'targets3'"):
        plus.targets3  # noqa: B018
