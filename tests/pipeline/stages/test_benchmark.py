"""The benchmark stage: methods x seeds -> one results table the report renders."""

import json

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
