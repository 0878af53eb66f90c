"""The sweep stage: one distill run per value, points in metrics/<ds>/sweep_<param>.json."""

import json

import pytest

from comodo.pipeline.report.build import ReportConfig
from comodo.pipeline.report.build import run as report_run
from comodo.pipeline.stages.distill import DistillConfig
from comodo.pipeline.stages.sweep import SweepConfig, run
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_paired_stores(root / "ds", 60, n_channels=2, n_samples=32, teacher_dim=8,
                        n_classes=3, chunk_rows=16, teacher_key="t", kind="hidden_class")
    return root


BASE = DistillConfig(teacher="t", epochs=3, batch_size=16, queue_size=16, projector_hidden=16,
                     projector_dim=8, device="cpu",
                     student_options={"widths": [8, 16], "kernels": [5, 3]})
PARAMS = {"queue_size": [4, 8], "reduction": ["concat", "mean"]}


def test_sweeps_write_one_file_per_param_with_a_point_per_value(data_dir, tmp_path):
    cfg = SweepConfig(enabled=True, epochs=1, params=PARAMS)
    for param in PARAMS:
        run(cfg, BASE, param, data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    for param, values in PARAMS.items():
        record = json.loads((tmp_path / f"metrics/ds/sweep_{param}.json").read_text())
        assert record["param"] == param and record["dataset"] == "ds"
        assert [p["value"] for p in record["points"]] == values
        assert all(0 <= p["acc@1"] <= p["acc@3"] <= 1 and p["std@1"] == 0
                   for p in record["points"])  # one seed
    meta = json.loads((tmp_path / "runs/ds/sweep/queue_size/8-seed0/encoder.json").read_text())
    history = (tmp_path / "runs/ds/sweep/reduction/mean-seed0/history.csv").read_text()
    assert meta["spec"]["n_channels"] == 2 and len(history.strip().splitlines()) == 2  # 1 epoch
    md, _ = report_run(ReportConfig(name="s"), tmp_path)
    assert (md.parent / "s_files/sweep_queue_size.png").is_file()
    assert (md.parent / "s_files/sweep_reduction.png").is_file()


def test_disabled_sweep_writes_an_empty_file_without_training(data_dir, tmp_path):
    record = run(SweepConfig(params=PARAMS), BASE, "queue_size", data_dir, "ds",
                 tmp_path / "runs", tmp_path / "metrics")
    assert record["points"] == [] and "make sweeps" in record["note"]
    assert (tmp_path / "metrics/ds/sweep_queue_size.json").is_file()
    assert not (tmp_path / "runs").exists()


def test_a_value_distill_rejects_fails_before_any_run(data_dir, tmp_path):
    cfg = SweepConfig(enabled=True, params={"reduction": ["concat", "max"]})
    with pytest.raises(ConfigError, match="'max' is not a valid distill setting"):
        run(cfg, BASE, "reduction", data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    with pytest.raises(ConfigError, match="swept keys: reduction"):
        run(cfg, BASE, "queue_size", data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    assert not (tmp_path / "runs").exists()
