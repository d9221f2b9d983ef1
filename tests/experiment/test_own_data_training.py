"""The training program on users' own data: folder, csv and tfds:NAME."""

import csv
import json
import os

import pytest
import tensorflow_datasets as tfds
from file_layouts import write_image, write_lines

from elr_tf.experiment.flags import config_from_argv
from elr_tf.experiment.train import train

TINY = ["--arch=tiny_cnn", "--bs=8", "--epochs=1", "--verbose=0"]


def _folder(root, classes=("cat", "dog", "emu"), per_class=6):
    for c, name in enumerate(classes):
        for k in range(per_class):
            fmt = "png" if k % 2 else "jpg"
            write_image(os.path.join(root, name, f"{k}.{fmt}"), 12 + k, 16 - k, 40 * c + k, fmt)
    return str(root)


def _audit_rows(run_dir):
    with open(os.path.join(run_dir, "audit.csv")) as f:
        return list(csv.DictReader(f))


def test_folder_trains_one_epoch_and_names_classes_everywhere(tmp_path):
    root = _folder(tmp_path / "photos")
    summary = train(
        config_from_argv(
            [
                *TINY,
                "--dataset=folder",
                f"--data_dir={root}",
                "--image_size=16",
                f"--output_dir={tmp_path}",
                "--name=f",
            ]
        )
    )
    assert summary["class_names"] == ["cat", "dog", "emu"]
    assert summary["num_train"] == 15 and "label_detection" not in summary  # No true labels.
    rows = _audit_rows(summary["run_dir"])
    assert len(rows) == 15 and {r["label_name"] for r in rows} == {"cat", "dog", "emu"}
    assert os.path.exists(os.path.join(summary["run_dir"], "model.keras"))
    # Ranked most suspicious first, and drawn from the image files.
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert summary["label_issues"]["num_estimated"] >= 0
    assert os.path.getsize(os.path.join(summary["run_dir"], "suspects.png")) > 0


def test_csv_with_synthetic_noise_is_audited_against_the_given_labels(tmp_path):
    _folder(tmp_path / "photos", per_class=8)
    rows = [
        f"{name}/{k}.{'png' if k % 2 else 'jpg'},{name}"
        for name in ("cat", "dog", "emu")
        for k in range(8)
    ]
    write_lines(str(tmp_path / "photos" / "labels.csv"), ["path,label", *rows])
    summary = train(
        config_from_argv(
            [
                *TINY,
                "--dataset=csv",
                f"--data_dir={tmp_path / 'photos' / 'labels.csv'}",
                "--image_size=16",
                "--percent=0.5",
                f"--output_dir={tmp_path}",
                "--name=c",
            ]
        )
    )
    assert summary["noise_rate_realised"] > 0
    assert summary["label_detection"]["num_examples"] == summary["num_train"]
    assert "true_label_name" in _audit_rows(summary["run_dir"])[0]


def test_bad_folder_names_the_file_or_skips_with_a_count(tmp_path, caplog):
    root = _folder(tmp_path / "photos")
    with open(os.path.join(root, "dog", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + b"\x00" * 20)  # A JPEG header, no image.
    argv = [
        *TINY,
        "--dataset=folder",
        f"--data_dir={root}",
        "--image_size=16",
        f"--output_dir={tmp_path}",
        "--name=b",
    ]
    with pytest.raises(ValueError, match="broken.jpg"):
        train(config_from_argv(argv))
    with caplog.at_level("WARNING"):
        summary = train(config_from_argv([*argv, "--skip_unreadable"]))
    assert "broken.jpg" in caplog.text
    assert summary["num_train"] == 15


def test_tfds_name_trains_through_the_program(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        summary = train(
            config_from_argv(
                [
                    *TINY,
                    "--dataset=tfds:cifar10",
                    f"--data_dir={tmp_path}",
                    f"--output_dir={tmp_path}",
                    "--name=t",
                ]
            )
        )
    with open(os.path.join(summary["run_dir"], "summary.json")) as f:
        written = json.load(f)
    assert len(written["class_names"]) == 10  # Mocked data names its classes by number.
    assert 30 <= written["num_train"] < 40  # 40 mocked examples, 10% per class held out.
