"""A unit the imu stage does not know, through real adapters and the CLI.

Declared in params.yaml (the manifest adapter's ``units``/``default_unit`` options) it is a
config error before any recording is read; carried by a file (a GoPro clip's SIUN) it makes
that recording a counted reject of the imu stage, its reason naming channel, unit and the
known units, and the stage fails in one line only past its reject limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from comodo.cli.main import app

CLIP = Path(__file__).resolve().parents[4] / "shared/data/videos/gopro-gpmf-parser/max-heromode.mp4"
KNOWN = "known units: count, g, m/s^2, mg, deg/s, rad/s, a.u., deg"


def _stage(stage: str, params: Path, dataset: str) -> tuple[int, str]:
    """Exit code and the error line (logged warnings aside, one line ends stderr)."""
    result = CliRunner().invoke(app, [stage, "-d", dataset, "--params", str(params)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if result.exit_code:
        assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    return result.exit_code, "".join(errors)


def _params(path: Path, data: Path, entry: dict, **sections) -> Path:
    path.write_text(yaml.safe_dump({"data_dir": str(data), "datasets": {"ds": entry},
                                    "ingest": {"require_splits": []}, **sections}))
    return path


def _manifest(root: Path) -> None:
    (root / "imu").mkdir(parents=True)
    t = np.arange(400) / 100.0
    for rid in ("a", "b"):
        table = pl.DataFrame({"t_s": t, "acc_x": np.sin(t), "gyro_x": np.cos(t)})
        table.write_csv(root / "imu" / f"{rid}.csv")
    pl.DataFrame({"recording_id": ["a", "b"], "imu_path": ["imu/a.csv", "imu/b.csv"],
                  "label": ["walk", "run"]}).write_csv(root / "manifest.csv")


def test_an_unknown_unit_in_the_manifest_options_stops_ingest_and_imu_in_one_line(tmp_path):
    _manifest(tmp_path / "raw")
    entry = {"adapter": "manifest", "root": str(tmp_path / "raw"), "options": {"units": {"acc_x": "g"}}}
    good = _params(tmp_path / "good.yaml", tmp_path / "data", entry)
    assert _stage("ingest", good, "ds")[0] == 0
    entry["options"]["units"] = {"acc_x": "m/s2", "gyro_x": "rad/s"}
    bad = _params(tmp_path / "bad.yaml", tmp_path / "data", entry)
    for stage in ("ingest", "imu"):
        code, stderr = _stage(stage, bad, "ds")
        assert code == 1, stderr
        assert "channel acc_x declared in unknown unit 'm/s2' (did you mean 'm/s^2'?)" in stderr
        assert KNOWN in stderr and "datasets.ds.options" in stderr
    entry["options"] = {"default_unit": "furlong"}
    code, stderr = _stage("ingest", _params(tmp_path / "default.yaml", tmp_path / "data", entry), "ds")
    assert code == 1 and "unknown unit 'furlong'" in stderr and KNOWN in stderr


@pytest.mark.skipif(not CLIP.is_file(), reason="shared GoPro clip not available")
def test_a_gopro_clip_in_an_unknown_unit_is_a_counted_imu_reject_naming_it(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    data = CLIP.read_bytes()
    (raw / "good.mp4").write_bytes(data)
    (raw / "cubed.mp4").write_bytes(data.replace(b"m/s\xb2", b"m/s\xb3"))  # SIUN "m/s³"
    entry = {"adapter": "gopro", "root": str(raw)}
    lenient = _params(tmp_path / "lenient.yaml", tmp_path / "data", entry, imu={"max_reject_fraction": 0.5})
    assert _stage("ingest", lenient, "ds")[0] == 0
    assert _stage("imu", lenient, "ds")[0] == 0
    rejects = pl.read_parquet(tmp_path / "data/ds/rejects/imu.parquet")
    assert rejects["item"].to_list() == ["cubed"]
    assert "channel acc_x has unknown unit 'm/s³'" in rejects["reason"][0] and KNOWN in rejects["reason"][0]
    assert pl.read_parquet(tmp_path / "data/ds/imu.parquet")["recording_id"].unique().to_list() == ["good"]
    code, stderr = _stage("imu", _params(tmp_path / "default.yaml", tmp_path / "data", entry), "ds")
    assert code == 1 and "rejected 1 of 2 (50%) > max_reject_fraction=0.2" in stderr
