"""python scripts/train.py --flagfile=configs/fashion_mnist_sym.cfg --percent=0.6

Trains a classifier on noisy labels with ELR (or the CE baseline). See
docs/program.md for the flags and configs/ for the experiments.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment.train import train  # noqa: E402

FLAGS = elr_flags.define_flags()
DEBUG = elr_flags.define_debug_flag()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    with elr_flags.user_errors(DEBUG.value):
        config = elr_flags.config_from_flags(FLAGS)
        summary = train(config, given=elr_flags.given_fields(FLAGS))
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    app.run(main)
