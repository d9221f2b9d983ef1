"""`assemble(config)`: the one place a run is set up.

Training (`train`), tuning (`tuning`) and the comparison scripts all call
it, so seeding, precision policy, strategy, data, the training input and the
compiled model are made the same way everywhere.

Example:

```python
run = assemble(TrainConfig(noise_rate=0.4, epochs=5))
run.model.fit(run.train_ds, epochs=5, callbacks=run.callbacks(), shuffle=False)
```
"""

import dataclasses
import json
import os
import re

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from elr_tf.callbacks import Mixup, WeightAveraging
from elr_tf.data import NoisyData, load_dataset, make_eval_dataset, make_train_dataset, noise
from elr_tf.experiment.callbacks import EpochClock
from elr_tf.experiment.config import LABEL_REWEIGHTING, TrainConfig, teacher_span_argument
from elr_tf.experiment.linear_warmup import LinearWarmup
from elr_tf.experiment.settings import flag_name
from elr_tf.models import ELRModel, ELRPlusModel, backbones


@dataclasses.dataclass
class Run:
    """A set-up run: everything `fit` needs.

    Attributes:
        config: the validated `TrainConfig`.
        strategy: the `tf.distribute.Strategy` the model was built in.
        data: the `NoisyData` (noise installed).
        noise_rate: fraction of wrong training labels, or None when the true
            labels are unknown.
        epoch: int64 `tf.Variable` the pipeline reads its epoch from.
        train_ds: the training `tf.data.Dataset` of `((x, ids), y)`.
        steps_per_epoch: batches per epoch.
        model: the compiled `ELRModel` or `ELRPlusModel`.
    """

    config: object
    strategy: tf.distribute.Strategy
    data: NoisyData
    noise_rate: float | None
    epoch: tf.Variable
    train_ds: tf.data.Dataset
    steps_per_epoch: int
    model: keras.Model

    def callbacks(self):
        """The callbacks every `fit` of this run needs, in order.

        `EpochClock` (the pipeline's epoch) and, for ELR+, weight averaging
        and mixup.
        """
        return [EpochClock(self.epoch), *method_callbacks(self.config)]

    def eval_dataset(self, example_set):
        """An evaluation pipeline of `example_set` (e.g. `run.data.test`)."""
        return make_eval_dataset(example_set, self.data, eval_batch_size(self.config))


def assemble(config, *, data=None, strategy=None, backbone_fn=None, metrics=None):
    """Sets up one run of `config`: data, strategy and the compiled model.

    Args:
        config: a `TrainConfig` (validated when it was made).
        data: an already loaded `(NoisyData, noise_rate)` pair from
            `load_noisy_data(config)`, to reuse across runs (tuning trials,
            cross-validation folds); None loads it.
        strategy: the strategy to build in; None: `make_strategy(config.gpus)`.
        backbone_fn: optional `backbone_fn(num_classes, input_shape)` returning
            a Keras model that outputs logits, replacing the `arch` preset.
        metrics: compiled metrics; None: top-1 `accuracy` and `top5`.

    Returns:
        A `Run`.
    """
    strategy = strategy or make_strategy(config.gpus)
    if data is None:
        data = load_noisy_data(config)
    data, noise_rate = data
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds = make_train_input(config, data, epoch)
    steps_per_epoch = int(train_ds.cardinality())
    # Every run of a seed starts from the same initialisation.
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    with strategy.scope():
        model = build_model(config, data, backbone_fn)
        compile_model(model, config, steps_per_epoch, metrics)
        if model.built:
            # Built now so that loading a checkpoint restores the optimiser's
            # momentum and step count, hence the schedule's position.
            model.optimizer.build(model.trainable_variables)
    return Run(config, strategy, data, noise_rate, epoch, train_ds, steps_per_epoch, model)


