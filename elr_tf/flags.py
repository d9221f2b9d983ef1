"""absl flags for the training programs, one per `TrainConfig` field.

Defined here once so that `scripts/train.py` and other programs read the
same flagfiles. Flagfiles nest (`--flagfile=base.cfg` inside a flagfile) and
later values override earlier ones.
"""

import dataclasses

from absl import flags

from elr_tf.training import _FLAG_NAMES, TrainConfig

_HELP = {
    "dataset": "Data set: fashion_mnist, cifar10, cifar100, cifar10_n, cifar100_n, "
    "clothing1m, webvision.",
    "data_dir": "Data directory (tfds data_dir, IDX folder or file-list root).",
    "arch": "Backbone preset, see elr_tf.backbones.PRESETS.",
    "loss": "`elr`, `elr_plus` (two networks, mixup, weight averaging) or `ce` "
    "(the cross-entropy baseline through the same program).",
    "lr": "Initial learning rate.",
    "bs": "Global batch size.",
    "beta": "Temporal-ensembling momentum of the targets, in [0, 1).",
    "lam": "ELR regularisation strength lambda, >= 0.",
    "percent": "Synthetic noise rate in [0, 1] (e.g. 0.4 for 40%).",
    "asym": "Asymmetric (class-dependent) noise instead of symmetric.",
    "include_true_class": "Symmetric noise may redraw the true class (as the reference).",
    "noise_matrix": ".npy [C, C] transition matrix for synthetic noise.",
    "seed": "Seed of noise, split, shuffling, augmentation and initialisation.",
    "epochs": "Number of epochs.",
    "name": "Run name; the run directory is <output_dir>/<name>.",
    "output_dir": "Parent directory of run directories.",
    "resume": "Run directory of an interrupted run to continue.",
    "gpus": "Devices: GPU numbers `0,1` (more than one: MirroredStrategy) or "
    "device names `cpu:0,cpu:1`.",
    "num_train": "Use only this many training examples (quick runs).",
    "val_fraction": "Per-class fraction of the training set held out (noisy) for validation.",
    "weight_decay": "L2 weight decay (coupled, as SGD weight_decay in the reference).",
    "momentum": "SGD momentum.",
    "schedule": "Learning-rate schedule: cosine (warm restarts), multistep, constant.",
    "t0": "Cosine schedule: epochs per restart.",
    "eta_min": "Cosine schedule: minimum learning rate.",
    "milestones": "Multistep schedule: epochs at which lr is multiplied by gamma.",
    "gamma": "Multistep schedule: decay factor.",
    "cifar_n_label": "CIFAR-N label set: aggre, random1, random2, random3, worst; noisy100.",
    "noisy_labels_file": ".npy or .csv (id,label) replacing the training labels.",
    "balanced_batches": "Draw this many class-balanced batches per epoch (Clothing1M).",
    "image_size": "Crop size override for Clothing1M/WebVision.",
    "augment": "Random crop/flip augmentation of training images (ELR-SPEC inputs).",
    "weights": "Pretrained weights for keras.applications backbones: imagenet, none or a path.",
    "table_dtype": "Target-table storage: float32, bfloat16 or float16 (half the memory).",
    "table_placement": "`host` keeps the target table in host memory (single device).",
    "jit_compile": "Compile the train step with XLA.",
    "mixed_precision": "Train with the mixed_float16 policy (GPUs).",
    "verbose": "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.",
    "malpha": "ELR+: mixup Beta(alpha, alpha) parameter; 0 turns mixup off.",
    "ealpha": "ELR+: final weight-averaging momentum, in [0, 1).",
    "ema_update": "ELR+: ramp the averaging momentum over --ema_step steps "
    "(else the running-mean schedule min(1 - 1/(step+1), ealpha)).",
    "ema_step": "ELR+: ramp length of the averaging momentum, in optimizer steps.",
    "coef_step": "ELR+: ramp length of the ELR term, in optimizer steps (0: no ramp).",
    "label_reweighting": "ELR+: the label term uses y_mix * q renormalised: auto (on iff "
    "100 classes, as the reference), on or off.",
}


def define_flags(flag_values=flags.FLAGS):
    """Defines one absl flag per `TrainConfig` field; returns the holders."""
    holders = {}
    fv = {"flag_values": flag_values}
    for field in dataclasses.fields(TrainConfig):
        name = _FLAG_NAMES.get(field.name, field.name)
        default = field.default
        help_text = _HELP[field.name]
        kind = field.type if isinstance(field.type, type) else None
        if isinstance(default, bool):
            holders[field.name] = flags.DEFINE_bool(name, default, help_text, **fv)
        elif isinstance(default, tuple):
            holders[field.name] = flags.DEFINE_list(name, list(map(str, default)), help_text, **fv)
        elif isinstance(default, int) or "int" in str(field.type):
            holders[field.name] = flags.DEFINE_integer(name, default, help_text, **fv)
        elif isinstance(default, float) or kind is float:
            holders[field.name] = flags.DEFINE_float(name, default, help_text, **fv)
        else:
            holders[field.name] = flags.DEFINE_string(name, default, help_text, **fv)
    return holders


def config_from_argv(argv):
    """Parses command-line style arguments (flagfiles included) to a config.

    Example:

    >>> config_from_argv(["--flagfile=configs/fashion_mnist_sym.cfg", "--epochs=1"])
    """
    flag_values = flags.FlagValues()
    holders = define_flags(flag_values)
    flag_values(["elr_tf", *argv])
    return config_from_flags(holders)


def config_from_flags(holders):
    """Builds a `TrainConfig` from the parsed flag holders."""
    values = {field: holder.value for field, holder in holders.items()}
    values["milestones"] = tuple(int(m) for m in values["milestones"])
    return TrainConfig(**values)
