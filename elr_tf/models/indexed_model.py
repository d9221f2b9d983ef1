"""`IndexedModel`: what every model trained on sample-id batches shares."""

import inspect

import keras
import tensorflow as tf

from elr_tf import inputs as inputs_lib
from elr_tf.margin_tracker import MarginTracker
from elr_tf.target_table import TargetTable


def multi_worker_build_batch(strategy, iterator, data_batch):
    """Arguments for Keras's symbolic build that work for every strategy.

    Under `MultiWorkerMirroredStrategy` the first distributed batch is
    replaced by its first local component (see `ELRModel`); otherwise the
    arguments are returned unchanged.
    """
    if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return {"iterator": iterator, "data_batch": data_batch}
    for _, _, batches in iterator:
        batch = next(batches)
        local = tf.nest.map_structure(
            lambda value: strategy.experimental_local_results(value)[0], batch
        )
        return {"iterator": None, "data_batch": local}
    return {"iterator": None, "data_batch": data_batch}


def multi_worker_logs(strategy, logs):
    """Step logs in a form Keras can reduce under every strategy.

    Keras 3.15 reduces step outputs of a multi-worker run with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar
    metric values every train/test step returns. Shaped `[1]`, the same
    reduction yields the scalar mean over replicas. (Epoch logs are read
    from the metrics themselves and are not affected.)
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


class IndexedModel(keras.Model):
    """Base of `ELRModel` and `ELRPlusModel`.

    Training batches carry sample ids (`elr_tf.inputs`); evaluation and
    prediction accept plain inputs (ids, if present, are ignored). Metrics
    named in `training_only_metrics` (the loss parts, which need ids) are
    left out of evaluation logs. Also carries the workarounds that let
    `fit` run under `MultiWorkerMirroredStrategy` with Keras 3.15.
    """

    training_only_metrics = ()
    # The `get_config` entries that hold serialised Keras models.
    serialized_models = ()

    def add_target_layers(
        self, count, num_examples, num_classes, beta, table_dtype, placement, track_mean
    ):
        """Creates the model's `count` target tables (`target_layers`).

        Each is its own attribute (`_target_layer_<k>`), so that Keras saving
        and `tf.train.Checkpoint` both track it. With `track_mean` each also
        keeps its rows averaged over training (`mean_target_tables`).
        """
        if not isinstance(track_mean, bool):
            raise ValueError(
                "`track_table_mean` must be True or False. Received: "
                f"track_table_mean={track_mean!r}"
            )
        self.track_table_mean = track_mean
        self._num_target_layers = count
        for k in range(count):
            name = "target_table" if count == 1 else f"target_table{k + 1}"
            layer = TargetTable(
                num_examples,
                num_classes,
                beta=beta,
                storage_dtype=table_dtype,
                placement=placement,
                track_mean=track_mean,
                name=name,
            )
            setattr(self, f"_target_layer_{k}", layer)

    def add_margin_tracker(self, track, num_examples):
        """Creates `margin_tracker` (a `MarginTracker`) when `track` is true."""
        if not isinstance(track, bool):
            raise ValueError(
                f"`track_margins` must be True or False. Received: track_margins={track!r}"
            )
        self.track_margins = track
        self.margin_tracker = MarginTracker(num_examples, name="margin_tracker") if track else None

    def update_margins(self, index, logits, labels):
        """Adds the batch's label margins to `margin_tracker` (if tracking)."""
        if self.margin_tracker is not None:
            self.margin_tracker.update(index, logits, labels)

    @property
    def average_margins(self):
        """float32 `[num_examples]` logit margin of the given label averaged
        over training (AUM; NaN for ids never trained on), or None when the
        model was built with `track_margins=False`."""
        return None if self.margin_tracker is None else self.margin_tracker.means()

    @property
    def mean_target_tables(self):
        """The tables averaged over training (`TargetTable.means`), one per
        target layer, or None when the model was built with
        `track_table_mean=False`."""
        if not self.track_table_mean:
            return None
        return tuple(layer.means() for layer in self.target_layers)

    @property
    def target_layers(self):
        """The `TargetTable` layers: one for ELR, `(T1, T2)` for ELR+."""
        return tuple(getattr(self, f"_target_layer_{k}") for k in range(self._num_target_layers))

    def method_config(self):
        """The `get_config` entries both models share: sizes, beta, lam, table options."""
        first = self.target_layers[0]
        return {
            "num_examples": self.num_examples,
            "num_classes": self.num_classes,
            "beta": self.beta,
            "lam": self.lam,
            "table_dtype": first.storage_dtype,
            "table_placement": first.placement,
            "track_margins": self.track_margins,
            "track_table_mean": self.track_table_mean,
        }

    @property
    def target_tables(self):
        """The values of `target_layers`: `[num_examples, num_classes]` float32 tensors."""
        return tuple(layer.values() for layer in self.target_layers)

    @classmethod
    def from_config(cls, config):
        """Rebuilds a model from its `get_config()`.

        Every constructor argument must be in `config` (`get_config` writes
        them all): a config without one was not written by this version and
        is refused, naming what is missing, rather than given a default.
        """
        missing = sorted(set(_constructor_arguments(cls)) - set(config))
        if missing:
            raise ValueError(
                f"`config` must hold every constructor argument of {cls.__name__}. "
                f"Received a config missing {missing} (its keys: {sorted(config)})"
            )
        config = dict(config)
        for key in cls.serialized_models:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """`keras.Model.compile`; `loss` defaults to cross-entropy on logits.

        It is the label loss of training and what `evaluate` reports.
        """
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # `compile`; ours only adds a default, so restoring is safe.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @staticmethod
    def replica_share(value):
        """`value / num_replicas_in_sync`: one replica's share of a loss.

        Keras averages the compiled loss over each replica's batch and divides
        it by the number of replicas; gradients summed over replicas then
        equal those of the global-batch mean. Terms added to it are scaled
        the same way so that each is counted exactly once.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return value / replicas if replicas > 1 else value

    def step_logs(self, logs):
        """Logs returned by a train/test step, reducible under any strategy."""
        return multi_worker_logs(self.distribute_strategy, logs)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, _ = inputs_lib.split_index(x, required=False)
        logs = super().test_step((x, y, sample_weight))
        # In evaluation `loss` is the compiled loss alone.
        hidden = set(self.training_only_metrics)
        return self.step_logs({k: v for k, v in logs.items() if k not in hidden})

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x, _ = inputs_lib.split_index(x, required=False)
        return self(x, training=False)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds a distributed model from the first batch after
        # `strategy.reduce("MEAN", batch)`, which fails under
        # MultiWorkerMirroredStrategy (keras-team/keras#20585). One replica's
        # local batch has the right structure, shapes and dtypes: use it.
        # An ELR+ element with one batch per network builds from the first.
        arguments = multi_worker_build_batch(self.distribute_strategy, iterator, data_batch)
        if arguments["iterator"] is not None:
            arguments["iterator"] = _FirstBatches(arguments["iterator"])
        if arguments["data_batch"] is not None:
            arguments["data_batch"] = first_batch(arguments["data_batch"])
        return super()._maybe_symbolic_build(**arguments)


def _constructor_arguments(cls):
    """The named parameters of `cls.__init__` (not `self`, `*args`, `**kwargs`)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [parameter.name for parameter in parameters if parameter.kind in named]


def first_batch(data):
    """The first network's batch of a paired element; other elements as they are."""
    return data[inputs_lib.PAIRED_KEYS[0]] if inputs_lib.is_paired(data) else data


class _FirstBatches:
    """A Keras epoch iterator whose batches pass through `first_batch`."""

    def __init__(self, epoch_iterator):
        self._epoch_iterator = epoch_iterator

    def __iter__(self):
        for begin, end, batches in self._epoch_iterator:
            yield begin, end, (first_batch(batch) for batch in batches)
