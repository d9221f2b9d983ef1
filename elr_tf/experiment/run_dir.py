"""The run directory: where a run's files go, and resuming it.

`resolve_run_dir` creates (or, on resume, reopens) `<output_dir>/<name>`;
`resume_config` rebuilds a resumed run's settings from its `config.json`;
`write_settings` writes `config.json` and `flags.cfg`.
"""

import dataclasses
import json
import os
import time

from elr_tf.experiment.checkpointing import atomic_write_text
from elr_tf.experiment.config import TrainConfig, flag_name

# Settings a resumed run takes from the command line (see `resume_config`).
_RESUME_OVERRIDES = ("resume", "epochs", "verbose")


def resolve_run_dir(config, multi_worker=False):
    """Creates (or, on resume, reopens) the run directory.

    A new run never overwrites an old one: an existing non-empty `<name>`
    gets a time stamp appended (an empty one, e.g. left by a failed start,
    is reused). Multi-worker runs keep the plain name so that all workers
    agree on it.
    """
    if config.resume:
        return config.resume
    run_dir = os.path.join(config.output_dir, config.name)
    # Any existing content (even checkpoints without a config.json) belongs
    # to another run: never train on top of it.
    if not multi_worker and os.path.isdir(run_dir) and os.listdir(run_dir):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = f"{run_dir}-{stamp}"
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the run directory {run_dir} ({error.strerror}): "
            "`--output_dir` and `--name` must name a directory that can be created. "
            f"Received: --output_dir={config.output_dir!r}, --name={config.name!r}"
        ) from None
    return run_dir


def load_config(run_dir, **overrides):
    """Reads a run's `config.json` back into a `TrainConfig`."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(
            "`--resume` must be a run directory written by train (with a "
            f"config.json). Received: --resume={run_dir!r}"
        )
    try:
        with open(path) as f:
            values = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}).") from None
    try:
        return TrainConfig.from_dict(values, **overrides)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} does not hold a run's settings: {error}") from None


def resume_config(config, given=None):
    """The config a resumed run trains with: the saved one plus safe overrides.

    `--epochs` (to extend the run) and `--verbose` apply on resume. Any
    other setting that differs from the saved run is refused, naming each,
    rather than ignored.

    Args:
        config: a `TrainConfig` with `resume` set.
        given: names of the fields the user set (e.g. the flags given); None
            takes every field that differs from its default.
    """
    saved = load_config(config.resume)
    if given is None:
        given = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) != f.default}
    refused = [
        f"--{flag_name(field)}={getattr(config, field.name)}"
        for field in dataclasses.fields(config)
        if field.name in given
        and field.name not in _RESUME_OVERRIDES
        and getattr(config, field.name) != getattr(saved, field.name)
    ]
    if refused:
        raise ValueError(
            f"`--resume` continues {config.resume} with its saved settings; these flags "
            f"would change them and are refused: {' '.join(refused)}. Only --epochs (to "
            "extend the run) and --verbose apply on resume; start a new run to change "
            "anything else."
        )
    overrides = {"resume": config.resume, "verbose": config.verbose}
    if "epochs" in given:
        overrides["epochs"] = config.epochs
    return dataclasses.replace(saved, **overrides)


def write_settings(run_dir, config):
    """Writes `config.json` and `flags.cfg` (rewritten on resume: `--epochs` may grow)."""
    saved = dataclasses.replace(config, resume=None)
    atomic_write_text(
        os.path.join(run_dir, "config.json"), json.dumps(dataclasses.asdict(saved), indent=2)
    )
    atomic_write_text(os.path.join(run_dir, "flags.cfg"), saved.to_flagfile())
