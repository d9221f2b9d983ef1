"""python scripts/benchmarks/benchmark_cifar_recipe.py --data_dir=DIR  # as make_npz.py writes

What each lever of the CIFAR-10N CPU recipe (`configs/cifar10n_cpu.cfg`)
costs: the training step's images/s for each network, precision, XLA,
`steps_per_execution` and batch size, and the input pipeline's images/s
with and without augmentation, against the step's.

    python scripts/benchmarks/benchmark_cifar_recipe.py --parts=step \
        --archs=small_cnn,resnet9_w32 --precisions=float32,mixed_bfloat16

Prints its figures; nothing is asserted. Each step contender trains an
`ELRModel` through `model.fit` on one fixed batch of CIFAR-shaped images
repeated (so input costs nothing there), contenders alternate over
`--rounds` rounds (A B C A B C ...) and each figure is the median; the
ratio column divides by the first contender, so it holds on a shared,
drifting machine. `s/epoch` is 50,000 examples at that rate. The input
part builds the program's own training pipeline (`make_train_dataset`) on
CIFAR-10N when `--data_dir` is given, else on random uint8 images of that
shape.
"""

import itertools
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import elr_tf  # noqa: E402
from elr_tf import data as datasets  # noqa: E402
from elr_tf.experiment.config import PRECISIONS  # noqa: E402
from elr_tf.models import backbones  # noqa: E402

_PARTS = flags.DEFINE_list("parts", ["step", "input"], "Parts to run: step, input.")
_ARCHS = flags.DEFINE_list("archs", ["resnet9_w32", "small_cnn"], "Backbones.")
_PRECISIONS = flags.DEFINE_list(
    "precisions", ["mixed_bfloat16", "float32"], f"Dtype policies, of {PRECISIONS}."
)
_JIT = flags.DEFINE_list("jit", ["false"], "XLA settings to time: false, true.")
_SPE = flags.DEFINE_list("steps_per_execution", ["1"], "steps_per_execution values.")
_BATCHES = flags.DEFINE_list("batches", ["256"], "Batch sizes.")
_STEPS = flags.DEFINE_integer("steps", 16, "Timed steps per contender and round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "CIFAR-10N folder for the input part.")

_EPOCH = 50_000


def _step_contender(arch, precision, jit, spe, batch):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = elr_tf.ELRModel(
        backbones.build_backbone(arch, 10, (32, 32, 3), weight_decay=5e-4),
        num_examples=_EPOCH,
        num_classes=10,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        jit_compile=jit,
        steps_per_execution=spe,
    )
    keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 32, 32, 3), dtype=np.float32)
    ids = rng.choice(_EPOCH, batch, replace=False)
    y = rng.integers(0, 10, batch)
    dataset = tf.data.Dataset.from_tensors(((x, ids), y)).repeat()
    steps = max(spe, _STEPS.value // spe * spe)
    model.fit(dataset, steps_per_epoch=2 * spe, epochs=1, verbose=0)  # tracing

    def images_per_second():
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * batch / (time.perf_counter() - start)

    return images_per_second


def run_step():
    contenders = list(
        itertools.product(
            _ARCHS.value,
            _PRECISIONS.value,
            [j.lower() == "true" for j in _JIT.value],
            [int(s) for s in _SPE.value],
            [int(b) for b in _BATCHES.value],
        )
    )
    timers = [_step_contender(*c) for c in contenders]
    rates = [[] for _ in contenders]
    for _ in range(_ROUNDS.value):
        for timer, got in zip(timers, rates):
            got.append(timer())
    print(f"\n== ELR training step, images/s (median of {_ROUNDS.value} alternating rounds)")
    print(
        f"{'backbone':<16}{'precision':<16}{'jit':<6}{'spe':>4}{'batch':>6}"
        f"{'images/s':>10}{'s/epoch':>9}{'ratio':>7}"
    )
    first = statistics.median(rates[0])
    for (arch, precision, jit, spe, batch), got in zip(contenders, rates):
        rate = statistics.median(got)
        print(
            f"{arch:<16}{precision:<16}{str(jit):<6}{spe:>4}{batch:>6}"
            f"{rate:>10.0f}{_EPOCH / rate:>9.1f}{rate / first:>7.2f}"
        )


def _cifar_like_data():
    if _DATA_DIR.value:
        return datasets.load_dataset("cifar10_n", _DATA_DIR.value, val_fraction=0.0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "random.npz")
        np.savez(
            path,
            x=rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8),
            y=rng.integers(0, 10, 10_000),
        )
        return datasets.load_dataset("npz", path, val_fraction=0.0)


def run_input():
    data = _cifar_like_data()
    batch = int(_BATCHES.value[0])
    print(f"\n== input pipeline, {len(data.train)} CIFAR images, batch {batch}")
    for augment in (True, False):
        epoch = tf.Variable(0, dtype=tf.int64)
        dataset = datasets.make_train_dataset(data, batch, seed=0, epoch=epoch, augment=augment)
        iterator = iter(dataset.repeat())
        for _ in range(5):
            next(iterator)
        steps = 100
        start = time.perf_counter()
        for _ in range(steps):
            next(iterator)
        rate = steps * batch / (time.perf_counter() - start)
        print(f"augment={str(augment):<6}: {rate:>10.0f} images/s  ({_EPOCH / rate:.1f} s/epoch)")


def main(argv):
    del argv
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}"
    )
    parts = {"step": run_step, "input": run_input}
    for part in _PARTS.value:
        if part not in parts:
            raise app.UsageError(
                f"`--parts` entries must be in {sorted(parts)}. Received: {part!r}"
            )
    for name in _PRECISIONS.value:
        if name not in PRECISIONS:
            raise app.UsageError(
                f"`--precisions` entries must be in {PRECISIONS}. Received: {name!r}"
            )
    for part in _PARTS.value:
        parts[part]()


if __name__ == "__main__":
    app.run(main)
