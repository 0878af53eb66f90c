"""The benchmark stage: methods x seeds -> one results table the report renders."""

import json

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.report.build import ReportConfig
from comodo.pipeline.report.build import run as report_run
from comodo.pipeline.stages.benchmark import BenchmarkConfig, run
from comodo.pipeline.stages.benchmark_methods import MethodSpec
from comodo.pipeline.stages.distill import DistillConfig
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.errors import UnknownNameError

TINY_CNN = {"widths": [8, 16], "kernels": [5, 3]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_paired_stores(root / "ds", 90, n_channels=2, n_samples=32, teacher_dim=8,
                        n_classes=3, chunk_rows=16, teacher_key="t", kind="hidden_class")
    return root


def distill_cfg() -> DistillConfig:
    return DistillConfig(teacher="t", epochs=1, batch_size=16, queue_size=16, projector_hidden=16,
                         projector_dim=8, device="cpu", student_options=TINY_CNN)


def test_table_json_has_a_row_per_method_with_mean_and_std_over_seeds(data_dir, tmp_path):
    methods = [MethodSpec(name="random init", kind="random_init"),
               MethodSpec(name="supervised", kind="supervised", svm_on_features=True),
               MethodSpec(name="DLinear", kind="supervised", student="dlinear",
                          student_options={"seq_len": 32, "d_out": 4, "moving_avg": 5}),
               MethodSpec(name="COMODO", kind="distill", objective="comodo"),
               MethodSpec(name="L2", kind="distill", objective="l2")]
    cfg = BenchmarkConfig(seeds=[0, 1], methods=methods, supervised_epochs=2)
    record = run(cfg, distill_cfg(), data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    on_disk = json.loads((tmp_path / "metrics/ds/benchmark.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    names = [r["method"] for r in on_disk["rows"]]
    assert names == ["random init", "supervised", "supervised (SVM)", "DLinear", "COMODO", "L2"]
    for row in on_disk["rows"]:
        assert row["dataset"] == "ds" and row["table"] == "benchmark" and row["n_seeds"] == 2
        per_seed = [s["acc@1"] for s in row["per_seed"]]
        assert row["acc@1"] == pytest.approx(sum(per_seed) / 2)
        assert row["std@1"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2)
        assert 0 <= row["acc@1"] <= row["acc@3"] == 1.0  # three classes
    assert (tmp_path / "runs/ds/benchmark/comodo-seed1/encoder.safetensors").is_file()
    md, _html = report_run(ReportConfig(name="t"), tmp_path)
    text = md.read_text()
    assert "Methods (paper Table 1)" in text
    assert "| method | ds Acc@1 | ds Acc@3 | ds Acc@5 |" in text
    assert "| supervised (SVM) |" in text and " ± " in text


def test_unknown_method_kind_fails_before_training(data_dir, tmp_path):
    cfg = BenchmarkConfig(seeds=[0], methods=[MethodSpec(name="x", kind="nope")])
    with pytest.raises(UnknownNameError, match="random_init"):
        run(cfg, distill_cfg(), data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_leave_one_subject_out_runs_one_fold_per_subject_and_keeps_each_fold(tmp_path):
    write_paired_stores(tmp_path / "data/ds", 60, n_channels=2, n_samples=32, teacher_dim=8, n_classes=3,
          chunk_rows=16, teacher_key="t", kind="hidden_class")
    index_path = tmp_path / "data/ds/windows.parquet"
    index = pl.read_parquet(index_path)
    index.with_columns(subject=pl.Series([f"{1 + i % 3}" for i in range(len(index))])
                       ).write_parquet(index_path)
    methods = [MethodSpec(name="stats", kind="imu_statistics"),
               MethodSpec(name="teacher", kind="teacher_features"),
               MethodSpec(name="COMODO", kind="distill", objective="comodo")]
    cfg = BenchmarkConfig(seeds=[0, 1], methods=methods, folds="subject")
    record = run(cfg, distill_cfg(), tmp_path / "data", "ds", tmp_path / "runs", tmp_path / "m")
    assert record["n_test"] == [20, 20, 20] and record["n_train"] == [40, 40, 40]
    for row in record["rows"]:
        folds = row["per_fold"]
        assert [f["fold"] for f in folds] == ["subject=1", "subject=2", "subject=3"]
        assert all(len(f["per_seed"]) == 2 for f in folds)
        means = [f["acc@1"] for f in folds]
        assert row["acc@1"] == pytest.approx(sum(means) / 3)
        assert row["std@1"] == pytest.approx(float(np.std(means)))
    teacher = next(r for r in record["rows"] if r["method"] == "teacher")
    assert teacher["acc@1"] > 0.9  # hidden_class: the teacher's features carry the class
    runs = sorted(p.name for p in (tmp_path / "runs/ds/benchmark").iterdir())
    assert runs == [f"comodo-seed{s}-subject{k}" for s in (0, 1) for k in (1, 2, 3)]
