"""`comodo distill`: params section, run folder, exit codes."""

import json

import yaml
from typer.testing import CliRunner

from comodo.cli.main import app
from comodo.pipeline.training.synthetic import write_paired_stores

runner = CliRunner()


def _params(tmp_path, **distill):
    section = {"teacher": "t", "epochs": 1, "batch_size": 16, "queue_size": 8,
               "projector_hidden": 16, "projector_dim": 8,
               "student_options": {"widths": [8], "kernels": [3]}, **distill}
    params = {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
              "datasets": {"ds": {"adapter": "ego4d", "root": str(tmp_path / "raw")}},
              "distill": section}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def test_distill_writes_the_named_run_and_prints_one_result_line(tmp_path):
    write_paired_stores(tmp_path / "data" / "ds", 64, n_channels=2, n_samples=16,
                        teacher_dim=4, chunk_rows=16, teacher_key="t")
    result = runner.invoke(app, ["distill", "--dataset", "ds", "--params", _params(tmp_path),
                                 "--run-name", "r1", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    run_dir = tmp_path / "runs" / "ds" / "r1"
    assert json.loads((run_dir / "metrics.json").read_text())["device"] == "cpu"
    assert (run_dir / "encoder.safetensors").is_file()
    assert result.stdout.strip().splitlines()[-1].startswith("distill ds: 1 epochs")


def test_unknown_student_is_one_line_with_the_known_names(tmp_path):
    write_paired_stores(tmp_path / "data" / "ds", 32, n_channels=2, n_samples=16,
                        teacher_dim=4, chunk_rows=16, teacher_key="t")
    result = runner.invoke(app, ["distill", "--dataset", "ds",
                                 "--params", _params(tmp_path, student="resnet")])
    assert result.exit_code == 1
    assert "cnn1d" in result.stderr and "Traceback" not in result.stderr


def test_bad_device_and_unknown_key_fail_naming_the_section(tmp_path):
    result = runner.invoke(app, ["distill", "--dataset", "ds", "--params", _params(tmp_path),
                                 "--device", "tpu"])
    assert result.exit_code == 1 and "distill" in result.stderr and "device" in result.stderr
    result = runner.invoke(app, ["distill", "--dataset", "ds",
                                 "--params", _params(tmp_path, epoch=3)])
    assert result.exit_code == 1 and "epoch" in result.stderr


def test_evaluate_without_a_run_name_judges_the_run_distill_wrote_last(tmp_path):
    write_paired_stores(tmp_path / "data" / "ds", 96, n_channels=2, n_samples=16,
                        teacher_dim=4, chunk_rows=16, teacher_key="t", n_classes=2)
    params = _params(tmp_path)
    for name in ("first", "second"):
        result = runner.invoke(app, ["distill", "-d", "ds", "--params", params, "--run-name", name,
                                     "--device", "cpu"])
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "runs" / "ds" / "latest").read_text().strip() == "second"
    result = runner.invoke(app, ["evaluate", "-d", "ds", "--params", params,
                                 "--runs-dir", str(tmp_path / "runs"),
                                 "--metrics-dir", str(tmp_path / "metrics")])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "metrics" / "ds" / "evaluate.json").read_text())
    assert record["run"].endswith("ds/second") and record["rows"][0]["run"] == "second"
    assert "second" in result.stdout and "latest" in result.stdout


def test_evaluate_without_a_run_and_without_a_distilled_run_says_what_to_do(tmp_path):
    write_paired_stores(tmp_path / "data" / "ds", 32, n_channels=2, n_samples=16,
                        teacher_dim=4, chunk_rows=16, teacher_key="t")
    result = runner.invoke(app, ["evaluate", "-d", "ds", "--params", _params(tmp_path),
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "comodo distill -d ds" in result.stderr and "Traceback" not in result.stderr
