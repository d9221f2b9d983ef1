import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hand_tables import LABELS, TABLE, TRUE, by_id
from script_loader import load_script

import elr_tf
from elr_tf.diagnostics import audit_callback, label_audit


def test_hand_table_scores_margins_and_flags():
    report = by_id(TABLE, LABELS, true_labels=TRUE)
    np.testing.assert_array_equal(report.ids, np.arange(6))
    np.testing.assert_array_equal(report.table_class, [0, 1, 2, 0, 1, 0])
    np.testing.assert_array_equal(report.flagged, [False, False, False, True, True, True])
    np.testing.assert_allclose(
        report.score, [1 - 0.8, 1 - 0.8, 1 - 2 / 3, 0.9, 0.9, 0.6], rtol=1e-6
    )
    np.testing.assert_allclose(
        report.margin, [0.1 - 0.8, 0.1 - 0.8, 1 / 3 - 2 / 3, 0.6, 0.5, 0.0], atol=1e-6
    )
    np.testing.assert_array_equal(report.is_noisy, [False, False, True, True, True, False])


def test_hand_table_detection_metrics():
    metrics = by_id(TABLE, LABELS, true_labels=TRUE).metrics()
    # Flags 3, 4, 5; noisy 2, 3, 4: TP=2, FP=1, FN=1.
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # Scores: noisy {1/3, .9, .9}, clean {.2, .2, .6}: 8 of 9 pairs won.
    assert metrics["auroc"] == pytest.approx(8 / 9)
    # Ranked: .9, .9 (both noisy) -> P=1 at R=2/3; .6 clean; 1/3 noisy at
    # rank 4 -> P=3/4 at R=1. AP = 2/3 * 1 + 1/3 * 3/4.
    assert metrics["auprc"] == pytest.approx(2 / 3 + 1 / 4)
    assert (metrics["num_examples"], metrics["num_noisy"], metrics["num_flagged"]) == (6, 3, 3)
    assert metrics["num_unseen"] == 0


def test_unseen_rows_and_unused_ids():
    table = np.vstack([TABLE, np.zeros((2, 3), np.float32)])
    labels = np.append(LABELS, [-1, 2])  # id 6 unused, id 7 never trained
    true = np.append(TRUE, [-1, 0])
    report = by_id(table, labels, true_labels=true)
    np.testing.assert_array_equal(report.ids, [0, 1, 2, 3, 4, 5, 7])
    assert not report.seen[-1] and not report.flagged[-1]
    assert report.table_class[-1] == -1 and math.isnan(report.score[-1])
    metrics = report.metrics()
    assert metrics["num_unseen"] == 1 and metrics["num_examples"] == 6
    assert metrics["auroc"] == pytest.approx(8 / 9)


def test_unknown_true_labels_are_left_out():
    true = TRUE.copy()
    true[2] = -1
    metrics = by_id(TABLE, LABELS, true_labels=true).metrics()
    assert metrics["num_examples"] == 5 and metrics["num_noisy"] == 2
    assert metrics["recall"] == 1.0


def test_explicit_ids_select_rows():
    report = by_id(TABLE, LABELS[[4, 1]], ids=[4, 1], true_labels=TRUE[[4, 1]])
    np.testing.assert_array_equal(report.ids, [1, 4])
    np.testing.assert_array_equal(report.table_class, [1, 1])
    np.testing.assert_array_equal(report.flagged, [False, True])


def test_ranked_puts_suspicious_first_and_unseen_last():
    table = np.vstack([np.zeros((1, 3), np.float32), TABLE])
    report = by_id(table, np.append(1, LABELS)).ranked()
    # Ids 4 and 5 both score 0.9 up to float32 rounding.
    assert set(report.ids[:2]) == {4, 5}
    np.testing.assert_array_equal(report.ids[2:], [6, 3, 1, 2, 0])
    np.testing.assert_array_equal(np.diff(report.score[:-1]) <= 0, True)
    # Exact ties keep id order.
    tied = by_id(np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), np.array([1, 1, 1]))
    np.testing.assert_array_equal(tied.ranked().ids, [1, 2, 0])


