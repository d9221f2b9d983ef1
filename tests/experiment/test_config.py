"""Tests for elr_tf.experiment.config and flags: one declaration per setting."""

import dataclasses
import glob
import logging
import os

import pytest

from elr_tf.experiment import flags as elr_flags
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.settings import flag_name
from elr_tf.experiment.tuning import TuningOptions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("config_class", [TrainConfig, TuningOptions])
def test_every_field_declares_help_and_a_unique_flag(config_class):
    names = [flag_name(f) for f in dataclasses.fields(config_class)]
    assert len(set(names)) == len(names)
    for field in dataclasses.fields(config_class):
        assert field.metadata["help"], field.name


def test_flags_keep_the_reference_spellings():
    config = config_from_argv(
        [
            "--bs=64",
            "--lr=0.1",
            "--lambda=7",
            "--percent=0.4",
            "--asym",
            "--t0=5",
            "--eta_min=0.01",
        ]
    )
    assert (config.batch_size, config.learning_rate, config.lam) == (64, 0.1, 7.0)
    assert (config.noise_rate, config.asymmetric, config.restart_epochs) == (0.4, True, 5)
    assert config.min_lr == 0.01
    plus = config_from_argv(
        ["--loss=elr_plus", "--schedule=multistep", "--gamma=0.1", "--malpha=1.5", "--ealpha=0.99"]
    )
    assert (plus.decay_factor, plus.mixup_alpha, plus.ema_alpha) == (0.1, 1.5, 0.99)


def test_flagfile_round_trip():
    config = TrainConfig(
        batch_size=32, lam=2.5, noise_rate=0.2, schedule="multistep", milestones=(3, 9), name="x"
    )
    lines = config.to_flagfile().splitlines()
    assert "--bs=32" in lines and "--lambda=2.5" in lines and "--milestones=3,9" in lines
    assert config_from_argv(lines) == config


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.cfg"))))
def test_every_shipped_flagfile_parses_and_validates(path, monkeypatch):
    monkeypatch.chdir(REPO)  # Flagfiles nest base.cfg relative to the repository.
    config_from_argv([f"--flagfile={path}"]).validate()


def test_config_json_round_trips_and_refuses_what_it_cannot_read():
    config = TrainConfig(
        batch_size=64, lam=2.0, noise_rate=0.2, schedule="multistep", milestones=(2, 4)
    )
    assert TrainConfig.from_dict(dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match=r"Unknown settings \['bogus'\]"):
        TrainConfig.from_dict({**dataclasses.asdict(config), "bogus": 1})
    # A field left out is refused, naming it, not given a default.
    partial = dataclasses.asdict(config)
    del partial["track_margins"], partial["data_order"]
    with pytest.raises(ValueError, match=r"Missing settings \['data_order', 'track_margins'\]"):
        TrainConfig.from_dict(partial)
    # Flag spellings are not field names.
    with pytest.raises(ValueError, match="Unknown settings.*'bs'"):
        TrainConfig.from_dict({**dataclasses.asdict(config), "bs": 64})
    with pytest.raises(ValueError, match="must be a mapping of settings. Received: list"):
        TrainConfig.from_dict([1, 2])


