"""The `tf.data` pipelines of a loaded data set; ids travel with every example.

- Training batches (`make_train_dataset`): `((features, ids), labels)`,
  shuffled (or class-balanced) and augmented anew each epoch.
- Evaluation batches (`make_eval_dataset`): `(features, labels)`, or
  `((features, ids), labels)` in set order with `with_ids=True`.

Features are float32: images normalised with `data.mean` and `data.std`,
or, when those are None, passed through (images as 0-255 pixels).

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000, split_seed=0)
train_ds = make_train_dataset(data, batch_size=128, seed=0)
val_ds = make_eval_dataset(data.val, data, batch_size=512)
(features, ids), labels = next(iter(train_ds))
# features float32 [128, 28, 28, 1], normalised; ids int64 in
# [0, data.num_examples); labels == data.labels_by_id()[ids]
```
"""

import dataclasses

import numpy as np
import tensorflow as tf
from absl import logging

from elr_tf import checks, inputs
from elr_tf.data import augment as augment_lib
from elr_tf.data.example_set import ExampleSet, NoisyData
from elr_tf.data.sources import load_dataset

# Seed offset of the second network's stream (`shuffles=2`): far from the
# `seed + 1` of the augmentation stream.
SECOND_STREAM = 1_000_003


def make_train_dataset(
    data,
    batch_size,
    *,
    seed,
    augment=True,
    shuffle=True,
    drop_remainder=False,
    balanced_batches=None,
    epoch=None,
    shuffles=1,
):
    """Builds the training `tf.data.Dataset` of `((features, ids), labels)`.

    Each iteration is one epoch, freshly shuffled (and freshly resampled with
    `balanced_batches`); the sequence of epochs depends only on `seed` (and
    TensorFlow's global seed, when set). Augmentation randomness is drawn
    per example from a seeded stream, so results do not depend on
    parallelism.

    Example:

    ```python
    train_ds = make_train_dataset(data, 128, seed=0)
    model.fit(train_ds, epochs=10)  # an ELRModel with data.num_examples rows
    ```

    Augmentation by `data.augment` (ELR-SPEC §3 inputs):

    - `cifar`, `fashion_mnist`: zero-pad 4, random crop back to size,
      random horizontal flip. Done on whole batches of in-memory images.
    - `large`: image files are decoded, their shorter side resized to
      `data.resize_size` (keeping the aspect ratio), randomly cropped to
      `data.image_shape` and randomly flipped. Without augmentation the
      crop is central.
    - None: no augmentation (e.g. tabular features).

    Images are then scaled to [0, 1] and normalised per channel, unless
    `data.mean` and `data.std` are None: then features are cast to float32
    as they are (images: 0-255). A file that is missing or not an image
    fails with an error naming it; for other decoding errors,
    `find_unreadable_images(data.train)` names the files.

    Args:
        data: a `NoisyData`; `data.train` is used.
        batch_size: positive int.
        seed: int seeding shuffling, resampling and augmentation.
        augment: apply the random augmentation of `data.augment` (no
            effect when it is None).
        shuffle: shuffle each epoch (ignored with `balanced_batches`, which
            always shuffles).
        drop_remainder: drop the last partial batch.
        balanced_batches: if set to N, each epoch draws `N * batch_size`
            examples with (up to one) equal count per class, anew each epoch,
            and yields N batches (the Clothing1M recipe). Classes smaller
            than their quota are sampled with repetition.
        epoch: optional int `tf.Variable` holding the current epoch. When
            given, each epoch's order, resampling and augmentation are drawn
            from `(seed, epoch)` instead of from how often the dataset was
            iterated, so a run resumed at epoch k reads the same batches an
            uninterrupted run reads at epoch k. Set it before each epoch
            (the trainer does, in `on_epoch_begin`).
        shuffles: 1, or 2 for ELR+ with each network on its own data order:
            each element then holds one batch per network,
            `{"network1": batch, "network2": batch}` (`inputs.PAIRED_KEYS`),
            drawn from two independent streams (the second seeded with
            `seed + SECOND_STREAM`), the same number of batches each.

    Returns:
        A `tf.data.Dataset` yielding `((features float32 [B, ...],
        ids int64 [B]), labels int64 [B])`, or with `shuffles=2` a dict of
        two of them.
    """
    if shuffles not in (1, 2):
        raise ValueError(f"`shuffles` must be 1 or 2. Received: shuffles={shuffles!r}")
    if shuffles == 2:
        if not shuffle and balanced_batches is None:
            raise ValueError(
                "`shuffles=2` draws two independent orders; it cannot apply with "
                "shuffle=False. Received: shuffle=False, shuffles=2"
            )
        streams = [
            make_train_dataset(
                data,
                batch_size,
                seed=seed + k * SECOND_STREAM,
                augment=augment,
                shuffle=shuffle,
                drop_remainder=drop_remainder,
                balanced_batches=balanced_batches,
                epoch=epoch,
            )
            for k in range(2)
        ]
        return tf.data.Dataset.zip(dict(zip(inputs.PAIRED_KEYS, streams)))
    _check_data(data)
    checks.positive_int("batch_size", batch_size)
    checks.non_negative_int("seed", seed)
    if balanced_batches is not None:
        checks.positive_int("balanced_batches", balanced_batches)
    example_set = data.train
    n = len(example_set)
    if n == 0:
        raise ValueError("`data.train` is empty; cannot make a training dataset.")

    if balanced_batches is not None:
        positions = _balanced_positions(
            example_set.labels, balanced_batches * batch_size, seed, epoch
        )
    elif epoch is not None:
        positions = _epoch_stream(
            lambda key: (
                tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), key)
                if shuffle
                else tf.range(n, dtype=tf.int64)
            ),
            seed,
            epoch,
        )
    else:
        positions = tf.data.Dataset.range(n)
        if shuffle:
            positions = positions.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    # One random int per example, fresh each epoch, drives its augmentation.
    if epoch is None:
        randoms = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    else:
        total = n if balanced_batches is None else balanced_batches * batch_size
        randoms = _epoch_stream(
            lambda key: tf.random.stateless_uniform(
                [total], key, minval=0, maxval=2**62, dtype=tf.int64
            ),
            seed + 1,
            epoch,
        )
    ds = tf.data.Dataset.zip((positions, randoms))
    ds = _load_examples(ds, example_set, data, batch_size, augment, drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(example_set, data, batch_size, *, with_ids=False, true_labels=False):
    """Builds an evaluation `tf.data.Dataset`, in set order, no augmentation.

    File-backed image sets are resized (shorter side to `data.resize_size`)
    and centre-cropped to `data.image_shape`. Features are normalised as in
    `make_train_dataset`.

    Example:

    ```python
    for features, labels in make_eval_dataset(data.test, data, batch_size=512):
        ...
    ```

    Args:
        example_set: the `ExampleSet` to read (e.g. `data.val`, `data.test`).
        data: the `NoisyData` it belongs to (normalisation, input shape).
        batch_size: positive int.
        with_ids: yield `((features, ids), labels)` instead of
            `(features, labels)`.
        true_labels: yield `example_set.true_labels` instead of `labels`.

    Returns:
        A `tf.data.Dataset` of `(features float32, labels int64)` or
        `((features, ids int64), labels)`.
    """
    _check_data(data)
    if not isinstance(example_set, ExampleSet):
        # ValueError, not TypeError: every bad argument raises ValueError here.
        raise ValueError(  # noqa: TRY004
            f"`example_set` must be an ExampleSet. Received: {type(example_set).__name__}"
        )
    checks.positive_int("batch_size", batch_size)
    if true_labels:
        if example_set.true_labels is None:
            raise ValueError(
                "`true_labels=True` but this set's true labels are unknown "
                "(example_set.true_labels is None)."
            )
        # Kept as is, -1 included: callers mask unknown labels themselves.
        example_set = dataclasses.replace(example_set, labels=example_set.true_labels)
    positions = tf.data.Dataset.range(len(example_set))
    zeros = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
    ds = tf.data.Dataset.zip((positions, zeros))
    ds = _load_examples(ds, example_set, data, batch_size, False, False)
    if not with_ids:
        ds = ds.map(lambda x, y: (x[0], y))
    return ds.prefetch(tf.data.AUTOTUNE)


def _load_examples(ds, example_set, data, batch_size, augment, drop_remainder):
    """Maps `(position, random)` elements to batches of `((x, ids), y)`."""
    # Captured tensors live on the CPU, where tf.data runs.
    with tf.device("/cpu:0"):
        ids = tf.constant(example_set.ids, tf.int64)
        labels = tf.constant(example_set.labels, tf.int64)
        if example_set.file_backed:
            paths = tf.constant([str(p) for p in example_set.paths], tf.string)
        else:
            features = tf.constant(example_set.features)
    augment = augment and data.augment is not None

    def scale(x):
        if data.mean is None:
            return tf.cast(x, tf.float32)
        return augment_lib.normalize(x, data.mean, data.std)

    if example_set.file_backed:
        crop_hw = data.image_shape[:2]
        resize_size = data.resize_size

        def load_one(position, random):
            image = augment_lib.load_image(tf.gather(paths, position), resize_size)
            example_id = tf.gather(ids, position)
            if augment:
                seed = tf.stack([random, example_id])
                image = augment_lib.random_crop_flip(image, crop_hw, seed)
            else:
                image = augment_lib.center_crop(image, crop_hw)
            return (scale(image), example_id), tf.gather(labels, position)

        ds = ds.map(load_one, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size, drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)

    def load_batch(position, random):
        batch = tf.gather(features, position)
        if augment:
            batch = augment_lib.pad_crop_flip(batch, random, augment_lib.CROP_PADDING)
        return (scale(batch), tf.gather(ids, position)), tf.gather(labels, position)

    ds = ds.batch(batch_size, drop_remainder)
    return ds.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)