def test_csv_columns(tmp_path):
    report = by_id(TABLE, LABELS, true_labels=TRUE)
    report.to_csv(tmp_path / "audit.csv")
    with open(tmp_path / "audit.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "id",
        "label",
        "table_class",
        "score",
        "margin",
        "flagged",
        "true_label",
        "is_noisy",
    ]
    assert [int(r["flagged"]) for r in rows] == [0, 0, 0, 1, 1, 1]
    assert [int(r["is_noisy"]) for r in rows] == [0, 0, 1, 1, 1, 0]
    assert float(rows[3]["score"]) == pytest.approx(0.9)

    by_id(TABLE, LABELS).to_csv(tmp_path / "plain.csv")
    with open(tmp_path / "plain.csv") as f:
        header = next(csv.reader(f))
    assert header == ["id", "label", "table_class", "score", "margin", "flagged"]


def test_sources_model_tables_and_tensors():
    class TwoTables:
        target_tables = [tf.constant(TABLE), tf.constant(TABLE[:, ::-1].copy())]

    class HasTable:
        target_table = tf.constant(TABLE)

    expected = by_id(TABLE, LABELS).score
    np.testing.assert_allclose(by_id(HasTable(), LABELS).score, expected)
    np.testing.assert_allclose(by_id(tf.constant(TABLE), LABELS).score, expected)

    averaged = by_id(TwoTables(), LABELS)
    np.testing.assert_array_equal(averaged.table_class[:2], [0, 1])  # (T + T[:, ::-1]) / 2
    np.testing.assert_allclose(averaged.score[1], 0.2, rtol=1e-6)

    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model = elr_tf.ELRModel(backbone, num_examples=6, num_classes=3)
    model.target_layers[0].table.assign(TABLE)
    np.testing.assert_allclose(by_id(model, LABELS).score, expected)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="labels.*\\[0, 3\\).*max=3"):
        by_id(TABLE, np.array([0, 1, 2, 3, 0, 0]))
    with pytest.raises(ValueError, match="one label per table row"):
        by_id(TABLE, LABELS[:3])
    with pytest.raises(ValueError, match="ids.*max=9"):
        by_id(TABLE, LABELS[:2], ids=[0, 9])
    with pytest.raises(ValueError, match="shape=\\(6,\\)"):
        by_id(TABLE[:, 0], LABELS)


def _blobs(n, noise_rate, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 3, n)
    centres = np.eye(3, 4) * 4.0
    x = (centres[true] + rng.normal(size=(n, 4))).astype("float32")
    labels = true.copy()
    flip = rng.random(n) < noise_rate
    labels[flip] = (true[flip] + rng.integers(1, 3, flip.sum())) % 3
    return x, labels, true