def test_noise_flags_reach_one_noise_model():
    assert config_from_argv(["--percent=0.4"]).noise_model == "symmetric"
    assert config_from_argv(["--percent=0.4", "--asym"]).noise_model == "asymmetric"
    assert config_from_argv(["--percent=0.4", "--noise=idn"]).noise_model == "idn"
    assert config_from_argv(["--noise_matrix=m.npy"]).noise_model == "matrix"
    with pytest.raises(ValueError, match="--noise=idn --asym"):
        config_from_argv(["--percent=0.4", "--noise=idn", "--asym"])
    with pytest.raises(ValueError, match="--noise=matrix without --noise_matrix"):
        config_from_argv(["--noise=matrix"])
    with pytest.raises(ValueError, match="`--percent` does not apply with --noise_matrix"):
        config_from_argv(["--percent=0.4", "--noise_matrix=m.npy"])
    with pytest.raises(ValueError, match="Received: --noise='gaussian'"):
        config_from_argv(["--noise=gaussian"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr=inf"], "Received: --lr=inf"),
        (["--lambda=inf"], "Received: --lambda=inf"),
        (["--lambda=nan"], "Received: --lambda=nan"),
        (["--bs=0"], "`--bs` must be a positive integer. Received: --bs=0"),
        (["--percent=1.5"], "Received: --percent=1.5"),
        (["--loss=mae"], "Received: --loss='mae'"),
        (["--milestones=9,3", "--schedule=multistep"], "--milestones=9,3"),
        (["--table_placement=gpu"], "Received: --table_placement='gpu'"),
        (["--asym", "--noise_matrix=m.npy"], "--asym"),
        (["--dataset=clothing1m", "--percent=0.2"], "--percent"),
    ],
)
def test_bad_values_name_the_flag_and_value(argv, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        config_from_argv(argv).validate()


def test_list_flag_of_non_integers_is_refused():
    with pytest.raises(ValueError, match="`--milestones` must be comma-separated integers"):
        config_from_argv(["--milestones=a,3"])


def test_tuning_options_flags_round_trip():
    options = TuningOptions(tuner="grid", noise_seeds=(1, 2), probe_size=50)
    assert (
        elr_flags.config_from_flags(
            _parsed(TuningOptions, options.to_flagfile().splitlines()), TuningOptions
        )
        == options
    )


def _parsed(config_class, argv):
    from absl import flags

    flag_values = flags.FlagValues()
    holders = elr_flags.define_flags(config_class, flag_values)
    flag_values(["test", *argv])
    return holders


# --- settings that do not apply to the run ----------------------------------


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--loss=ce", "--malpha=0.5"], "--malpha=0.5"),
        (["--loss=ce", "--data_order=shared"], "--data_order=shared"),
        (["--loss=ce", "--teacher_span=step"], "--teacher_span=step"),
        (["--loss=ce", "--coef_step=100"], "--coef_step=100"),
        (["--loss=ce", "--label_reweighting=on"], "--label_reweighting=on"),
        (["--loss=ce", "--lambda=5"], "--lambda=5.0"),
        (["--loss=ce", "--beta=0.9"], "--beta=0.9"),
        (["--loss=elr", "--ealpha=0.9"], "--ealpha=0.9"),
        (["--loss=elr", "--ema_step=10"], "--ema_step=10"),
        # Variants: a flag at its default value, schedules, noise, weights.
        (["--loss=ce", "--lambda=3"], "--lambda=3.0"),
        (["--loss=elr", "--malpha=1"], "--malpha=1.0"),
        (["--schedule=multistep", "--t0=5"], "--t0=5"),
        (["--schedule=cosine", "--milestones=3"], "--milestones=3"),
        (["--asym"], "--asym=True"),
        (["--percent=0.4", "--asym", "--include_true_class=false"], "--include_true_class=False"),
        (["--weights=none"], "--weights=none"),
        (["--percent=0.4", "--asym_sequential"], "--asym_sequential=True"),
        (["--loss=elr_plus", "--steps_per_execution=4"], "--steps_per_execution=4"),
    ],
)
def test_a_flag_outside_the_runs_it_belongs_to_is_refused(argv, flag):
    with pytest.raises(ValueError, match=rf"refused rather than ignored: {flag} \(only with"):
        config_from_argv(argv)


def test_a_library_config_outside_its_runs_is_refused_and_flags_cfg_records_what_applied():
    with pytest.raises(ValueError, match=r"--lambda=5.0 \(only with --loss=elr or --loss=elr_plus"):
        TrainConfig(loss="ce", lam=5.0)
    flagfile = TrainConfig(loss="ce", schedule="multistep").to_flagfile()
    for absent in ("--lambda", "--beta", "--malpha", "--ealpha", "--t0", "--eta_min", "--weights"):
        assert absent + "=" not in flagfile
    assert "--milestones=40,80" in flagfile and "--loss=ce" in flagfile
    # The file reruns the same run, and the refused flags stay refused.
    lines = [line for line in flagfile.splitlines() if line]
    assert config_from_argv(lines) == TrainConfig(loss="ce", schedule="multistep")
    assert "--malpha=1.0" in TrainConfig(loss="elr_plus").to_flagfile()


def test_a_flagfile_setting_that_does_not_apply_is_named_and_left_out(tmp_path, caplog):
    flagfile = tmp_path / "elr.cfg"
    flagfile.write_text("--loss=elr\n--lambda=7\n--beta=0.9\n--malpha=0.5\n")
    with caplog.at_level(logging.WARNING):
        config = config_from_argv([f"--flagfile={flagfile}", "--loss=ce"])
    assert "Not used by this run, from the flagfile: --beta=0.9" in caplog.text
    assert "--lambda=7.0 (only with --loss=elr or --loss=elr_plus)" in caplog.text
    assert (config.lam, config.beta, config.mixup_alpha) == (3.0, 0.7, 1.0)
    assert "--lambda" not in config.to_flagfile()
    # Typed on the command line, the same setting is refused.
    with pytest.raises(ValueError, match=r"refused rather than ignored: --lambda=7.0"):
        config_from_argv([f"--flagfile={flagfile}", "--loss=ce", "--lambda=7"])
    # Where it applies, the flagfile's value is used.
    assert config_from_argv([f"--flagfile={flagfile}", "--loss=elr_plus"]).lam == 7.0
