"""dvc.yaml as DVC reads it: which stage an edit of params.yaml makes stale, and which
outputs a failed or killed `dvc repro` keeps for the stage to resume from."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
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


def stand_in(path: Path) -> None:
    """A file for a file path, a folder holding one file for a folder path."""
    if path.exists():
        return
    if path.suffix in FILE_SUFFIXES:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stand-in input\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "part").write_text("stand-in input\n")


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
            stand_in(root / p)
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
    """distill, and benchmark, sweep and fewshot, which train (or reuse) students with it."""
    def edit(v):
        v["datasets"]["synthetic"]["overrides"]["distill"] = {"queue_size": 16}

    stale = stale_after(committed, edit)
    sweeps = {s for s in stage_paths(committed) if s.startswith("sweep@")}
    assert stale == {"distill@synthetic", "benchmark@synthetic", "fewshot@synthetic"} | sweeps


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
    # the stand-in inputs make both commands fail, after DVC prepared their outputs
    features = dvc(committed, "repro", "--force", "--single-item", "features@synthetic", check=False)
    windows = dvc(committed, "repro", "--force", "--single-item", "windows@synthetic", check=False)
    assert features.returncode != 0 and windows.returncode != 0
    assert (store / "chunk-written-before-the-kill").exists()
    assert not windows_store.exists() or not (windows_store / "chunk-written-before-the-kill").exists()


def _tiny_project(root: Path) -> Path:
    """A copy of the project's dvc.yaml, params.yaml and pipeline/ (the code deps DVC hashes)
    with a synthetic dataset of 6 short recordings and a features stage of one window a chunk."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    values = yaml.safe_load((root / "params.yaml").read_text())
    values["synth"].update(n_classes=2, recordings_per_class=3, duration_s=12.0, size=64)
    values["imu"]["workers"] = 1
    values["features"].update(chunk_rows=1, batch_size=1, num_workers=0, device="cpu")
    (root / "params.yaml").write_text(yaml.safe_dump(values))
    dvc(root, "init", "--no-scm", "-q")
    return root


def _complete(store: Path) -> list[str]:
    folder = store / "_complete" / "c"
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def _files(store: Path) -> list[Path]:
    return [p for p in sorted(store.rglob("*")) if p.is_file()]


def _chunk_times(store: Path, chunks: list[str]) -> dict[str, int]:
    """mtime of every file of these chunks (``<array>/c/<chunk>[/...]``) in the store's arrays."""
    rel = {p: p.relative_to(store).parts for p in _files(store)}
    return {"/".join(parts): p.stat().st_mtime_ns for p, parts in rel.items()
            if parts[0] in ("pooled", "frames", "valid") and parts[1:2] == ("c",) and parts[2] in chunks}


@pytest.mark.slow  # the synthetic pipeline up to features three times (~1 min)
def test_dvc_repro_killed_during_features_resumes_from_its_complete_chunks(tmp_path):
    root = _tiny_project(tmp_path)
    store = root / "data/synthetic/features/mobilenetv2_imagenet.zarr"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "COMODO_PROGRESS": "0"}
    proc = subprocess.Popen([*DVC, "repro", "features@synthetic"], cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(_complete(store)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc, its shell and `comodo features`
    proc.wait()
    done = _complete(store)
    n_windows = len(pl.read_parquet(root / "data/synthetic/windows.parquet"))
    assert 0 < len(done) < n_windows, f"the kill landed after {len(done)} of {n_windows} chunks"
    before = _chunk_times(store, done)
    resumed = dvc(root, "repro", "features@synthetic")
    assert f"{n_windows - len(done)} of {n_windows} windows to extract" in resumed.stderr
    assert _chunk_times(store, done) == before  # the chunks done before the kill were not rewritten
    files = {str(p.relative_to(store)): p.read_bytes() for p in _files(store)}
    shutil.rmtree(store)
    fresh = dvc(root, "repro", "features@synthetic")  # the output is missing: one uninterrupted run
    assert f"{n_windows} of {n_windows} windows to extract" in fresh.stderr
    assert {str(p.relative_to(store)): p.read_bytes() for p in _files(store)} == files
