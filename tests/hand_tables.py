"""Small hand-made tables and runs the finder's tests share."""

import keras
import numpy as np

import elr_tf


def memorised_tables():
    """`(true, labels, averaged, final)`: a run that learnt 15 of its 20 flips.

    100 examples of each of 2 classes, 20 of class 0 labelled 1. The
    averaged table still puts all 20 in class 0; the final one only 5.
    """
    true = np.repeat([0, 1], 100)
    labels = true.copy()
    labels[:20] = 1
    averaged = np.where(np.eye(2, dtype=bool)[true], 0.875, 0.125)
    final = averaged.copy()
    final[5:20] = [0.125, 0.875]
    return true, labels, averaged, final


def frozen_run(num_examples, num_features, num_classes, epochs=3, **model_options):
    """`(model, x, y)`: an `ELRModel` fitted with a zero learning rate.

    Its network never changes, so every statistic it averages over training
    equals the statistic of the fixed logits `model.backbone(x)`.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_examples, num_features)).astype("float32")
    y = rng.integers(0, num_classes, num_examples)
    backbone = keras.Sequential([keras.Input((num_features,)), keras.layers.Dense(num_classes)])
    model = elr_tf.ELRModel(backbone, num_examples, num_classes, **model_options)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.fit(elr_tf.with_index(x, y, batch_size=8, seed=0), epochs=epochs, verbose=0)
    return model, x, y
