"""python scripts/benchmarks/benchmark.py  # everything, CPU sizes

Measures what ELR costs: step time vs cross-entropy, table update, input.

    python scripts/benchmarks/benchmark.py --parts=step --archs=small_cnn --steps=20

Prints its figures; nothing is asserted. Timings are taken in one run and
reported as ratios where they compare two things, because a shared machine's
absolute speed drifts: each comparison alternates its two contenders
(A B A B ...) and reports the ratio of their median step times.

Parts:
  step   ELRModel vs the same backbone compiled with plain cross-entropy,
         for each `--archs` at `--batch`, jit off and on; and ELRModel
         without the averaged table (`track_table_mean=False`) against it.
  table  TargetTable.update alone (one compiled call per step) and the
         table's memory, as num_examples x num_classes grows to WebVision-1000
         size, for float32 and bfloat16 storage.
  input  tf.data throughput of the Fashion-MNIST training pipeline vs the
         training step's throughput.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import elr_tf  # noqa: E402
from elr_tf import data as datasets  # noqa: E402
from elr_tf.models import backbones  # noqa: E402
from elr_tf.target_table import TargetTable  # noqa: E402

_PARTS = flags.DEFINE_list("parts", ["step", "table", "input"], "Parts to run.")
_ARCHS = flags.DEFINE_list("archs", ["small_cnn", "cifar_resnet34"], "Backbones for `step`.")
_BATCH = flags.DEFINE_integer("batch", 128, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per contender and round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds per comparison.")
_TABLE_SIZES = flags.DEFINE_list(
    "table_sizes",
    ["50000x10", "1000000x14", "1000000x100", "2400000x1000"],
    "num_examples x num_classes for `table`.",
)

_INPUT_SHAPES = {
    "small_cnn": (28, 28, 1),
    "tiny_cnn": (28, 28, 1),
    "cifar_resnet34": (32, 32, 3),
    "preact_resnet18": (32, 32, 3),
    "resnet9_w32": (32, 32, 3),
}


def _timed_steps(model, x, y, steps):
    """Median seconds per `train_on_batch` call over `steps` calls."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _step_comparison(arch, batch, jit):
    shape = _INPUT_SHAPES[arch]
    num_classes = 10
    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, num_classes, batch)
    ids = np.arange(batch, dtype=np.int64)

    keras.utils.set_random_seed(0)
    ce_model = backbones.build_backbone(arch, num_classes, shape)
    ce_model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    elr_models = []
    for track in (True, False):
        model = elr_tf.ELRModel(
            backbones.build_backbone(arch, num_classes, shape),
            num_examples=50_000,
            num_classes=num_classes,
            track_table_mean=track,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=jit)
        elr_models.append(model)
    contenders = [(ce_model, x)] + [(model, (x, ids)) for model in elr_models]
    # Warm-up: tracing and compilation are not part of a step's cost.
    for model, inputs in contenders:
        _timed_steps(model, inputs, y, 2)
    times = [[] for _ in contenders]
    for _ in range(_ROUNDS.value):
        for (model, inputs), kept in zip(contenders, times):
            kept.append(_timed_steps(model, inputs, y, _STEPS.value))
    return [statistics.median(kept) for kept in times]


def run_step():
    print(f"\n== step time, batch {_BATCH.value} (median of {_ROUNDS.value} rounds)")
    print("(ELR keeps its averaged table; 'no mean': track_table_mean=False)")
    header = f"{'CE ms':>10}{'ELR ms':>10}{'ELR/CE':>9}{'no mean ms':>12}{'ELR/no mean':>13}"
    print(f"{'backbone':<16}{'jit':<6}{header}")
    for arch in _ARCHS.value:
        for jit in (False, True):
            ce_step, elr_step, plain_step = _step_comparison(arch, _BATCH.value, jit)
            print(
                f"{arch:<16}{str(jit):<6}{1e3 * ce_step:>10.1f}{1e3 * elr_step:>10.1f}"
                f"{elr_step / ce_step:>9.3f}{1e3 * plain_step:>12.1f}"
                f"{elr_step / plain_step:>13.3f}"
            )


def run_table():
    print(f"\n== TargetTable.update alone, batch {_BATCH.value}")
    print(f"{'examples x classes':<22}{'storage':<10}{'memory':>11}{'update ms':>11}")
    batch = _BATCH.value
    for size in _TABLE_SIZES.value:
        num_examples, num_classes = (int(v) for v in size.split("x"))
        for dtype in ("float32", "bfloat16"):
            table = TargetTable(num_examples, num_classes, storage_dtype=dtype)
            bytes_ = num_examples * num_classes * (4 if dtype == "float32" else 2)

            @tf.function(jit_compile=False)
            def update(ids, estimates, table=table):
                return table.update(ids, estimates)

            rng = np.random.default_rng(0)
            estimates = tf.nn.softmax(rng.random((batch, num_classes), dtype=np.float32))
            update(tf.constant(rng.integers(0, num_examples, batch)), estimates)
            times = []
            for _ in range(50):
                ids = tf.constant(rng.choice(num_examples, batch, replace=False))
                start = time.perf_counter()
                update(ids, estimates).numpy()
                times.append(time.perf_counter() - start)
            print(
                f"{size:<22}{dtype:<10}{bytes_ / 2**20:>8.0f}MiB"
                f"{1e3 * statistics.median(times):>11.3f}"
            )
            del table, update


def run_input():
    print(f"\n== input pipeline vs training step, Fashion-MNIST, batch {_BATCH.value}")
    data = datasets.load_dataset("fashion_mnist")
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = datasets.make_train_dataset(data, _BATCH.value, seed=0, epoch=epoch)
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    steps = 200
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    input_rate = steps * _BATCH.value / (time.perf_counter() - start)

    model = elr_tf.ELRModel(
        backbones.build_backbone("small_cnn", 10, (28, 28, 1)),
        num_examples=data.num_examples,
        num_classes=10,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    model.fit(dataset, steps_per_epoch=5, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=50, epochs=1, verbose=0)
    train_rate = 50 * _BATCH.value / (time.perf_counter() - start)
    print(f"input pipeline alone : {input_rate:>10.0f} images/s")
    print(f"training (small_cnn) : {train_rate:>10.0f} images/s")
    print(f"input / training     : {input_rate / train_rate:>10.1f}x")


def main(argv):
    del argv
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, devices:")
    print("  " + ", ".join(d.name for d in tf.config.list_logical_devices()))
    parts = {"step": run_step, "table": run_table, "input": run_input}
    for part in _PARTS.value:
        if part not in parts:
            raise app.UsageError(
                f"`--parts` entries must be in {sorted(parts)}. Received: {part!r}"
            )
        parts[part]()


if __name__ == "__main__":
    app.run(main)
