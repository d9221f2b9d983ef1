"""Test set-up shared by the whole suite.

The CPU is split into two logical devices before TensorFlow starts, so that
`MirroredStrategy` can run two real replicas on a CPU-only machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration() for _ in range(NUM_LOGICAL_CPUS)],
    )
except RuntimeError:
    # The runtime was already initialised by an earlier import; the tests that
    # need two devices check for them and skip with a reason.
    pass


@pytest.fixture
def seed():
    """Seeds Python, NumPy, TensorFlow and Keras; returns the seed."""
    keras.utils.set_random_seed(1234)
    return 1234


@pytest.fixture
def logical_cpus():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < NUM_LOGICAL_CPUS:
        pytest.skip("needs 2 logical CPU devices (TF was initialised too early)")
    return [d.name for d in devices[:NUM_LOGICAL_CPUS]]


_STRATEGIES = {}


@pytest.fixture
def mirrored(logical_cpus):
    """Returns `make(num_replicas)` giving one shared MirroredStrategy each.

    Collective ops of separate MirroredStrategy objects in one process reuse
    instance keys, so a process (like a user's) should keep one strategy per
    device set; the tests do the same.
    """

    def make(num_replicas=2):
        if num_replicas not in _STRATEGIES:
            _STRATEGIES[num_replicas] = tf.distribute.MirroredStrategy(logical_cpus[:num_replicas])
        return _STRATEGIES[num_replicas]

    return make
