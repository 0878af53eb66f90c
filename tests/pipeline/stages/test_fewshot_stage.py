"""The fewshot stage: every encoder on the same draws, LOSO folds, and the report's curves."""

import json

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.evaluation import fewshot as fs
from comodo.pipeline.evaluation.supervised import (
    SupervisedSettings,
    head_topk,
    predict_logits,
    train_supervised,
)
from comodo.pipeline.report.build import ReportConfig
from comodo.pipeline.report.build import run as report_run
from comodo.pipeline.stages.benchmark import BenchmarkConfig, load_context
from comodo.pipeline.stages.benchmark_methods import FEATURES, MethodSpec, supervised_spec
from comodo.pipeline.stages.distill import DistillConfig
from comodo.pipeline.stages.fewshot import FewshotConfig, run
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.errors import ConfigError
from comodo.stores.index import read_table, write_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_CNN = {"widths": [8, 16], "kernels": [5, 3]}
METHODS = [MethodSpec(name="random init", kind="random_init"),
           MethodSpec(name="COMODO", kind="distill", objective="comodo"),
           MethodSpec(name="supervised", kind="supervised")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_paired_stores(root / "ds", 120, n_channels=2, n_samples=32, teacher_dim=8,
                        n_classes=3, chunk_rows=16, teacher_key="t", kind="hidden_class")
    index = read_table(str(root / "ds/windows.parquet"))
    subjects = [f"s{i % 3 + 1}" for i in range(index.height)]  # three subjects
    write_table(index.with_columns(pl.Series("subject", subjects)), str(root / "ds/windows.parquet"))
    return root


def distill_cfg() -> DistillConfig:
    return DistillConfig(teacher="t", epochs=1, batch_size=16, queue_size=16, projector_hidden=16,
                         projector_dim=8, device="cpu", student_options=TINY_CNN)


def test_every_encoder_is_scored_on_the_same_recorded_draws(data_dir, tmp_path):
    bench = BenchmarkConfig(seeds=[0], methods=METHODS, supervised_epochs=1)
    cfg = FewshotConfig(shots=[1, 3, "all"], draws=4)
    record = run(cfg, bench, distill_cfg(), data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    assert json.loads((tmp_path / "metrics/ds/fewshot.json").read_text()) == json.loads(
        json.dumps(record))
    (result,) = record["results"]
    index = read_table(str(data_dir / "ds/windows.parquet"))
    train_y = index.filter(pl.col("split") == "train")["label_id"].to_numpy()
    for k, n in (("1", 1), ("3", 3)):
        assert len(result["draws"][k]) == 4
        for rows in result["draws"][k]:
            assert np.bincount(train_y[rows]).tolist() == [n, n, n]
    assert result["draws"]["all"] == [list(range(len(train_y)))]
    assert [c["method"] for c in result["curves"]] == ["random init", "COMODO", "supervised"]
    for curve in result["curves"]:
        assert [p["k"] for p in curve["points"]] == ["1", "3", "all"]
        assert [p["n"] for p in curve["points"]] == [4, 4, 1]
        for p in curve["points"]:
            assert p["acc@1"]["low"] <= p["acc@1"]["mean"] <= p["acc@1"]["high"]
    pairs = {(t["a"], t["b"], t["k"]) for t in result["tests"]}
    assert ("random init", "COMODO", "3") in pairs and len(pairs) == 3 * 3
    md, _html = report_run(ReportConfig(name="t"), tmp_path)
    text = md.read_text()
    assert "Label efficiency (k-shot)" in text and "fewshot_ds.png" in text
    assert "| method vs random init | k |" in text
    assert "| method | k=1 | k=3 | k=all |" in text  # the curves as a table: mean [interval]


def test_each_encoder_and_seed_is_scored_on_the_recorded_draws(data_dir, tmp_path):
    methods = [MethodSpec(name="statistics", kind="imu_statistics"), METHODS[0]]
    bench = BenchmarkConfig(seeds=[0, 1], methods=methods)
    record = run(FewshotConfig(shots=[2], draws=3), bench, distill_cfg(), data_dir, "ds",
                 tmp_path / "runs", tmp_path / "metrics")
    (result,) = record["results"]
    draws = [fs.Draw(2, i, np.asarray(rows)) for i, rows in enumerate(result["draws"]["2"])]
    ctx, _classes = load_context(bench, distill_cfg(), data_dir, "ds", tmp_path / "runs")
    train_y, test_y = ctx.y[ctx.train], ctx.y[ctx.test]
    for method, curve in zip(methods, result["curves"], strict=True):
        (point,) = curve["points"]
        for seed in (0, 1):
            ((train_x, test_x),) = FEATURES.get(method.kind)(method, ctx, seed).values()
            again = fs.evaluate_draws("logreg", train_x, train_y, test_x, test_y, draws, seed)
            assert point["per_seed"][str(seed)]["acc@1"] == pytest.approx(
                np.mean([a["acc@1"] for a in again]))
        seed_means = [point["per_seed"][s]["acc@1"] for s in ("0", "1")]
        assert point["n"] == 2 * 3
        assert point["acc@1"]["mean"] == pytest.approx(np.mean(seed_means))
        assert point["seed_std"]["acc@1"] == pytest.approx(np.std(seed_means))
    (test,) = result["tests"]
    assert test["n"] == 2 * 3  # paired over the same (seed, draw)s


def test_k_that_a_class_cannot_give_is_skipped_and_counted(data_dir, tmp_path):
    bench = BenchmarkConfig(seeds=[0], methods=METHODS[:1])
    record = run(FewshotConfig(shots=[2, 500], draws=2), bench, distill_cfg(), data_dir, "ds",
                 tmp_path / "runs", tmp_path / "metrics")
    assert [s["k"] for s in record["skipped"]] == [500]
    assert "only" in record["skipped"][0]["reason"]
    assert [p["k"] for p in record["results"][0]["curves"][0]["points"]] == ["2"]


def test_leave_one_subject_out_has_a_fold_per_subject_and_a_pooled_curve(data_dir, tmp_path):
    bench = BenchmarkConfig(seeds=[0], methods=METHODS[:1])
    cfg = FewshotConfig(shots=[2], draws=3, folds="subject")
    record = run(cfg, bench, distill_cfg(), data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    folds = [r["fold"] for r in record["results"]]
    assert folds == ["all subjects", "subject=s1", "subject=s2", "subject=s3"]
    per_fold = record["results"][1:]
    index = read_table(str(data_dir / "ds/windows.parquet"))
    used = index.filter(pl.col("label_id") >= 0)  # every labelled window, whatever its split
    assert sum(r["n_test"] for r in per_fold) == used.height
    for r in per_fold:
        assert r["n_train"] + r["n_test"] == used.height
    assert record["results"][0]["curves"][0]["points"][0]["n"] == 3 * 3
    md, _html = report_run(ReportConfig(name="t"), tmp_path)
    assert "leave one subject out" in md.read_text()


def test_unknown_method_name_is_an_error_listing_the_benchmark_methods(data_dir, tmp_path):
    bench = BenchmarkConfig(seeds=[0], methods=METHODS)
    with pytest.raises(ConfigError, match="COMODO"):
        run(FewshotConfig(methods=["CoMoDo"]), bench, distill_cfg(), data_dir, "ds",
            tmp_path / "runs", tmp_path / "metrics")


def test_supervised_trained_on_each_draw_only_is_a_curve_paired_on_its_draws(data_dir, tmp_path):
    bench = BenchmarkConfig(seeds=[0], methods=[METHODS[0], METHODS[2]], supervised_epochs=2)
    cfg = FewshotConfig(shots=[2, "all"], draws=3, supervised_on_draws=True, supervised_draws=2)
    record = run(cfg, bench, distill_cfg(), data_dir, "ds", tmp_path / "runs", tmp_path / "metrics")
    (result,) = record["results"]
    on_draws = "supervised, trained on the k labels only"
    assert [c["method"] for c in result["curves"]] == ["random init", "supervised", on_draws]
    points = result["curves"][2]["points"]
    assert [p["n"] for p in points] == [2, 1]  # the first 2 draws of k=2; k=all is one draw
    tests = {(t["a"], t["b"], t["k"]): t["n"] for t in result["tests"]}
    assert tests[("random init", on_draws, "2")] == 2 and tests[("random init", "supervised", "2")] == 3
    # by hand: 6 windows are one batch per epoch, so 2 epochs' steps over every train window
    ctx, _classes = load_context(bench, distill_cfg(), data_dir, "ds", tmp_path / "runs")
    n_train = len(ctx.y[ctx.train])
    epochs = 2 * -(-n_train // 32)
    accs = []
    for rows in result["draws"]["2"][:2]:
        rows = np.asarray(rows)
        model = train_supervised(supervised_spec(METHODS[2], ctx), ctx.x[ctx.train][rows],
                                 ctx.y[ctx.train][rows], ctx.n_classes, SupervisedSettings(epochs=epochs), 0)
        accs.append(head_topk(predict_logits(model, ctx.x[ctx.test]), ctx.y[ctx.test])["acc@1"])
    assert points[0]["acc@1"]["mean"] == pytest.approx(np.mean(accs))
