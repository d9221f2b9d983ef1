"""The arrays a finder benchmark keeps reproduce its figures without training."""

import json
import os

import numpy as np
import pytest
from hand_tables import frozen_run, memorised_tables
from script_loader import load_script

from elr_tf.data import FASHION_MNIST_DIR
from elr_tf.diagnostics import issue_count, tables
from elr_tf.experiment.config import TrainConfig
from elr_tf.experiment.train import train


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


def test_pair_count_rules_on_a_memorised_run(tmp_path, capsys):
    pair_rules = load_script("pair_counts_on_arrays")
    run_arrays = load_script("run_arrays")
    true, labels, averaged, final = memorised_tables()
    rng = np.random.default_rng(0)
    arrays = dict(
        labels=labels,
        true_labels=true,
        tables=np.stack([averaged, final]).astype("float32"),
        mean_table=averaged,
        margins=np.zeros(len(labels), "float32"),
        embeddings=rng.normal(size=(len(labels), 4)).astype("float32"),
    )
    counted, truth = pair_rules.rules(arrays)
    np.testing.assert_array_equal(truth, [[0, 0], [20, 0]])
    # The run memorised (count_lost 0.75): the default counts from the
    # averaged table, which kept all 20 flips.
    assert pair_rules.errors(counted[pair_rules.DEFAULT], truth) == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(counted[pair_rules.CALIBRATED], counted[pair_rules.DEFAULT])
    # The final table kept 5 of them.
    np.testing.assert_array_equal(counted["final table"], [[0, 0], [5, 0]])
    assert pair_rules.errors(counted["final table"], truth) == pytest.approx((0.75, 0.75, -0.75))
    # A one-way confusion split evenly: every label on the wrong side.
    np.testing.assert_array_equal(counted["pairs split evenly"], [[0, 10], [10, 0]])
    assert pair_rules.errors(counted["pairs split evenly"], truth) == pytest.approx((1, 1, 0))
    for bound in pair_rules.BOUNDS:
        np.testing.assert_allclose(counted[bound], truth, atol=1e-6)
    assert "confident joint of cleanlab's" not in counted
    # Out-of-sample probabilities that see every flip.
    arrays["pred_probs"] = averaged
    counted, _ = pair_rules.rules(arrays)
    np.testing.assert_array_equal(counted["confident joint of cleanlab's"], truth)
    path = tmp_path / "hand_seed1.npz"
    run_arrays.save(str(path), **arrays)
    pair_rules.main(["pair_counts_on_arrays.py", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["setting", "rule"]
    default_line = next(line for line in lines if line.split()[1] == pair_rules.DEFAULT)
    assert default_line.split() == ["hand", "default", "0%", "0%", "+0%", "1"]
    assert len(lines) == 1 + len(counted)


def test_pair_count_rules_read_a_training_run(tmp_path, capsys):
    pair_rules = load_script("pair_counts_on_arrays")
    model, _, labels = frozen_run(40, 3, 2, epochs=2)
    true_labels = labels.copy()
    true_labels[:6] = 1 - true_labels[:6]
    # A name longer than the setting column's 18 characters.
    run = tmp_path / "a_run_with_a_long_name"
    run.mkdir()
    model.save(run / "model.keras")
    # Id 39 unused (-1): left out of every count.
    np.save(run / "noisy_labels.npy", np.where(np.arange(40) == 39, -1, labels))
    np.save(run / "true_labels.npy", np.where(np.arange(40) == 39, -1, true_labels))
    default = [[0, 2], [3, 0]]
    (run / "summary.json").write_text(json.dumps({"label_issues": {"pair_counts": default}}))
    counted, truth = pair_rules.run_rules(str(run))
    used = np.arange(39)
    np.testing.assert_array_equal(counted[pair_rules.DEFAULT], default)
    np.testing.assert_array_equal(
        truth, [[0, np.sum(labels[:6] == 0)], [np.sum(labels[:6] == 1), 0]]
    )
    final = tables.shares(model.target_table.numpy()[used])[0]
    expected = issue_count.estimate_pair_counts(final, labels[used], calibrate=True)
    np.testing.assert_array_equal(counted["final table"], expected)
    # No per-epoch tables: the best epoch is the final table.
    np.testing.assert_array_equal(counted[pair_rules.BOUNDS[1]], expected)
    averaged = tables.shares(model.mean_target_table.numpy()[used])[0]
    np.testing.assert_array_equal(
        counted[pair_rules.CALIBRATED],
        issue_count.estimate_pair_counts(averaged, labels[used], calibrate=True),
    )
    pair_rules.main(["pair_counts_on_arrays.py"], runs=[str(run)])
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == [run.name] * len(counted)
    # A run that kept no averaged table is refused by name.
    plain, _, _ = frozen_run(40, 3, 2, epochs=1, track_table_mean=False)
    plain.save(run / "model.keras")
    with pytest.raises(ValueError, match=f"{run}: the model kept no averaged table"):
        pair_rules.run_rules(str(run))


def test_finder_on_runs_repeats_the_audit_a_run_wrote(tmp_path, capsys):
    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")):
        pytest.skip("needs the Fashion-MNIST files (scripts/setup.sh installs them)")
    on_runs = load_script("finder_on_runs")
    config = TrainConfig(
        arch="tiny_cnn",
        num_train=300,
        epochs=2,
        batch_size=64,
        noise_rate=0.4,
        seed=0,
        verbose=0,
        output_dir=str(tmp_path),
        name="fm_run",
    )
    run_dir = train(config)["run_dir"]
    now, then, report = on_runs.audit_run(run_dir)
    # The finder has not changed since the run: the same figures.
    for key in ("f1", "auroc", "num_estimated", "num_noisy", "pair_error"):
        assert now[key] == pytest.approx(then[key]), key
    with open(os.path.join(run_dir, "summary.json")) as f:
        issues = json.load(f)["label_issues"]
    assert (report.count_source, report.unplaced) == (
        issues["count_source"],
        pytest.approx(issues["unplaced"]),
    )
    on_runs.main(["finder_on_runs.py", run_dir])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["run", "finder"]
    assert lines[1].split()[:2] == ["fm_run", "run"]
    assert lines[2].split()[0] == "now" and report.count_source in lines[2]
    # A run that did not know its true labels cannot be measured.
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump({"label_issues": issues}, f)
    with pytest.raises(ValueError, match=f"{run_dir}: its summary.json has no label_detection"):
        on_runs.audit_run(run_dir)
