"""predict --follow on a CSV that another process is still writing."""

import re
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.export.bundle import Bundle
from comodo.pipeline.export.predict import follow, predict_file
from comodo.stores.errors import ConfigError, InputDataError

WRITER = """
import sys, time
src, dst, done, piece = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(src, "rb").read()
with open(dst, "wb") as fh:
    for start in range(0, len(data), piece):  # pieces end anywhere, mid-row included
        fh.write(data[start:start + piece])
        fh.flush()
        time.sleep(0.25)
open(done, "w").write("done")
"""


def test_follow_emits_windows_while_a_second_process_appends(prepared, bundle_dir, tmp_path):
    source = sorted((prepared.root / "imu").glob("*.csv"))[0]
    live, done = tmp_path / "live.csv", tmp_path / "done"
    piece = source.stat().st_size // 10 + 7  # ~1.6 s of samples per write
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(live), str(done),
                               str(piece)])
    emitted: list[tuple[pl.DataFrame, bool]] = []
    bundle = Bundle(bundle_dir)
    try:
        while not live.exists():
            time.sleep(0.01)
        n = follow(bundle, live, lambda rows: emitted.append((rows, done.exists())),
                   poll_s=0.05, idle_exit_s=1.5)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert len(emitted) >= 2 and not emitted[0][1]  # windows came out while the file grew
    rows = pl.concat([r for r, _ in emitted])
    assert n == len(rows) and rows["start_s"].is_sorted() and rows["start_s"].n_unique() == n
    final = predict_file(bundle, live)
    assert rows["start_s"].to_list() == pytest.approx(final["start_s"].to_list())
    assert rows["label"].to_list() == final["label"].to_list()
    np.testing.assert_allclose(rows["p1"].to_numpy(), final["p1"].to_numpy(), atol=1e-5)


def test_follow_refuses_parquet_and_reports_a_file_that_never_becomes_readable(
        bundle_dir, tmp_path):
    with pytest.raises(ConfigError, match="Parquet"):
        follow(Bundle(bundle_dir), tmp_path / "x.parquet", print, idle_exit_s=0.1)
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b"\x00\xff\x13garbage\n" * 50)
    with pytest.raises(InputDataError, match=re.escape(str(garbled))):
        follow(Bundle(bundle_dir), garbled, print, poll_s=0.05, idle_exit_s=0.3)
