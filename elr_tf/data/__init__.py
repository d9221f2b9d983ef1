"""Data: noisy-label data sets whose examples keep a stable id through `tf.data`.

`load_dataset` reads a named data set (`sources.names()`: built-in ones,
your own images as `"folder"` or `"csv"`, or `"tfds:<name>"`) into a
`NoisyData` (train, val and test `ExampleSet`s); each data set is one
`DataSource` record in `sources` (`sources.get(name)`), one module per
family. `make_train_dataset` / `make_eval_dataset` build the `tf.data`
pipelines; `indexed_dataset` does both in one call; `noise` makes synthetic
label noise.

Example:

```python
data = load_dataset("fashion_mnist", num_train=6000)
train_ds = make_train_dataset(data, batch_size=128, seed=0)
sources.get("cifar10_n").real_noise  # True
```
"""

from elr_tf.data import augment, noise, sources
from elr_tf.data.augment import AUGMENT_KINDS, find_unreadable_images, unreadable_paths
from elr_tf.data.example_set import ExampleSet, NoisyData
from elr_tf.data.pipeline import indexed_dataset, make_eval_dataset, make_train_dataset
from elr_tf.data.sources import DATASET_NAMES, DataSource, RawData, is_dataset_name, load_dataset
from elr_tf.data.sources.fashion_mnist import FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_DIR
from elr_tf.data.sources.image_folder import IMAGE_EXTENSIONS
from elr_tf.data.sources.tfds import CIFAR_N_LABEL_SETS, TFDS_PREFIX

__all__ = [
    "AUGMENT_KINDS",
    "CIFAR_N_LABEL_SETS",
    "DATASET_NAMES",
    "DataSource",
    "ExampleSet",
    "FASHION_MNIST_CLASS_NAMES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "NoisyData",
    "RawData",
    "TFDS_PREFIX",
    "augment",
    "find_unreadable_images",
    "indexed_dataset",
    "is_dataset_name",
    "load_dataset",
    "make_eval_dataset",
    "make_train_dataset",
    "noise",
    "sources",
    "unreadable_paths",
]
