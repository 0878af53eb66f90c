"""ingest -> imu -> windows on tiny datasets in the Ego4D layout."""

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from ego4d_fixture import make_dataset

from comodo.pipeline.stages import imu, ingest, windows
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import InputDataError, RejectLimitError, StoreLockedError
from comodo.stores.lock import write_lock

RECS = {"a": ("walk", "train"), "b": ("run", "train"), "c": ("walk", "test")}


def tiny_ingest(**values) -> ingest.IngestConfig:
    """Ingest settings for fixtures of a few recordings that need not hold a test split."""
    return ingest.IngestConfig(require_splits=[], **values)


def _run_all(root: Path, data: Path, imu_cfg=None, win_cfg=None, ingest_cfg=None):
    s1 = ingest.run(ingest_cfg or tiny_ingest(), data, "tiny", "ego4d", str(root), {})
    s2 = imu.run(imu_cfg or imu.ImuConfig(workers=1), data, "tiny", "ego4d", str(root), {})
    s3 = windows.run(win_cfg or windows.WindowsConfig(), data, "tiny")
    return s1, s2, s3


def test_windows_are_cut_by_time_where_video_and_imu_overlap(tmp_path):
    make_dataset(tmp_path / "raw", RECS, video_s=12.0, imu_start_s=1.3)
    _run_all(tmp_path / "raw", tmp_path / "data")
    index = pl.read_parquet(tmp_path / "data/tiny/windows.parquet")
    assert index["window_id"].to_list() == list(range(6))
    assert index["imu_start_s"].to_list() == pytest.approx([1.3, 6.3] * 3)
    assert index["video_start_s"].to_list() == pytest.approx([1.3, 6.3] * 3)
    assert set(index["label"]) == {"walk", "run"}
    store = ChunkedStore.open(str(tmp_path / "data/tiny/windows.zarr"), expect={"stage": "windows"})
    assert store.array("imu").shape == (6, 6, 1000)
    assert store.chunk_rows == 6  # fewer windows than a chunk: one chunk of their size, no padding
    # channel 0 is sin(pi t) in m/s^2 -> g; the window starting at 6.3 s holds that stretch
    w = store.read_rows("imu", [1])[0, 0]
    t = 6.3 + np.arange(1000) / 200.0
    np.testing.assert_allclose(w[50:-50], np.sin(np.pi * t[50:-50]) / 9.80665, atol=2e-3)


