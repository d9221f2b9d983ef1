"""python scripts/benchmarks/benchmark_audit.py --sizes=2700,10000,54000

What the final audit's neighbour vote costs beside training: for each size,
one forward pass over the training set for the embedding plus the exact
neighbour search (`elr_tf.diagnostics.neighbours`), against one training
epoch of the same ELR model on the same examples (Fashion-MNIST images,
`--arch`, batch 128). Prints seconds and the ratio to the epoch, each the
median of `--repeats` runs taken alternately in one process (the ratio is
the figure to quote on a shared machine). Nothing is asserted.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import elr_tf  # noqa: E402
from elr_tf.data.sources import fashion_mnist  # noqa: E402
from elr_tf.diagnostics import neighbours  # noqa: E402
from elr_tf.models import backbones  # noqa: E402

_SIZES = flags.DEFINE_list("sizes", ["2700", "10000", "54000"], "Training-set sizes.")
_ARCH = flags.DEFINE_string("arch", "mini_cnn", "Backbone preset.")
_K = flags.DEFINE_integer("k", neighbours.DEFAULT_NEIGHBOURS, "Neighbours per example.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats of each part.")


def main(argv):
    del argv
    train_set = fashion_mnist.load(None).train
    images, labels = train_set.features, train_set.labels
    print(f"{_ARCH.value}, k={_K.value}, median of {_REPEATS.value}")
    print(f"{'examples':>9} {'epoch s':>8} {'embed s':>8} {'search s':>9} {'audit/epoch':>12}")
    for size in (int(s) for s in _SIZES.value):
        x = images[:size].astype("float32") / 255.0
        y = labels[:size].astype("int64")
        backbone = backbones.build_backbone(_ARCH.value, input_shape=x.shape[1:], num_classes=10)
        model = elr_tf.ELRModel(backbone, num_examples=size, num_classes=10)
        model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
        train = elr_tf.with_index(x, y, batch_size=128)
        model.fit(train, epochs=1, verbose=0)  # traces the step
        neighbours.neighbour_label_shares(np.ones((64, 4)), np.zeros(64, int), 10, k=5)
        epoch, embed, search = [], [], []
        for _ in range(_REPEATS.value):
            start = time.perf_counter()
            model.fit(train, epochs=1, verbose=0)
            middle = time.perf_counter()
            features = neighbours.embeddings(model, x)
            after_pass = time.perf_counter()
            neighbours.neighbour_label_shares(features, y, 10, k=_K.value)
            end = time.perf_counter()
            epoch.append(middle - start)
            embed.append(after_pass - middle)
            search.append(end - after_pass)
        e, m, s = (statistics.median(v) for v in (epoch, embed, search))
        print(f"{size:>9} {e:>8.2f} {m:>8.2f} {s:>9.2f} {(m + s) / e:>12.2f}")


if __name__ == "__main__":
    app.run(main)
