import json

import numpy as np
import polars as pl
import pytest
import torch

from comodo.pipeline.evaluation.svm import evaluate_encoder
from comodo.pipeline.stages.distill import (
    DistillConfig,
    head_settings,
    open_inputs,
    run,
    train_data,
)
from comodo.pipeline.students import StudentSpec, load_encoder
from comodo.pipeline.training.model import build_initial_encoder, build_model
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, StoreIntegrityError, StoreNotFoundError
from comodo.stores.index import read_table, write_table

TINY_CNN = {"widths": [8, 16], "kernels": [5, 3]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_paired_stores(root / "ds", 120, n_channels=2, n_samples=32, teacher_dim=8,
                        n_classes=3, chunk_rows=16, teacher_key="t", kind="hidden_class",
                        valid_fraction=0.8)
    return root


def _cfg(**overrides):
    values = dict(teacher="t", epochs=2, batch_size=16, queue_size=16, projector_hidden=32,
                  projector_dim=8, device="cpu", student_options=TINY_CNN)
    return DistillConfig(**{**values, **overrides})


def test_run_writes_encoder_checkpoint_metrics_and_history(data_dir, tmp_path):
    out = tmp_path / "runs" / "ds" / "r1"
    metrics = run(_cfg(), data_dir, "ds", out)
    assert {p.name for p in out.iterdir()} >= {"encoder.safetensors", "encoder.json",
                                                "checkpoint.pt", "metrics.json", "history.csv"}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    history = pl.read_csv(out / "history.csv")
    assert history.columns[:2] == ["epoch", "train_loss"] and len(history) == 2
    assert {"val_loss", "val_anchor_acc", "lr"} <= set(history.columns)
    record = json.loads((out / "encoder.json").read_text())
    assert record["n_params"] == metrics["n_params"] > 0
    assert record["latency_ms_per_window"]["batch_1"] > 0
    encoder, meta = load_encoder(out / "encoder")
    assert meta["spec"]["n_channels"] == 2
    assert encoder(torch.randn(3, 2, 32)).shape == (3, encoder.out_dim)
    assert not any(k.startswith("projector") for k in encoder.state_dict())


def test_rejected_windows_never_train(data_dir):
    cfg = _cfg()
    index, windows, features = open_inputs(cfg, data_dir, "ds")
    data = train_data(cfg, index, windows, features)
    valid = np.asarray(features.array("valid")[:], dtype=bool)
    assert (~valid).any() and not data.train_keep[~valid].any()
    assert data.train_keep.sum() == (valid & (index["split"].to_numpy() == "train")).sum()


def test_same_seed_same_run_and_rerun_resumes_without_training_again(data_dir, tmp_path):
    a = run(_cfg(), data_dir, "ds", tmp_path / "a")
    b = run(_cfg(), data_dir, "ds", tmp_path / "b")
    assert a["train_loss"] == b["train_loss"]
    before = (tmp_path / "a" / "history.csv").read_text()
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}
    again = run(_cfg(), data_dir, "ds", tmp_path / "a")  # finished: nothing left to train
    assert again["train_loss"] == a["train_loss"]
    assert (tmp_path / "a" / "history.csv").read_text() == before
    # nothing rewritten either (a DVC stage reading the run sees the same outputs)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()} == written
    (tmp_path / "a" / "history.csv").unlink()  # as `dvc repro` removes a stage's plain outputs
    (tmp_path / "a" / "metrics.json").unlink()
    restored = run(_cfg(), data_dir, "ds", tmp_path / "a")  # the checkpoint is finished
    assert restored["train_loss"] == a["train_loss"]
    assert (tmp_path / "a" / "history.csv").read_text() == before
    other = run(_cfg(seed=1), data_dir, "ds", tmp_path / "a")  # new config: starts over
    assert other["train_loss"] != a["train_loss"]


@pytest.mark.parametrize("objective,extra", [
    ("infonce", {}), ("infonce_asymmetric", {"learn_temperature": True}),
    ("infonce", {"baseline_heads": "comodo", "temperature_parametrisation": "log"}),
    ("l2", {}), ("comodo", {"queue_init": "empty"})])
def test_every_objective_trains(data_dir, tmp_path, objective, extra):
    metrics = run(_cfg(objective=objective, epochs=1, **extra), data_dir, "ds", tmp_path)
    assert np.isfinite(metrics["train_loss"])


