"""Per-example margins averaged over training: a second wrong-label score.

The target table records *where* the network's predictions for an example
settle; the margin records *how hard* the network had to fight the given
label to get there. For a correctly labelled example the logit of its label
soon beats every other logit; for a mislabelled one, the true class keeps
winning until (without ELR) the network memorises the label. The mean of
the margin over all epochs, the area under the margin (AUM), is therefore
low or negative for wrong labels (Pleiss, Zhang, Elenberg, Weinberger,
"Identifying Mislabeled Data using the Area Under the Margin Ranking",
NeurIPS 2020, eq. 1-2).

The margins come from the logits every training step computes anyway, so
the score costs no extra pass over the data: one gather and scatter of the
batch's rows of a `[num_examples, 2]` variable (sum, count).
"""

import keras
import tensorflow as tf

from elr_tf import checks
from elr_tf.rows import accumulate_rows, check_ids, row_means


def label_margin(logits, labels):
    """Per-example margin `z[y] - max_{k != y} z[k]` of logits `z`.

    Args:
        logits: `[batch, num_classes]`, any float dtype.
        labels: int `[batch]` given labels.

    Returns:
        float32 `[batch]`; positive when the given label's logit is the
        largest.

    Example:

    >>> label_margin(tf.constant([[2.0, 0.5, 1.0]]), tf.constant([0])).numpy()
    array([1.], dtype=float32)
    """
    logits = tf.cast(logits, tf.float32)
    mask = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
    given = tf.reduce_sum(tf.where(mask, logits, 0.0), axis=-1)
    others = tf.reduce_max(tf.where(mask, float("-inf"), logits), axis=-1)
    return given - others


@keras.saving.register_keras_serializable(package="elr_tf")
class MarginTracker(keras.layers.Layer):
    """Running mean, per example id, of the given label's logit margin.

    Holds a `[num_examples, 2]` float32 weight of (sum of margins, number
    of updates). Every example is trained on once per epoch, so the mean is
    the margin averaged over epochs, the AUM score of Pleiss et al. (2020).
    Like `TargetTable` it is a non-trainable weight saved with the model,
    and under `MirroredStrategy` `update` gathers every replica's rows so
    that all copies receive the same update.

    Args:
        num_examples: number of ids; ids must lie in `[0, num_examples)`.
        validate_ids: check ids at run time (dropped under XLA).
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    >>> tracker = MarginTracker(num_examples=3)
    >>> tracker.update(tf.constant([2]), tf.constant([[0.0, 3.0]]), tf.constant([0]))
    >>> tracker.means().numpy()
    array([nan, nan, -3.], dtype=float32)

    References:
        Pleiss, Zhang, Elenberg, Weinberger. "Identifying Mislabeled Data
        using the Area Under the Margin Ranking", NeurIPS 2020.
    """

    def __init__(self, num_examples, validate_ids=True, **kwargs):
        super().__init__(**kwargs)
        self.num_examples = checks.positive_int("num_examples", num_examples)
        self.validate_ids = validate_ids
        self.sums = self.add_weight(
            shape=(num_examples, 2),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="margin_sums",
        )
        self.built = True

    def update(self, ids, logits, labels):
        """Adds this step's margins of `ids`; returns them, float32 `[batch]`.

        Must run inside the training step (replica context under a strategy).
        """
        ids = tf.cast(tf.reshape(ids, [-1]), tf.int64)
        if self.validate_ids:
            ids = check_ids(ids, self.num_examples)
        margins = tf.stop_gradient(label_margin(logits, tf.reshape(labels, [-1])))
        accumulate_rows(self.sums.value, ids, margins[:, None])
        return margins

    def means(self):
        """float32 `[num_examples]` mean margin per id; NaN for ids never updated."""
        return row_means(self.sums)[:, 0]

    def counts(self):
        """float32 `[num_examples]`: how many steps updated each id."""
        return tf.convert_to_tensor(self.sums)[:, 1]

    def call(self, ids):
        return tf.gather(self.means(), tf.cast(tf.reshape(ids, [-1]), tf.int64))

    def get_config(self):
        config = super().get_config()
        config.update(num_examples=self.num_examples, validate_ids=self.validate_ids)
        return config
