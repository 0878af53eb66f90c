"""The evaluate stage on a tiny windows store and an encoder exported like distill does."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.stages.evaluate import EvaluateConfig, run
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.training.export import export_encoder
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import ConfigError, ModelLoadError
from comodo.stores.index import write_table
from comodo.stores.provenance import Provenance

CLASSES = ["circle", "shake", "still"]
SPEC = StudentSpec("cnn1d", 3, 64, None, {"widths": [8, 16], "kernels": [5, 3]})


def make_windows(data: Path, n_per_class: int = 24, seed: int = 0) -> None:
    """Three classes of 3-channel windows: a sine, a fast square wave, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(SPEC.n_samples) / 32.0
    shapes = [np.sin(2 * np.pi * 2 * t), np.sign(np.sin(2 * np.pi * 6 * t)), np.zeros_like(t)]
    label_id = np.repeat(np.arange(3), n_per_class)
    imu = np.stack([shapes[k] * rng.uniform(0.8, 1.2) + rng.normal(0, 0.3, (3, len(t)))
                    for k in label_id]).astype(np.float32)  # (N, 3, 64)
    split = np.where(np.arange(len(label_id)) % 3 == 0, "test", "train")
    paths = DatasetPaths(data, "toy")
    write_table(pl.DataFrame({"window_id": np.arange(len(imu)), "label_id": label_id,
                              "label": [CLASSES[k] for k in label_id], "split": split}),
                str(paths.windows_index))
    store = ChunkedStore.create(str(paths.windows_store), len(imu), 16,
                                {"imu": ArraySpec((3, SPEC.n_samples), "float32")},
                                Provenance("windows", "c", "i"), attrs={"classes": CLASSES})
    for chunk in store.pending_chunks():
        store.write_chunk(chunk, {"imu": imu[store.chunk_slice(chunk)]})


def export_run(runs: Path, seed: int = 0) -> None:
    torch.manual_seed(seed)
    encoder = build_student(SPEC)
    with torch.no_grad():  # "trained": moved away from its initial weights
        for p in encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    export_encoder(encoder, SPEC, runs / "toy" / "default", {"objective": "comodo",
                                                             "teacher": "tiny"})


def test_evaluate_writes_rows_for_distilled_and_random_init_and_feature_maps(tmp_path):
    make_windows(tmp_path / "data")
    export_run(tmp_path / "runs")
    record = run(EvaluateConfig(run="default", knn_k=5), tmp_path / "data", "toy", tmp_path / "runs",
                 tmp_path / "metrics")
    on_disk = json.loads((tmp_path / "metrics/toy/evaluate.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    rows = {r["variant"]: r for r in on_disk["rows"]}
    assert set(rows) == {"distilled", "random_init"}
    assert rows["distilled"]["method"] == "cnn1d comodo"
    for row in rows.values():
        assert row["dataset"] == "toy" and row["n_test"] == 24 and row["n_train"] == 48
        assert row["acc@1"] > 0.6  # the classes are easy even for random conv features
        assert row["acc@1"] <= row["acc@3"] == 1.0  # three classes
        assert np.sum(row["confusion"]) == 24
        assert np.trace(row["confusion"]) == pytest.approx(24 * row["acc@1"])
    maps = np.load(tmp_path / "metrics/toy/features/distilled.npz")
    assert maps["x"].shape == (24, rows["distilled"]["feature_dim"])
    assert maps["classes"].tolist() == CLASSES
    init = np.load(tmp_path / "metrics/toy/features/random_init.npz")
    assert not np.allclose(init["x"], maps["x"])


def test_random_init_baseline_is_the_run_seeds_initial_student(tmp_path):
    make_windows(tmp_path / "data")
    export_run(tmp_path / "runs", seed=7)
    run(EvaluateConfig(run="default", seed=7, knn_k=5), tmp_path / "data", "toy", tmp_path / "runs",
        tmp_path / "metrics")
    torch.manual_seed(7)
    initial = build_student(SPEC).eval()
    imu = ChunkedStore.open(str(tmp_path / "data/toy/windows.zarr")).read_rows("imu", [0, 3])
    with torch.no_grad():
        expected = initial(torch.as_tensor(imu)).numpy()
    saved = np.load(tmp_path / "metrics/toy/features/random_init.npz")["x"][:2]
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6)


def test_missing_run_and_missing_split_name_what_to_do(tmp_path):
    make_windows(tmp_path / "data")
    with pytest.raises(ModelLoadError, match="distill"):
        run(EvaluateConfig(run="default"), tmp_path / "data", "toy", tmp_path / "runs", tmp_path / "metrics")
    export_run(tmp_path / "runs")
    with pytest.raises(ConfigError, match="splits present"):
        run(EvaluateConfig(run="default", test_split="val"), tmp_path / "data", "toy", tmp_path / "runs",
            tmp_path / "metrics")


def test_evaluate_command_prints_scores_and_exits_1_on_a_missing_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from comodo.cli.main import app

    make_windows(tmp_path / "data")
    (tmp_path / "params.yaml").write_text(
        "data_dir: data\ndatasets:\n  toy: {adapter: ego4d, root: raw}\nevaluate:\n  knn_k: 5\n"
        "  run: default\n")
    monkeypatch.chdir(tmp_path)
    missing = CliRunner().invoke(app, ["evaluate", "-d", "toy"])
    assert missing.exit_code == 1 and "encoder" in missing.output
    export_run(tmp_path / "runs")
    done = CliRunner().invoke(app, ["evaluate", "-d", "toy"])
    assert done.exit_code == 0, done.output
    assert "cnn1d comodo: acc@1" in done.output and "cnn1d random init" in done.output
    assert (tmp_path / "metrics/toy/evaluate.json").is_file()


def test_leave_one_subject_out_tests_every_window_once_and_keeps_each_fold(tmp_path):
    make_windows(tmp_path / "data")
    paths = DatasetPaths(tmp_path / "data", "toy")
    index = pl.read_parquet(paths.windows_index)
    index.with_columns(subject=pl.Series([f"{1 + i % 4}" for i in range(len(index))])
                       ).write_parquet(paths.windows_index)
    export_run(tmp_path / "runs")
    record = run(EvaluateConfig(run="default", knn_k=5, folds="subject", random_init_baseline=False),
                 tmp_path / "data", "toy", tmp_path / "runs", tmp_path / "metrics")
    (row,) = record["rows"]
    assert row["folds"] == "subject" and row["n_folds"] == 4
    assert [f["fold"] for f in row["per_fold"]] == [f"subject={k}" for k in (1, 2, 3, 4)]
    assert all(f["n_test"] == 18 and f["n_train"] == 54 for f in row["per_fold"])
    assert row["n_test"] == 72 and np.sum(row["confusion"]) == 72  # every window tested once
    accs = [f["acc@1"] for f in row["per_fold"]]
    assert row["acc@1"] == pytest.approx(np.mean(accs))
    assert row["std@1"] == pytest.approx(np.std(accs))
