"""The image-folder walk: symlinks followed, each real folder and file read once, bounded."""

import logging
import os

import pytest
from data_helpers import write_any_image

from elr_tf.data import load_dataset
from elr_tf.data.sources import image_folder


def _classes(root, per_class=3):
    for k, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            write_any_image(str(root / name / f"{i}.png"), 6, 6, "png", 20 * k + i)


def test_a_link_back_to_its_own_folder_is_refused_naming_it(tmp_path):
    _classes(tmp_path)
    os.symlink(".", tmp_path / "cat" / "self")
    with pytest.raises(ValueError, match=r"cat/self links back to .*cat, a folder it is inside"):
        load_dataset("folder", tmp_path)


def test_two_crossing_loops_read_each_folder_once_and_name_the_links(tmp_path, caplog):
    # cat/a/to_b -> cat/b and cat/b/to_a -> cat/a: each real folder is read
    # once, so the walk ends (it once ran out of memory) and says so.
    _classes(tmp_path)
    for name in ("a", "b"):
        write_any_image(str(tmp_path / "cat" / name / f"{name}.png"), 6, 6, "png", 5)
    os.symlink("../b", tmp_path / "cat" / "a" / "to_b")
    os.symlink("../a", tmp_path / "cat" / "b" / "to_a")
    with caplog.at_level(logging.WARNING):
        classes = image_folder.list_image_folder(str(tmp_path))
    assert len(classes["cat"]) == 5
    assert "2 folders or files are reached twice" in caplog.text
    assert "to_a" in caplog.text and "to_b" in caplog.text


def test_links_to_files_are_read_and_a_folder_reached_twice_counts_once(tmp_path, caplog):
    _classes(tmp_path)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    write_any_image(str(elsewhere / "extra.png"), 6, 6, "png", 99)
    os.symlink(elsewhere / "extra.png", tmp_path / "dog" / "extra.png")
    (tmp_path / "cat" / "more").mkdir()
    write_any_image(str(tmp_path / "cat" / "more" / "m.png"), 6, 6, "png", 7)
    os.symlink("more", tmp_path / "cat" / "again")
    os.symlink("0.png", tmp_path / "cat" / "zero-again.png")
    with caplog.at_level(logging.WARNING):
        classes = image_folder.list_image_folder(str(tmp_path))
    assert [os.path.basename(p) for p in classes["cat"]] == ["0.png", "1.png", "2.png", "m.png"]
    assert len(classes["dog"]) == 4 and classes["dog"][-1].endswith("extra.png")
    assert "2 folders or files are reached twice" in caplog.text
    data = load_dataset("folder", tmp_path, val_fraction=0.25)
    assert data.num_examples == 8
    real = [os.path.realpath(p) for p in (*data.train.paths, *data.val.paths)]
    assert len(set(real)) == len(real) == 8  # No file in both train and validation.


def test_one_file_in_two_classes_is_refused(tmp_path):
    _classes(tmp_path)
    os.symlink("../cat/0.png", tmp_path / "dog" / "also-cat.png")
    with pytest.raises(ValueError, match=r"one file is in two classes, .*cat/0.png \(cat\) and"):
        load_dataset("folder", tmp_path)


def test_the_walk_is_bounded(tmp_path, monkeypatch):
    _classes(tmp_path)
    monkeypatch.setattr(image_folder, "MAX_WALK_ENTRIES", 4)
    with pytest.raises(ValueError, match="more than MAX_WALK_ENTRIES=4 files and folders"):
        load_dataset("folder", tmp_path)
    monkeypatch.setattr(image_folder, "MAX_WALK_ENTRIES", 100)
    monkeypatch.setattr(image_folder, "MAX_WALK_DEPTH", 2)
    deep = tmp_path / "cat" / "a" / "b" / "c"
    write_any_image(str(deep / "x.png"), 6, 6, "png", 1)
    with pytest.raises(ValueError, match=r"cat/a/b is more than MAX_WALK_DEPTH=2 folders"):
        load_dataset("folder", tmp_path)
