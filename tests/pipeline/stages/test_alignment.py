"""Windows are paired with the video by timestamp, not by array index."""

import numpy as np
import polars as pl

from comodo.pipeline.datasets.synthetic import make_recording, write_recording
from comodo.pipeline.signal import G
from comodo.pipeline.stages import imu, ingest, windows
from comodo.stores.chunked import ChunkedStore

OFFSET_S = 1.3


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_imu_clock_starting_late_still_yields_windows_aligned_with_the_motion(tmp_path):
    raw = tmp_path / "raw"
    rec = make_recording(seed=3, label="swing", duration_s=20.0, imu_start_s=OFFSET_S, size=64)
    write_recording(raw, "late", rec)
    (raw / "train.txt").write_text("late\tswing\n")
    data = tmp_path / "data"
    ingest.run(ingest.IngestConfig(require_splits=[]), data, "d", "ego4d", str(raw), {})
    imu.run(imu.ImuConfig(workers=1), data, "d", "ego4d", str(raw), {})
    windows.run(windows.WindowsConfig(), data, "d")

    index = pl.read_parquet(data / "d/windows.parquet")
    store = ChunkedStore.open(str(data / "d/windows.zarr"))
    assert index["imu_start_s"][0] >= OFFSET_S - 1e-9
    assert index["video_start_s"][0] == index["imu_start_s"][0]  # the video starts at 0
    to_canonical = np.array([1 / G] * 3 + [180 / np.pi] * 3)[:, None]
    lags = np.arange(-2.0, 2.0 + 1e-9, 0.005)
    for row in index.iter_rows(named=True):
        x = store.read_rows("imu", [row["window_id"]])[0]  # (6, 1000) in g and deg/s
        t = row["imu_start_s"] + np.arange(x.shape[1]) / 200.0
        scores = [_corr(x - x.mean(1, keepdims=True), _centred(rec.motion(t + lag).T * to_canonical))
                  for lag in lags]
        best = lags[int(np.argmax(scores))]
        # the window holds the motion at its own canonical times (lag 0), not 1.3 s off
        assert abs(best) <= 0.01, (row["window_id"], best)
        assert max(scores) > 0.95


def _centred(a: np.ndarray) -> np.ndarray:
    return a - a.mean(1, keepdims=True)