def make_train_input(config, data, epoch):
    """The training dataset of a run: batches drawn from `(config.seed, epoch)`.

    Args:
        config: the run's `TrainConfig`.
        data: its `NoisyData`.
        epoch: int64 `tf.Variable` set to the epoch before each epoch
            (`EpochClock`).
    """
    separate = config.loss == "elr_plus" and config.data_order == "separate"
    return make_train_dataset(
        data,
        config.batch_size,
        seed=config.seed,
        augment=config.augment,
        balanced_batches=config.balanced_batches,
        epoch=epoch,
        shuffles=2 if separate else 1,
    )


def make_strategy(gpus):
    """`None`: default strategy; one device: that device; more: Mirrored.

    With a `TF_CONFIG` naming several workers: `MultiWorkerMirroredStrategy`.

    Args:
        gpus: comma-separated device list: GPU numbers (`"0,1"`) or full
            device names (`"cpu:0,cpu:1"`, used by the tests with logical
            CPU devices).
    """
    if cluster_size() > 1:
        # Every worker runs this same program; gradients and target-table
        # updates are all-reduced / all-gathered across them. Must be created
        # before any other TF op.
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if not gpus:
        return tf.distribute.get_strategy()
    devices = []
    for item in str(gpus).split(","):
        item = item.strip().lower()
        devices.append(f"/gpu:{item}" if item.isdigit() else f"/{item}")
    known = {d.name.lower().replace("/device:", "/") for d in tf.config.list_logical_devices()}
    missing = [d for d in devices if d not in known]
    if missing:
        raise ValueError(
            f"`--gpus` names devices this machine does not have: {missing}. "
            f"Received: --gpus={gpus!r}; available: {sorted(known)}"
        )
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


def cluster_size():
    """Number of workers `TF_CONFIG` describes (0 without one)."""
    spec = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return sum(len(spec.get(role, [])) for role in ("chief", "worker"))


