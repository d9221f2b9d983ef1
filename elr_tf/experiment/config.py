"""`TrainConfig`: every setting of a run, each declared once with its flag.

A field is declared with `setting(default, help, flag=..., check=...,
applies=...)` (`elr_tf.experiment.settings`): its command-line flag (the
reference program's spelling where it has one, e.g. `batch_size` is `--bs`), its
help text, its check and the runs it belongs to. `elr_tf.experiment.flags` defines
the absl flags, `validate` runs the checks, and `to_flagfile` / `from_dict` write
and read them back, so adding a setting is one edit here.

Example:

```python
config = TrainConfig(dataset="fashion_mnist", noise_rate=0.4, epochs=20)
config.validate()
print(config.to_flagfile())  # --dataset=fashion_mnist ... --percent=0.4 ...
```
"""

import dataclasses

from elr_tf import checks
from elr_tf.data import DATASET_NAMES, TFDS_PREFIX, is_dataset_name, noise, sources
from elr_tf.diagnostics import label_audit, scores
from elr_tf.experiment.settings import (
    When,
    between,
    check_fields,
    choice,
    from_dict,
    refuse_inapplicable,
    setting,
    to_flagfile,
)
from elr_tf.models import backbones
from elr_tf.models.backbones import PRESETS, applications_backbone
from elr_tf.models.elr_plus_model import DATA_ORDERS
from elr_tf.target_table import STORAGE_DTYPES

LOSSES = ("ce", "elr", "elr_plus")
LABEL_REWEIGHTING = {"auto": None, "on": True, "off": False}
SCHEDULES = ("cosine", "multistep", "constant")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def teacher_span_flag(name, value):
    """A `setting` check of `--teacher_span`: epoch, step or a positive int (a string)."""
    if value in ("epoch", "step") or (value.isdigit() and int(value) >= 1):
        return value
    raise ValueError(
        f"`{name}` must be epoch, step or a positive number of steps. Received: {name}={value!r}"
    )


def teacher_span_argument(value):
    """`--teacher_span` as `ELRPlusModel(teacher_span=...)` takes it."""
    if value == "step":
        return None
    return value if value == "epoch" else int(value)


def _dataset(name, value):
    if not is_dataset_name(value):
        raise ValueError(
            f"`{name}` must be one of {', '.join(DATASET_NAMES)} or {TFDS_PREFIX}<tfds name>. "
            f"Received: {name}={value!r}"
        )
    return value


