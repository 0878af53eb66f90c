"""`comodo export` and `comodo predict`: output lines, Parquet, --follow, exit codes."""

import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline" / "export"))

from synthetic_fixture import DATASET, prepare  # noqa: E402

from comodo.cli.main import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny prepared dataset, its params file and the bundle `comodo export` wrote."""
    base = tmp_path_factory.mktemp("cli")
    prepared = prepare(base)
    params = {"data_dir": str(prepared.data),
              "datasets": {DATASET: {"adapter": "ego4d", "root": str(prepared.root)}},
              "imu": {"workers": 1}, "evaluate": {"knn_k": 3, "n_jobs": 1},
              "export": {"latency_windows": 5}}
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["export", "-d", DATASET, "--params", str(base / "params.yaml"), "--runs-dir",
            str(prepared.runs), "--metrics-dir", str(prepared.metrics), "--out", str(base / "exports")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return prepared, base, result


def _bundle_and_recording(prepared, base) -> tuple[str, str]:
    return (str(base / "exports" / DATASET / "default"),
            str(sorted((prepared.root / "imu").glob("*.csv"))[0]))


def test_export_prints_metrics_parity_and_the_bundle_path(exported):
    _prepared, base, result = exported
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"export {DATASET} fp32: acc@1 ")
    assert "top-1 equal to evaluate's on 1.000 of 9 test windows" in lines[1]
    assert lines[2] == f"bundle written to {base / 'exports' / DATASET / 'default'}"


def test_predict_prints_csv_rows_or_writes_parquet(exported, tmp_path):
    prepared, base, _ = exported
    bundle, path = _bundle_and_recording(prepared, base)
    printed = runner.invoke(app, ["predict", bundle, path, "--hop", "2.5"])
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.strip().splitlines()
    assert lines[0] == "start_s,end_s,label,top1,p1,top2,p2,top3,p3" and len(lines) >= 4
    written = runner.invoke(app, ["predict", bundle, path, "--hop", "2.5", "--out",
                                  str(tmp_path / "w.parquet")])
    assert written.exit_code == 0, written.output
    table = pl.read_parquet(tmp_path / "w.parquet")
    assert len(table) == len(lines) - 1 and table["label"].to_list()[0] == lines[1].split(",")[2]


def test_predict_follow_on_a_finished_file_stops_when_it_stays_idle(exported):
    prepared, base, _ = exported
    bundle, path = _bundle_and_recording(prepared, base)
    result = runner.invoke(app, ["predict", bundle, path, "--follow", "--poll", "0.05",
                                 "--idle-exit", "0.3"])
    assert result.exit_code == 0, result.output
    once = runner.invoke(app, ["predict", bundle, path])
    assert result.stdout == once.stdout


def test_bad_inputs_are_one_line_and_exit_1(exported, tmp_path):
    prepared, base, _ = exported
    bundle = str(base / "exports" / DATASET / "default")
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(bytes(range(256)) * 20)
    cases = [["predict", bundle, str(garbled)],
             ["predict", str(tmp_path / "none"), str(garbled)],
             ["predict", bundle, str(garbled), "--option", "units"],
             ["export", "-d", DATASET, "--params", str(base / "params.yaml"), "--run", "missing",
              "--runs-dir", str(prepared.runs)]]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