def test_bad_configs_fail_with_what_to_change(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="infonce"):
        run(_cfg(learn_temperature=True), data_dir, "ds", tmp_path)
    with pytest.raises(StoreNotFoundError):
        run(_cfg(teacher="missing"), data_dir, "ds", tmp_path)
    with pytest.raises(ConfigError, match="splits present"):
        run(_cfg(train_split="nope"), data_dir, "ds", tmp_path)
    with pytest.raises(Exception, match="extra"):
        DistillConfig(unknown_key=1)


def test_misaligned_index_is_refused(tmp_path):
    write_paired_stores(tmp_path / "ds", 40, n_channels=2, n_samples=16, teacher_dim=4,
                        chunk_rows=8, teacher_key="t")
    index = read_table(str(tmp_path / "ds" / "windows.parquet"))
    write_table(index.head(30), str(tmp_path / "ds" / "windows.parquet"))
    with pytest.raises(StoreIntegrityError, match="rows must align"):
        run(_cfg(), tmp_path, "ds", tmp_path / "out")


@pytest.mark.slow
def test_distillation_transfers_class_structure_only_the_teacher_shows(tmp_path):
    # IMU: a weak class tone under strong random drift; teacher features: class prototypes
    write_paired_stores(tmp_path / "ds", 600, n_channels=3, n_samples=128, teacher_dim=32,
                        n_classes=4, chunk_rows=32, teacher_key="t", kind="hidden_class")
    # input_norm none: standardising each window removes the offsets that hide the tone from
    # a random encoder (it then scores ~0.78), and this test is about what the teacher adds
    options = {"widths": [32, 64, 64, 128], "kernels": [7, 5, 3, 3]}
    cfg = _cfg(epochs=8, batch_size=32, queue_size=128, projector_hidden=256, projector_dim=128,
               student_options=options, input_norm="none")
    store = ChunkedStore.open(str(tmp_path / "ds" / "windows.zarr"))
    index = read_table(str(tmp_path / "ds" / "windows.parquet"))
    spec = StudentSpec("cnn1d", 3, 128, None, options, input_norm="none")
    before = evaluate_encoder(build_initial_encoder(spec, cfg.seed), store, index)
    run(cfg, tmp_path, "ds", tmp_path / "run")
    after = evaluate_encoder(load_encoder(tmp_path / "run" / "encoder")[0], store, index)
    assert before["acc@1"] < 0.45  # 4 classes: the random encoder sees little
    assert after["acc@1"] > before["acc@1"] + 0.2


@pytest.mark.parametrize("objective", ["infonce", "infonce_asymmetric", "l2"])
def test_baselines_get_the_reference_heads_by_default(objective):
    heads = head_settings(_cfg(objective=objective), teacher_dim=8)
    assert (heads.student_projector, heads.teacher_projector) == ("linear", "identity")
    model = build_model(StudentSpec("cnn1d", 2, 32, None, TINY_CNN), heads, seed=0)
    assert isinstance(model.projector.net, torch.nn.Linear)
    assert model.projector.net.out_features == 8  # the teacher's own dimension
    comodo_heads = head_settings(_cfg(objective=objective, baseline_heads="comodo"), 8)
    assert (comodo_heads.student_projector, comodo_heads.teacher_projector) == ("mlp",
                                                                                 "random_mlp")


def test_comodo_keeps_its_mlp_heads_and_only_infonce_learns_its_temperature_by_default():
    heads = head_settings(_cfg(), teacher_dim=8)
    assert (heads.student_projector, heads.teacher_projector) == ("mlp", "random_mlp")
    assert heads.learned_temperature is None
    assert head_settings(_cfg(objective="infonce"), 8).learned_temperature == 0.1
    assert head_settings(_cfg(objective="infonce_asymmetric"), 8).learned_temperature is None
    assert head_settings(_cfg(objective="infonce", learn_temperature=False),
                         8).learned_temperature is None


def test_distill_defaults_are_the_papers_optimiser_and_schedule():
    cfg = DistillConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.epochs) == (3e-4, 0.01, 128, 20)
    assert (cfg.warmup_fraction, cfg.schedule) == (0.1, "linear")
