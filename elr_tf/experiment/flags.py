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

from absl import flags

from elr_tf.experiment.config import TrainConfig, flag_kind, flag_name

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


def config_from_flags(holders, config_class=TrainConfig):
    """Builds `config_class` from parsed flag holders.

    List flags become tuples of ints; a value that is not an integer raises
    ValueError naming the flag.
    """
    values = {}
    for field in dataclasses.fields(config_class):
        value = holders[field.name].value
        if flag_kind(field) is tuple:
            value = _int_tuple(flag_name(field), value)
        values[field.name] = value
    return config_class(**values)


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
    return config_from_flags(holders, config_class)


def _int_tuple(name, items):
    try:
        return tuple(int(item) for item in items)
    except ValueError:
        raise ValueError(
            f"`--{name}` must be comma-separated integers. Received: --{name}={','.join(items)}"
        ) from None
