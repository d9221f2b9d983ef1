"""python scripts/benchmarks/benchmark_elr_plus.py --arch=preact_resnet18 --batch_size=128

Measures the per-batch cost of ELR+ weight averaging against the step time
(run from the repository root).

It builds an `ELRPlusModel` of two `--arch` networks on synthetic CIFAR-shaped
data and times, per batch:

- `ema_compiled`: one call of `WeightAveraging`'s compiled update (all
  averaged variables of both networks in one `tf.function`);
- `ema_eager`: the same update as a Python loop of eager ops, one
  `assign` per variable (what the callback avoids);
- `train_step`: one ELR+ training step (two forward-backward passes and two
  averaged-copy forwards), measured inside `fit` without the averaging.

Everything runs `--warmup` untimed calls first (tracing).

With `--cost` it measures instead what ELR+ costs against ELR, in one run,
alternating the two (`--rounds` times; medians, the first round dropped):

    python scripts/benchmarks/benchmark_elr_plus.py --cost --arch=plain_cnn \
        --image_size=28 --channels=1

- `elr_epoch`, `elr_plus_epoch`: seconds of one `fit` epoch of `ELRModel`
  and of `ELRPlusModel` (its default schedule, with `Mixup` and
  `WeightAveraging`) on the same synthetic data, and their ratio;
- `forward_backward`, `forward`: one network's compiled training step
  (forward, backward and SGD update) and its training-mode forward alone;
  `2 * forward_backward + 2 * forward` is ELR+'s work by operation count
  (two networks trained, two teacher forwards); the remainder of an ELR+
  step (tables, mixup, averaging, callbacks) is printed beside it.
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from elr_tf import with_index  # noqa: E402
from elr_tf.callbacks import WeightAveraging, ema_decay  # noqa: E402
from elr_tf.experiment.callbacks import EpochTimer  # noqa: E402
from elr_tf.models import ELRPlusModel, backbones  # noqa: E402

_ARCH = flags.DEFINE_enum("arch", "preact_resnet18", list(backbones.PRESETS), "Backbone.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Number of classes.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Square image side.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size of the timed steps.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed training steps.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed averaging updates.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls before each timing.")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Image channels.")
_COST = flags.DEFINE_bool("cost", False, "Measure ELR+ against ELR (see module doc).")
_ROUNDS = flags.DEFINE_integer("rounds", 4, "--cost: alternating rounds (the first dropped).")


def _time(function, repeats, warmup):
    for _ in range(warmup):
        function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def benchmark(arch, num_classes, image_size, batch_size, steps=3, repeats=20, warmup=2):
    """Returns seconds per batch of the averaging update and the train step.

    Args:
        arch: a `backbones.PRESETS` name.
        num_classes: number of classes.
        image_size: side of the square 3-channel images.
        batch_size: batch size of the training steps.
        steps: timed training steps.
        repeats: timed averaging updates.
        warmup: untimed calls first.

    Returns:
        Dict with `parameters` (averaged, both networks), `ema_compiled`,
        `ema_eager` and `train_step` in seconds.
    """
    shape = (image_size, image_size, 3)

    def build():
        return backbones.build_backbone(arch, num_classes, shape, weight_decay=5e-4)

    num_examples = batch_size * (steps + warmup)
    model = ELRPlusModel(build(), build(), num_examples=num_examples, num_classes=num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
    model.optimizer.iterations.assign(100)

    compiled = WeightAveraging(0.997).make_update_function(model)
    pairs = model.averaging_pairs()

    def eager():
        decay = float(ema_decay(int(model.optimizer.iterations.numpy()), 0.997))
        for average, weight in pairs:
            average.assign(decay * average + (1.0 - decay) * weight)

    ema_compiled = _time(compiled, repeats, warmup)
    ema_eager = _time(eager, max(1, repeats // 4), 1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_examples, *shape)).astype("float32")
    y = rng.integers(0, num_classes, num_examples)
    # One batch per network, as the default data_order="separate" trains.
    dataset = with_index(x, y, batch_size=batch_size, seed=0, shuffles=2)
    timer = _StepTimer()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[timer, _Silence()])
    return {
        "parameters": int(sum(np.prod(w.shape) for _, w in pairs)),
        "ema_compiled": ema_compiled,
        "ema_eager": ema_eager,
        "train_step": float(np.mean(timer.seconds[warmup:])),
    }


class _Silence(WeightAveraging):
    # Passes fit's check for an averaging callback without timing one.
    def on_train_begin(self, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


def cost(arch, num_classes, shape, batch_size, steps=10, rounds=4, repeats=20):
    """ELR+ against ELR on one backbone: epoch seconds and the step's parts.

    Returns:
        Dict of medians in seconds: `elr_epoch`, `elr_plus_epoch`,
        `forward_backward`, `forward`; and `steps` per epoch.
    """
    import elr_tf

    def build():
        return backbones.build_backbone(arch, num_classes, shape, weight_decay=5e-4)

    n = batch_size * steps
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = rng.integers(0, num_classes, n)
    elr = elr_tf.ELRModel(build(), num_examples=n, num_classes=num_classes)
    plus = ELRPlusModel(build(), build(), num_examples=n, num_classes=num_classes)
    runs = {
        "elr_epoch": (elr, elr_tf.with_index(x, y, batch_size=batch_size, seed=0), []),
        "elr_plus_epoch": (
            plus,
            elr_tf.with_index(x, y, batch_size=batch_size, seed=0, shuffles=2),
            [elr_tf.Mixup(1.0), WeightAveraging(0.997, ema_step=500)],
        ),
    }
    for model, _, _ in runs.values():
        model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9), metrics=["accuracy"])
    seconds = {key: [] for key in runs}
    for _ in range(rounds):
        for key, (model, dataset, callbacks) in runs.items():
            timer = EpochTimer()
            model.fit(dataset, epochs=1, verbose=0, callbacks=[*callbacks, timer])
            seconds[key].append(timer.seconds[-1])

    network = build()
    optimizer = keras.optimizers.SGD(0.02, momentum=0.9)
    images = tf.constant(x[:batch_size])
    labels = tf.constant(y[:batch_size])

    @tf.function
    def forward():
        return network(images, training=True)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            logits = network(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            ) + tf.add_n(network.losses)
        weights = network.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))

    def median_call(function):
        for _ in range(3):
            function()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    result = {key: float(np.median(values[1:] or values)) for key, values in seconds.items()}
    result["forward_backward"] = median_call(forward_backward)
    result["forward"] = median_call(forward)
    result["steps"] = steps
    return result


def main(argv):
    del argv
    if _COST.value:
        shape = (_IMAGE_SIZE.value, _IMAGE_SIZE.value, _CHANNELS.value)
        r = cost(
            _ARCH.value, _NUM_CLASSES.value, shape, _BATCH_SIZE.value, _STEPS.value, _ROUNDS.value
        )
        per_step = {k: 1000 * r[k] / r["steps"] for k in ("elr_epoch", "elr_plus_epoch")}
        work = 2 * r["forward_backward"] + 2 * r["forward"]
        print(
            f"arch: {_ARCH.value}, input {shape}, batch {_BATCH_SIZE.value}, "
            f"{r['steps']} steps/epoch"
        )
        print(
            f"epoch: ELR {r['elr_epoch']:.2f} s, ELR+ {r['elr_plus_epoch']:.2f} s, "
            f"ratio {r['elr_plus_epoch'] / r['elr_epoch']:.2f}"
        )
        print(
            f"one network: forward+backward+update {1000 * r['forward_backward']:.1f} ms, "
            f"training-mode forward {1000 * r['forward']:.1f} ms"
        )
        print(
            f"ELR+ step {per_step['elr_plus_epoch']:.1f} ms = 2 x (forward+backward) + "
            f"2 x forward {1000 * work:.1f} ms + the rest "
            f"{per_step['elr_plus_epoch'] - 1000 * work:.1f} ms; ELR step "
            f"{per_step['elr_epoch']:.1f} ms (its rest "
            f"{per_step['elr_epoch'] - 1000 * r['forward_backward']:.1f} ms)"
        )
        return
    result = benchmark(
        _ARCH.value,
        _NUM_CLASSES.value,
        _IMAGE_SIZE.value,
        _BATCH_SIZE.value,
        steps=_STEPS.value,
        repeats=_REPEATS.value,
        warmup=_WARMUP.value,
    )
    step = result["train_step"]
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"arch: {_ARCH.value}, batch: {_BATCH_SIZE.value}, device: {device}")
    print(f"averaged parameters (both networks): {result['parameters']:,}")
    for key in ("ema_compiled", "ema_eager"):
        seconds = result[key]
        print(f"{key}: {1000 * seconds:.1f} ms/batch ({100 * seconds / step:.2f}% of a step)")
    print(f"train_step: {1000 * step:.1f} ms/batch")


if __name__ == "__main__":
    app.run(main)
