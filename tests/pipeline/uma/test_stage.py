"""Stage uma end to end on a tiny store in tmp_path; `comodo uma` through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner
from uma_fixture import N_CLASSES, synthetic_arrays, write_dataset

from comodo.cli.main import app
from comodo.pipeline.stages.uma import UmaConfig, run
from comodo.pipeline.uma.training import UmaSettings
from comodo.stores.errors import ConfigError, UnknownNameError

SETTINGS = {"latent": 16, "hidden": 32, "t_rec": 4, "epochs": 40, "batch_size": 32, "device": "cpu"}


def config(**kw: object) -> UmaConfig:
    values = {"teacher_key": "tiny", "seeds": (0, 1), "settings": UmaSettings(**SETTINGS),
              "noises": ("clean", "shift", "dilation"), "map_classes": 3,
              "methods": ("st", "ca", "c3t")}
    return UmaConfig(**(values | kw))


def test_stage_writes_metrics_csv_and_latent_map_with_imu_beating_chance(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", "toy", synthetic_arrays(), "tiny")
    summary = run(config(teacher_svm_protocol="comodo"), tmp_path / "data", "toy", tmp_path / "metrics")
    out = tmp_path / "metrics" / "toy" / "uma"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["random_guess"] == pytest.approx(1 / N_CLASSES)
    assert set(saved["test"]) == {"st", "ca", "c3t", "supervised_imu", "teacher_svm"}
    assert saved["test"]["teacher_svm"]["video"]["clean"]["mean"] > 1.5 / N_CLASSES
    for method in ("st", "ca", "c3t"):
        cell = saved["test"][method]["imu"]["clean"]
        assert cell["n_seeds"] == 2 and set(cell["per_seed"]) == {"0", "1"}
        assert cell["mean"] > 1.5 / N_CLASSES, (method, cell)
        assert set(saved["test"][method]) == {"imu", "video", "both"}
        assert set(saved["test"][method]["both"]) == {"clean", "shift", "dilation"}
    assert saved["splits"]["0"]["by_subject"] and saved["splits"]["0"]["sizes"]["har"] == 80
    for seed in ("0", "1"):
        chosen = saved["splits"][seed]["selected"]
        assert chosen["st"]["phase"] in ("teacher", "student") and 1 <= chosen["st"]["epoch"] <= 80
        assert chosen["ca"]["phase"] == "combined" and chosen["c3t"]["phase"] in ("align", "har")
        val_imu = saved["val"]["c3t"]["imu"]["clean"]["per_seed"][seed]
        assert chosen["c3t"]["val_accuracy"] == pytest.approx(val_imu)  # the tested model is the selected one
    results = pl.read_csv(out / "results.csv")
    # methods x seeds x (test + val), supervised reference x seeds x (test + val), teacher x seeds
    assert len(results) == 3 * 2 * (3 * 3 + 3) + 2 * (3 + 1) + 2
    latent = pl.read_csv(out / "latent_map.csv")
    assert set(latent["modality"]) == {"video", "imu"} and latent["label"].n_unique() == 3
    assert (out / "latent_map.png").stat().st_size > 1000
    assert summary["test"] == saved["test"]


def test_random_split_search_picks_the_candidate_with_the_best_validation_accuracy(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", "toy", synthetic_arrays(), "tiny")
    heads = ["mlp_sum", "cls_attention"]
    cfg = config(methods=("c3t",), seeds=(0,), split="random", noises=("clean",), map_method=None,
                 supervised_reference=False, teacher_reference=False,
                 settings=UmaSettings(**SETTINGS | {"epochs": 6}), search={"c3t": {"head": heads}})
    summary = run(cfg, tmp_path / "data", "toy", tmp_path / "metrics")
    info = summary["splits"]["0"]
    assert not info["by_subject"] and info["sizes"] == {"har": 80, "align": 80, "val": 20, "test": 20}
    chosen = info["selected"]["c3t"]
    assert chosen["setting"]["head"] in heads
    scores = []
    for head in heads:
        one = config(**(cfg.model_dump() | {"search": {}, "method_settings": {"c3t": {"head": head}}}))
        scores.append(run(one, tmp_path / "data", "toy", tmp_path / head)["splits"]["0"]["selected"]["c3t"])
    best = max(scores, key=lambda s: s["val_accuracy"])
    assert chosen["val_accuracy"] == best["val_accuracy"]


def test_unknown_names_fail_before_training_with_the_known_list(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="crop, dilation, misalign, shift"):
        run(config(noises=("clean", "blur")), tmp_path, "toy", tmp_path)
    with pytest.raises(ConfigError, match="map_method"):
        run(config(methods=("st",)), tmp_path, "toy", tmp_path)
    with pytest.raises(UnknownNameError, match="c3t, ca"):
        run(config(method_settings={"c3tt": {"order": "combined"}}), tmp_path, "toy", tmp_path)
    with pytest.raises(UnknownNameError, match="align_first"):
        run(config(method_settings={"c3t": {"order": "backwards"}}), tmp_path, "toy", tmp_path)
    with pytest.raises(UnknownNameError, match="mlp_concat"):
        run(config(search={"c3t": {"head": ["mlp_concat", "lstm"]}}), tmp_path, "toy", tmp_path)


def test_cli_uma_prints_imu_accuracy_and_turns_a_missing_store_into_one_error_line(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", "toy", synthetic_arrays(), "tiny")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"),
        "datasets": {"toy": {"adapter": "ego4d", "root": str(tmp_path)}},
        "uma": {"teacher_key": "tiny", "methods": ["ca"], "seeds": [0], "noises": ["clean"],
                "map_method": None, "supervised_reference": False,
                "settings": SETTINGS | {"epochs": 5}},
    }))
    runner = CliRunner()
    ok = runner.invoke(app, ["uma", "-d", "toy", "--params", str(params), "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.output
    assert "uma toy ca: IMU-only test accuracy" in ok.output
    bad = runner.invoke(app, ["uma", "-d", "toy", "--params", str(params), "--teacher-key", "nope"])
    assert bad.exit_code == 1
    assert "no store at" in bad.output and "nope.zarr" in bad.output
