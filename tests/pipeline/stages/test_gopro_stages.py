"""The real GoPro clip through ingest -> imu -> windows: ~197 Hz GPMF IMU on the video clock."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.datasets.gopro import GoPro
from comodo.pipeline.stages import imu, ingest, windows
from comodo.stores.chunked import ChunkedStore

CLIP_DIR = Path(__file__).resolve().parents[4] / "shared/data/videos/gopro-gpmf-parser"


@pytest.mark.skipif(not CLIP_DIR.is_dir(), reason="shared GoPro clip not available")
def test_gopro_clip_is_resampled_to_200hz_and_windows_start_on_the_video_clock(tmp_path):
    data = tmp_path / "data"
    ingest.run(ingest.IngestConfig(require_splits=[]), data, "gp", "gopro", str(CLIP_DIR), {})
    imu.run(imu.ImuConfig(workers=1), data, "gp", "gopro", str(CLIP_DIR), {})
    windows.run(windows.WindowsConfig(), data, "gp")

    rec = pl.read_parquet(data / "gp/recordings.parquet").row(0, named=True)
    assert 190 < rec["imu_rate_hz"] < 205  # native GPMF rate, about 197 Hz
    segs = pl.read_parquet(data / "gp/imu.parquet")
    assert segs["rate_hz"].to_list() == [200.0]
    raw = GoPro(CLIP_DIR).load_imu(rec)
    index = pl.read_parquet(data / "gp/windows.parquet")
    assert len(index) == 2  # 10.5 s of video: two full 5 s windows
    first = index.row(0, named=True)
    # the first window starts at the first 200 Hz grid point inside both streams' spans
    start = max(float(raw.t_s[0]), rec["video_start_s"])
    assert first["imu_start_s"] == pytest.approx(np.ceil(start * 200 - 1e-6) / 200, abs=1e-9)
    assert first["video_start_s"] == pytest.approx(first["imu_start_s"] - rec["video_start_s"])
    assert first["video_end_s"] <= rec["video_duration_s"] + 1e-9
    store = ChunkedStore.open(str(data / "gp/windows.zarr"))
    accel = store.read_rows("imu", [0])[0, :3]  # g
    assert np.linalg.norm(accel.mean(axis=1)) == pytest.approx(1.0, abs=0.1)  # gravity