def is_chief(strategy):
    """True unless this process is a non-chief worker of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or cluster_size() <= 1:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def load_noisy_data(config):
    """Loads the data set and installs the requested synthetic noise.

    Returns:
        `(data, noise_rate)`: `NoisyData` whose train and val labels are
        noisy (the test set stays clean) and the fraction of wrong training
        labels, or None when the true labels are unknown.
    """
    try:
        data = load_dataset(**{arg: getattr(config, field) for arg, field in _LOAD_FIELDS.items()})
    except (ValueError, FileNotFoundError) as error:
        raise type(error)(as_flags(str(error))) from None
    if config.synthetic_noise:
        if data.train.true_labels is None:
            # The given labels are the clean ones the synthetic noise starts
            # from: keep them as the truth, so the audit can be measured.
            data = dataclasses.replace(
                data,
                **{
                    name: dataclasses.replace(part, true_labels=part.labels)
                    for name, part in (("train", data.train), ("val", data.val))
                },
            )
        clean = data.labels_by_id()
        used = clean >= 0
        name = config.noise_model
        try:
            result = noise.make_noisy_labels(
                clean[used],
                name,
                None if name == "matrix" else config.noise_rate,
                data.num_classes,
                config.seed,
                **noise_options(config, data, used),
            )
        except ValueError as error:
            given = (
                f"--noise_matrix={config.noise_matrix}"
                if name == "matrix"
                else f"--noise={name} --percent={config.noise_rate}"
            )
            raise ValueError(f"{given}: {as_flags(str(error), _NOISE_FIELDS)}") from None
        noisy = clean.copy()
        noisy[used] = result.noisy
        data = data.with_labels_by_id(noisy, label_source=result.kind)
    if not len(data.train):
        raise ValueError(
            f"No training example is left after the split of {config.dataset}: lower "
            f"--val_fraction (received {config.val_fraction}) or raise --num_train "
            f"(received {config.num_train})."
        )
    if backbones.PRESETS.get(config.arch, {}).get("preprocessing") is not None:
        # A `keras.applications` backbone prepares its own inputs from raw
        # 0-255 pixels, so the pipeline passes them through unnormalised.
        data = dataclasses.replace(data, mean=None, std=None)
    true = data.train.true_labels
    if true is None or (true < 0).all():
        return data, None
    known = true >= 0
    return data, float(np.mean(data.train.labels[known] != true[known]))


# `load_dataset` arguments and the config fields they come from.
_LOAD_FIELDS = {
    "name": "dataset",
    "data_dir": "data_dir",
    "num_train": "num_train",
    "val_fraction": "val_fraction",
    "split_seed": "seed",
    "cifar_n_label": "cifar_n_label",
    "noisy_labels_file": "noisy_labels_file",
    "image_size": "image_size",
    "skip_unreadable": "skip_unreadable",
    "skip_duplicates": "skip_duplicates",
}

# `make_noisy_labels` arguments and the config fields they come from.
_NOISE_FIELDS = {"matrix": "noise_matrix", "rate": "noise_rate", "name": "noise"}

_FLAGS = {field.name: flag_name(field) for field in dataclasses.fields(TrainConfig)}


def as_flags(message, fields=None):
    """A library message with its argument names spelled as the program's flags.

    Args:
        message: the message of a `load_dataset` (or noise) error.
        fields: dict of argument name to the `TrainConfig` field it comes
            from; None: `load_dataset`'s.

    `skip_unreadable=True` becomes `--skip_unreadable`, `` `name` `` and
    `name=` become `--dataset`, `data_dir=x` becomes `--data_dir=x`.
    """
    fields = _LOAD_FIELDS if fields is None else fields
    for argument in ("skip_unreadable", "skip_duplicates"):
        message = message.replace(f"{argument}=True", f"--{argument}")
    words = "|".join(sorted(fields, key=len, reverse=True))
    # An argument name in backticks, or before "=", not already a flag.
    pattern = rf"(?<![\w-])(`)?({words})(?(1)`|(?==))"

    def flag(match):
        quote = match.group(1) or ""
        return f"{quote}--{_FLAGS[fields[match.group(2)]]}{quote}"

    return re.sub(pattern, flag, message)


def noise_options(config, data, used):
    """The options the run's noise model takes, from its flags and the data.

    Args:
        config: the run's `TrainConfig`.
        data: its `NoisyData` (clean labels).
        used: bool `[num_examples]`, the ids that carry a label.
    """
    available = {
        "include_true_class": lambda: config.include_true_class,
        "asymmetric_map": lambda: data.source.asymmetric_map,
        "sequential": lambda: config.asym_sequential,
        "matrix": lambda: _noise_matrix(config.noise_matrix),
        # Called by the model only if it reads the examples themselves.
        "features": lambda: lambda: data.features_by_id()[used],
    }
    taken = noise.NOISE_MODELS[config.noise_model].options
    return {option: available[option]() for option in taken}


def _noise_matrix(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"`--noise_matrix` must be a .npy file of a [C, C] transition matrix "
            f"(np.save). Received: --noise_matrix={path!r}, which cannot be read ({error})."
        ) from None


def build_model(config, data, backbone_fn=None):
    """Builds the backbone(s) and the model; call inside the strategy scope.

    `--loss=elr_plus` builds an `ELRPlusModel` of four backbones (two
    networks and their averaged copies, pretrained alike when the preset
    is); otherwise an `ELRModel` (`--loss=ce`: `lam=0`).
    """

    def backbone():
        if backbone_fn is not None:
            return backbone_fn(data.num_classes, data.image_shape)
        return _preset_backbone(config, data)

    table = {
        "table_dtype": config.table_dtype,
        "table_placement": config.table_placement,
        "track_margins": config.track_margins,
        "track_table_mean": config.track_table_mean,
    }
    if config.loss == "elr_plus":
        return ELRPlusModel(
            backbone(),
            backbone(),
            num_examples=data.num_examples,
            num_classes=data.num_classes,
            beta=config.beta,
            lam=config.lam,
            coef_step=config.coef_step,
            label_reweighting=LABEL_REWEIGHTING[config.label_reweighting],
            ema_network1=backbone(),
            ema_network2=backbone(),
            data_order=config.data_order,
            teacher_span=teacher_span_argument(config.teacher_span),
            **table,
        )
    return ELRModel(
        backbone(),
        num_examples=data.num_examples,
        num_classes=data.num_classes,
        beta=config.beta,
        lam=config.lam if config.loss == "elr" else 0.0,
        **table,
    )


def method_callbacks(config):
    """Callbacks the method needs besides the model: ELR+'s averaging and mixup."""
    if config.loss != "elr_plus":
        return []
    averaging = WeightAveraging(
        config.ema_alpha, ema_update=config.ema_update, ema_step=config.ema_step
    )
    if config.mixup_alpha == 0:  # As the reference: mixup_alpha 0 turns mixup off.
        return [averaging]
    return [averaging, Mixup(config.mixup_alpha, seed=config.seed)]


