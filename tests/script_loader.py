"""Imports a benchmark script of `scripts/benchmarks/` (not a package) as a module."""

import importlib.util
import pathlib

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "benchmarks"


def load_script(name):
    """The module `scripts/benchmarks/<name>.py`, freshly executed."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
