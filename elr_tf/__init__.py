"""elr_tf: Early-Learning Regularization (ELR, ELR+) for Keras/TensorFlow."""
