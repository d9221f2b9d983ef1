"""python scripts/tune.py --flagfile=configs/fashion_mnist_sym.cfg --epochs=10 \
    --tuner=random --max_trials=8 --objective=probe_accuracy --probe_size=500 \
    --noise_seeds=1,2,3

Searches ELR's lambda (and beta) with KerasTuner, from a training flagfile;
then retrain the winner:

    python scripts/train.py --flagfile=runs/fashion_mnist_sym-tuning/best.cfg --epochs=20

Takes every flag of scripts/train.py plus the tuning flags (`TuningOptions`,
elr_tf/experiment/hypermodel.py); writes trials/, trials.csv, search.cfg and
best.cfg to --tuning_dir (default <output_dir>/<name>-tuning). See docs/tuning.md for
which objective to trust when.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from elr_tf.experiment import flags as elr_flags  # noqa: E402
from elr_tf.experiment import tuning  # noqa: E402

FLAGS = elr_flags.define_flags()
TUNING_FLAGS = elr_flags.define_flags(tuning.TuningOptions)
DEBUG = elr_flags.define_debug_flag()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    with elr_flags.user_errors(DEBUG.value):
        config = elr_flags.config_from_flags(FLAGS)
        options = elr_flags.config_from_flags(TUNING_FLAGS, tuning.TuningOptions)
        options.validate(config)
        result = tuning.run_search(config, options)
    print(f"best: {result.best_hyperparameters} (trial {result.best_trial_id})")
    print(f"{options.objective}: {result.best_value:.4f} +- {result.best_std:.4f}")
    print(f"trials: {result.trials_csv}")
    print(f"retrain: python scripts/train.py --flagfile={result.best_flagfile}")


if __name__ == "__main__":
    app.run(main)
