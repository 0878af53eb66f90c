"""The imu stage's units check: a recording whose accelerometer does not read 1 g at rest."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from ego4d_fixture import make_dataset, write_imu

from comodo.pipeline.stages import imu, ingest
from comodo.stores.errors import UnitsError

RECS = {"a": ("walk", "train"), "b": ("run", "train"), "c": ("walk", "test")}


def _in_g_declared_as_m_s2(root: Path, uid: str) -> None:
    """Rewrite one recording with accelerometer values in g under the m/s^2 header."""
    t = np.arange(1200) / 100.0
    values = np.column_stack([0.05 * np.sin(2 * np.pi * t), np.zeros_like(t), np.ones_like(t),
                              np.zeros((len(t), 3))])
    write_imu(root / "imu" / f"{uid}.csv", t, values)


def _run(root: Path, data: Path, cfg: imu.ImuConfig):
    ingest.run(ingest.IngestConfig(), data, "tiny", "ego4d", str(root), {})
    return imu.run(cfg, data, "tiny", "ego4d", str(root), {})


def test_a_recording_off_by_9_81_is_a_counted_reject_naming_the_cause(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    _in_g_declared_as_m_s2(tmp_path / "raw", "b")
    summary = _run(tmp_path / "raw", tmp_path / "data", imu.ImuConfig(workers=1, max_reject_fraction=0.5))
    assert (summary.kept, summary.rejected) == (2, 1)
    rejects = pl.read_parquet(tmp_path / "data/tiny/rejects/imu.parquet")
    assert rejects["item"].to_list() == ["b"]
    assert "is 0.102 g" in rejects["reason"][0]
    assert "the values look like g declared as m/s^2" in rejects["reason"][0]


def test_units_check_error_mode_stops_the_stage(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    _in_g_declared_as_m_s2(tmp_path / "raw", "c")
    with pytest.raises(UnitsError, match="recording c: units check failed.*g declared as m/s\\^2"):
        _run(tmp_path / "raw", tmp_path / "data", imu.ImuConfig(workers=1, units_check="error"))


def test_units_check_off_keeps_the_recording(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    _in_g_declared_as_m_s2(tmp_path / "raw", "b")
    summary = _run(tmp_path / "raw", tmp_path / "data", imu.ImuConfig(workers=1, units_check="off"))
    assert (summary.kept, summary.rejected) == (3, 0)
