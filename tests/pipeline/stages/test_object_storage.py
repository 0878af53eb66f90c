"""Training, judging and reporting with ``data_dir: s3://...`` on a real moto server: every
stage past features reads its stores and tables through fsspec with ``storage_options``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import s3fs
import yaml
from typer.testing import CliRunner

from comodo.cli.main import app
from comodo.pipeline.stages import benchmark, distill, evaluate, sweep, transfer, uma
from comodo.pipeline.stages.benchmark_methods import MethodSpec
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.pipeline.uma.training import UmaSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

UMA_FIXTURE = Path(__file__).parents[1] / "uma" / "uma_fixture.py"
DISTILL = {"teacher": "t", "epochs": 1, "batch_size": 16, "queue_size": 8, "projector_hidden": 16,
           "projector_dim": 8, "device": "cpu", "student_options": {"widths": [8], "kernels": [3]}}
UMA = {"teacher_key": "t", "seeds": [0], "methods": ["st"], "noises": ["clean"], "map_method": None,
       "supervised_reference": False,
       "settings": {"latent": 8, "hidden": 16, "t_rec": 4, "epochs": 2, "batch_size": 32,
                    "device": "cpu"}}


def _uma_fixture():
    spec = importlib.util.spec_from_file_location("comodo_test_uma_fixture", UMA_FIXTURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def remote(s3_server, tmp_path_factory) -> tuple[str, dict]:
    """Datasets a and b (paired stores, train/val/test) and u (UMA arrays) under an s3 prefix."""
    local = tmp_path_factory.mktemp("s3data")
    for name, seed in (("a", 0), ("b", 1)):
        write_paired_stores(local / name, 96, n_channels=2, n_samples=16, teacher_dim=4,
                            n_classes=3, chunk_rows=32, teacher_key="t", kind="hidden_class",
                            seed=seed)
    fixture = _uma_fixture()
    fixture.write_dataset(local, "u", fixture.synthetic_arrays(), "t")
    prefix = s3_server.fresh_prefix()
    s3fs.S3FileSystem(**s3_server.storage_options).put(str(local) + "/", prefix[len("s3://"):],
                                                       recursive=True)
    return prefix, s3_server.storage_options


def _distill(remote, runs: Path, name: str = "r", dataset: str = "a") -> Path:
    data, options = remote
    out = runs / dataset / name
    distill.run(distill.DistillConfig(**DISTILL), data, dataset, out, storage_options=options)
    return out


def test_distill_then_evaluate_read_their_stores_from_s3(remote, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, options = remote
    out = _distill(remote, tmp_path / "runs")
    assert (out / "encoder.safetensors").is_file()
    record = evaluate.run(evaluate.EvaluateConfig(run="r", knn_k=3), data, "a", tmp_path / "runs",
                          tmp_path / "metrics", options)
    assert record["rows"][0]["n_test"] > 0
    assert not (tmp_path / "s3:").exists()


def test_benchmark_trains_and_judges_from_s3(remote, tmp_path):
    data, options = remote
    methods = [MethodSpec(name="random", kind="random_init"),
               MethodSpec(name="comodo", kind="distill", objective="comodo")]
    record = benchmark.run(benchmark.BenchmarkConfig(seeds=[0], methods=methods),
                           distill.DistillConfig(**DISTILL), data, "a", tmp_path / "runs",
                           tmp_path / "metrics", options)
    assert [r["method"] for r in record["rows"]] == ["random", "comodo"]


def test_sweep_trains_each_point_from_s3(remote, tmp_path):
    data, options = remote
    cfg = sweep.SweepConfig(enabled=True, dataset="a", params={"queue_size": [8, 16]})
    record = sweep.run(cfg, distill.DistillConfig(**DISTILL), "queue_size", data, "a",
                       tmp_path / "runs", tmp_path / "metrics", options)
    assert [p["value"] for p in record["points"]] == [8, 16]


def test_transfer_reads_both_datasets_from_s3(remote, tmp_path):
    data, options = remote
    _distill(remote, tmp_path / "runs")
    pair = transfer.TransferPair(source="a", target="b", runs="r")
    [record] = transfer.run(transfer.TransferConfig(pairs=[pair]), data, tmp_path / "runs",
                            tmp_path / "metrics", options)
    assert record["dataset"] == "b" and record["target_rate_hz"] == 200.0


def test_uma_reads_windows_and_frames_from_s3(remote, tmp_path):
    data, options = remote
    cfg = uma.UmaConfig(**{**UMA, "settings": UmaSettings(**UMA["settings"])})
    summary = uma.run(cfg, data, "u", tmp_path / "metrics", options)
    assert summary["n_windows"] > 0 and (tmp_path / "metrics/u/uma/metrics.json").is_file()


def test_the_commands_take_an_s3_data_dir_and_its_storage_options(remote, tmp_path, monkeypatch):
    data, options = remote
    monkeypatch.chdir(tmp_path)
    entry = {"adapter": "ego4d", "root": "raw"}
    Path("params.yaml").write_text(yaml.safe_dump({
        "data_dir": data, "storage_options": options,
        "datasets": {"a": entry, "b": entry, "u": {**entry, "overrides": {"uma": UMA}}},
        "distill": DISTILL, "evaluate": {"knn_k": 3},
        "benchmark": {"seeds": [0], "methods": [{"name": "random", "kind": "random_init"}]},
        "fewshot": {"shots": [1], "draws": 2, "methods": ["random"]},
        "sweep": {"enabled": True, "dataset": "a", "params": {"queue_size": [8]}},
        "transfer": {"pairs": [{"source": "a", "target": "b", "runs": "comodo"}]}}))
    runner = CliRunner()
    for args in (["distill", "-d", "a", "--run-name", "comodo"], ["evaluate", "-d", "a"],
                 ["benchmark", "-d", "a"], ["fewshot", "-d", "a"],
                 ["sweep", "-d", "a", "--param", "queue_size"],
                 ["transfer"], ["uma", "-d", "u"], ["report", "--name", "s3"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.stderr)
    assert json.loads(Path("metrics/a/evaluate.json").read_text())["rows"][0]["run"] == "comodo"
    assert "| random |" in Path("reports/s3.md").read_text()
    assert not Path("s3:").exists()


@pytest.mark.slow
def test_the_synthetic_pipeline_runs_end_to_end_with_data_dir_on_s3(s3_server, tmp_path, monkeypatch):
    """synth -> ingest -> imu -> windows -> features -> distill -> evaluate -> benchmark ->
    sweep -> transfer -> uma -> report, every store and table under an s3:// prefix."""
    monkeypatch.chdir(tmp_path)
    data = s3_server.fresh_prefix()
    overrides = {"uma": {**UMA, "teacher_key": "mobilenetv2_imagenet"}}
    Path("params.yaml").write_text(yaml.safe_dump({
        "data_dir": data, "storage_options": s3_server.storage_options,
        "datasets": {"synthetic": {"adapter": "ego4d", "root": "raw", "overrides": overrides}},
        "synth": {"n_classes": 3, "recordings_per_class": 6, "duration_s": 16.0, "size": 64,
                  "val_fraction": 0.25, "test_fraction": 0.25},
        "imu": {"workers": 1},
        "features": {"teacher": "mobilenetv2_imagenet", "frames": 2, "num_workers": 0,
                     "device": "cpu", "batch_size": 8},
        "distill": {**DISTILL, "teacher": "mobilenetv2_imagenet", "batch_size": 8},
        "evaluate": {"knn_k": 3},
        "benchmark": {"seeds": [0], "methods": [{"name": "random", "kind": "random_init"}]},
        "sweep": {"enabled": True, "dataset": "synthetic", "params": {"queue_size": [8]}},
        "transfer": {"pairs": [{"source": "synthetic", "target": "synthetic", "runs": "comodo"}]}}))
    runner = CliRunner()
    steps = [["synth", "--out", "raw"], ["ingest", "-d", "synthetic"], ["imu", "-d", "synthetic"],
             ["windows", "-d", "synthetic"], ["features", "-d", "synthetic"],
             ["distill", "-d", "synthetic", "--run-name", "comodo"], ["evaluate", "-d", "synthetic"],
             ["benchmark", "-d", "synthetic"], ["sweep", "-d", "synthetic", "--param", "queue_size"],
             ["transfer"], ["uma", "-d", "synthetic"], ["report", "--name", "s3"]]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output[-2000:])
    remote = s3fs.S3FileSystem(**s3_server.storage_options)
    remote.invalidate_cache()
    stored = {p.rsplit("/", 1)[-1] for p in remote.ls(f"{data[len('s3://'):]}/synthetic")}
    assert {"recordings.parquet", "imu.zarr", "windows.zarr", "windows.parquet", "features"} <= stored
    assert not Path("data").exists() and not Path("s3:").exists()
    assert "| random |" in Path("reports/s3.md").read_text()