# The runs settings belong to (`setting(applies=...)`).
ELR = When("loss", ("elr", "elr_plus"))
ELR_PLUS = When("loss", ("elr_plus",))
COSINE = When("schedule", ("cosine",))
MULTISTEP = When("schedule", ("multistep",))
SYNTHETIC = When(
    "synthetic_noise", (True,), text="synthetic noise (--percent > 0 or --noise_matrix)"
)
ASYMMETRIC = When("noise_model", ("asymmetric",), text="asymmetric noise (--asym)")
SYMMETRIC = When("noise_model", ("symmetric",), text="symmetric noise (--noise=symmetric)")
NOT_APPLICATIONS = When(
    "arch",
    predicate=lambda arch: PRESETS.get(arch, {}).get("builder") is not applications_backbone,
    text="an --arch that is not a keras.applications backbone",
)
APPLICATIONS = When(
    "arch",
    predicate=lambda arch: PRESETS.get(arch, {}).get("builder") is applications_backbone,
    text="a keras.applications --arch (resnet50, inception_resnet_v2)",
)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; one absl flag per field.

    Defaults are the reference CIFAR-10 symmetric-noise settings (ELR-SPEC
    §1) except the data set, which defaults to offline Fashion-MNIST.
    """

    dataset: str = setting(
        "fashion_mnist",
        f"Data set: {', '.join(DATASET_NAMES)}, or {TFDS_PREFIX}NAME for any prepared "
        "tfds image-classification set. folder: --data_dir holds one sub-folder per "
        "class; csv: --data_dir is a file of path,label rows.",
        check=_dataset,
    )
    data_dir: str | None = setting(
        None,
        "Data directory (tfds data_dir, IDX folder, file-list root, the .npz file, or "
        "for cifar10_n a folder holding cifar10.npz and CIFAR-10_human.npz).",
    )
    arch: str = setting(
        "small_cnn", "Backbone preset, see elr_tf.models.backbones.PRESETS.", check=choice(PRESETS)
    )
    loss: str = setting(
        "elr",
        "`elr`, `elr_plus` (two networks, mixup, weight averaging) or `ce` "
        "(the cross-entropy baseline through the same program).",
        check=choice(LOSSES),
    )
    learning_rate: float = setting(
        0.02, "Initial learning rate.", flag="lr", check=between(0.0, low_open=True)
    )
    batch_size: int = setting(128, "Global batch size.", flag="bs", check=checks.positive_int)
    beta: float = setting(
        0.7,
        "Temporal-ensembling momentum of the targets, in [0, 1).",
        check=between(0.0, 1.0, high_open=True),
        applies=ELR,
    )
    lam: float = setting(
        3.0,
        "ELR regularisation strength lambda, >= 0.",
        flag="lambda",
        check=between(0.0),
        applies=ELR,
    )
    noise_rate: float = setting(
        0.0,
        "Synthetic noise rate in [0, 1] (e.g. 0.4 for 40%).",
        flag="percent",
        check=between(0.0, 1.0),
    )
    noise: str = setting(
        "symmetric",
        f"Synthetic noise model at rate --percent: {', '.join(noise.NOISE_NAMES)}. "
        "--asym is short for --noise=asymmetric; --noise_matrix sets --noise=matrix.",
        check=choice(noise.NOISE_NAMES),
        applies=SYNTHETIC,
    )
    asymmetric: bool = setting(
        False,
        "Asymmetric (class-dependent) noise, the data set's class map (--noise=asymmetric).",
        flag="asym",
        applies=SYNTHETIC,
    )
    asym_sequential: bool = setting(
        False,
        "Asymmetric noise drawn as the ELR reference code draws it: class after class "
        "from the labels as already flipped (CIFAR-10 at 40%: 18.4% wrong, not 20%).",
        applies=ASYMMETRIC,
    )
    include_true_class: bool = setting(
        True,
        "Symmetric noise may redraw the true class (as the reference).",
        applies=SYMMETRIC,
    )
    noise_matrix: str | None = setting(None, ".npy [C, C] transition matrix for synthetic noise.")
    seed: int = setting(
        123,
        "Seed of noise, split, shuffling, augmentation and initialisation.",
        check=checks.non_negative_int,
    )
    epochs: int = setting(150, "Number of epochs.", check=checks.positive_int)
    name: str = setting(
        "run", "Run name; the run directory is <output_dir>/<name>.", check=checks.folder_name
    )
    output_dir: str = setting("runs", "Parent directory of run directories.")
    resume: str | None = setting(None, "Run directory of an interrupted run to continue.")
    gpus: str | None = setting(
        None,
        "Devices: GPU numbers `0,1` (more than one: MirroredStrategy) or "
        "device names `cpu:0,cpu:1`.",
    )
    num_train: int | None = setting(
        None, "Use only this many training examples (quick runs).", check=checks.positive_int
    )
    val_fraction: float = setting(
        0.1,
        "Per-class fraction of the training set held out (noisy) for validation.",
        check=between(0.0, 1.0, high_open=True),
    )
    weight_decay: float = setting(
        1e-3,
        "L2 weight decay (coupled, as SGD weight_decay in the reference).",
        check=between(0.0),
    )
    momentum: float = setting(0.9, "SGD momentum.", check=between(0.0, 1.0, high_open=True))
    schedule: str = setting(
        "cosine",
        "Learning-rate schedule: cosine (warm restarts), multistep, constant.",
        check=choice(SCHEDULES),
    )
    warmup_epochs: int = setting(
        0,
        "Epochs over which the learning rate is scaled up linearly from about 0 "
        "(multiplying the schedule); 0: none.",
        check=checks.non_negative_int,
    )
    restart_epochs: int = setting(
        10,
        "Cosine schedule: epochs per restart.",
        flag="t0",
        check=checks.positive_int,
        applies=COSINE,
    )
    min_lr: float = setting(
        1e-3,
        "Cosine schedule: minimum learning rate.",
        flag="eta_min",
        check=between(0.0),
        applies=COSINE,
    )
    milestones: tuple = setting(
        (40, 80),
        "Multistep schedule: epochs at which lr is multiplied by gamma.",
        check=checks.increasing_epochs,
        applies=MULTISTEP,
    )
    decay_factor: float = setting(
        0.01,
        "Multistep schedule: decay factor.",
        flag="gamma",
        check=between(0.0, 1.0, low_open=True),
        applies=MULTISTEP,
    )
    cifar_n_label: str | None = setting(
        None, "CIFAR-N label set: aggre, random1, random2, random3, worst; noisy100."
    )
    noisy_labels_file: str | None = setting(
        None, ".npy or .csv (id,label) replacing the training labels."
    )
    noise_on_label_file: bool = setting(
        False,
        "Add the synthetic noise of --percent/--noise_matrix on top of the labels "
        "of --noisy_labels_file (refused otherwise).",
    )
    balanced_batches: int | None = setting(
        None,
        "Draw this many class-balanced batches per epoch (Clothing1M).",
        check=checks.positive_int,
    )
    image_size: int | None = setting(
        None,
        "Crop size for clothing1m, webvision, folder and csv (default: theirs; 64 for "
        f"folder and csv), at most {checks.MAX_IMAGE_SIZE}.",
        check=checks.image_size,
    )
    skip_unreadable: bool = setting(
        False,
        "folder/csv: skip unreadable or missing images (and empty classes), logging how "
        "many, instead of stopping with an error naming them.",
    )
    skip_duplicates: bool = setting(
        False,
        "csv: keep the first row of an image listed more than once (with the same "
        "label), logging how many, instead of stopping with an error naming the lines.",
    )
    augment: bool = setting(
        True, "Random crop/flip augmentation of training images (ELR-SPEC inputs)."
    )
    init: str = setting(
        "reference",
        "How the backbone's weights start: reference (PyTorch's defaults, as the ELR "
        "reference code's models: U(+-1/sqrt(fan_in)) for every conv and dense kernel "
        "and bias) or keras (Keras's initialisers, about 2.4 times larger).",
        check=choice(backbones.INITS),
        applies=NOT_APPLICATIONS,
    )
    weights: str = setting(
        "imagenet",
        "Pretrained weights for keras.applications backbones: imagenet, none or a path.",
        applies=APPLICATIONS,
    )
    table_dtype: str = setting(
        "float32",
        "Target-table storage: float32, bfloat16 or float16 (half the memory).",
        check=choice(STORAGE_DTYPES),
    )
    table_placement: str | None = setting(
        None,
        "`host` keeps the target table(s) in host memory (single device).",
        check=choice(("host",)),
    )
    eval_every: int = setting(
        1,
        "Run the per-epoch diagnostics (test evaluation, label audit, memorisation "
        "monitor) every this many epochs, and on the first and the last.",
        check=checks.positive_int,
    )
    eval_examples: int = setting(
        0,
        "Examples the periodic diagnostics read: the test evaluation and the "
        "memorisation monitor use a fixed random subset of at most this many (0: "
        "all, the monitor at most 10000); the last epoch evaluates the whole test set.",
        check=checks.non_negative_int,
    )
    track_margins: bool = setting(
        True, "Keep each example's logit margin averaged over training (the audit's AUM)."
    )
    track_table_mean: bool = setting(
        True, "Keep the target table averaged over training (the audit counts from it)."
    )
    audit_score: str = setting(
        "auto",
        f"Score that ranks suspected wrong labels in audit.csv: {scores.describe()}; "
        "auto: combined, or self_confidence without --track_margins.",
        check=choice(("auto", *label_audit.SCORES)),
    )
    audit_flag: str = setting(
        "pairs",
        "Which labels audit.csv flags: pairs (each given/suggested label pair flags "
        "its own estimated count, the rest of the estimate goes to the most "
        "suspicious), estimate (as many as the run estimates are wrong, most "
        "suspicious first) or argmax (table class != label).",
        check=choice(label_audit.FLAG_RULES),
    )
    audit_neighbours: int = setting(
        30,
        "Nearest neighbours in the network's embedding (the input of its last Dense "
        "layer) whose labels vote on each training label in audit.csv, beside the "
        "target table (all the other examples when there are fewer; summary.json "
        "records how many voted); 0: the table alone.",
        check=checks.non_negative_int,
    )
    jit_compile: bool = setting(False, "Compile the train step with XLA.")
    precision: str = setting(
        "float32",
        "Keras dtype policy of the network: float32, mixed_float16 (GPUs) or "
        "mixed_bfloat16 (CPUs with AVX-512 BF16 or AMX, TPUs); logits, losses and "
        "the target table stay float32.",
        check=choice(PRECISIONS),
    )
    steps_per_execution: int = setting(
        1,
        "Training steps per call of the compiled step (Keras's steps_per_execution); "
        "ELR+'s per-step callbacks need 1.",
        check=checks.positive_int,
        applies=When("loss", ("ce", "elr")),
    )
    verbose: int = setting(
        1,
        "Console: 0 silent, 1 progress bar in a terminal (one concise line per epoch "
        "elsewhere), 2 one concise line per epoch.",
        check=choice((0, 1, 2)),
    )
    # ELR+ (`--loss=elr_plus`); flags as the reference program's.
    mixup_alpha: float = setting(
        1.0,
        "ELR+: mixup Beta(alpha, alpha) parameter; 0 turns mixup off.",
        flag="malpha",
        check=between(0.0),
        applies=ELR_PLUS,
    )
    ema_alpha: float = setting(
        0.997,
        "ELR+: final weight-averaging momentum, in [0, 1).",
        flag="ealpha",
        check=between(0.0, 1.0, high_open=True),
        applies=ELR_PLUS,
    )
    ema_update: bool = setting(
        True,
        "ELR+: ramp the averaging momentum over --ema_step steps "
        "(else the running-mean schedule min(1 - 1/(step+1), ealpha)).",
        applies=ELR_PLUS,
    )
    ema_step: int = setting(
        40000,
        "ELR+: ramp length of the averaging momentum, in optimizer steps.",
        applies=ELR_PLUS,
    )
    coef_step: int = setting(
        0,
        "ELR+: ramp length of the ELR term, in optimizer steps (0: no ramp).",
        check=checks.non_negative_int,
        applies=ELR_PLUS,
    )
    label_reweighting: str = setting(
        "auto",
        "ELR+: the label term uses y_mix * q renormalised: auto (on iff "
        "100 classes, as the reference), on or off.",
        check=choice(LABEL_REWEIGHTING),
        applies=ELR_PLUS,
    )
    data_order: str = setting(
        "separate",
        "ELR+: separate (each network makes its own pass over its own shuffle "
        "every epoch, as the reference's two loaders) or shared (both networks "
        "train on the same batch).",
        check=choice(DATA_ORDERS),
        applies=ELR_PLUS,
    )
    teacher_span: str = setting(
        "epoch",
        "ELR+: how long each network's teacher (the other network's averaged "
        "copy) is held fixed: epoch (as the reference, where the partner does not "
        "train during a network's pass), a number of steps, or step (the latest "
        "averages every step).",
        check=teacher_span_flag,
        applies=ELR_PLUS,
    )

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raises ValueError naming the first bad flag; returns self (run on creation)."""
        check_fields(self)
        _ = self.noise_model  # Refuses --asym, --noise_matrix and --noise that disagree.
        refuse_inapplicable(self)
        # The reference's Clothing1M config carries ema_step=-1 with the ramp off.
        if self.ema_update:
            checks.non_negative_int("--ema_step", self.ema_step)
        elif not checks.is_int(self.ema_step):
            raise ValueError(
                f"`--ema_step` must be an integer. Received: --ema_step={self.ema_step!r}"
            )
        if self.noise_matrix and self.noise_rate > 0:
            raise ValueError(
                "`--percent` does not apply with --noise_matrix: the matrix sets the rate. "
                f"Pass --percent=0. Received: --percent={self.noise_rate} with "
                f"--noise_matrix={self.noise_matrix!r}"
            )
        if self.noisy_labels_file and self.synthetic_noise and not self.noise_on_label_file:
            noise = (
                f"--noise_matrix={self.noise_matrix}"
                if self.noise_matrix
                else f"--percent={self.noise_rate}"
            )
            raise ValueError(
                f"`--noisy_labels_file` brings its own labels, but {noise} (perhaps "
                "from a flagfile) would replace some of them with synthetic noise. "
                "Pass --percent=0 to train on the file's labels as they are, or "
                "--noise_on_label_file to add the noise on purpose. Received: "
                f"--noisy_labels_file={self.noisy_labels_file!r} with {noise}"
            )
        if self.noise_on_label_file and not (self.noisy_labels_file and self.synthetic_noise):
            raise ValueError(
                "`--noise_on_label_file` applies only with both --noisy_labels_file and "
                "synthetic noise (--percent > 0 or --noise_matrix). Received: "
                f"--noisy_labels_file={self.noisy_labels_file!r}, --percent={self.noise_rate}"
            )
        if self.noise_rate > 0 and sources.get(self.dataset).real_noise:
            raise ValueError(
                f"`--percent` adds synthetic noise, which {self.dataset} (real "
                f"noisy labels) does not take. Received: --percent={self.noise_rate}"
            )
        return self

    @property
    def noise_model(self):
        """The name of the run's noise model, from `--noise`, `--asym` and `--noise_matrix`."""
        implied = [
            (flag, name)
            for flag, name, given in (
                ("--asym", "asymmetric", self.asymmetric),
                (f"--noise_matrix={self.noise_matrix}", "matrix", bool(self.noise_matrix)),
            )
            if given
        ]
        names = {name for _, name in implied} | ({self.noise} - {"symmetric"})
        if len(names) > 1:
            given = " ".join([f"--noise={self.noise}", *(flag for flag, _ in implied)])
            raise ValueError(
                "`--noise`, `--asym` and `--noise_matrix` name different noise models; "
                f"give one. Received: {given}"
            )
        name = names.pop() if names else "symmetric"
        if name == "matrix" and not self.noise_matrix:
            raise ValueError(
                "`--noise=matrix` needs the matrix file: pass --noise_matrix=PATH.npy. "
                "Received: --noise=matrix without --noise_matrix"
            )
        return name

    @property
    def synthetic_noise(self):
        """True when the run adds synthetic noise (`--percent` or `--noise_matrix`)."""
        return self.noise_rate > 0 or bool(self.noise_matrix)

    def to_flagfile(self):
        """The settings as absl flagfile lines (`--flag=value`), `--resume` left out."""
        return to_flagfile(self, skip=("resume",))

    @classmethod
    def from_dict(cls, values, **overrides):
        """Builds a config from a dict of every field (a `config.json`)."""
        return from_dict(cls, values, **overrides)
