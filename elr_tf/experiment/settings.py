"""Settings declared once with their flag: the machinery behind `TrainConfig`.

`setting(default, help, flag=..., check=..., applies=...)` declares a field
of a config dataclass: its command-line flag, help text, check and the runs
it belongs to (`When`). `elr_tf.experiment.flags` makes absl flags of the
declarations; `check_fields`, `refuse_inapplicable`, `to_flagfile` and
`from_dict` check, write and read a config back.
"""

import dataclasses
import math
import types
import typing

from elr_tf import checks


def setting(default, help, *, flag=None, check=None, applies=None):  # noqa: A002 (absl's word)
    """Declares a config field with its flag name, help text and check.

    Args:
        default: the field's default.
        help: the flag's help text.
        flag: the command-line name; None: the field's name.
        check: `check(name, value)` raising ValueError naming `name` (the
            flag, with dashes), or None. `None` values are not checked.
        applies: a `When`: the runs the setting belongs to. Set outside
            them (to another value than its default, or given as a flag),
            it is refused; `flags.cfg` leaves it out. None: every run.
    """
    metadata = {"flag": flag, "help": help, "check": check, "applies": applies}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class When:
    """The runs a setting belongs to: those whose `field` is among `values`.

    `field` may name a property (`noise_model`); `values` may instead be a
    predicate `value -> bool` described by `text`.
    """

    field: str
    values: tuple | None = None
    predicate: typing.Callable | None = None
    text: str = ""

    def holds(self, config):
        value = getattr(config, self.field)
        return self.predicate(value) if self.predicate else value in self.values

    def describe(self, config_class):
        """The runs as flags, e.g. `--loss=elr or --loss=elr_plus`."""
        if self.text:
            return self.text
        fields = {f.name: f for f in dataclasses.fields(config_class)}
        flag = flag_name(fields[self.field]) if self.field in fields else self.field
        return " or ".join(f"--{flag}={v}" for v in self.values)


def refuse_inapplicable(config, given=None):
    """Refuses settings outside the runs they belong to (`setting(applies=...)`).

    Args:
        config: a config dataclass whose fields are declared with `setting`.
        given: names of the fields given as flags, which are refused even at
            their default value; None checks only values other than the
            default.

    Raises:
        ValueError: naming each such flag and the runs it belongs to.
    """
    config_class = type(config)
    refused = [
        outside_text(config_class, field, getattr(config, field.name))
        for field in outside_their_runs(config_class, config)
        if (given is not None and field.name in given)
        or getattr(config, field.name) != field.default
    ]
    if refused:
        raise ValueError(
            "These flags do not apply to this run and are refused rather than ignored: "
            f"{'; '.join(refused)}. Remove them, or change the setting they depend on."
        )


def outside_their_runs(config_class, config):
    """The fields of `config_class` declared with `applies` whose runs exclude `config`.

    Args:
        config_class: a config dataclass whose fields are declared with `setting`.
        config: a `config_class`, or any object with its fields (and the
            properties `When` reads) as attributes.
    """
    return [
        field
        for field in dataclasses.fields(config_class)
        if field.metadata.get("applies") is not None and not field.metadata["applies"].holds(config)
    ]


def outside_text(config_class, field, value):
    """`--flag=value (only with <its runs>)`, for messages about such a field."""
    runs = field.metadata["applies"].describe(config_class)
    return f"--{flag_name(field)}={_flag_text(value)} (only with {runs})"


def flag_name(field):
    """The command-line name of a dataclass field declared with `setting`."""
    return field.metadata.get("flag") or field.name


def flag_kind(field):
    """`bool`, `int`, `float`, `str` or `tuple`: the type of the field's flag."""
    kind = field.type
    if isinstance(kind, types.UnionType):
        kind = next(arg for arg in kind.__args__ if arg is not type(None))
    return kind


def check_fields(config):
    """Runs every field's declared check; raises ValueError naming the flag."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        check = field.metadata.get("check")
        if check is not None and value is not None:
            check(f"--{flag_name(field)}", value)


def to_flagfile(config, skip=()):
    """The fields of a `setting` dataclass as absl flagfile lines (`--flag=value`).

    Settings that do not apply to the run (see `setting(applies=...)`) are
    left out: the file records what the run used.
    """
    left_out = set(skip) | {f.name for f in outside_their_runs(type(config), config)}
    lines = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None or field.name in left_out:
            continue
        lines.append(f"--{flag_name(field)}={_flag_text(value)}")
    return "\n".join(lines) + "\n"


def _flag_text(value):
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def from_dict(config_class, values, **overrides):
    """Builds `config_class` from a dict keyed by field names (a `config.json`).

    Every field must be present: a missing one is refused, naming it, rather
    than given a default the saved run may not have had.
    """
    if not isinstance(values, dict):
        raise ValueError(
            f"A {config_class.__name__} must be a mapping of settings. "
            f"Received: {type(values).__name__} {str(values)[:80]}"
        )
    by_key = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(by_key))
    if unknown:
        raise ValueError(f"Unknown settings {unknown} for {config_class.__name__}.")
    missing = sorted(set(by_key) - set(values) - set(overrides))
    if missing:
        raise ValueError(f"Missing settings {missing} for {config_class.__name__}.")
    kwargs = {}
    for key, value in values.items():
        field = by_key[key]
        if flag_kind(field) is tuple and value is not None:
            value = tuple(value)
        kwargs[field.name] = value
    kwargs.update(overrides)
    return config_class(**kwargs)


def choice(choices):
    """A `setting` check: the value is one of `choices`."""
    return lambda name, value: checks.one_of(name, value, tuple(choices))


def between(low, high=math.inf, **open_ends):
    """A `setting` check: a finite number in the interval (see `checks.number_in`)."""
    return lambda name, value: checks.number_in(name, value, low, high, **open_ends)
