"""Small hand-made tables and runs the finder's tests share."""

import keras
import numpy as np

import elr_tf

# Six examples, three classes. Rows 0-2 agree with their label; row 3 and 4
# point elsewhere; row 5 is a tie between the label (0) and class 1. Row
# sums differ (0.5, 1, 0.3...) as they do early in training.
TABLE = np.array(
    [
        [0.40, 0.05, 0.05],  # label 0, sums to 0.5
        [0.10, 0.80, 0.10],  # label 1
        [0.00, 0.10, 0.20],  # label 2, sums to 0.3
        [0.70, 0.20, 0.10],  # label 2 -> flagged, table class 0
        [0.10, 0.60, 0.30],  # label 0 -> flagged, table class 1
        [0.40, 0.40, 0.20],  # label 1, tie with class 0 -> argmax 0, flagged
    ],
    dtype=np.float32,
)
LABELS = np.array([0, 1, 2, 2, 0, 1])
TRUE = np.array([0, 1, 1, 0, 1, 1])  # wrong labels: rows 2, 3, 4


def by_id(model_or_table, labels, **kwargs):
    """The table's self-confidence and argmax flags, in id order."""
    return elr_tf.find_label_issues(
        model_or_table, labels, score="self_confidence", flag="argmax", **kwargs
    ).by_id()


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


def unsure_table():
    """`(probs, labels)`: 10 of 80 labels wrong, the table unsure of half of them.

    40 examples labelled 0, all of class 0; 40 labelled 1: 30 of class 1,
    5 of class 0 the table places there, 5 of class 0 it is unsure of.
    It is unsure of 10 of the clean 0s too: 15 of the 80 rows (0.1875)
    reach neither class's threshold.
    """
    labels = np.repeat([0, 1], 40)
    probs = np.tile([0.9, 0.1], (80, 1))
    probs[30:40] = [0.6, 0.4]
    probs[40:70] = [0.1, 0.9]
    probs[75:80] = [0.55, 0.45]
    return probs, labels
