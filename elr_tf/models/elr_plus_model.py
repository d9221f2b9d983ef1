"""`ELRPlusModel`: two networks co-trained with ELR+ (ELR-SPEC §3)."""

import warnings

import keras
import tensorflow as tf

from elr_tf import checks, losses, mixing
from elr_tf import inputs as inputs_lib
from elr_tf.models.indexed_model import IndexedModel
from elr_tf.models.validation import (
    check_built,
    check_data_order,
    check_labels,
    check_logits,
    check_not_softmax,
    check_output_width,
    check_same_architecture,
    check_teacher_span,
    output_width,
    validate_hyperparameters,
)

_NETWORKS = 2
# How the two networks' batches are drawn: "separate" (each network its own
# shuffle, as the reference's two loaders) or "shared" (both on one batch).
DATA_ORDERS = ("separate", "shared")


@keras.saving.register_keras_serializable(package="elr_tf")
class ELRPlusModel(IndexedModel):
    """Trains two classifiers with ELR+: co-targets, mixup, weight averaging.

    Two networks `f1`, `f2` of the same architecture, each with a weight
    averaged copy `ema1`, `ema2` and a target table `T1`, `T2` addressed by
    sample id. Each training step, for network `k` with partner `o`, on
    network `k`'s batch `x` (ELR-SPEC §3):

    1. `T_k[i] <- beta * T_k[i] + (1 - beta) * softmax(teacher_o(x))`, on
       the un-mixed batch: each network's targets come from the *other*
       network's averaged copy, `teacher_o`: `ema_o` itself, or a snapshot
       of it held fixed for `teacher_span` steps.
    2. Mixup with this network's own `l_k` and permutation `m_k`:
       `x_mix`, `y_mix` (one-hot) and `q = l*T_k[i] + (1-l)*T_k[i][m]`.
    3. `loss_k = softCE(f_k(x_mix), y') + ramp(step) * lam *
       mean(log(1 - <q, clip(softmax(f_k(x_mix)))>))`, with `y' = y_mix`,
       or `y_mix * q` renormalised when `label_reweighting` is on, and
       `ramp = losses.sigmoid_rampup(step, coef_step)`
       (`losses.elr_plus_loss`).

    The optimiser minimises `loss_1 + loss_2` plus both networks' weight
    decay. Mixup and weight averaging are callbacks: `elr_tf.Mixup`
    (without it, no mixing) and `elr_tf.WeightAveraging` (required; `fit`
    warns without it). The averaged copies run in training mode, so their
    batch norm uses the un-mixed batch's statistics. Evaluation and
    prediction return `(f1(x) + f2(x)) / 2`. Training metrics and margins
    are those of the teachers' logits on the un-mixed batches (network
    `k`'s batch with `T_k`'s teacher). Logged: `loss` (`loss_1 + loss_2`
    with weight decay) and each network's `ce1`, `ce2`, `elr1`, `elr2`.

    Args:
        network1: a built Keras model mapping inputs to logits
            `[batch, num_classes]` (no softmax).
        network2: a second model of the same architecture (different
            initial weights), or None to clone `network1` with a fresh
            initialisation (functional and Sequential models only).
        num_examples: size of the training id space (rows of each table).
        num_classes: number of classes; must match the networks' output.
        beta: temporal-ensembling momentum of the targets, in `[0, 1)`.
        lam: weight of the ELR term (lambda), `>= 0`.
        coef_step: ramp length of the ELR term in optimizer steps, `>= 0`
            (0: no ramp).
        label_reweighting: use `y_mix * q` (renormalised) as the label of
            the cross-entropy term; None: on iff `num_classes == 100`, as
            the reference.
        ema_network1: the averaged copy of `network1` (same architecture);
            None clones `network1`. Its weights are set to `network1`'s.
        ema_network2: likewise for `network2`.
        table_dtype: storage precision of both tables (see `TargetTable`).
        table_placement: None, or `"host"` to keep both tables in host
            memory (single-replica training).
        track_margins: keep the per-id logit margin of the given label of
            the teachers' logits, averaged over training
            (`average_margins`; see `MarginTracker`).
        track_table_mean: keep both tables averaged over training
            (`mean_target_tables`; see `TargetTable`).
        data_order: `"separate"`: each network its own shuffle, training
            elements `{"network1": batch, "network2": batch}` as
            `elr_tf.with_index(x, y, shuffles=2)` makes; `"shared"`: one
            batch per step, each network's batch.
        teacher_span: None (each teacher is the partner's averaged copy as
            of the previous step), a number of steps N (a snapshot of it,
            refreshed by `WeightAveraging` after every N-th step; two more
            copies of the network's weights), or `"epoch"` (N = the steps
            per epoch `fit` reports).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    ```python
    build = lambda: elr_tf.models.backbones.build_backbone("preact_resnet18", 10)
    model = ELRPlusModel(build(), build(), num_examples=len(x), num_classes=10,
                         beta=0.7, lam=3.0)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(elr_tf.with_index(x, y, batch_size=128, shuffles=2), epochs=200, callbacks=[
        elr_tf.Mixup(alpha=1.0, seed=123),
        elr_tf.WeightAveraging(0.997, ema_step=40000),
    ])
    ```

    References:
        Liu, Niles-Weed, Razavian, Fernandez-Granda. "Early-Learning
        Regularization Prevents Memorization of Noisy Labels", NeurIPS 2020,
        §5 and Appendix (ELR+); reference code `shengliu66/ELR`, `ELR_plus/`.
    """

    serialized_models = ("network1", "network2", "ema_network1", "ema_network2")

    def __init__(
        self,
        network1,
        network2,
        num_examples,
        num_classes,
        beta=0.7,
        lam=3.0,
        coef_step=0,
        label_reweighting=None,
        ema_network1=None,
        ema_network2=None,
        table_dtype="float32",
        table_placement=None,
        track_margins=True,
        track_table_mean=True,
        data_order="separate",
        teacher_span="epoch",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_hyperparameters(beta, lam)
        checks.one_of("data_order", data_order, DATA_ORDERS)
        teacher_span = check_teacher_span(teacher_span)
        checks.non_negative_int("coef_step", coef_step)
        if label_reweighting is not None and not isinstance(label_reweighting, bool):
            raise ValueError(
                "`label_reweighting` must be None, True or False. "
                f"Received: label_reweighting={label_reweighting!r}"
            )
        check_built("network1", network1)
        if network2 is None:
            network2 = _clone("network2", network1, keep_weights=False)
        check_built("network2", network2)
        if network2 is network1:
            raise ValueError("`network2` must be a different model object from `network1`.")
        check_output_width(output_width(network1), num_classes)
        check_not_softmax(network1, "network1")
        check_same_architecture("network2", network2, network1)
        emas = []
        for k, (network, ema) in enumerate(
            ((network1, ema_network1), (network2, ema_network2)), start=1
        ):
            if ema is None:
                ema = _clone(f"ema_network{k}", network, keep_weights=True)
            check_built(f"ema_network{k}", ema)
            if any(ema is other for other in (network1, network2, *emas)):
                raise ValueError(
                    f"`ema_network{k}` must be a separate copy, not a network or the "
                    "other averaged copy."
                )
            check_same_architecture(f"ema_network{k}", ema, network)
            ema.set_weights(network.get_weights())
            emas.append(_exclude_from_training(ema))

        self.network1 = network1
        self.network2 = network2
        self.ema_network1, self.ema_network2 = emas
        self.data_order = data_order
        self.teacher_span = teacher_span
        # Held-fixed snapshots of the averaged copies, refreshed every
        # `teacher_span` steps by `WeightAveraging`; without a span the
        # averaged copies themselves are the teachers.
        self.teacher_network1 = self.teacher_network2 = None
        if teacher_span is not None:
            self.teacher_network1, self.teacher_network2 = (
                _exclude_from_training(_clone(f"teacher_network{k}", ema, keep_weights=True))
                for k, ema in enumerate(emas, start=1)
            )
        self.num_examples = num_examples
        self.num_classes = num_classes
        self.beta = float(beta)
        self.lam = float(lam)
        self.coef_step = coef_step
        self.label_reweighting = label_reweighting
        self.add_target_layers(
            _NETWORKS,
            num_examples,
            num_classes,
            beta,
            table_dtype,
            table_placement,
            track_table_mean,
        )
        self.add_margin_tracker(track_margins, num_examples)
        # Written by the Mixup callback before each batch; 1 = no mixing.
        self.mixup_lambda = self.add_weight(
            shape=(_NETWORKS,),
            initializer="ones",
            dtype="float32",
            trainable=False,
            name="mixup_lambda",
        )
        self.mixup_seed = self.add_weight(
            shape=(2,), initializer="zeros", dtype="int64", trainable=False, name="mixup_seed"
        )
        # Set by `WeightAveraging.set_model`, checked in `make_train_function`.
        self.weight_averaging_attached = False
        self.training_only_metrics = ("ce1", "ce2", "elr1", "elr2")
        self.ce_trackers = [keras.metrics.Mean(name=f"ce{k}") for k in (1, 2)]
        self.elr_trackers = [keras.metrics.Mean(name=f"elr{k}") for k in (1, 2)]
        self.built = True

    @property
    def networks(self):
        """`(network1, network2)`."""
        return self.network1, self.network2

    @property
    def ema_networks(self):
        """The averaged copies `(ema_network1, ema_network2)`."""
        return self.ema_network1, self.ema_network2

    @property
    def teacher_networks(self):
        """The networks whose softmax feeds `(T1, T2)`'s partners.

        `(teacher1, teacher2)`: the averaged copies themselves when
        `teacher_span` is None, else their held-fixed snapshots. Network
        `k`'s targets come from `teacher_networks[1 - k]`.
        """
        if self.teacher_network1 is None:
            return self.ema_networks
        return self.teacher_network1, self.teacher_network2

    def teacher_pairs(self):
        """`(snapshot, averaged)` variable pairs, all weights of both copies.

        Empty when `teacher_span` is None. `WeightAveraging` copies each
        averaged variable into its snapshot every `teacher_span` steps.
        """
        if self.teacher_network1 is None:
            return []
        return [
            (snapshot, average)
            for teacher, ema in zip(self.teacher_networks, self.ema_networks)
            for snapshot, average in zip(teacher.weights, ema.weights)
        ]

    @property
    def target_table(self):
        """The mean of the two tables, `[num_examples, num_classes]`.

        Each table is fed by the other network's averaged copy; their mean
        is the model's single estimate (e.g. for finding wrong labels with
        `argmax(T[i]) != y[i]`, ELR-SPEC §4).
        """
        first, second = self.target_tables
        return (first + second) / 2.0

    @property
    def use_label_reweighting(self):
        """Whether the label term uses `y_mix * q` (resolves None)."""
        if self.label_reweighting is None:
            return self.num_classes == 100
        return self.label_reweighting

    def averaging_pairs(self):
        """`(average, weight)` variable pairs for `WeightAveraging`.

        Every trainable weight of each network with the matching variable
        of its averaged copy (batch-norm moving statistics excluded).
        """
        pairs = []
        for network, ema in zip(self.networks, self.ema_networks):
            trainable = {id(v) for v in network.trainable_weights}
            pairs.extend(
                (average, weight)
                for weight, average in zip(network.weights, ema.weights)
                if id(weight) in trainable
            )
        return pairs

    def make_train_function(self, force=False):
        # `fit` calls this after the callbacks' `set_model`, so the mark of
        # a `WeightAveraging` callback is set by now; it lasts one `fit`.
        if not self.weight_averaging_attached:
            warnings.warn(
                "ELRPlusModel trains without a WeightAveraging callback: the "
                "averaged copies that produce the targets will not move. Pass "
                "callbacks=[elr_tf.WeightAveraging(...)] to fit "
                "(ema_alpha=0 makes each copy follow its network).",
                stacklevel=3,
            )
        self.weight_averaging_attached = False
        return super().make_train_function(force)

    def call(self, inputs, training=None):
        inputs, _ = inputs_lib.split_index(inputs, required=False)
        first = self.network1(inputs, training=training)
        second = self.network2(inputs, training=training)
        check_output_width(first.shape[-1], self.num_classes)
        return (first + second) / 2.0

    def train_step(self, data):
        batches = self._split_batches(data)
        step = self.optimizer.iterations + 1
        ramp = losses.sigmoid_rampup(step, self.coef_step)

        # Step 1, outside the tape: network k's table is fed by its
        # partner's teacher on the un-mixed batch network k trains on.
        rows, teacher_logits = [], []
        for k, (x, index, y, _) in enumerate(batches):
            teacher = self.teacher_networks[1 - k]
            logits = check_logits(tf.stop_gradient(teacher(x, training=True)), step)
            estimate = losses.target_estimate(tf.nn.softmax(logits))
            rows.append(self.target_layers[k].update(index, estimate))
            self.update_margins(index, logits, y)
            teacher_logits.append(logits)
        weights = [w for network in self.networks for w in network.trainable_weights]

        with tf.GradientTape() as tape:
            parts = [self._network_loss(k, batch, rows[k], ramp) for k, batch in enumerate(batches)]
            decay = [_weight_decay(network) for network in self.networks]
            loss = tf.add_n([total for total, _, _ in parts] + decay)
            scaled = self.optimizer.scale_loss(self.replica_share(loss))

        gradients = tape.gradient(scaled, weights)
        self.optimizer.apply_gradients(zip(gradients, weights))

        self._track_losses(batches[0][0], loss, parts)
        labels = tf.concat([y for _, _, y, _ in batches], axis=0)
        logits = tf.concat(teacher_logits, axis=0)
        logs = self.compute_metrics(None, labels, logits, sample_weight=_concat_weights(batches))
        return self.step_logs(logs)

    def _split_batches(self, data):
        """`[(x, index, y, sample_weight)]`, one per network."""
        paired = check_data_order(self.data_order, data)
        members = [data[key] for key in inputs_lib.PAIRED_KEYS] if paired else [data]
        batches = []
        for member in members:
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(member)
            x, index = inputs_lib.split_index(x)
            index = inputs_lib.check_index(index)
            batches.append((x, index, check_labels(y, self.num_classes), sample_weight))
        if not paired:
            batches *= _NETWORKS  # "shared": the one batch is each network's batch.
        return batches

    def _network_loss(self, k, batch, rows, ramp):
        """Steps 2-3 for network `k`: per-replica means `(total, ce, reg)`."""
        x, _, y, sample_weight = batch
        lam = self.mixup_lambda[k]
        order = mixing.permutation(tf.shape(y)[0], self.mixup_seed, stream=k)
        one_hot = tf.one_hot(y, self.num_classes, dtype=tf.float32)
        x_mix, y_mix, q = mixing.mix((x, one_hot, rows), order, lam)
        return losses.elr_plus_loss(
            y_mix,
            self.networks[k](x_mix, training=True),
            q,
            self.lam,
            ramp=ramp,
            label_reweighting=self.use_label_reweighting,
            sample_weight=sample_weight,
        )

    def _track_losses(self, x, loss, parts):
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        self._loss_tracker.update_state(loss, sample_weight=batch)
        for (_, ce, reg), ce_tracker, elr_tracker in zip(
            parts, self.ce_trackers, self.elr_trackers
        ):
            ce_tracker.update_state(ce, sample_weight=batch)
            elr_tracker.update_state(reg, sample_weight=batch)

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            network1=serialize(self.network1),
            network2=serialize(self.network2),
            ema_network1=serialize(self.ema_network1),
            ema_network2=serialize(self.ema_network2),
            coef_step=self.coef_step,
            label_reweighting=self.label_reweighting,
            data_order=self.data_order,
            teacher_span=self.teacher_span,
            **self.method_config(),
        )
        return config


