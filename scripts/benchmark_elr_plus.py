"""Measures the per-batch cost of ELR+ weight averaging against the step time.

Run from the repository root:

    python scripts/benchmark_elr_plus.py --arch=preact_resnet18 --batch_size=128

It builds an `ELRPlusModel` of two `--arch` networks on synthetic CIFAR-shaped
data and times, per batch:

- `ema_compiled`: one call of `WeightAveraging`'s compiled update (all
  averaged variables of both networks in one `tf.function`);
- `ema_eager`: the same update as a Python loop of eager ops, one
  `assign` per variable (what the callback avoids);
- `train_step`: one ELR+ training step (two forward-backward passes and two
  averaged-copy forwards), measured inside `fit` without the averaging.

Everything runs `--warmup` untimed calls first (tracing).
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from elr_tf.callbacks import WeightAveraging, ema_decay  # noqa: E402
from elr_tf.models import ELRPlusModel, backbones  # noqa: E402

_ARCH = flags.DEFINE_enum("arch", "preact_resnet18", list(backbones.PRESETS), "Backbone.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Number of classes.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Square image side.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size of the timed steps.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed training steps.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed averaging updates.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls before each timing.")


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
    dataset = tf.data.Dataset.from_tensor_slices(((x, np.arange(num_examples)), y))
    timer = _StepTimer()
    model.fit(dataset.batch(batch_size), epochs=1, verbose=0, callbacks=[timer, _Silence()])
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


def main(argv):
    del argv
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
