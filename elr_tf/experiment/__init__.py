"""The experiment program: config and flags, `assemble`, `train`, tuning.

Import the modules directly (`elr_tf.experiment.train`, ...); `tuning`
imports KerasTuner, which the rest does not need.
"""
