"""The training program behind `scripts/train.py`, callable without flags.

`train(TrainConfig(...))` loads a data set, adds label noise, builds a
backbone inside the distribution strategy, trains an `ELRModel` (or the
cross-entropy baseline through the same model with `lam=0`) and writes one
run directory:

    <output_dir>/<name>/
        flags.cfg        absl flagfile that reruns this run
        config.json      the same settings, read back by `--resume`
        metrics.csv      per-epoch loss parts, noisy-val and test accuracy
        tensorboard/     TensorBoard logs
        checkpoints/     per-epoch checkpoints (weights, optimiser, target
                         table), written atomically; `--resume` loads the
                         newest
        model.keras      final model, table included
        targets.npy      final target table [num_examples, num_classes]
        noisy_labels.npy labels used for training, by id (-1: unused id)
        true_labels.npy  clean labels by id where known (-1: unknown)
        audit.csv        per-example label audit from the final target table,
                         most suspicious first (elr_tf.audit)
        memorization.csv per-epoch memorisation fractions on (up to 10,000)
        memorization.png training examples, and their figure (true labels known)
        summary.json     final/best test accuracy, noise rate, timings
"""

import csv
import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from elr_tf import audit, backbones, checkpointing, datasets, memorization, noise
from elr_tf.elr_model import ELRModel
from elr_tf.elr_plus_model import ELRPlusModel
from elr_tf.mixup import Mixup
from elr_tf.target_table import STORAGE_DTYPES
from elr_tf.weight_averaging import WeightAveraging

LOSSES = ("ce", "elr", "elr_plus")
LABEL_REWEIGHTING = {"auto": None, "on": True, "off": False}
SCHEDULES = ("cosine", "multistep", "constant")

# Fields whose flag name differs from the field name (`lambda` is a Python
# keyword; the reference program calls it `--lambda`).
_FLAG_NAMES = {"lam": "lambda"}

# Training examples predicted after each epoch to draw the memorisation
# curves: enough for fractions to about +-1%, few enough to cost a few percent
# of an epoch.
_MEMORIZATION_EXAMPLES = 10_000


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; flags map one-to-one onto fields.

    Defaults are the reference CIFAR-10 symmetric-noise settings (ELR-SPEC
    §1) except the data set, which defaults to offline Fashion-MNIST.
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    arch: str = "small_cnn"
    loss: str = "elr"
    lr: float = 0.02
    bs: int = 128
    beta: float = 0.7
    lam: float = 3.0
    percent: float = 0.0
    asym: bool = False
    include_true_class: bool = True
    noise_matrix: str | None = None
    seed: int = 123
    epochs: int = 150
    name: str = "run"
    output_dir: str = "runs"
    resume: str | None = None
    gpus: str | None = None
    num_train: int | None = None
    val_fraction: float = 0.1
    weight_decay: float = 1e-3
    momentum: float = 0.9
    schedule: str = "cosine"
    t0: int = 10
    eta_min: float = 1e-3
    milestones: tuple = (40, 80)
    gamma: float = 0.01
    cifar_n_label: str | None = None
    noisy_labels_file: str | None = None
    balanced_batches: int | None = None
    image_size: int | None = None
    augment: bool = True
    weights: str = "imagenet"
    table_dtype: str = "float32"
    table_placement: str | None = None
    jit_compile: bool = False
    mixed_precision: bool = False
    verbose: int = 1
    # ELR+ (`--loss=elr_plus`); names as the reference program's flags and
    # config keys (mixup_alpha -> malpha, ema_alpha -> ealpha).
    malpha: float = 1.0
    ealpha: float = 0.997
    ema_update: bool = True
    ema_step: int = 40000
    coef_step: int = 0
    label_reweighting: str = "auto"

    def validate(self):
        """Raises ValueError naming the first bad field."""
        check_choice("dataset", self.dataset, datasets.DATASET_NAMES)
        check_choice("arch", self.arch, tuple(backbones.PRESETS))
        check_choice("loss", self.loss, LOSSES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("table_dtype", self.table_dtype, STORAGE_DTYPES)
        if self.table_placement is not None:
            check_choice("table_placement", self.table_placement, ("host",))
        check_range("percent", self.percent, 0.0, 1.0)
        check_range("beta", self.beta, 0.0, 1.0, high_open=True)
        check_range("lambda", self.lam, 0.0, math.inf)
        check_range("lr", self.lr, 0.0, math.inf, low_open=True)
        check_range("weight_decay", self.weight_decay, 0.0, math.inf)
        check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_range("eta_min", self.eta_min, 0.0, math.inf)
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True)
        check_range("malpha", self.malpha, 0.0, math.inf)
        check_range("ealpha", self.ealpha, 0.0, 1.0, high_open=True)
        check_choice("label_reweighting", self.label_reweighting, tuple(LABEL_REWEIGHTING))
        # The reference's Clothing1M config carries ema_step=-1 with the ramp off.
        for field in ("coef_step",) + (("ema_step",) if self.ema_update else ()):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"`--{field}` must be an integer >= 0. Received: --{field}={value!r}"
                )
        for field in ("bs", "epochs", "t0"):
            check_positive_int(field, getattr(self, field))
        for field in ("num_train", "balanced_batches", "image_size"):
            if getattr(self, field) is not None:
                check_positive_int(field, getattr(self, field))
        if self.seed < 0:
            raise ValueError(f"`--seed` must be >= 0. Received: --seed={self.seed}")
        if list(self.milestones) != sorted(self.milestones) or any(m < 1 for m in self.milestones):
            raise ValueError(
                "`--milestones` must be increasing positive epochs. Received: "
                f"--milestones={','.join(map(str, self.milestones))}"
            )
        if self.asym and self.noise_matrix:
            raise ValueError("Give at most one of `--asym` and `--noise_matrix`.")
        if self.percent > 0 and self.dataset not in _SYNTHETIC_NOISE_DATASETS:
            raise ValueError(
                f"`--percent` adds synthetic noise, which {self.dataset} (real "
                f"noisy labels) does not take. Received: --percent={self.percent}"
            )
        return self

    def to_flagfile(self):
        """The settings as absl flagfile lines (`--flag=value`)."""
        lines = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or field.name == "resume":
                continue
            if isinstance(value, (tuple, list)):
                value = ",".join(map(str, value))
            lines.append(f"--{_FLAG_NAMES.get(field.name, field.name)}={value}")
        return "\n".join(lines) + "\n"


