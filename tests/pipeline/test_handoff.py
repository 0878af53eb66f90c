"""Hand-over files from pool workers: read into one buffer, deleted, orphans of killed stages removed."""

import os
import subprocess
import sys

import numpy as np
import pytest

from comodo.pipeline import handoff
from comodo.stores.errors import InputDataError


def test_rows_read_back_equal_what_was_written_and_the_file_is_gone(tmp_path):
    reader = handoff.Reader()
    for n_rows in (50, 7):  # a smaller read after a larger one reuses the buffer
        rows = np.random.default_rng(n_rows).standard_normal((n_rows, 6)).astype(np.float32)
        path = tmp_path / f"{n_rows}.f32"
        rows.tofile(path)
        np.testing.assert_array_equal(reader.read(str(path), n_rows, 6), rows)
        assert not path.exists()


def test_read_files_are_overwritten_by_the_next_writes_and_the_pool_stays_bounded():
    reader = handoff.Reader()
    with handoff.folder() as folder:
        first = os.path.join(folder, "0.f32")
        handoff.write(first, [np.ones((40, 6), np.float32)])
        inode = os.stat(first).st_ino
        reader.read(first, 40, 6)
        assert os.listdir(os.path.join(folder, handoff.FREE)) == ["0.f32"]
        rows = np.arange(30, dtype=np.float32).reshape(5, 6)
        second = os.path.join(folder, "1.f32")
        handoff.write(second, [rows[:2], rows[2:]])  # smaller than the file it takes over
        assert os.stat(second).st_ino == inode and os.path.getsize(second) == rows.nbytes
        np.testing.assert_array_equal(reader.read(second, 5, 6), rows)
        for i in range(2, 2 + 2 * handoff.KEEP_FREE):  # written one after another: none reused
            path = os.path.join(folder, f"{i}.f32")
            np.zeros((2, 6), np.float32).tofile(path)
        for i in range(2, 2 + 2 * handoff.KEEP_FREE):
            reader.read(os.path.join(folder, f"{i}.f32"), 2, 6)
        assert len(os.listdir(os.path.join(folder, handoff.FREE))) == handoff.KEEP_FREE
        assert sorted(os.listdir(folder)) == [handoff.FREE]


def test_a_short_hand_over_file_is_a_clear_error(tmp_path):
    path = tmp_path / "short.f32"
    np.zeros((3, 6), np.float32).tofile(path)
    with pytest.raises(InputDataError, match="holds 72 bytes, expected 96"):
        handoff.Reader().read(str(path), 4, 6)


def test_folders_of_killed_stages_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / f"{handoff.PREFIX}{dead}-abc").mkdir()
    (tmp_path / f"{handoff.PREFIX}{os.getpid()}-def").mkdir()
    (tmp_path / "unrelated").mkdir()
    assert handoff.remove_orphans(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{handoff.PREFIX}{os.getpid()}-def",
                                                                 "unrelated"])


def test_the_folder_is_removed_with_what_is_left_in_it():
    with handoff.folder() as path:
        open(os.path.join(path, "left.f32"), "wb").close()
    assert not os.path.exists(path)