def learning_rate_schedule(config, steps_per_epoch):
    """The reference schedules, stepped per batch, after an optional warmup.

    `cosine`: cosine annealing with warm restarts every `restart_epochs`
    epochs down to `min_lr`; `multistep`: `learning_rate * decay_factor**k`
    after the k-th milestone epoch; `constant`. With `warmup_epochs`, the
    schedule is scaled up linearly over that many epochs (`LinearWarmup`).
    """
    schedule = _reference_schedule(config, steps_per_epoch)
    if config.warmup_epochs:
        return LinearWarmup(schedule, config.warmup_epochs * steps_per_epoch)
    return schedule


def _reference_schedule(config, steps_per_epoch):
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecayRestarts(
            config.learning_rate,
            first_decay_steps=config.restart_epochs * steps_per_epoch,
            t_mul=1.0,
            m_mul=1.0,
            alpha=config.min_lr / config.learning_rate,
        )
    if config.schedule == "multistep":
        beyond = [m for m in config.milestones if m >= config.epochs]
        if beyond:
            logging.warning(
                "--milestones=%s: %s at or after --epochs=%d, so the learning rate does "
                "not decay there in this run (a --resume with more --epochs reaches them).",
                ",".join(map(str, config.milestones)),
                ",".join(map(str, beyond)),
                config.epochs,
            )
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [m * steps_per_epoch for m in config.milestones],
            [
                config.learning_rate * config.decay_factor**k
                for k in range(len(config.milestones) + 1)
            ],
        )
    return config.learning_rate


def compile_model(model, config, steps_per_epoch, metrics=None):
    """Compiles `model`: SGD with momentum on the configured schedule.

    Weight decay is not an optimizer argument: the backbones carry it as an
    L2 penalty, which matches SGD weight decay of the reference (coupled).
    """
    model.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate_schedule(config, steps_per_epoch), momentum=config.momentum
        ),
        metrics=metrics
        or [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        ],
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution,
    )


def eval_batch_size(config):
    """Evaluation batches: at least 256 (no gradients, so larger is cheap)."""
    return max(config.batch_size, 256)


def _preset_backbone(config, data):
    preset = backbones.PRESETS[config.arch]
    if preset["builder"] is backbones.applications_backbone:
        # Only the `keras.applications` families take pretrained weights:
        # `--weights=imagenet` (default), `none`, or a path to a weights file.
        options = {"weights": None if config.weights.lower() == "none" else config.weights}
    else:
        options = {"init": config.init}
    try:
        return backbones.build_backbone(
            config.arch,
            data.num_classes,
            data.image_shape,
            weight_decay=config.weight_decay,
            **options,
        )
    except ValueError as error:
        raise ValueError(
            f"--arch={config.arch} cannot take images of "
            f"{'x'.join(map(str, data.image_shape))} (--image_size={config.image_size}): {error}"
        ) from None
