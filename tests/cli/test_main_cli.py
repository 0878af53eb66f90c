"""The `comodo` command: exit codes and one-line errors."""

import json

from typer.testing import CliRunner

from comodo.cli.main import app

runner = CliRunner()


def test_list_datasets_prints_registered_adapters_as_json():
    result = runner.invoke(app, ["list", "datasets", "--json"])
    assert result.exit_code == 0
    assert "ego4d" in json.loads(result.stdout)


def test_unknown_kind_is_one_line_on_stderr_and_exit_1():
    result = runner.invoke(app, ["list", "gizmos"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown kind 'gizmos'; known kinds: datasets, teachers, students, objectives"
    ]


def test_unconfigured_dataset_fails_naming_the_key(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("datasets: {}\n")
    result = runner.invoke(app, ["check-dataset", "ego4d", "--params", str(params)])
    assert result.exit_code == 1
    assert "datasets.ego4d" in result.stderr and "Traceback" not in result.stderr


def test_missing_dataset_root_names_the_layout(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"datasets:\n  e: {{adapter: ego4d, root: {tmp_path / 'nope'}}}\n")
    result = runner.invoke(app, ["ingest", "--dataset", "e", "--params", str(params)])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and "videos/<uid>.mp4" in result.stderr


def test_check_dataset_names_the_override_sections_dvc_needs(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"datasets:\n  e: {{adapter: ego4d, root: {tmp_path}, "
                      "overrides: {windows: {mode: whole}}}\n")
    result = runner.invoke(app, ["check-dataset", "e", "--params", str(params)])
    assert result.exit_code == 1
    assert "lacks options, overrides.ingest, overrides.imu, overrides.features" in result.stderr
    assert "overrides.windows" not in result.stderr
