"""python scripts/benchmarks/benchmark_input.py --dataset=fashion_mnist --batch_size=128

Measures the input-pipeline throughput of `make_train_dataset` (images/s;
run from the repository root).

It loads the data set, builds the training pipeline exactly as training does
(shuffle, augmentation, normalisation), runs `--warmup_steps` batches (tracing,
thread start-up, filling the prefetch buffer), then times `--steps` batches and
prints the images/s. Compare it with the training-step throughput: while the
pipeline is faster, input is not the bottleneck.
"""

import time

from absl import app, flags

from elr_tf import data as datasets  # noqa: E402

_DATASET = flags.DEFINE_enum(
    "dataset", "fashion_mnist", datasets.DATASET_NAMES, "Data set to read."
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data directory (see elr_tf.data.load_dataset).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 1000, "Timed batches.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 20, "Untimed batches first.")
_AUGMENT = flags.DEFINE_bool("augment", True, "Apply training augmentation.")


def benchmark(data, batch_size, steps, warmup_steps=20, augment=True, seed=0):
    """Times `steps` batches of `make_train_dataset` after a warm-up.

    Args:
        data: a `NoisyData`.
        batch_size: batch size.
        steps: number of timed batches (epochs repeat as needed).
        warmup_steps: untimed batches drawn first.
        augment: apply training augmentation.
        seed: pipeline seed.

    Returns:
        Dict with `images`, `seconds` and `images_per_second`.
    """
    if steps < 1 or warmup_steps < 0:
        raise ValueError(
            "`steps` must be >= 1 and `warmup_steps` >= 0. Received: "
            f"steps={steps}, warmup_steps={warmup_steps}"
        )
    # Full batches only, so that every timed step is a whole batch.
    ds = datasets.make_train_dataset(
        data, batch_size, seed=seed, augment=augment, drop_remainder=True
    )
    iterator = iter(ds.repeat())
    for _ in range(warmup_steps):
        next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(steps):
        (batch, _), _ = next(iterator)
        images += int(batch.shape[0])
    seconds = time.perf_counter() - start
    return {
        "images": images,
        "seconds": seconds,
        "images_per_second": images / seconds,
    }


def main(argv):
    del argv
    data = datasets.load_dataset(_DATASET.value, _DATA_DIR.value)
    result = benchmark(
        data,
        _BATCH_SIZE.value,
        _STEPS.value,
        warmup_steps=_WARMUP_STEPS.value,
        augment=_AUGMENT.value,
    )
    print(
        f"{data.name}: {result['images']} images ({_STEPS.value} batches of "
        f"{_BATCH_SIZE.value}, augment={_AUGMENT.value}) in "
        f"{result['seconds']:.2f} s = {result['images_per_second']:,.0f} images/s"
    )


if __name__ == "__main__":
    app.run(main)