def test_callback_logs_metrics_in_a_real_fit(tmp_path, seed):
    x, labels, true = _blobs(240, noise_rate=0.3)
    ids = np.arange(len(x))
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = elr_tf.ELRModel(backbone, num_examples=len(x), num_classes=3, beta=0.7, lam=3.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    callback = audit_callback.AuditCallback(ids, labels, true)
    csv_path = tmp_path / "metrics.csv"
    history = model.fit(
        elr_tf.with_index(x, labels, batch_size=32, seed=0),
        epochs=4,
        verbose=0,
        callbacks=[callback, keras.callbacks.CSVLogger(str(csv_path))],
    )
    for name in label_audit.METRIC_NAMES:
        assert len(history.history[f"audit_{name}"]) == 4
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and "audit_auroc" in rows[0]
    final = callback.last_audit.metrics()
    noise_rate = final["num_noisy"] / final["num_examples"]
    # Chance: random flags have precision = noise rate, random scores AUROC 0.5.
    assert final["precision"] > noise_rate + 0.3
    assert final["auroc"] > 0.8
    assert float(rows[-1]["audit_f1"]) == pytest.approx(final["f1"], rel=1e-5)


def test_compare_cleanlab_runs_on_tiny_settings():
    pytest.importorskip(
        "cleanlab", reason="benchmark dependency: scripts/benchmarks/requirements-bench.txt"
    )
    import os

    from elr_tf.data import FASHION_MNIST_DIR
    from elr_tf.experiment.config import TrainConfig

    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")):
        pytest.skip("needs the Fashion-MNIST files (scripts/setup.sh installs them)")
    script = load_script("compare_cleanlab")
    config = TrainConfig(
        arch="tiny_cnn", num_train=400, epochs=1, batch_size=64, noise_rate=0.4, seed=0, verbose=0
    )
    logged = []
    settings = [("sym", 0.4), ("asym", 0.4), ("idn", 0.4)]
    grid = script.run_grid(config, settings, [0], folds=2, log=logged.append)
    assert [(setting, seed) for setting, seed, _ in grid] == [(s, 0) for s in settings]
    assert logged[1].startswith("asym 0.4 seed 0: ")
    assert [r["data"]["noise"] for _, _, r in grid] == ["symmetric", "asymmetric", "idn"]
    # Instance-dependent noise flips exactly 160 of the 400 examples before the
    # 360/40 split, so near 40% of the training labels are wrong.
    assert 0.35 < grid[2][2]["data"]["noise_rate_realised"] < 0.45
    results = grid[0][2]
    assert results["data"]["num_train"] == 360
    methods = [m for m in results if m != "data"]
    assert methods == [
        script.ELR,
        script.ELR_TABLE,
        script.ELR_ARGMAX,
        "cleanlab, 2-fold CE",
        script.ON_TABLE,
    ]
    for method in methods:
        for name in ("precision", "recall", "f1", "auroc", "auprc", "seconds", "ceiling_f1"):
            assert np.isfinite(results[method][name]), (method, name)
        assert results[method]["num_noisy"] == results[script.ELR]["num_noisy"] > 0
        assert results[method]["num_estimated"] >= 0
        assert results[method]["count_error"] == pytest.approx(
            results[method]["num_estimated"] / results[method]["num_noisy"] - 1
        )
    table = script.format_grid(grid)
    assert "cleanlab, 2-fold CE" in table and "Ceiling" in table and "idn 40%" in table
    assert "err." in table


def test_ceiling_f1_and_grid_parsing():
    script = load_script("compare_cleanlab")
    positives = np.array([True, False, True, False])
    # Top 2 by score: ids 0 (positive) and 1 (negative).
    assert script.ceiling_f1([0.9, 0.8, 0.1, 0.0], positives) == 0.5
    assert script.parse_grid("sym:0.2, asym:0.4,idn:0.2") == [
        ("sym", 0.2),
        ("asym", 0.4),
        ("idn", 0.2),
    ]
    with pytest.raises(ValueError, match="--grid.*'sym:1.5'"):
        script.parse_grid("sym:1.5")
    with pytest.raises(ValueError, match="--grid.*'pair:0.2'"):
        script.parse_grid("pair:0.2")
    assert script.parse_grid("cifar10n:worst,sym:0.4") == [("cifar10n", "worst"), ("sym", 0.4)]
    with pytest.raises(ValueError, match="cifar10n:SET.*aggre.*'cifar10n:noisy'"):
        script.parse_grid("cifar10n:noisy")
    assert script.setting_label(("cifar10n", "aggre")) == "cifar10n aggre"
    assert script.setting_label(("idn", 0.2)) == "idn 20%"
    assert "dataset" not in script.grid_fields([("cifar10n", "worst"), ("sym", 0.2)])
    assert {"dataset", "cifar_n_label"} <= script.grid_fields([("cifar10n", "worst")])
    assert script.parse_seeds(["1", " 2"]) == [1, 2]
    with pytest.raises(ValueError, match="--noise_seeds.*'1,x'"):
        script.parse_seeds(["1", "x"])


def test_csv_with_class_names(tmp_path):
    names = ["cat", "dog", "fox"]
    by_id(TABLE, LABELS, true_labels=TRUE).to_csv(tmp_path / "n.csv", class_names=names)
    with open(tmp_path / "n.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-3:] == ["label_name", "table_class_name", "true_label_name"]
    for row in rows:
        assert row["label_name"] == names[int(row["label"])]
        assert row["true_label_name"] == names[int(row["true_label"])]
        table_class = int(row["table_class"])
        assert row["table_class_name"] == (names[table_class] if table_class >= 0 else "")


# --- find_label_issues --------------------------------------------------------

# Averaged logit margins by id for TABLE: rows 3 and 4 (wrong labels) were
# fought hardest; row 2 (also wrong) a little; row 5's label is right.
MARGINS = np.array([2.0, 3.0, -0.5, -2.0, -1.5, 1.0])


def test_find_label_issues_ranks_by_the_combined_score():
    report = elr_tf.find_label_issues(TABLE, LABELS, true_labels=TRUE, margins=MARGINS)
    assert report.score_name == "combined" and report.flag_rule == "pairs"
    # Self-confidence 1 - P[i, y] = [0.2, 0.2, 1/3, 0.9, 0.9, 0.6] as ranks
    # in [0, 1] (ties share theirs): [0.1, 0.1, 0.4, 0.8, 1.0, 0.6] (the two
    # 0.9s differ in float32, id 4 above id 3); -margins ranks: [0.2, 0, 0.6,
    # 1.0, 0.8, 0.4]. The score is their mean.
    expected = {0: 0.15, 1: 0.05, 2: 0.5, 3: 0.9, 4: 0.9, 5: 0.5}
    np.testing.assert_array_equal(report.ids, [3, 4, 2, 5, 0, 1])
    np.testing.assert_allclose(report.score, [expected[i] for i in report.ids])
    np.testing.assert_allclose(report.aum, MARGINS[report.ids])
    # Wrong labels {0.5, 0.9, 0.9} vs right {0.15, 0.05, 0.5}: one tie.
    assert report.metrics()["auroc"] == pytest.approx(8.5 / 9)


@pytest.mark.parametrize(
    "score, expected",
    [
        ("margin", [0.1 - 0.8, 0.1 - 0.8, 1 / 3 - 2 / 3, 0.6, 0.5, 0.0]),
        ("self_confidence", [0.2, 0.2, 1 / 3, 0.9, 0.9, 0.6]),
        ("aum", -MARGINS),
    ],
)
def test_single_scores(score, expected):
    report = elr_tf.find_label_issues(TABLE, LABELS, score=score, margins=MARGINS)
    order = np.argsort(report.ids)
    np.testing.assert_allclose(report.score[order], expected, atol=1e-6)
    assert (np.diff(report.score) <= 1e-12).all()  # most suspicious first


def test_estimate_flags_the_estimated_count():
    # Thresholds (normalised rows): class 0: (0.8 + 0.1) / 2 = 0.45; class 1:
    # (0.8 + 0.4) / 2 = 0.6; class 2: (2/3 + 0.1) / 2 = 0.383. Confident:
    # id 0 -> 0, id 1 -> 1, id 2 -> 2, id 3 (label 2) -> 0, id 4 (label 0)
    # -> 1, id 5 (label 1) -> none: two off-diagonal counts, and the two
    # highest table margins (ids 3 and 4) are flagged.
    report = elr_tf.find_label_issues(TABLE, LABELS, true_labels=TRUE, score="margin")
    assert report.num_estimated == 2
    np.testing.assert_array_equal(np.sort(report.ids[report.flagged]), [3, 4])
    metrics = report.metrics()
    assert (metrics["num_estimated"], metrics["num_noisy"], metrics["num_flagged"]) == (2, 3, 2)
    assert metrics["precision"] == 1.0


def test_argmax_rule_is_kept_as_an_option():
    report = elr_tf.find_label_issues(TABLE, LABELS, flag="argmax")
    np.testing.assert_array_equal(np.sort(report.ids[report.flagged]), [3, 4, 5])
    assert report.score_name == "self_confidence"  # no margins known


def test_model_source_uses_its_tracked_margins_and_ids():
    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model = elr_tf.ELRModel(backbone, num_examples=6, num_classes=3)
    model.target_layers[0].table.assign(TABLE)
    model.margin_tracker.sums.assign(np.stack([MARGINS, np.ones(6)], axis=1).astype("float32"))
    report = elr_tf.find_label_issues(model, LABELS[[5, 3]], ids=[5, 3])
    assert report.score_name == "combined"
    np.testing.assert_array_equal(report.ids, [3, 5])
    np.testing.assert_allclose(report.aum, [-2.0, 1.0])


def test_find_label_issues_bad_arguments():
    with pytest.raises(ValueError, match="`flag` must be one of pairs, estimate, argmax.*'top'"):
        elr_tf.find_label_issues(TABLE, LABELS, flag="top")
    with pytest.raises(ValueError, match="`score` must be one of.*'loss'"):
        elr_tf.find_label_issues(TABLE, LABELS, score="loss")
    with pytest.raises(ValueError, match="score='aum'.*track_margins=True"):
        elr_tf.find_label_issues(TABLE, LABELS, score="aum")
    with pytest.raises(ValueError, match="margins.*\\(6,\\).*shape=\\(5,\\)"):
        elr_tf.find_label_issues(TABLE, LABELS, margins=MARGINS[:5])


def test_csv_has_the_margin_column_when_tracked(tmp_path):
    report = elr_tf.find_label_issues(TABLE, LABELS, margins=MARGINS)
    report.to_csv(tmp_path / "audit.csv")
    with open(tmp_path / "audit.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(label_audit.CSV_COLUMNS) + ["aum"]
    assert [int(r["id"]) for r in rows] == list(report.ids)
    assert float(rows[0]["aum"]) == -2.0


def test_suspects_grid_from_memory_and_from_files(tmp_path):
    from PIL import Image

    from elr_tf.data import ExampleSet
    from elr_tf.diagnostics import suspects

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 12, 10, 1), dtype=np.uint8)
    in_memory = ExampleSet(ids=np.arange(6), labels=LABELS, true_labels=TRUE, features=images)
    report = elr_tf.find_label_issues(TABLE, LABELS, true_labels=TRUE, margins=MARGINS)
    drawn = suspects.plot_suspects(
        report, in_memory, tmp_path / "s.png", class_names=["cat", "dog", "fox"], count=4
    )
    np.testing.assert_array_equal(drawn, report.ids[:4])
    assert Image.open(tmp_path / "s.png").size[0] > 400

    paths = []
    for k in range(6):
        path = tmp_path / f"{k}.png"
        Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    on_disk = ExampleSet(ids=np.arange(6), labels=LABELS, paths=np.array(paths))
    thumbnails = suspects.suspect_images(on_disk, [4, 1])
    assert thumbnails[0].shape == (96, 64, 3) and thumbnails[0].dtype == np.uint8
    suspects.plot_suspects(report, on_disk, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    with pytest.raises(ValueError, match="ids of the example set.*\\[9\\]"):
        suspects.suspect_images(on_disk, [9])


def test_a_plain_keras_model_is_named_as_not_an_elr_model():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(
        ValueError, match=r"must be an ELR model .* the Keras model 'plain' of type Sequential"
    ):
        elr_tf.find_label_issues(plain, np.zeros(4, "int64"))


def test_a_table_with_nan_rows_is_refused():
    table = np.full((6, 3), 1 / 3, "float32")
    table[[1, 4]] = np.nan
    with pytest.raises(ValueError, match=r"must be finite. Received 2 rows .*\[1, 4\]"):
        elr_tf.find_label_issues(table, np.zeros(6, "int64"))


def test_compare_cleanlab_on_a_human_label_set(tmp_path):
    pytest.importorskip(
        "cleanlab", reason="benchmark dependency: scripts/benchmarks/requirements-bench.txt"
    )
    from file_layouts import CIFAR10N_FLIPS, cifar10n_arrays, write_cifar10n

    from elr_tf.experiment.config import TrainConfig

    root = write_cifar10n(tmp_path / "cifar10n", *cifar10n_arrays(n_train=60, n_test=20))
    script = load_script("compare_cleanlab")
    # The flags' dataset and noise are replaced by the setting's.
    config = TrainConfig(
        arch="tiny_cnn", epochs=1, batch_size=16, val_fraction=0.0, data_dir=str(root), verbose=0
    )
    grid = script.run_grid(config, [("cifar10n", "aggre")], [3], folds=2, log=lambda _: None)
    ((setting, seed, results),) = grid
    assert (setting, seed) == (("cifar10n", "aggre"), 3)
    assert results["data"]["noise"] == "cifar10_n:aggre"
    assert results["data"]["num_train"] == 60
    assert results[script.ELR]["num_noisy"] == CIFAR10N_FLIPS["aggre_label"]
    # ELR's pairs sum to its count: the per-pair error lies between the
    # count's error and the two totals added.
    elr = results[script.ELR]
    estimated, true = elr["num_estimated"], elr["num_noisy"]
    assert abs(estimated - true) / true <= elr["pair_error"] <= (estimated + true) / true
    for method in ("cleanlab, 2-fold CE", script.ON_TABLE):
        assert results[method]["pair_error"] >= 0, method
    assert "cifar10n aggre" in script.format_grid(grid)