def _epoch_stream(make, seed, epoch):
    """Dataset of the elements of `make(key)`, `key` drawn from (seed, epoch).

    `epoch` (a variable) is read when the dataset is iterated, i.e. at the
    start of each epoch.
    """
    ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    ds = ds.map(lambda _: make(tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])))
    return ds.unbatch()


def _balanced_positions(labels, total, seed, epoch=None):
    """Dataset of `total` positions per epoch, class-balanced, fresh each epoch."""
    classes, class_index = np.unique(labels, return_inverse=True)
    num_classes = len(classes)
    counts = np.bincount(class_index, minlength=num_classes)
    quota = -(-total // num_classes)
    if (counts < quota).any():
        logging.warning(
            "balanced_batches: classes %s have fewer than %d examples and "
            "are sampled with repetition.",
            classes[counts < quota].tolist(),
            quota,
        )
    with tf.device("/cpu:0"):
        class_index_t = tf.constant(class_index, tf.int64)
        counts_t = tf.constant(counts, tf.int64)
        starts_t = tf.constant(np.cumsum(counts) - counts, tf.int64)
    n = len(labels)
    base, extra = divmod(total, num_classes)

    def sample(random):
        seeds = tf.random.experimental.stateless_split(tf.stack([random, 0]), 3)
        # A fresh random order inside each class: sort by (class, random key).
        keys = tf.random.stateless_uniform([n], seeds[0])
        by_key = tf.argsort(keys, stable=True)
        order = tf.gather(by_key, tf.argsort(tf.gather(class_index_t, by_key), stable=True))
        # `extra` random classes get one more example when C does not divide.
        shuffled = tf.argsort(tf.random.stateless_uniform([num_classes], seeds[1]))
        per_class = base + tf.cast(shuffled < extra, tf.int64)
        slot_class = tf.repeat(tf.range(num_classes, dtype=tf.int64), per_class)
        slot_start = tf.repeat(tf.cumsum(per_class, exclusive=True), per_class)
        within = tf.range(total, dtype=tf.int64) - slot_start
        within = within % tf.gather(counts_t, slot_class)
        picked = tf.gather(order, tf.gather(starts_t, slot_class) + within)
        mix = tf.argsort(tf.random.stateless_uniform([total], seeds[2]))
        return tf.cast(tf.gather(picked, mix), tf.int64)

    if epoch is None:
        ds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        ds = ds.map(sample).unbatch()
    else:
        ds = _epoch_stream(lambda key: sample(key[0] * 1_000_003 + key[1]), seed, epoch)
    return ds.apply(tf.data.experimental.assert_cardinality(total))


def _check_data(data):
    if not isinstance(data, NoisyData):
        raise ValueError(  # noqa: TRY004
            f"`data` must be a NoisyData from load_dataset. Received: {type(data).__name__}"
        )


def indexed_dataset(
    source,
    data_dir=None,
    *,
    batch_size=128,
    image_size=None,
    seed=0,
    augment=True,
    val_fraction=0.1,
    **load_kwargs,
):
    """Loads a data set and builds its training pipeline, ready for `fit`.

    `load_dataset` followed by `make_train_dataset`.

    Example:

    ```python
    train_ds, data = indexed_dataset("folder", "/data/pets", image_size=96)
    model.fit(train_ds, epochs=10)  # an ELRModel with data.num_examples rows
    print(data.class_names)
    ```

    Args:
        source: data set name, as `name` of `load_dataset` (e.g. `"folder"`,
            `"csv"`, `"cifar10"`, `"tfds:mnist"`).
        data_dir: as in `load_dataset`.
        batch_size: positive int, the training batch size.
        image_size: as in `load_dataset`.
        seed: seeds shuffling and augmentation, and the train/validation
            split unless `load_kwargs` gives `split_seed`.
        augment: apply random augmentation.
        val_fraction: per-class validation fraction, as in `load_dataset`.
        **load_kwargs: further `load_dataset` arguments (`num_train`,
            `noisy_labels_file`, `skip_unreadable`, ...).

    Returns:
        `(train_ds, data)`: the `tf.data.Dataset` of `((features, ids),
        labels)` from `make_train_dataset`, and the `NoisyData`.
    """
    load_kwargs.setdefault("split_seed", seed)
    data = load_dataset(
        source, data_dir, image_size=image_size, val_fraction=val_fraction, **load_kwargs
    )
    return make_train_dataset(data, batch_size, seed=seed, augment=augment), data
