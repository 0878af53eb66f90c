"""The features stage end to end on tiny windows and videos built here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from comodo.cli.main import app
from comodo.pipeline.stages.features import FeaturesConfig, run
from comodo.pipeline.teachers import build_teacher
from comodo.pipeline.teachers.tiny import save_tiny_timesformer
from comodo.pipeline.video.decode import WindowRequest, decode_windows
from comodo.pipeline.video.encode import textured_frames, write_mp4
from comodo.pipeline.video.preprocess import normalise, resize_crop
from comodo.pipeline.video.sampling import SAMPLING_RULES
from comodo.pipeline.windowing import WINDOWS_SCHEMA
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, ProvenanceMismatchError, RejectLimitError

UTD_DEPTH = Path(__file__).resolve().parents[4] / "shared/data/UTD-MHAD/Depth/a1_s1_t1_depth.mat"


def window(row: int, path: Path, start: float, end: float, kind: str = "mp4") -> dict:
    return {"window_id": row, "recording_id": path.stem, "label": "walk", "label_id": 0,
            "subject": "s1", "split": "train", "video_path": str(path), "video_kind": kind,
            "video_start_s": start, "video_end_s": end, "imu_start_s": start, "imu_end_s": end,
            "n_valid": 200}


def write_windows(data: Path, rows: list[dict], dataset: str = "ds") -> Path:
    (data / dataset).mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=WINDOWS_SCHEMA).write_parquet(data / dataset / "windows.parquet")
    return data


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """3 videos x 4 one-second windows, one zero-byte video (2 windows), one window past the end."""
    root = tmp_path_factory.mktemp("features")
    videos = [write_mp4(root / "raw" / f"v{i}.mp4", textured_frames(42, 64, 96, seed=i), fps=10.0)
              for i in range(3)]
    broken = root / "raw" / "broken.mp4"
    broken.write_bytes(b"")
    rows = [window(0, broken, 0.0, 1.0)]
    for v in videos:
        rows += [window(len(rows) + k, v, float(k), k + 1.0) for k in range(4)]
    rows += [window(13, broken, 1.0, 2.0), window(14, videos[1], 3.5, 4.5)]
    return {"root": root, "rows": rows, "model": save_tiny_timesformer(root / "tiny"),
            "videos": videos}


def config(inputs: dict, **overrides) -> FeaturesConfig:
    values = {"teacher": "timesformer", "model": str(inputs["model"]), "chunk_rows": 4,
              "batch_size": 3, "num_workers": 0, "device": "cpu", "max_reject_fraction": 0.3}
    return FeaturesConfig(**(values | overrides))


def store_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(inputs) -> dict[str, bytes]:
    data = write_windows(inputs["root"] / "reference", inputs["rows"])
    run(config(inputs), data, "ds")
    return store_files(data / "ds" / "features" / "timesformer.zarr")


def test_stage_writes_pooled_frames_valid_rejects_and_provenance(inputs, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    summary = run(config(inputs, num_workers=2), data, "ds")
    assert (summary.ingested, summary.kept, summary.rejected) == (15, 12, 3)
    url = str(data / "ds" / "features" / "timesformer.zarr")
    store = ChunkedStore.open(url, expect={"stage": "features"})
    store.require_complete()
    pooled, frames, valid = (np.asarray(store.array(n)[:]) for n in ("pooled", "frames", "valid"))
    assert pooled.shape == (15, 32) and frames.shape == (15, 4, 32) and pooled.dtype == np.float16
    assert valid.tolist() == [0] + [1] * 12 + [0, 0]
    assert not pooled[valid == 0].any() and not frames[valid == 0].any() and np.isfinite(pooled).all()
    assert (np.abs(pooled[valid == 1]).sum(1) > 0).all()
    details = store.provenance.details
    assert details["model_id"] == str(inputs["model"]) and details["pooling"] == "mean"
    assert details["mean"] == [0.45] * 3 and details["image_size"] == 32 and details["dtype"] == "float16"
    assert {"weights_hash", "transformers_version", "frame_sampling"} <= set(details)
    assert details["compute"] == "cpu/float32"  # fp32 on CPU unless precision asks otherwise
    assert store.index == "../../windows.parquet"
    rejects = pl.read_parquet(data / "ds" / "rejects" / "features.parquet")
    assert rejects["item"].to_list() == ["0", "13", "14"] and set(rejects["kind"]) == {"window"}
    assert "broken.mp4" in rejects["reason"][0] and "past the last" in rejects["reason"][2]


@pytest.mark.parametrize("precision", ["auto", "bfloat16"])
def test_stored_embedding_equals_the_teacher_on_the_same_frames(inputs, reference, tmp_path, precision):
    teacher = build_teacher("timesformer", model=str(inputs["model"]))
    path, start, end = inputs["videos"][1], 2.0, 3.0  # row 7
    # frames 20, 23, 26, 29: uniform_indices(10, 4) of the 10 frames in [2, 3) s
    targets = SAMPLING_RULES["uniform"].targets(start, end, 4, np.arange(42) / 10.0, 0.1)
    (got,) = decode_windows(str(path), "mp4", [WindowRequest(7, start, end, targets)])
    clip = normalise(resize_crop(got.frames, 36, 32), teacher.mean, teacher.std)[None]
    bf16 = precision == "bfloat16"  # "auto" is fp32 on CPU
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pooled, per_frame = teacher(clip)
    data = write_windows(tmp_path / "data", inputs["rows"])
    run(config(inputs, precision=precision), data, "ds")
    store = ChunkedStore.open(str(data / "ds" / "features" / "timesformer.zarr"))
    tol = 4e-2 if bf16 else 2e-3  # bf16 keeps 8 mantissa bits; batches of 3 vs 1 round differently
    want_pooled, want_frames = pooled[0].float().numpy(), per_frame[0].float().numpy()
    np.testing.assert_allclose(store.read_rows("pooled", [7])[0], want_pooled, rtol=tol, atol=tol)
    np.testing.assert_allclose(store.read_rows("frames", [7])[0], want_frames, rtol=tol, atol=tol)
    near = np.abs(store.read_rows("pooled", [7])[0] - want_pooled).max()
    other = np.abs(store.read_rows("pooled", [8])[0] - want_pooled).max()
    assert near < 0.2 * other  # the next window's embedding is far off: a shifted frame would fail
    if precision == "auto":
        assert store_files(data / "ds" / "features" / "timesformer.zarr") == reference


def test_changing_the_frame_sampling_rule_starts_the_store_over(inputs, reference, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    url = str(data / "ds" / "features" / "timesformer.zarr")
    run(config(inputs, frame_sampling="centre"), data, "ds")
    centre = ChunkedStore.open(url)
    assert "centres of F equal sub-intervals" in centre.provenance.details["frame_sampling"]
    centre_pooled = np.asarray(centre.array("pooled")[:])
    with pytest.raises(ProvenanceMismatchError, match="frame_sampling"):
        ChunkedStore.open(url, expect={"frame_sampling": SAMPLING_RULES["uniform"].description})
    again = run(config(inputs), data, "ds")  # default: uniform; the centre store is not resumed
    assert again.ingested == 15
    assert store_files(data / "ds" / "features" / "timesformer.zarr") == reference
    assert not np.array_equal(np.asarray(ChunkedStore.open(url).array("pooled")[:]), centre_pooled)
    with pytest.raises(ConfigError, match="sampling 'middle' is unknown; choose one of uniform, centre"):
        run(config(inputs, frame_sampling="middle"), data, "ds")


def test_too_many_rejects_fail_the_stage_as_soon_as_the_limit_is_passed(inputs, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    # 10% of 15 windows allows 1 reject; rows 0 and 13 (the broken file) come first
    with pytest.raises(RejectLimitError, match=r"rejected 2 of 15 .* max_reject_fraction=0.1"):
        run(config(inputs, max_reject_fraction=0.1), data, "ds")
    assert pl.read_parquet(data / "ds" / "rejects" / "features.parquet")["item"].to_list() == ["0", "13"]


def test_a_second_run_skips_complete_chunks(inputs, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    run(config(inputs), data, "ds")
    again = run(config(inputs), data, "ds")
    assert again.ingested == 0
    assert len(pl.read_parquet(data / "ds" / "rejects" / "features.parquet")) == 3


SCRIPT = """
import json, sys
from comodo.pipeline.stages.features import FeaturesConfig, run
cfg = FeaturesConfig(**json.loads(sys.argv[1]))
run(cfg, sys.argv[2], "ds", shard=(int(sys.argv[3]), int(sys.argv[4])))
"""


def launch(cfg: FeaturesConfig, data: Path, shard: tuple[int, int] = (0, 1)) -> subprocess.Popen:
    env = {**os.environ, "COMODO_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(cfg.model_dump()),
                             str(data), str(shard[0]), str(shard[1])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def markers(store: Path) -> int:
    """Chunks marked complete: marker files, not the temporary files a write renames."""
    folder = store / "_complete" / "c"
    return sum(p.name.isdigit() for p in folder.iterdir()) if folder.is_dir() else 0


def test_a_partial_run_then_a_full_run_gives_the_same_bytes(inputs, reference, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    first = run(config(inputs), data, "ds", shard=(0, 2))
    rest = run(config(inputs), data, "ds")
    assert (first.ingested, rest.ingested) == (8, 7)
    assert store_files(data / "ds" / "features" / "timesformer.zarr") == reference


@pytest.mark.slow
def test_sigkill_halfway_then_resume_gives_the_same_bytes(inputs, tmp_path):
    rows = [window(r, inputs["videos"][r % 3], (r // 3) * 0.1, (r // 3) * 0.1 + 1.0) for r in range(16)]
    slow = {"teacher": "mobilenetv2_imagenet", "model": None, "frames": 2, "chunk_rows": 2,
            "batch_size": 2, "num_workers": 0, "key": "mobilenet"}
    reference = write_windows(tmp_path / "reference", rows)
    run(config(inputs, **slow), reference, "ds")
    data = write_windows(tmp_path / "data", rows)
    store = data / "ds" / "features" / "mobilenet.zarr"
    proc = launch(config(inputs, **slow), data)
    deadline = time.monotonic() + 120
    while markers(store) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = markers(store)
    assert 0 < done < 8, f"the kill landed after {done} of 8 chunks; cannot test a resume"
    summary = run(config(inputs, **slow), data, "ds")
    assert summary.ingested == 16 - 2 * done
    assert store_files(store) == store_files(reference / "ds" / "features" / "mobilenet.zarr")


@pytest.mark.slow
def test_two_shards_in_two_processes_fill_one_store(inputs, reference, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    procs = [launch(config(inputs), data, (i, 2)) for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
    assert store_files(data / "ds" / "features" / "timesformer.zarr") == reference
    merged = pl.read_parquet(data / "ds" / "rejects" / "features.parquet")
    assert merged["item"].to_list() == ["0", "13", "14"]


@pytest.mark.skipif(not UTD_DEPTH.is_file(), reason="shared UTD-MHAD depth not available")
def test_depth_windows_of_a_real_utd_mhad_recording(inputs, tmp_path):
    rows = [window(0, UTD_DEPTH, 0.0, 0.8, "depth_mat"), window(1, UTD_DEPTH, 0.8, 1.6, "depth_mat")]
    data = write_windows(tmp_path / "data", rows)
    summary = run(config(inputs, chunk_rows=2), data, "ds")
    assert summary.kept == 2
    store = ChunkedStore.open(str(data / "ds" / "features" / "timesformer.zarr"))
    pooled = np.asarray(store.array("pooled")[:])
    assert np.asarray(store.array("valid")[:]).tolist() == [1, 1] and not np.array_equal(pooled[0], pooled[1])


def test_cli_runs_the_stage_and_reports_bad_shards(inputs, tmp_path, monkeypatch):
    data = write_windows(tmp_path / "data", inputs["rows"])
    params = tmp_path / "params.yaml"
    section = config(inputs).model_dump(exclude={"device"})
    datasets = {"ds": {"adapter": "ego4d", "root": "x"}}
    params.write_text(yaml.safe_dump({"data_dir": str(data), "datasets": datasets, "features": section}))
    monkeypatch.setenv("COMODO_PROGRESS", "0")
    cli = CliRunner()
    result = cli.invoke(app, ["features", "--dataset", "ds", "--params", str(params), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "features ds: 15 windows in = 12 kept + 3 rejected" in result.output
    bad = cli.invoke(app, ["features", "--dataset", "ds", "--params", str(params), "--shard", "2/2"])
    assert bad.exit_code == 1 and "need 0 <= i < n" in bad.output


@pytest.mark.slow
def test_decoding_on_a_local_dask_cluster_gives_the_same_store(inputs, reference, tmp_path):
    data = write_windows(tmp_path / "data", inputs["rows"])
    run(config(inputs, scheduler="local-cluster", num_workers=2), data, "ds")
    assert store_files(data / "ds" / "features" / "timesformer.zarr") == reference


def _windows_of(video) -> pl.DataFrame:
    return pl.DataFrame({"window_id": [0], "recording_id": ["r"], "video_path": [str(video)],
                         "video_kind": ["rgb"], "video_start_s": [0.0], "video_end_s": [1.0]})


def test_a_video_rewritten_with_the_same_size_and_mtime_changes_the_input_hash(tmp_path):
    from comodo.pipeline.stages.features import input_hash

    video = tmp_path / "v.mp4"
    body = np.random.default_rng(0).bytes(3 << 20)
    video.write_bytes(body)
    stat = video.stat()
    before = input_hash(_windows_of(video))
    video.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # a different last byte, same size
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert video.stat().st_size == stat.st_size and video.stat().st_mtime_ns == stat.st_mtime_ns
    assert input_hash(_windows_of(video)) != before
    video.write_bytes(body)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert input_hash(_windows_of(video)) == before  # same bytes, same time: same identity
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert input_hash(_windows_of(video)) != before  # touched: mtime is part of the identity


@pytest.mark.slow
def test_sigkill_of_comodo_features_leaves_no_decode_worker_behind(inputs, tmp_path):
    """Killed once its two decode workers are idle (every task handed out and decoded, the
    teacher still embedding): torch's own watchdog would let them wait up to 5 s more."""
    import psutil

    rows = [window(r, inputs["videos"][r // 16], (r % 16) * 0.1, (r % 16) * 0.1 + 1.0)
            for r in range(48)]
    data = write_windows(tmp_path / "data", rows)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "data_dir": str(data), "datasets": {"ds": {"adapter": "ego4d", "root": str(tmp_path)}},
        "features": {"teacher": "mobilenetv2_imagenet", "key": "m", "frames": 2, "chunk_rows": 2,
                     "batch_size": 1, "num_workers": 2, "max_windows_per_task": 8, "device": "cpu"}}))
    proc = subprocess.Popen([str(Path(sys.executable).with_name("comodo")), "features", "-d", "ds",
                             "--params", str(params)], env={**os.environ, "COMODO_PROGRESS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = psutil.Process(proc.pid).children(recursive=True)
    deadline = time.monotonic() + 120
    while markers(data / "ds" / "features" / "m.zarr") < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, "the stage ended before it could be killed"
        children = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.02)
    assert len(children) >= 2, "the decode workers did not start"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    alive = [c for c in children if psutil.pid_exists(c.pid) and c.status() != psutil.STATUS_ZOMBIE]
    for child in alive:
        child.kill()
    assert alive == [], f"{len(alive)} decode worker(s) outlived the killed stage by 0.5 s"
