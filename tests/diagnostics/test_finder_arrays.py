"""The arrays a finder benchmark keeps reproduce its figures without training."""

import os

import numpy as np
import pytest
from script_loader import load_script

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.experiment.config import TrainConfig


def test_saved_arrays_give_the_figures_of_the_run(tmp_path):
    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")):
        pytest.skip("needs the Fashion-MNIST files (scripts/setup.sh installs them)")
    compare = load_script("compare_cleanlab")
    on_arrays = load_script("finder_on_arrays")
    run_arrays = load_script("run_arrays")
    config = TrainConfig(
        arch="tiny_cnn", num_train=300, epochs=2, batch_size=64, noise_rate=0.4, seed=0, verbose=0
    )
    # folds=0: ELR alone, no cleanlab needed.
    ((setting, seed, results),) = compare.run_grid(
        config, [("sym", 0.4)], [0], folds=0, log=lambda _: None, arrays_dir=str(tmp_path)
    )
    assert list(results) == ["data", compare.ELR, compare.ELR_TABLE, compare.ELR_ARGMAX]
    assert "no cleanlab" in compare.format_grid([(setting, seed, results)])
    path = run_arrays.path_for(str(tmp_path), setting, seed)
    assert os.path.basename(path) == "sym_0.4_seed0.npz"
    arrays = run_arrays.load(path)
    n = results["data"]["num_train"]
    assert arrays["tables"].shape == (2, n, 10) and arrays["mean_table"].shape == (n, 10)
    assert "pred_probs" not in arrays
    # The mean of the per-epoch tables (rows scaled to sum to 1) is the
    # average the model kept.
    shares = arrays["tables"] / arrays["tables"].sum(axis=2, keepdims=True)
    np.testing.assert_allclose(shares.mean(axis=0), arrays["mean_table"], atol=1e-5)
    figures, report = on_arrays.figures(arrays, k=config.audit_neighbours)
    live = results[compare.ELR]
    f1, auroc, error, pairs, seconds = figures[on_arrays.NOW]
    assert (f1, auroc, pairs) == pytest.approx((live["f1"], live["auroc"], live["pair_error"]))
    assert report.num_estimated == live["num_estimated"]
    assert seconds == pytest.approx(live["seconds"])
    assert on_arrays.BEFORE in figures and on_arrays.CLEANLAB not in figures
    # Arrays add up: a second save keeps the first one's arrays.
    run_arrays.save(path, extra=np.arange(3))
    assert set(run_arrays.load(path)) == set(arrays) | {"extra"}
