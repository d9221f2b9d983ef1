"""Data: noisy-label data sets whose examples keep a stable id through `tf.data`.

`load_dataset` reads a named data set (a built-in one, your own images as
`"folder"` or `"csv"`, or `"tfds:<name>"`) into a `NoisyData` (train, val
and test `ExampleSet`s); `make_train_dataset` / `make_eval_dataset` build
the `tf.data` pipelines; `indexed_dataset` does both in one call; `noise`
makes synthetic label noise.
"""

from elr_tf.data import augment, noise, readers
from elr_tf.data.example_set import ExampleSet, NoisyData, split_per_class, stratified_subset
from elr_tf.data.pipeline import (
    find_unreadable_images,
    make_eval_dataset,
    make_train_dataset,
    unreadable_paths,
)
from elr_tf.data.readers import CIFAR_N_LABEL_SETS, IMAGE_EXTENSIONS
from elr_tf.data.sources import (
    ASYMMETRIC_MAPS,
    AUGMENT_KINDS,
    DATASET_NAMES,
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_DIR,
    TFDS_PREFIX,
    indexed_dataset,
    is_dataset_name,
    load_dataset,
)

__all__ = [
    "ASYMMETRIC_MAPS",
    "AUGMENT_KINDS",
    "CIFAR_N_LABEL_SETS",
    "DATASET_NAMES",
    "ExampleSet",
    "FASHION_MNIST_CLASS_NAMES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "NoisyData",
    "TFDS_PREFIX",
    "augment",
    "find_unreadable_images",
    "indexed_dataset",
    "is_dataset_name",
    "load_dataset",
    "make_eval_dataset",
    "make_train_dataset",
    "noise",
    "readers",
    "split_per_class",
    "stratified_subset",
    "unreadable_paths",
]
