"""Where every IMU second went, per recording: through the imu stage, then the windows stage.

``rejects/imu_samples.parquet`` (``imu_seconds``), one row per recording the imu stage kept,
on the recording's own clock (one mean sample period per sample): ``seconds_in`` (last -
first finite timestamp + one period) = ``seconds_out`` (the resampled samples in imu.zarr /
``rate_hz``) + ``nonfinite_s`` (lost at the ends with non-finite rows; inside, the resampler
bridges them) + ``gaps_s`` (gaps over ``imu.max_gap_s``) + ``short_segment_s`` (pieces under
``imu.min_duration_s``) + ``resampling_edge_s`` (each kept piece's span + one period beyond
its resampled samples: the 200 Hz grid starts on a multiple of 1/200 s at or after the first
sample and ends at or before the last; within 2.5 native sample periods a segment for native
rates of 25-800 Hz, one period for input already on the grid). Rows dropped as non-finite or
duplicate timestamps are counted in ``nonfinite_rows``/``duplicate_rows`` too (inside a
piece they cost no time). Recordings the imu stage rejects whole are in rejects/imu.parquet.

``rejects/windows_samples.parquet`` (``account_samples``): where every resampled IMU sample
offered to the windows stage went. ``samples_in`` (the recording's samples in imu.zarr) =
``samples_in_windows`` + ``trimmed``, and ``trimmed`` is split by reason:

- ``partial_window``: the tail of a segment, under the video, after its last full window;
- ``short_segment``: a segment (under the video) shorter than one window, e.g. before a gap;
- ``outside_video``: samples before the video starts or after it ends;
- ``outside_whole``: whole mode, samples past ``whole_length`` or in a recording's other segments;
- ``small_class``: windows dropped with their class (``min_windows_per_class``);
- ``rejected``: samples of a recording none of whose windows could be cut.

Seconds are samples / ``rate_hz``.
"""

from __future__ import annotations

import math

import polars as pl

from comodo.pipeline.windowing import EPS, _video_span

REASONS = ("partial_window", "short_segment", "outside_video", "outside_whole", "small_class",
           "rejected")


def _under_video(rec: dict, seg: dict) -> int:
    """Samples of ``seg`` from the first window start the tile rule allows to the video's end."""
    rate, t0, n = seg["rate_hz"], seg["t0_s"], seg["n_samples"]
    video = _video_span(rec)
    if video is None:
        return n
    first = max(math.ceil((max(t0, video[0]) - t0) * rate - EPS), 0)
    last = min(n, math.ceil((video[1] - t0) * rate - EPS))
    return max(last - first, 0)


def _tile_reasons(rec: dict, segments: list[dict], windowed: dict[int, int], n_per: int
                  ) -> dict[str, int]:
    out = dict.fromkeys(REASONS, 0)
    for seg in segments:
        cut = windowed.get(seg["row_start"], 0)
        inside = max(_under_video(rec, seg), cut)
        rest = inside - cut
        out["partial_window" if cut else "short_segment"] += rest
        out["outside_video"] += seg["n_samples"] - inside
    return out


def account_samples(recs: pl.DataFrame, segs: pl.DataFrame, cut: pl.DataFrame, kept: pl.DataFrame,
                    mode: str, n_per: int) -> pl.DataFrame:
    """One row per recording of ``recs``: its samples in, in windows, and trimmed by reason.
    ``cut``: the windows cut (columns recording_id, sample_start, n_valid); ``kept``: those
    left after small classes were dropped."""
    by_rec: dict[str, list[dict]] = {}
    for seg in segs.iter_rows(named=True):
        by_rec.setdefault(seg["recording_id"], []).append(seg)
    rows = []
    for rec in recs.iter_rows(named=True):
        rid, segments = rec["recording_id"], by_rec.get(rec["recording_id"], [])
        mine = cut.filter(pl.col("recording_id") == rid)
        n_in = sum(s["n_samples"] for s in segments)
        n_cut = int(mine["n_valid"].sum())
        n_kept = int(kept.filter(pl.col("recording_id") == rid)["n_valid"].sum())
        if not len(mine):
            reasons = dict.fromkeys(REASONS, 0) | {"rejected": n_in}
        elif mode == "tile":
            windowed = _windowed_by_segment(segments, mine)
            reasons = _tile_reasons(rec, segments, windowed, n_per)
        else:
            reasons = dict.fromkeys(REASONS, 0) | {"outside_whole": n_in - n_cut}
        reasons["small_class"] = n_cut - n_kept
        rate = segments[0]["rate_hz"] if segments else float("nan")
        rows.append({"recording_id": rid, "rate_hz": rate, "samples_in": n_in,
                     "samples_in_windows": n_kept, "trimmed": sum(reasons.values()), **reasons})
    table = pl.DataFrame(rows, schema=SCHEMA)
    bad = table.filter(pl.col("samples_in") != pl.col("samples_in_windows") + pl.col("trimmed"))
    if len(bad):
        raise RuntimeError(f"sample accounting does not reconcile: {bad.to_dicts()[:3]}")  # a bug
    return table.with_columns(
        (pl.col(c) / pl.col("rate_hz")).alias(f"{c}_s") for c in ("samples_in", "samples_in_windows",
                                                                  "trimmed"))


def _windowed_by_segment(segments: list[dict], windows: pl.DataFrame) -> dict[int, int]:
    """row_start of each segment -> samples of its windows."""
    out: dict[int, int] = {}
    bounds = sorted((s["row_start"], s["row_start"] + s["n_samples"]) for s in segments)
    for start, n_valid in zip(windows["sample_start"].to_list(), windows["n_valid"].to_list()):
        owner = next(lo for lo, hi in bounds if lo <= start < hi)
        out[owner] = out.get(owner, 0) + n_valid
    return out


IMU_SECONDS = ("nonfinite_s", "gaps_s", "short_segment_s", "resampling_edge_s")
IMU_SCHEMA = {"recording_id": pl.String, "rows_in": pl.Int64, "nonfinite_rows": pl.Int64,
              "duplicate_rows": pl.Int64, "rate_hz": pl.Float64, "samples_out": pl.Int64,
              "seconds_in": pl.Float64, "seconds_out": pl.Float64,
              **dict.fromkeys(IMU_SECONDS, pl.Float64)}


def imu_seconds(rows: list[dict]) -> pl.DataFrame:
    """rejects/imu_samples.parquet from one dict per kept recording (``IMU_SCHEMA``'s keys)."""
    table = pl.DataFrame(rows, schema=IMU_SCHEMA)
    rest = table["seconds_in"] - table["seconds_out"] - table.select(IMU_SECONDS).sum_horizontal()
    if len(table) and float(rest.abs().max()) > 1e-6:  # a bug
        raise RuntimeError(f"imu seconds do not reconcile: {table.filter(rest.abs() > 1e-6).to_dicts()[:3]}")
    return table


SCHEMA = {"recording_id": pl.String, "rate_hz": pl.Float64, "samples_in": pl.Int64,
          "samples_in_windows": pl.Int64, "trimmed": pl.Int64, **dict.fromkeys(REASONS, pl.Int64)}
