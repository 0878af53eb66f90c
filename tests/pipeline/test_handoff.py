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