def _exclude_from_training(copy):
    """Returns `copy` with its weights out of the optimiser and the weight decay.

    The layers stay trainable, so batch norm uses batch statistics when the
    copy runs in training mode (see the class docstring).
    """
    for variable in copy.weights:
        variable.trainable = False
    return copy


def _weight_decay(network):
    # The network's `add_loss` terms (L2 weight decay of the backbone); the
    # averaged copies' weights are not trainable, so they add none.
    if not network.losses:
        return tf.constant(0.0)
    return tf.add_n([tf.cast(term, tf.float32) for term in network.losses])


def _concat_weights(batches):
    """The batches' sample weights end to end (1 where a batch has none)."""
    if all(batch[3] is None for batch in batches):
        return None
    return tf.concat(
        [
            tf.ones_like(batch[2], tf.float32)
            if batch[3] is None
            else tf.reshape(tf.cast(batch[3], tf.float32), [-1])
            for batch in batches
        ],
        axis=0,
    )


def _clone(argument, network, keep_weights):
    try:
        clone = keras.models.clone_model(network)
    except Exception as error:  # Subclassed models without a config.
        raise ValueError(
            f"Could not clone {network.name!r} to make `{argument}`; pass "
            f"`{argument}` explicitly (a second model of the same architecture). "
            f"Keras said: {error}"
        ) from error
    if keep_weights:
        clone.set_weights(network.get_weights())
    return clone
