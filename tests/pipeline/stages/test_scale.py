"""Past one machine: the stages on a dask cluster and with their stores on object storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
import s3fs
from ego4d_fixture import make_dataset
from typer.testing import CliRunner

from comodo.cli.store import app as store_app
from comodo.pipeline.stages import features, imu, ingest, windows

RECS = {"a": ("walk", "train"), "b": ("run", "train"), "c": ("walk", "test")}
FEATURES = {"teacher": "mobilenetv2_imagenet", "key": "mobilenet", "frames": 2, "chunk_rows": 2,
            "batch_size": 2, "num_workers": 0, "device": "cpu", "max_reject_fraction": 0.0}


def tiny_ingest(**values) -> ingest.IngestConfig:
    """Ingest settings for fixtures of a few recordings that need not hold a test split."""
    return ingest.IngestConfig(require_splits=[], **values)


def run_stages(raw: Path, data: str, scheduler: str | None = None,
               options: dict | None = None, with_features: bool = True) -> None:
    workers = 2 if scheduler else 1
    ingest.run(tiny_ingest(workers=workers, scheduler=scheduler), data, "tiny", "ego4d",
               str(raw), {}, options)
    imu.run(imu.ImuConfig(workers=workers, scheduler=scheduler, chunk_rows=2048), data, "tiny",
            "ego4d", str(raw), {}, options)
    windows.run(windows.WindowsConfig(chunk_rows=2, workers=workers, scheduler=scheduler), data,
                "tiny", options)
    if with_features:
        cfg = features.FeaturesConfig(**FEATURES, scheduler=scheduler)
        features.run(cfg, data, "tiny", storage_options=options)


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def same_outputs(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    """Every chunk and metadata file byte for byte; Parquet tables by content."""
    assert sorted(a) == sorted(b)
    for name in a:
        if name.endswith(".parquet"):
            assert pl.read_parquet(a[name]).equals(pl.read_parquet(b[name])), name
        else:
            assert a[name] == b[name], name


@pytest.mark.slow
def test_stages_on_a_two_worker_local_cluster_write_the_single_process_bytes(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    run_stages(tmp_path / "raw", str(tmp_path / "one"))
    run_stages(tmp_path / "raw", str(tmp_path / "cluster"), scheduler="local-cluster")
    one, cluster = local_files(tmp_path / "one"), local_files(tmp_path / "cluster")
    assert any(k.startswith("tiny/features/mobilenet.zarr/pooled/c/") for k in one)
    assert any(k.startswith("tiny/windows.zarr/imu/c/") for k in one)
    same_outputs(one, cluster)


SCRIPT = """
import json, sys
from comodo.pipeline.stages.features import FeaturesConfig, run
run(FeaturesConfig(**json.loads(sys.argv[1])), sys.argv[2], "tiny")
"""


def s3_files(url: str, options: dict) -> dict[str, bytes]:
    filesystem = s3fs.S3FileSystem(**options)
    filesystem.invalidate_cache()
    root = url[len("s3://"):]
    return {name[len(root) + 1:]: filesystem.cat_file(name) for name in filesystem.find(root)}


def kill_after_first_chunks(data: str, options: dict, env: dict) -> int:
    """Start features in a subprocess, SIGKILL it once 1..n-1 chunks are marked; return how many."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(FEATURES), data],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    markers = f"{data}/tiny/features/mobilenet.zarr/_complete/c"[len("s3://"):]
    filesystem = s3fs.S3FileSystem(**options)
    deadline, done = time.monotonic() + 180, 0
    while done < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        filesystem.invalidate_cache()
        done = len(filesystem.ls(markers)) if filesystem.exists(markers) else 0
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    filesystem.invalidate_cache()
    return len(filesystem.ls(markers)) if filesystem.exists(markers) else 0


@pytest.mark.slow
def test_stores_on_s3_resume_after_sigkill_and_verify(s3_server, tmp_path, monkeypatch):
    make_dataset(tmp_path / "raw", RECS, video_s=30.0)
    run_stages(tmp_path / "raw", str(tmp_path / "local"))
    data, options = s3_server.fresh_prefix(), s3_server.storage_options
    run_stages(tmp_path / "raw", data, options=options, with_features=False)
    env = {**os.environ, "COMODO_PROGRESS": "0", "AWS_ENDPOINT_URL": s3_server.endpoint_url}
    done = kill_after_first_chunks(data, options, env)
    n_windows = len(pl.read_parquet(tmp_path / "local" / "tiny" / "windows.parquet"))
    assert 0 < done < -(-n_windows // 2), f"the kill landed after {done} chunks; cannot test a resume"
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)  # endpoint from the environment
    summary = features.run(features.FeaturesConfig(**FEATURES), data, "tiny")
    assert summary.ingested == n_windows - 2 * done
    same_outputs(local_files(tmp_path / "local" / "tiny"), s3_files(f"{data}/tiny", options))
    url = f"{data}/tiny/features/mobilenet.zarr"
    result = CliRunner().invoke(store_app, ["verify", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["ok"]


def test_a_stage_reads_and_writes_its_tables_and_stores_on_s3(s3_server, tmp_path):
    make_dataset(tmp_path / "raw", {"a": ("walk", "train")})
    data, options = s3_server.fresh_prefix(), s3_server.storage_options
    run_stages(tmp_path / "raw", data, options=options, with_features=False)
    names = set(s3_files(f"{data}/tiny", options))
    assert {"recordings.parquet", "imu.parquet", "windows.parquet", "rejects/windows.parquet",
            "windows.zarr/zarr.json", "windows.zarr/imu/c/0/0/0"} <= names
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()


@pytest.mark.parametrize("scheduler", [None, pytest.param("local-cluster", marks=pytest.mark.slow)])
def test_imu_workers_write_the_local_bytes_to_s3(s3_server, tmp_path, scheduler):
    """Two pool workers stream rows back; on a dask cluster they stage them on s3 instead."""
    make_dataset(tmp_path / "raw", RECS)
    small = {"chunk_rows": 700}  # chunks straddle recordings
    local = tmp_path / "local"
    ingest.run(tiny_ingest(), local, "tiny", "ego4d", str(tmp_path / "raw"), {})
    imu.run(imu.ImuConfig(workers=1, **small), local, "tiny", "ego4d", str(tmp_path / "raw"), {})
    data, options = s3_server.fresh_prefix(), s3_server.storage_options
    ingest.run(tiny_ingest(), data, "tiny", "ego4d", str(tmp_path / "raw"), {}, options)
    imu.run(imu.ImuConfig(workers=2, scheduler=scheduler, **small), data, "tiny", "ego4d",
            str(tmp_path / "raw"), {}, options)
    remote = s3_files(data, options)
    assert not any(name.startswith("tiny/imu.staging") for name in remote)
    ours = {k: v for k, v in local_files(local).items() if k.startswith("tiny/imu.zarr/")}
    assert len(ours) > 3
    assert {k: remote[k] for k in ours} == ours
