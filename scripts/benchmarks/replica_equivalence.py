"""python scripts/benchmarks/replica_equivalence.py

Prints how far a MirroredStrategy run's target table is from a 1-device run.

Splits the CPU into two logical devices, trains the same ELRModel (same
initial weights, same data order) without a strategy, on a 1-replica and on
a 2-replica MirroredStrategy, and prints the largest differences of the
target table, the weights and the logged losses. `tests/models/test_distributed.py`
asserts the same comparison.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import elr_tf  # noqa: E402

NUM_EXAMPLES, NUM_CLASSES, BATCH, EPOCHS = 1000, 10, 64, 5


def train(strategy):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM_EXAMPLES, 20)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, NUM_EXAMPLES)
    keras.utils.set_random_seed(7)
    with strategy.scope():
        backbone = keras.Sequential(
            [
                keras.Input((20,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(NUM_CLASSES),
            ]
        )
        model = elr_tf.ELRModel(backbone, NUM_EXAMPLES, NUM_CLASSES, beta=0.7, lam=3.0)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    order = np.random.default_rng(1).permutation(NUM_EXAMPLES)
    data = tf.data.Dataset.from_tensor_slices(((x[order], order), y[order])).batch(BATCH)
    history = model.fit(data, epochs=EPOCHS, verbose=0, shuffle=False).history
    return model, history


def main():
    reference, ref_history = train(tf.distribute.get_strategy())
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    print(
        f"{NUM_EXAMPLES} examples, {NUM_CLASSES} classes, batch {BATCH}, {EPOCHS} epochs "
        "(last batch 40: uneven split is exercised by tests)"
    )
    print(f"{'replicas':<10}{'max |dT|':>12}{'max |dW|':>12}{'max |dloss|':>14}")
    for replicas in (1, 2):
        model, history = train(tf.distribute.MirroredStrategy(devices[:replicas]))
        d_table = np.abs(model.target_table.numpy() - reference.target_table.numpy()).max()
        d_weights = max(
            np.abs(a.numpy() - b.numpy()).max()
            for a, b in zip(model.backbone.weights, reference.backbone.weights)
        )
        d_loss = max(
            np.abs(np.array(history[k]) - np.array(ref_history[k])).max()
            for k in ("loss", "ce", "elr")
        )
        print(f"{replicas:<10}{d_table:>12.2e}{d_weights:>12.2e}{d_loss:>14.2e}")


if __name__ == "__main__":
    main()
