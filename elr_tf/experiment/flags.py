"""absl flags made from the `setting` declarations of a config dataclass.

`define_flags(TrainConfig)` defines one flag per field (its declared name,
type and help), so `scripts/train.py`, `scripts/tune.py` and the comparison
scripts read the same flagfiles. Flagfiles nest (`--flagfile=base.cfg`
inside a flagfile) and later values override earlier ones.
"""

import contextlib
import dataclasses
import os
import sys

from absl import flags, logging

from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.settings import (
    flag_kind,
    flag_name,
    outside_text,
    outside_their_runs,
    refuse_inapplicable,
)

_DEFINE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def define_flags(config_class=TrainConfig, flag_values=flags.FLAGS):
    """Defines one absl flag per field of `config_class`; returns the holders.

    Args:
        config_class: a dataclass whose fields are declared with `setting`.
        flag_values: the `FlagValues` to define them in.

    Returns:
        dict of field name to `FlagHolder`.
    """
    holders = {}
    for field in dataclasses.fields(config_class):
        name, kind, help_text = flag_name(field), flag_kind(field), field.metadata["help"]
        if kind is tuple:
            holder = flags.DEFINE_list(
                name, list(map(str, field.default)), help_text, flag_values=flag_values
            )
        else:
            holder = _DEFINE[kind](name, field.default, help_text, flag_values=flag_values)
        holders[field.name] = holder
    return holders


def config_from_flags(holders, config_class=TrainConfig, command_line=None):
    """Builds `config_class` from parsed flag holders.

    List flags become tuples of ints; a value that is not an integer raises
    ValueError naming the flag. A flag typed on the command line (even at
    its default value) for a run it does not apply to is refused
    (`config.refuse_inapplicable`); one that comes from a flagfile is left
    at its default and named in a log line. On `--resume` the saved run
    decides (`run_dir.resume_config`).

    Args:
        holders: the `define_flags` holders, parsed.
        config_class: the config dataclass.
        command_line: the arguments as typed (flagfiles not expanded);
            None: `sys.argv[1:]`.
    """
    values = {}
    for field in dataclasses.fields(config_class):
        value = holders[field.name].value
        if flag_kind(field) is tuple:
            value = _int_tuple(flag_name(field), value)
        values[field.name] = value
    if values.get("resume"):
        return config_class(**values)  # The saved run decides (`resume_config`).
    # A flagfile is a template shared by runs (a config's --lambda also
    # serves its --loss=ce baseline): its settings that do not apply are
    # left at their defaults, named in one log line. A flag typed on the
    # command line that does not apply is refused.
    given = given_fields(holders)
    typed = _typed_fields(config_class, command_line)
    unused = [
        field
        for field in outside_their_runs(config_class, _Values(config_class, values))
        if field.name in given and field.name not in typed
    ]
    if unused:
        logging.warning(
            "Not used by this run, from the flagfile: %s.",
            "; ".join(outside_text(config_class, f, values[f.name]) for f in unused),
        )
        values.update({f.name: f.default for f in unused})
    config = config_class(**values)
    refuse_inapplicable(config, given & typed)
    return config


class _Values:
    # Field values (and the config's properties) before the config is made.
    def __init__(self, config_class, values):
        self.__dict__.update(values)
        self._class = config_class

    def __getattr__(self, name):
        prop = getattr(self._class, name, None)
        if isinstance(prop, property):
            return prop.fget(self)
        raise AttributeError(name)


def _typed_fields(config_class, command_line):
    """Fields whose flag is typed in `command_line` itself (not in a flagfile)."""
    by_flag = {flag_name(f): f.name for f in dataclasses.fields(config_class)}
    typed = set()
    for token in sys.argv[1:] if command_line is None else command_line:
        name = token.lstrip("-").split("=", 1)[0]
        if not token.startswith("-") or name == "flagfile":
            continue
        if name not in by_flag and name.startswith("no"):
            name = name[2:]
        if name in by_flag:
            typed.add(by_flag[name])
    return typed


def given_fields(holders):
    """Names of the fields whose flag was given (on the command line or in a flagfile)."""
    return {name for name, holder in holders.items() if holder.present}


def define_debug_flag(flag_values=flags.FLAGS):
    """Defines `--debug`: show tracebacks of errors a user can fix (see `user_errors`)."""
    return flags.DEFINE_bool(
        "debug",
        False,
        "Show the traceback of errors a user can fix (also: environment ELR_TF_DEBUG=1).",
        flag_values=flag_values,
    )


@contextlib.contextmanager
def user_errors(debug=False):
    """Turns errors a user can fix into one line on stderr and exit status 1.

    Bad settings (ValueError), missing or unwritable files and a full disk
    (OSError) and a diverged run (FloatingPointError) print their message
    without a traceback; with `debug` (or `ELR_TF_DEBUG=1`) they propagate.
    The process ends with `os._exit` so that no library teardown can crash
    after the message (every file of the run is already written atomically).
    """
    try:
        yield
    except (ValueError, OSError, FloatingPointError) as error:
        if debug or os.environ.get("ELR_TF_DEBUG", "") not in ("", "0"):
            raise
        sys.stdout.flush()
        sys.stderr.write(f"Error: {error}\n(--debug shows the traceback)\n")
        sys.stderr.flush()
        os._exit(1)


def config_from_argv(argv, config_class=TrainConfig):
    """Parses command-line style arguments (flagfiles included) to a config.

    Example:

    >>> config_from_argv(["--flagfile=configs/fashion_mnist_sym.cfg", "--epochs=1"])
    """
    flag_values = flags.FlagValues()
    holders = define_flags(config_class, flag_values)
    flag_values(["elr_tf", *argv])
    return config_from_flags(holders, config_class, command_line=argv)


def _int_tuple(name, items):
    try:
        return tuple(int(item) for item in items)
    except ValueError:
        raise ValueError(
            f"`--{name}` must be comma-separated integers. Received: --{name}={','.join(items)}"
        ) from None