def test_recording_without_imu_is_a_counted_reject(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    (tmp_path / "raw/imu/b.csv").unlink()
    s1, s2, s3 = _run_all(tmp_path / "raw", tmp_path / "data",
                          ingest_cfg=tiny_ingest(max_reject_fraction=0.5))
    assert (s1.ingested, s1.kept, s1.rejected) == (3, 2, 1)
    rejects = pl.read_parquet(tmp_path / "data/tiny/rejects/ingest.parquet")
    assert rejects["item"].to_list() == ["b"]
    assert "no IMU file" in rejects["reason"][0]
    assert "2 kept + 1 rejected" in s1.line()


def test_ingest_spread_over_two_workers_writes_the_single_process_tables(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    (tmp_path / "raw/imu/b.csv").unlink()  # a reject
    (tmp_path / "raw/videos/c.mp4").write_bytes(b"not a video")  # a reject found by probing
    tables = {}
    for workers in (1, 2):
        data = tmp_path / f"data{workers}"
        summary = ingest.run(tiny_ingest(workers=workers, max_reject_fraction=0.9), data, "tiny",
                             "ego4d", str(tmp_path / "raw"), {})
        assert (summary.kept, summary.rejected) == (1, 2)
        tables[workers] = [pl.read_parquet(data / "tiny" / name)
                           for name in ("recordings.parquet", "rejects/ingest.parquet")]
    assert all(a.equals(b) for a, b in zip(tables[1], tables[2]))
    assert tables[2][1]["item"].to_list() == ["b", "c"]


def test_too_many_rejects_fail_the_stage_and_name_the_table(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    (tmp_path / "raw/imu/b.csv").write_text("")
    (tmp_path / "raw/imu/c.csv").write_text("canonical_timestamp_ms,accl_x\n")
    with pytest.raises(RejectLimitError, match="rejects/ingest.parquet"):
        ingest.run(tiny_ingest(max_reject_fraction=0.5), tmp_path / "data", "tiny", "ego4d",
                   str(tmp_path / "raw"), {})


@pytest.mark.parametrize("workers", [1, 2])
def test_imu_stage_over_its_reject_limit_leaves_no_half_written_store(tmp_path, workers):
    make_dataset(tmp_path / "raw", RECS)
    ingest.run(tiny_ingest(), tmp_path / "data", "tiny", "ego4d", str(tmp_path / "raw"), {})
    (tmp_path / "raw/imu/c.csv").write_text("canonical_timestamp_ms,accl_x\n0,1\n")  # after ingest
    with pytest.raises(RejectLimitError, match="rejects/imu.parquet"):
        imu.run(imu.ImuConfig(workers=workers, max_reject_fraction=0.2), tmp_path / "data", "tiny",
                "ego4d", str(tmp_path / "raw"), {})
    assert not (tmp_path / "data/tiny/imu.zarr").exists()
    rejects = pl.read_parquet(tmp_path / "data/tiny/rejects/imu.parquet")
    assert rejects["item"].to_list() == ["c"] and "lacks columns" in rejects["reason"][0]


def test_imu_shorter_than_one_window_is_rejected_by_windows(tmp_path):
    make_dataset(tmp_path / "raw", {"a": ("walk", "train")}, video_s=12.0)
    make_dataset(tmp_path / "raw2", {"short": ("run", "train")}, video_s=4.0)
    for sub in ("videos", "imu"):
        for f in (tmp_path / "raw2" / sub).iterdir():
            f.rename(tmp_path / "raw" / sub / f.name)
    (tmp_path / "raw/train.txt").write_text("a\twalk\nshort\trun\n")
    _, _, s3 = _run_all(tmp_path / "raw", tmp_path / "data",
                        win_cfg=windows.WindowsConfig(max_reject_fraction=0.5))
    assert (s3.kept, s3.rejected) == (1, 1)
    rejects = pl.read_parquet(tmp_path / "data/tiny/rejects/windows.parquet")
    assert rejects["item"].to_list() == ["short"] and "no full 5.0s window" in rejects["reason"][0]


def test_small_classes_are_dropped_and_counted(tmp_path):
    recs = {f"w{i}": ("walk", "train") for i in range(3)} | {"r0": ("run", "train")}
    make_dataset(tmp_path / "raw", recs)
    _run_all(tmp_path / "raw", tmp_path / "data",
             win_cfg=windows.WindowsConfig(min_windows_per_class=3))
    index = pl.read_parquet(tmp_path / "data/tiny/windows.parquet")
    assert set(index["label"]) == {"walk"} and index["label_id"].unique().to_list() == [0]
    rejects = pl.read_parquet(tmp_path / "data/tiny/rejects/windows.parquet")
    assert rejects.select("item", "kind").rows() == [("run", "class")]


def test_whole_mode_keeps_one_padded_window_per_recording(tmp_path):
    make_dataset(tmp_path / "raw", RECS, video_s=3.0)
    _run_all(tmp_path / "raw", tmp_path / "data", win_cfg=windows.WindowsConfig(
        mode="whole", whole_length=800, time_base="pad"))
    index = pl.read_parquet(tmp_path / "data/tiny/windows.parquet")
    assert len(index) == 3
    assert index["n_valid"].to_list() == [599, 599, 599]
    store = ChunkedStore.open(str(tmp_path / "data/tiny/windows.zarr"))
    block = store.read_rows("imu", [0])[0]
    assert block.shape == (6, 800) and not block[:, 599:].any() and block[:, :599].any()


def test_parallel_imu_stage_matches_the_single_process_run(tmp_path):
    make_dataset(tmp_path / "raw", RECS, video_s=12.0)
    csv = tmp_path / "raw/imu/b.csv"  # a 1 s hole: recording b becomes two segments
    frame = pl.read_csv(csv)
    frame.filter((pl.col("canonical_timestamp_ms") < 3000) | (pl.col("canonical_timestamp_ms") > 4000)
                 ).write_csv(csv)
    small = {"chunk_rows": 1500}  # chunks that straddle recordings and segments
    _run_all(tmp_path / "raw", tmp_path / "one", imu_cfg=imu.ImuConfig(workers=1, **small))
    _run_all(tmp_path / "raw", tmp_path / "two", imu_cfg=imu.ImuConfig(workers=2, **small))
    segments = pl.read_parquet(tmp_path / "two/tiny/imu.parquet")
    assert segments.filter(pl.col("recording_id") == "b").height == 2
    assert segments.equals(pl.read_parquet(tmp_path / "one/tiny/imu.parquet"))
    for name in ("imu.zarr", "windows.zarr"):
        a = ChunkedStore.open(str(tmp_path / "one/tiny" / name)).array("imu")[:]
        b = ChunkedStore.open(str(tmp_path / "two/tiny" / name)).array("imu")[:]
        np.testing.assert_array_equal(a, b)


def _expected_windows(data: Path, n_per: int) -> np.ndarray:
    """Each window's samples taken from imu.zarr one by one: the segment holding its start,
    transposed to (C, T), zero-padded past n_valid."""
    index = pl.read_parquet(data / "windows.parquet")
    segments = pl.read_parquet(data / "imu.parquet")
    rows = ChunkedStore.open(str(data / "imu.zarr")).array("imu")[:]
    out = np.zeros((len(index), rows.shape[1], n_per), np.float32)
    for k, w in enumerate(index.iter_rows(named=True)):
        segs = segments.filter((pl.col("recording_id") == w["recording_id"])
                               & (pl.col("t0_s") <= w["imu_start_s"] + 1e-9)).sort("t0_s")
        seg = segs.row(-1, named=True)
        start = seg["row_start"] + round((w["imu_start_s"] - seg["t0_s"]) * seg["rate_hz"])
        out[k, :, : w["n_valid"]] = rows[start : start + w["n_valid"]].T
    return out


@pytest.mark.parametrize("mode", ["tile", "whole"])
def test_every_window_holds_its_own_samples(tmp_path, mode):
    make_dataset(tmp_path / "raw", RECS | {"d": ("run", "val")}, video_s=16.0, imu_start_s=0.7)
    csv = tmp_path / "raw/imu/b.csv"  # a 1 s hole: recording b has two segments
    frame = pl.read_csv(csv)
    frame.filter((pl.col("canonical_timestamp_ms") < 6000) | (pl.col("canonical_timestamp_ms") > 7000)
                 ).write_csv(csv)
    cfg = windows.WindowsConfig(mode=mode, chunk_rows=3, workers=2, whole_length=2500,
                                time_base="pad")
    _run_all(tmp_path / "raw", tmp_path / "data", imu_cfg=imu.ImuConfig(workers=1, chunk_rows=1500),
             win_cfg=cfg)
    got = ChunkedStore.open(str(tmp_path / "data/tiny/windows.zarr")).array("imu")[:]
    assert len(got) == 4 if mode == "whole" else len(got) > 2 * cfg.chunk_rows  # chunks of 3
    np.testing.assert_array_equal(got, _expected_windows(tmp_path / "data/tiny", got.shape[2]))


def test_windows_channels_keep_the_listed_imu_channels_in_order(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    _run_all(tmp_path / "raw", tmp_path / "data")
    every = ChunkedStore.open(str(tmp_path / "data/tiny/windows.zarr")).array("imu")[:]
    windows.run(windows.WindowsConfig(channels=["accl_z", "accl_x"]), tmp_path / "data", "tiny")
    store = ChunkedStore.open(str(tmp_path / "data/tiny/windows.zarr"))
    assert store.attrs["channels"] == ["accl_z", "accl_x"] and store.attrs["units"] == ["g", "g"]
    np.testing.assert_array_equal(store.array("imu")[:], every[:, [2, 0]])
    with pytest.raises(InputDataError, match=r"\['acc_x'\] not in .*imu.zarr's channels"):
        windows.run(windows.WindowsConfig(channels=["acc_x"]), tmp_path / "data", "tiny")


def test_writing_stages_stop_at_once_on_a_store_another_writer_holds(tmp_path):
    make_dataset(tmp_path / "raw", RECS)
    data = tmp_path / "data"
    _run_all(tmp_path / "raw", data)
    store = str(data / "tiny" / "windows.zarr")
    before = ChunkedStore.open(store).group.attrs.asdict()
    with write_lock(store), pytest.raises(StoreLockedError) as err:
        windows.run(windows.WindowsConfig(), data, "tiny")
    assert str(err.value).startswith(f"store {store} is being written by pid {os.getpid()} on host ")
    assert str(err.value).endswith(f"wait or remove the stale lock with `comodo-store unlock {store}`")
    with write_lock(str(data / "tiny" / "imu.zarr")), pytest.raises(StoreLockedError):
        imu.run(imu.ImuConfig(workers=1), data, "tiny", "ego4d", str(tmp_path / "raw"), {})
    assert ChunkedStore.open(store).group.attrs.asdict() == before  # untouched
