"""Old module paths of elr_tf, kept importable after the move to sub-packages.

`import elr_tf.training` (and the other flat modules of versions before the
package had folders) returns a module whose attributes are looked up in the
new homes, with a DeprecationWarning naming them.
"""

import functools
import importlib
import importlib.abc
import importlib.util
import types
import warnings

MOVED = {
    "elr_tf.audit": ("elr_tf.diagnostics.label_audit", "elr_tf.diagnostics.ranking"),
    "elr_tf.backbones": ("elr_tf.models.backbones",),
    "elr_tf.checkpointing": ("elr_tf.experiment.checkpointing",),
    "elr_tf.datasets": (
        "elr_tf.data.sources",
        "elr_tf.data.example_set",
        "elr_tf.data.pipeline",
        "elr_tf.data.readers",
    ),
    "elr_tf.elr_model": ("elr_tf.models.elr_model",),
    "elr_tf.elr_plus_model": ("elr_tf.models.elr_plus_model",),
    "elr_tf.flags": ("elr_tf.experiment.flags",),
    "elr_tf.indexed_model": ("elr_tf.models.indexed_model",),
    "elr_tf.memorization": ("elr_tf.diagnostics.memorization",),
    "elr_tf.mixup": ("elr_tf.callbacks.mixup",),
    "elr_tf.noise": ("elr_tf.data.noise",),
    "elr_tf.training": (
        "elr_tf.experiment.train",
        "elr_tf.experiment.config",
        "elr_tf.experiment.assemble",
        "elr_tf.experiment.callbacks",
    ),
    "elr_tf.tuning": ("elr_tf.experiment.tuning",),
    "elr_tf.validation": ("elr_tf.checks",),
    "elr_tf.weight_averaging": ("elr_tf.callbacks.weight_averaging",),
}


@functools.cache
def _old_signatures():
    """Functions whose name or argument order changed, by old module."""
    from absl import flags as absl_flags

    from elr_tf import checks
    from elr_tf.experiment import flags
    from elr_tf.experiment.tuning import TuningOptions

    def check_range(flag, value, low, high, low_open=False, high_open=False):
        return checks.number_in(
            f"--{flag}", value, low, high, low_open=low_open, high_open=high_open
        )

    return {
        "elr_tf.flags": {
            "define_flags": lambda flag_values=absl_flags.FLAGS: flags.define_flags(
                flag_values=flag_values
            ),
        },
        "elr_tf.training": {
            "check_choice": lambda flag, value, choices: checks.one_of(f"--{flag}", value, choices),
            "check_range": check_range,
            "check_positive_int": lambda flag, value: checks.positive_int(f"--{flag}", value),
        },
        "elr_tf.tuning": {
            "define_flags": lambda flag_values=absl_flags.FLAGS: flags.define_flags(
                TuningOptions, flag_values
            ),
            "options_from_flags": lambda holders: flags.config_from_flags(holders, TuningOptions),
        },
        "elr_tf.validation": {
            "int_vector": lambda values, name, length=None: checks.int_vector(name, values, length),
        },
    }


class _MovedModule(types.ModuleType):
    """Resolves attributes in the module's new homes, in order."""

    def __init__(self, name, homes):
        super().__init__(name, f"Moved to {', '.join(homes)}.")
        self.__homes = homes

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        old = _old_signatures().get(self.__name__, {})
        if attribute in old:
            return old[attribute]
        for home in self.__homes:
            module = importlib.import_module(home)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self.__homes)}) has no "
            f"attribute {attribute!r}"
        )


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A meta-path finder that serves the old paths in `MOVED`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        homes = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {', '.join(homes)}; the old path still works.",
            DeprecationWarning,
            stacklevel=3,
        )
        return _MovedModule(spec.name, homes)

    def exec_module(self, module):
        pass
