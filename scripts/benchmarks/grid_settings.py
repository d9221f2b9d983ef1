"""The settings of a label-finder grid: `--grid` and `--noise_seeds`.

`compare_cleanlab.py`, `finder_signals.py` and `finder_on_arrays.py` read
the same grid: synthetic noise `KIND:RATE` (symmetric, asymmetric,
instance-dependent) or a human label set `cifar10n:SET`, each run once
per seed.
"""

import dataclasses

from elr_tf.data.sources import tfds as tfds_source

# The grid's noise kinds and the noise models (`--noise`) they run.
GRID_KINDS = {"sym": "symmetric", "asym": "asymmetric", "idn": "idn"}
# Kinds whose noise is a human label set (`--cifar_n_label`) of a data set;
# the sets are the data set's own (`tfds.CIFAR_N_LABEL_SETS`).
REAL_KINDS = {"cifar10n": "cifar10_n"}


def setting_config(config, setting, seed):
    """The `TrainConfig` of one grid setting `(kind, rate or label set)` and seed."""
    kind, value = setting
    if kind in REAL_KINDS:
        return dataclasses.replace(
            config,
            dataset=REAL_KINDS[kind],
            cifar_n_label=value,
            noise_rate=0.0,
            noise="symmetric",
            asymmetric=False,
            seed=seed,
        )
    return dataclasses.replace(
        config, noise_rate=value, noise=GRID_KINDS[kind], asymmetric=False, seed=seed
    )


def setting_label(setting):
    """`("sym", 0.4)` -> `"sym 40%"`; `("cifar10n", "worst")` -> `"cifar10n worst"`."""
    kind, value = setting
    return f"{kind} {value}" if kind in REAL_KINDS else f"{kind} {value:.0%}"


def count_error(estimated, true):
    """Relative error of an estimated count, `estimated / true - 1` (NaN if true is 0)."""
    return estimated / true - 1.0 if true else float("nan")


def grid_fields(settings):
    """The `TrainConfig` fields the grid's settings set, whatever the flags say."""
    fields = {"noise_rate", "noise", "asymmetric", "seed"}
    if any(kind in REAL_KINDS for kind, _ in settings):
        fields.add("cifar_n_label")
        if all(kind in REAL_KINDS for kind, _ in settings):
            fields.add("dataset")
    return fields


def parse_seeds(values):
    """`["1", "2"]` -> `[1, 2]`; ValueError names `--noise_seeds`."""
    if not values or not all(v.strip().isdigit() for v in values):
        raise ValueError(
            "`--noise_seeds` must be a comma-separated list of integers >= 0. Received: "
            f"--noise_seeds={','.join(values)!r}"
        )
    return [int(v) for v in values]


def parse_grid(text):
    """`"sym:0.2,cifar10n:worst"` -> `[("sym", 0.2), ("cifar10n", "worst")]`.

    ValueError names the flag.
    """
    settings = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, rate = item.partition(":")
        if kind in REAL_KINDS:
            label_sets = tuple(tfds_source.CIFAR_N_LABEL_SETS[REAL_KINDS[kind]])
            if rate not in label_sets:
                raise ValueError(
                    f"`--grid` takes {kind}:SET with SET one of {', '.join(label_sets)}. "
                    f"Received: --grid={text!r} (item {item!r})"
                )
            settings.append((kind, rate))
            continue
        try:
            value = float(rate)
        except ValueError:
            value = None
        if kind not in GRID_KINDS or value is None or not 0.0 < value < 1.0:
            raise ValueError(
                "`--grid` must be a comma-separated list of KIND:RATE with KIND one of "
                f"{', '.join(GRID_KINDS)} and 0 < RATE < 1, or "
                f"{'/'.join(REAL_KINDS)}:SET. Received: --grid={text!r} (item {item!r})"
            )
        settings.append((kind, value))
    if not settings:
        raise ValueError(f"`--grid` must name at least one setting. Received: --grid={text!r}")
    return settings
