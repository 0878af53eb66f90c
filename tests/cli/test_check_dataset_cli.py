"""`comodo check-dataset` on real-format folders: what it found, in a few lines."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from comodo.cli.main import app

runner = CliRunner()
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-formats"


@pytest.fixture(scope="module")
def real() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real-format files not found at {REAL}")
    return REAL


def test_hapt_folder_reports_recordings_labels_rate_and_units(real):
    result = runner.invoke(app, ["check-dataset", "--adapter", "hapt", "--root",
                                 str(real / "har_imu/maria-o-machado__ProjetoATD"), "-o", "split=random"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("45 recordings, 0 rejected")
    assert lines[2].startswith("  labels: 12 (WALKING 8, ")
    assert "  native IMU rate: 50.0-50.0 Hz (median 50.0)" in lines
    assert "983 samples x 3 channels" in lines[-1] and "units check: ok" in lines[-1]


def test_mmea_release_lists_are_counted_even_without_the_sensor_files(real):
    result = runner.invoke(app, ["check-dataset", "--adapter", "mmea", "--root",
                                 str(real / "mmea/Xu-Linfeng__UESTC_MMEA_CL_main")])
    assert result.exit_code == 0, result.stderr
    assert "0 recordings, 6522 rejected" in result.stdout
    assert "train 4553, val 653, test 1316 clips, 32 classes" in result.stdout
    assert "rejected 6522x:" in result.stdout and "no sensor CSV" in result.stdout


def test_gopro_clips_pass_the_units_check(real):
    folder = str(real / "gopro_gpmf/gopro__gpmf-parser/samples")
    result = runner.invoke(app, ["check-dataset", "--adapter", "gopro", "--root", folder, "--load", "2"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("units check: ok") == 1 and "200.0 Hz" in result.stdout
    assert "imu of max-heromode" in result.stdout and "not judged (no window at rest" in result.stdout
    walking = runner.invoke(app, ["check-dataset", "--adapter", "gopro", "--root", folder, "--load", "2",
                                  "--quiet-cv", "0.15"])
    assert walking.stdout.count("units check: ok") == 2


def test_adapter_without_root_and_bad_option_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["check-dataset", "--adapter", "hapt"])
    assert result.exit_code == 1 and result.stderr.strip() == (
        "error: check-dataset --adapter needs --root, the dataset's raw folder")
    result = runner.invoke(app, ["check-dataset", "--adapter", "hapt", "--root", str(tmp_path),
                                 "-o", "split"])
    assert result.exit_code == 1 and "expected key=value" in result.stderr