_SYNTHETIC_NOISE_DATASETS = ("fashion_mnist", "cifar10", "cifar100")


def check_choice(flag, value, choices):
    if value not in choices:
        raise ValueError(
            f"`--{flag}` must be one of {', '.join(choices)}. Received: --{flag}={value!r}"
        )


def check_range(flag, value, low, high, low_open=False, high_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`--{flag}` must be in {interval}. Received: --{flag}={value!r}")


def check_positive_int(flag, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`--{flag}` must be a positive integer. Received: --{flag}={value!r}")


def make_strategy(gpus):
    """`None`: default strategy; one device: that device; more: Mirrored.

    Args:
        gpus: comma-separated device list: GPU numbers (`"0,1"`) or full
            device names (`"cpu:0,cpu:1"`, used by the tests with logical
            CPU devices).
    """
    if _cluster_size() > 1:
        # Several workers described by TF_CONFIG: every worker runs this same
        # program; gradients and target-table updates are all-reduced /
        # all-gathered across them. Must be created before any other TF op.
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


def _cluster_size():
    spec = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return sum(len(spec.get(role, [])) for role in ("chief", "worker"))


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or _cluster_size() <= 1:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def learning_rate_schedule(config, steps_per_epoch):
    """The reference schedules, stepped per batch.

    `cosine`: cosine annealing with warm restarts every `t0` epochs down to
    `eta_min`; `multistep`: `lr * gamma**k` after the k-th milestone epoch.
    """
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecayRestarts(
            config.lr,
            first_decay_steps=config.t0 * steps_per_epoch,
            t_mul=1.0,
            m_mul=1.0,
            alpha=config.eta_min / config.lr,
        )
    if config.schedule == "multistep":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [m * steps_per_epoch for m in config.milestones],
            [config.lr * config.gamma**k for k in range(len(config.milestones) + 1)],
        )
    return config.lr


def load_noisy_data(config):
    """Loads the data set and installs the requested synthetic noise.

    Returns:
        `(data, realised_rate)`: `NoisyData` whose train and val labels are
        noisy (the test set stays clean) and the fraction of wrong training
        labels, or None when the true labels are unknown.
    """
    data = datasets.load_dataset(
        config.dataset,
        config.data_dir,
        num_train=config.num_train,
        val_fraction=config.val_fraction,
        split_seed=config.seed,
        cifar_n_label=config.cifar_n_label,
        noisy_labels_file=config.noisy_labels_file,
        image_size=config.image_size,
    )
    if config.percent > 0 or config.noise_matrix:
        clean = data.labels_by_id()
        used = clean >= 0
        if config.noise_matrix:
            kind, matrix = "matrix", np.load(config.noise_matrix)
        else:
            kind, matrix = ("asymmetric" if config.asym else "symmetric"), None
        result = noise.make_noisy_labels(
            clean[used],
            kind,
            None if kind == "matrix" else config.percent,
            data.num_classes,
            config.seed,
            dataset=config.dataset,
            include_true_class=config.include_true_class,
            matrix=matrix,
        )
        noisy = clean.copy()
        noisy[used] = result.noisy
        data = data.with_labels_by_id(noisy, label_source=result.kind)
    true = data.train.true_labels
    if true is None or (true < 0).all():
        return data, None
    known = true >= 0
    return data, float(np.mean(data.train.labels[known] != true[known]))


def build_model(config, data):
    """Builds the backbone(s) and the model; call inside the strategy scope.

    `--loss=elr_plus` builds an `ELRPlusModel` of four backbones (two
    networks and their averaged copies, pretrained alike when the preset
    is); otherwise an `ELRModel` (`--loss=ce`: `lam=0`).
    """
    if config.loss == "elr_plus":
        return ELRPlusModel(
            _build_backbone(config, data),
            _build_backbone(config, data),
            num_examples=data.num_examples,
            num_classes=data.num_classes,
            beta=config.beta,
            lam=config.lam,
            coef_step=config.coef_step,
            label_reweighting=LABEL_REWEIGHTING[config.label_reweighting],
            ema_network1=_build_backbone(config, data),
            ema_network2=_build_backbone(config, data),
        )
    return ELRModel(
        _build_backbone(config, data),
        num_examples=data.num_examples,
        num_classes=data.num_classes,
        beta=config.beta,
        lam=config.lam if config.loss == "elr" else 0.0,
        table_dtype=config.table_dtype,
        table_placement=config.table_placement,
    )


def _build_backbone(config, data):
    backbone = backbones.build_backbone(
        config.arch,
        data.num_classes,
        data.image_shape,
        weight_decay=config.weight_decay,
        **_weights_override(config),
    )
    preprocessing = backbones.PRESETS[config.arch]["preprocessing"]
    if preprocessing is not None:
        backbone = _with_imagenet_preprocessing(backbone, preprocessing, data)
    return backbone


def method_callbacks(config):
    """Callbacks the method needs besides the model: ELR+'s averaging and mixup."""
    if config.loss != "elr_plus":
        return []
    averaging = WeightAveraging(
        config.ealpha, ema_update=config.ema_update, ema_step=config.ema_step
    )
    if config.malpha == 0:  # As the reference: mixup_alpha 0 turns mixup off.
        return [averaging]
    return [averaging, Mixup(config.malpha, seed=config.seed)]


def _weights_override(config):
    # Only the `keras.applications` families take pretrained weights:
    # `--weights=imagenet` (default), `none`, or a path to a weights file.
    if backbones.PRESETS[config.arch]["builder"] is not backbones.applications_backbone:
        return {}
    return {"weights": None if config.weights.lower() == "none" else config.weights}


def _with_imagenet_preprocessing(backbone, preprocessing, data):
    # The pipeline normalises with the data set's mean/std; pretrained
    # `keras.applications` weights expect their own preprocessing of 0-255
    # images, so undo ours and apply theirs inside the model.
    inputs = keras.Input(data.image_shape)
    mean = np.asarray(data.mean, "float32")
    std = np.asarray(data.std, "float32")
    pixels = keras.layers.Rescaling(255.0 * std, offset=255.0 * mean)(inputs)
    outputs = backbone(keras.layers.Lambda(preprocessing)(pixels))
    return keras.Model(inputs, outputs, name=f"{backbone.name}_preprocessed")


class _TestEvaluation(keras.callbacks.Callback):
    """Adds clean test top-1/top-5 accuracy (and extra test sets) to the logs.

    Runs before `CSVLogger`/`TensorBoard` in the callback list so they
    record it.
    """

    def __init__(self, test_sets):
        super().__init__()
        self.test_sets = test_sets

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix, dataset in self.test_sets.items():
            result = self.model.evaluate(dataset, verbose=0, return_dict=True)
            logs[f"{prefix}_accuracy"] = result["accuracy"]
            logs[f"{prefix}_top5"] = result["top5"]


def make_train_input(config, data, epoch):
    """The training dataset of a run: batches drawn from `(config.seed, epoch)`.

    Args:
        config: the run's `TrainConfig`.
        data: its `NoisyData`.
        epoch: int `tf.Variable` set to the epoch before each epoch
            (`EpochClock`).
    """
    return datasets.make_train_dataset(
        data,
        config.bs,
        seed=config.seed,
        augment=config.augment,
        balanced_batches=config.balanced_batches,
        epoch=epoch,
    )


def eval_batch_size(config):
    """Evaluation batches: at least 256 (no gradients, so larger is cheap)."""
    return max(config.bs, 256)


def compile_model(model, config, steps_per_epoch, metrics=None):
    """Compiles `model` as `train` does: SGD with momentum on the schedule.

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
    )


class _NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, naming the step.

    It raises instead of setting `stop_training` (as `TerminateOnNaN` does)
    so that nothing after it runs: no checkpoint, final model or table is
    written from the corrupted state, and the last good checkpoint stays the
    one `--resume` loads.
    """

    def __init__(self, checkpoint_dir):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(
                f"Non-finite training loss ({loss}) at epoch {self._epoch + 1}, "
                f"step {batch + 1}. Training stopped; the last good checkpoint "
                f"in {self.checkpoint_dir} is intact (resume with --resume)."
            )


class _EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch's training part."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.seconds.append(elapsed)
        if logs is not None:
            logs["seconds"] = elapsed


class EpochClock(keras.callbacks.Callback):
    """Sets the data pipeline's epoch variable at the start of each epoch.

    The training data's shuffle and augmentation are drawn from
    `(seed, epoch)`, so a resumed run reads exactly the batches an
    uninterrupted run would have read.
    """

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def resolve_run_dir(config, multi_worker=False):
    """Creates (or, on resume, reopens) the run directory.

    A new run never overwrites an old one: an existing `<name>` gets a time
    stamp appended. Multi-worker runs keep the plain name so that all workers
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
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def load_config(run_dir, **overrides):
    """Reads a run's `config.json` back into a `TrainConfig`."""
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        raise ValueError(
            "`--resume` must be a run directory written by train (with a "
            f"config.json). Received: --resume={run_dir!r}"
        )
    with open(os.path.join(run_dir, "config.json")) as f:
        values = json.load(f)
    values["milestones"] = tuple(values["milestones"])
    values.update(overrides)
    return TrainConfig(**values)


def train(config, callbacks=()):
    """Runs (or resumes) one training run; returns its summary dict.

    Args:
        config: a `TrainConfig`. With `config.resume` set, the run
            directory's saved settings are used and training continues from
            its last checkpoint.
        callbacks: extra Keras callbacks (e.g. for tests).

    Returns:
        The dict also written to `summary.json`.
    """
    if config.resume:
        config = load_config(config.resume, resume=config.resume, verbose=config.verbose)
    config.validate()
    strategy = make_strategy(config.gpus)
    chief = _is_chief(strategy)
    run_dir = resolve_run_dir(config, multi_worker=_cluster_size() > 1)
    # Other workers of a multi-worker run write their logs and checkpoints
    # beside the chief's, never over them.
    out_dir = (
        run_dir if chief else os.path.join(run_dir, f"worker-{strategy.cluster_resolver.task_id}")
    )
    os.makedirs(out_dir, exist_ok=True)
    if chief and not config.resume:
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(config), f, indent=2)
        with open(os.path.join(run_dir, "flags.cfg"), "w") as f:
            f.write(config.to_flagfile())

    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    data, realised = load_noisy_data(config)
    if chief:
        _save_labels(run_dir, data)

    epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds = make_train_input(config, data, epoch_variable)
    steps_per_epoch = int(train_ds.cardinality())
    eval_bs = eval_batch_size(config)
    val_ds = datasets.make_eval_dataset(data.val, data, eval_bs) if len(data.val) > 0 else None
    test_sets = {"test": datasets.make_eval_dataset(data.test, data, eval_bs)}
    for extra_name, extra in data.extra_tests.items():
        test_sets[extra_name] = datasets.make_eval_dataset(extra, data, eval_bs)

    with strategy.scope():
        model = build_model(config, data)
        compile_model(model, config, steps_per_epoch)

    checkpoint_dir = os.path.join(out_dir, "checkpoints")
    initial_epoch = checkpointing.restore_latest(model, checkpoint_dir)
    timer = _EpochTimer()
    csv_path = os.path.join(out_dir, "metrics.csv")
    truth_known = _has_true_labels(data.train)
    label_watchers = []
    if truth_known:
        # Before CSVLogger, which takes its columns from the first epoch's logs.
        label_watchers = [
            audit.AuditCallback(data.train.ids, data.train.labels, data.train.true_labels),
            memorization.MemorizationMonitor.from_examples(
                data.train,
                data,
                max_examples=_MEMORIZATION_EXAMPLES,
                seed=config.seed,
                batch_size=eval_bs,
                output_dir=out_dir,
                append=initial_epoch > 0,
                title=f"{config.dataset}, {config.loss}, noise {config.percent:g}",
            ),
        ]
    all_callbacks = [
        EpochClock(epoch_variable),
        *method_callbacks(config),
        timer,
        _TestEvaluation(test_sets),
        *label_watchers,
        _NonFiniteGuard(checkpoint_dir),
        # The CSV row is written before the checkpoint: a kill between the two
        # repeats the epoch's row on resume (`read_metrics` keeps the last)
        # instead of losing it.
        keras.callbacks.CSVLogger(csv_path, append=initial_epoch > 0),
        checkpointing.EpochCheckpoint(checkpoint_dir),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
        *callbacks,
    ]
    if initial_epoch < config.epochs:
        model.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            validation_data=val_ds,
            callbacks=all_callbacks,
            verbose=config.verbose,
            shuffle=False,
        )

    np.save(os.path.join(out_dir, "targets.npy"), model.target_table.numpy())
    if isinstance(model, ELRPlusModel):
        for k, table in enumerate(model.target_tables, start=1):
            np.save(os.path.join(out_dir, f"targets{k}.npy"), table.numpy())
    if chief:
        model.save(os.path.join(run_dir, "model.keras"))
    report = audit.audit(
        model, data.train.labels, ids=data.train.ids, true_labels=data.train.true_labels
    )
    report.ranked().to_csv(os.path.join(out_dir, "audit.csv"))
    summary = _summarise(config, run_dir, csv_path, realised, timer, data)
    if truth_known:
        summary["label_detection"] = {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in report.metrics().items()
        }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _has_true_labels(example_set):
    true = example_set.true_labels
    return true is not None and bool((true >= 0).any())


