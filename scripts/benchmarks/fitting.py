"""Training for the finder benchmarks: one run as the program sets it up, and
the out-of-sample probabilities of k-fold cross-validation that cleanlab reads.
"""

import dataclasses

import keras
import numpy as np

from elr_tf.experiment.assemble import assemble


def fit(config, loaded, extra_callbacks=()):
    # The run `train` would set up, fitted without its run directory, test
    # evaluation and TensorBoard, so that wall times compare the methods.
    run = assemble(config, data=loaded)
    run.model.fit(
        run.train_ds,
        epochs=config.epochs,
        verbose=config.verbose,
        shuffle=False,
        callbacks=[*run.callbacks(), *extra_callbacks],
    )
    return run


def cross_validated_probs(config, loaded, folds):
    """Out-of-sample softmax probabilities of every training example."""
    data, realised = loaded
    train = data.train
    fold_of = stratified_folds(train.labels, folds, config.seed)
    probs = np.zeros((len(train), data.num_classes))
    for fold in range(folds):
        held_out = fold_of == fold
        fold_data = dataclasses.replace(data, train=train.subset(~held_out))
        run = fit(dataclasses.replace(config, seed=config.seed + fold), (fold_data, realised))
        logits = run.model.predict(run.eval_dataset(train.subset(held_out)), verbose=0)
        probs[held_out] = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    return probs


def stratified_folds(labels, folds, seed):
    # Every class spread evenly over the folds, as cleanlab's own
    # cross-validation does with scikit-learn's StratifiedKFold.
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), np.int64)
    offset = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return fold_of
