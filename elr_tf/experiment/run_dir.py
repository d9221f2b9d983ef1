"""The run directory: where a run's files go, and resuming it.

`claim_run_dir` creates (or, on resume, reopens) `<output_dir>/<name>` and
holds it for the run's life; `resume_config` rebuilds a resumed run's
settings from its `config.json`; `write_settings` writes `config.json` and
`flags.cfg`.

Two runs never share a folder. A run owns its folder through the file
`OWNER` in it: created exclusively (so of two runs started together with
one name exactly one gets the folder), and locked (`fcntl.flock`) until the
run ends, so a `--resume` of a run another process is training is refused.
A lock dies with its process: a killed run's folder can be resumed at once.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import socket
import time

from absl import logging

from elr_tf.experiment.checkpointing import atomic_write_text
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.settings import flag_name

# Settings a resumed run takes from the command line (see `resume_config`).
_RESUME_OVERRIDES = ("resume", "epochs", "verbose")

# The file that marks (and, locked, holds) a run's folder.
OWNER = ".owner.json"
# What a run writes before it trains; a folder of only these is removed when
# the start fails.
_START_FILES = {OWNER, "config.json", "flags.cfg", "noisy_labels.npy", "true_labels.npy"}


class RunClaim:
    """A run's hold on its folder: the locked `OWNER` file, released on exit."""

    def __init__(self, run_dir, fd):
        self.run_dir = run_dir
        self._fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """Unlocks the folder (the `OWNER` file stays: the folder is the run's)."""
        if self._fd is not None:
            os.close(self._fd)  # Closing the descriptor drops its flock.
            self._fd = None

    def abandon(self):
        """Releases, and removes the folder if the run had not started training.

        Only the files written before training (settings, labels, partial
        writes) are removed; a folder with checkpoints or logs stays.
        """
        self.release()
        names = os.listdir(self.run_dir)
        if all(n in _START_FILES or n.startswith(".partial-") for n in names):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.run_dir, name))
            os.rmdir(self.run_dir)


def claim_run_dir(config, multi_worker=False):
    """Creates (or, on resume, reopens) the run directory and holds it.

    A new run takes `<output_dir>/<name>` if no run has it (an empty folder,
    e.g. left by a failed start, is taken), else the first free
    `<name>-2`, `<name>-3`, ..., and says so in one log line. Multi-worker
    runs keep the plain name, so that all workers agree on it, and do not
    lock it.

    Returns:
        `(run_dir, claim)`: the folder, and the `RunClaim` to release when
        the run ends (a context manager).

    Raises:
        ValueError: the folder cannot be created, or (on resume) another
            process is training the run.
    """
    if config.resume:
        return config.resume, _hold(config.resume, new=False)
    base = os.path.join(config.output_dir, config.name)
    _make_dirs(config.output_dir, config)
    if multi_worker:
        _make_dirs(base, config)
        return base, RunClaim(base, None)
    run_dir, number = base, 1
    while True:
        claim = _try_claim(run_dir, config)
        if claim is not None:
            break
        number += 1
        run_dir = f"{base}-{number}"
    if run_dir != base:
        logging.warning(
            "--name=%s is in use by a run started %s; this run is %s.",
            config.name,
            _started(base),
            run_dir,
        )
    return run_dir, claim


def _make_dirs(path, config):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise _cannot_create(path, config, error.strerror) from None


def _cannot_create(path, config, reason):
    return ValueError(
        f"Cannot create the run directory {path} ({reason}): "
        "`--output_dir` and `--name` must name a directory that can be created. "
        f"Received: --output_dir={config.output_dir!r}, --name={config.name!r}"
    )


def _try_claim(run_dir, config):
    # The folder is free when it does not exist or is empty; the exclusive
    # creation of OWNER decides between runs that see it free together.
    try:
        os.mkdir(run_dir)
    except FileExistsError:
        if not os.path.isdir(run_dir):
            raise _cannot_create(run_dir, config, "a file has that name") from None
        if os.listdir(run_dir):
            return None
    except OSError as error:
        raise _cannot_create(run_dir, config, error.strerror) from None
    try:
        return _hold(run_dir, new=True)
    except FileExistsError:
        return None


def _hold(run_dir, new):
    path = os.path.join(run_dir, OWNER)
    flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if new else 0)
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(
            f"`--resume={run_dir}` is being trained by another process "
            f"({_owner_text(run_dir)}). Wait for it to end, or stop it first."
        ) from None
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(record).encode())
    os.fsync(fd)
    return RunClaim(run_dir, fd)


def _owner(run_dir):
    # The OWNER record of `run_dir` as a dict, or None when it is absent or
    # unreadable (a folder of other files, or a run being claimed).
    try:
        with open(os.path.join(run_dir, OWNER)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    fields = ("pid", "host", "started")
    return record if isinstance(record, dict) and all(k in record for k in fields) else None


def _owner_text(run_dir):
    record = _owner(run_dir)
    if record is None:
        return "owner unknown"
    return f"pid {record['pid']} on {record['host']}, started {record['started']}"


def _started(run_dir):
    # When the run in `run_dir` started: its OWNER record, else the folder's time.
    record = _owner(run_dir)
    if record is not None:
        return f"at {record['started']}"
    stamp = time.localtime(os.path.getmtime(run_dir))
    return "at " + time.strftime("%Y-%m-%dT%H:%M:%S", stamp) + " (folder time)"


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
