"""`ELRModel`: any Keras classifier trained with Early-Learning Regularization."""

import keras
import tensorflow as tf

from elr_tf import inputs as inputs_lib
from elr_tf import losses
from elr_tf.models.indexed_model import IndexedModel
from elr_tf.models.validation import (
    check_labels,
    check_logits,
    check_not_softmax,
    check_output_width,
    output_width,
    validate_hyperparameters,
)


@keras.saving.register_keras_serializable(package="elr_tf")
class ELRModel(IndexedModel):
    """Wraps a classifier so that `fit` trains it with the ELR loss.

    Each training step (ELR-SPEC §1): compute `p = clip(softmax(z))`, update
    the target table rows of the batch's ids with `p / sum(p)`, then minimise
    `base_loss(y, z) + lam * mean(log(1 - <T[i], p>))`. The base loss is the
    compiled loss, sparse categorical cross-entropy on logits by default.

    Training batches carry sample ids (see `elr_tf.inputs`); `evaluate`,
    `predict` and calls take plain inputs. Logged metrics: `loss` (total),
    `ce` (base loss part) and `elr` (the regulariser, before `lam`), plus the
    compiled metrics. `loss - ce - lam * elr` is the weight-decay (and other
    `add_loss`) part.

    Args:
        backbone: any Keras model mapping inputs to logits `[batch, C]`
            (Sequential, functional or subclassed). No softmax at the end.
        num_examples: size of the training id space (rows of the table).
        num_classes: number of classes `C`; must match the backbone output.
        beta: temporal-ensembling momentum of the targets, in `[0, 1)`.
        lam: weight of the ELR term (lambda), `>= 0`. `lam=0` trains with the
            base loss alone while still tracking targets.
        table_dtype: storage precision of the table: `"float32"`, or
            `"bfloat16"` / `"float16"` to halve its memory (see `TargetTable`).
        table_placement: None, or `"host"` to keep the table in host memory
            (single-replica training).
        track_margins: keep, per id, the logit margin of the given label
            averaged over training (`average_margins`, the AUM score that
            `elr_tf.find_label_issues` can rank by; see `MarginTracker`).
        track_table_mean: keep the table averaged over training
            (`mean_target_table`), from which `elr_tf.find_label_issues`
            counts the wrong labels (see `TargetTable`).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    ```python
    model = elr_tf.ELRModel(backbone, num_examples=len(x), num_classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(elr_tf.with_index(x, y), epochs=5)
    targets = model.target_table  # [num_examples, 10]
    ```

    References:
        Liu, Niles-Weed, Razavian, Fernandez-Granda. "Early-Learning
        Regularization Prevents Memorization of Noisy Labels", NeurIPS 2020.
    """

    serialized_models = ("backbone",)

    def __init__(
        self,
        backbone,
        num_examples,
        num_classes,
        beta=0.7,
        lam=3.0,
        table_dtype="float32",
        table_placement=None,
        track_margins=True,
        track_table_mean=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_hyperparameters(beta, lam)
        check_output_width(output_width(backbone), num_classes)
        check_not_softmax(backbone)
        self.backbone = backbone
        self.num_examples = num_examples
        self.num_classes = num_classes
        self.beta = float(beta)
        self.lam = float(lam)
        self.add_target_layers(
            1, num_examples, num_classes, beta, table_dtype, table_placement, track_table_mean
        )
        self.add_margin_tracker(track_margins, num_examples)
        self.training_only_metrics = ("ce", "elr")
        self.ce_tracker = keras.metrics.Mean(name="ce")
        self.elr_tracker = keras.metrics.Mean(name="elr")
        if backbone.built:
            self.built = True

    @property
    def target_table(self):
        """The `[num_examples, num_classes]` target table as a float32 tensor."""
        return self.target_tables[0]

    @property
    def mean_target_table(self):
        """The table averaged over training, float32 `[num_examples, num_classes]`
        (zero rows for ids never trained on), or None with `track_table_mean=False`."""
        means = self.mean_target_tables
        return None if means is None else means[0]

    def call(self, inputs, training=None):
        inputs, _ = inputs_lib.split_index(inputs, required=False)
        logits = self.backbone(inputs, training=training)
        check_output_width(logits.shape[-1], self.num_classes)
        return logits

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, index = inputs_lib.split_index(x)
        index = inputs_lib.check_index(index)
        y = check_labels(y, self.num_classes)

        with tf.GradientTape() as tape:
            logits = check_logits(self(x, training=True), self.optimizer.iterations + 1)
            probs = losses.clipped_softmax(logits)
            targets = self.target_layers[0].update(index, losses.target_estimate(probs))
            self.update_margins(index, logits, y)
            base = self._compute_loss(
                x=x, y=y, y_pred=logits, sample_weight=sample_weight, training=True
            )
            reg = self._regularizer(targets, probs, sample_weight)
            loss = base + self.lam * reg
            scaled = self.optimizer.scale_loss(loss)

        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))

        self._track_losses(x, loss, base - self._additional_losses(), reg)
        logs = self.compute_metrics(x, y, logits, sample_weight=sample_weight)
        return self.step_logs(logs)

    def _regularizer(self, targets, probs, sample_weight):
        # Scaled like the compiled loss (see `replica_share`).
        per_example = losses.elr_regularizer(targets, probs)
        if sample_weight is not None:
            per_example *= tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        return self.replica_share(tf.reduce_mean(per_example))

    def _additional_losses(self):
        # Weight-decay and other `add_loss` terms, which Keras folds into the
        # compiled loss; subtracted so that `ce` reports the label term alone.
        if not self.losses:
            return 0.0
        return self.replica_share(tf.add_n([tf.cast(term, tf.float32) for term in self.losses]))

    def _track_losses(self, x, loss, base, reg):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        for tracker, value in (
            (self._loss_tracker, loss),
            (self.ce_tracker, base),
            (self.elr_tracker, reg),
        ):
            tracker.update_state(value * replicas, sample_weight=batch)

    def get_config(self):
        config = super().get_config()
        config.update(
            backbone=keras.saving.serialize_keras_object(self.backbone),
            **self.method_config(),
        )
        return config