def _save_labels(run_dir, data):
    np.save(os.path.join(run_dir, "noisy_labels.npy"), data.labels_by_id())
    np.save(os.path.join(run_dir, "true_labels.npy"), data.labels_by_id(true_labels=True))


def read_metrics(csv_path):
    """Reads `metrics.csv` into a dict of column -> list of floats."""
    if not os.path.exists(csv_path):
        return {}
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    # A resumed run may repeat the row of an epoch (see `train`): keep the last.
    by_epoch = {int(row["epoch"]): row for row in rows}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    return {key: [_float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def _float(text):
    # CSVLogger writes "NA" for a metric missing in an epoch (e.g. no val set).
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _summarise(config, run_dir, csv_path, realised, timer, data):
    metrics = read_metrics(csv_path)
    test = metrics.get("test_accuracy", [])
    seconds = metrics.get("seconds", timer.seconds)
    summary = {
        "run_dir": run_dir,
        "dataset": config.dataset,
        "arch": config.arch,
        "loss": config.loss,
        "epochs": len(test),
        "final_test_accuracy": test[-1] if test else None,
        "best_test_accuracy": max(test) if test else None,
        "final_test_top5": metrics.get("test_top5", [None])[-1],
        "final_val_accuracy": metrics.get("val_accuracy", [None])[-1],
        "noise_rate_requested": config.percent,
        "noise_rate_realised": realised,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "num_train": len(data.train),
        "num_examples": data.num_examples,
    }
    for name in data.extra_tests:
        summary[f"final_{name}_accuracy"] = metrics.get(f"{name}_accuracy", [None])[-1]
        summary[f"final_{name}_top5"] = metrics.get(f"{name}_top5", [None])[-1]
    return summary
