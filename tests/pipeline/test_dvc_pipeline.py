"""dvc.yaml as DVC reads it: which stage an edit of params.yaml makes stale, and which
outputs a failed or killed `dvc repro` keeps for the stage to resume from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DVC = [sys.executable, "-m", "dvc"]
FILE_SUFFIXES = (".parquet", ".py", ".c", ".json", ".csv", ".png", ".safetensors", ".pt")


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "COMODO_PROGRESS": "0"}
    return subprocess.run([*DVC, *args], cwd=root, env=env, capture_output=True, text=True,
                          check=check, timeout=300)


def placeholder(path: Path) -> None:
    """A file for a file path, a folder holding one file for a folder path."""
    if path.exists():
        return
    if path.suffix in FILE_SUFFIXES:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "part").write_text("placeholder\n")


def stage_paths(root: Path) -> dict[str, dict[str, list[str]]]:
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {s.name: {"deps": [d.def_path for d in s.deps
                                        if not isinstance(d, ParamsDependency)],
                               "outs": [o.def_path for o in s.outs],
                               "persist": [o.def_path for o in s.outs if o.persist]}
                for s in repo.index.stages}


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    """A copy of dvc.yaml and params.yaml with every dependency and output in place and
    recorded in dvc.lock, as after a full `dvc repro`."""
    root = tmp_path_factory.mktemp("dvcrepo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    dvc(root, "init", "--no-scm", "-q")
    for paths in stage_paths(root).values():
        for p in paths["deps"] + paths["outs"]:
            placeholder(root / p)
    dvc(root, "commit", "--force", "-q")
    return root


def stale_after(root: Path, edit) -> set[str]:
    params = root / "params.yaml"
    before = params.read_text()
    values = yaml.safe_load(before)
    edit(values)
    params.write_text(yaml.safe_dump(values))
    try:
        status = json.loads(dvc(root, "status", "--json").stdout or "{}")
    finally:
        params.write_text(before)
    return set(status)


@pytest.mark.slow  # one `dvc commit` of every stage, then one `dvc status` each
def test_nothing_is_stale_right_after_the_commit(committed):
    assert stale_after(committed, lambda v: None) == set()


@pytest.mark.slow
def test_a_distill_override_makes_only_the_stages_that_train_students_stale(committed):
    def edit(v):
        v["datasets"]["synthetic"]["overrides"]["distill"] = {"queue_size": 16}

    stale = stale_after(committed, edit)
    sweeps = {s for s in stage_paths(committed) if s.startswith("sweep@")}
    assert stale == {"distill@synthetic", "benchmark@synthetic"} | sweeps


@pytest.mark.slow
def test_a_windows_override_makes_only_the_windows_stage_stale(committed):
    def edit(v):
        v["datasets"]["synthetic"]["overrides"]["windows"] = {"window_s": 2.5}

    assert stale_after(committed, edit) == {"windows@synthetic"}


@pytest.mark.slow
def test_a_dataset_option_makes_ingest_and_imu_stale(committed):
    def edit(v):
        v["datasets"]["synthetic"]["options"] = {"split": "random"}

    assert stale_after(committed, edit) == {"ingest@synthetic", "imu@synthetic"}


def test_features_and_distill_outputs_are_declared_persistent():
    paths = stage_paths(REPO)
    assert "data/synthetic/features/mobilenetv2_imagenet.zarr" in paths["features@synthetic"]["persist"]
    assert "runs/synthetic/comodo/checkpoint.pt" in paths["distill@synthetic"]["persist"]
    assert paths["windows@synthetic"]["persist"] == []


@pytest.mark.slow
def test_a_failed_repro_keeps_the_partial_feature_store_and_drops_other_outputs(committed):
    store = committed / "data/synthetic/features/mobilenetv2_imagenet.zarr"
    windows_store = committed / "data/synthetic/windows.zarr"
    (store / "chunk-written-before-the-kill").write_text("x")
    (windows_store / "chunk-written-before-the-kill").write_text("x")
    # the placeholder inputs make both commands fail, after DVC prepared their outputs
    features = dvc(committed, "repro", "--force", "--single-item", "features@synthetic", check=False)
    windows = dvc(committed, "repro", "--force", "--single-item", "windows@synthetic", check=False)
    assert features.returncode != 0 and windows.returncode != 0
    assert (store / "chunk-written-before-the-kill").exists()
    assert not windows_store.exists() or not (windows_store / "chunk-written-before-the-kill").exists()
