"""The synthetic paired dataset: deterministic, and its IMU is the physics of what the video shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from comodo.pipeline.config import build
from comodo.pipeline.datasets.synthetic import (
    CLASSES,
    SynthConfig,
    generate,
    make_recording,
    run,
    write_recording,
)
from comodo.pipeline.datasets.synthetic_motion import G, rotation
from comodo.stores.errors import ConfigError

TINY = {"n_classes": 2, "recordings_per_class": 3, "duration_s": 2.0, "size": 96}


def decode(path: Path) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB frames of an mp4."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def disc_mask(frames: np.ndarray) -> np.ndarray:
    """(F, H, W) bool: saturated pixels (the disc's quadrants; the background is muted)."""
    rgb = frames.astype(np.int16)
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) > 60


def centroids(mask: np.ndarray) -> np.ndarray:
    """(F, H, W) bool -> (F, 2) centroid (u, v) in px, pixel centres at index + 0.5."""
    rows, cols = np.arange(mask.shape[1]) + 0.5, np.arange(mask.shape[2]) + 0.5
    area = mask.sum(axis=(1, 2))
    return np.stack([(mask.sum(axis=1) * cols).sum(axis=1) / area,
                     (mask.sum(axis=2) * rows).sum(axis=1) / area], axis=-1)


def red_quadrant_angle(frames: np.ndarray) -> np.ndarray:
    """(F,) unwrapped image-plane angle (rad, counter-clockwise) of the red quadrant."""
    rgb = frames.astype(np.int16)
    red = (rgb[..., 0] > 130) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)
    centre, red_centre = centroids(disc_mask(frames)), centroids(red)
    d = red_centre - centre
    return np.unwrap(np.arctan2(-d[:, 1], d[:, 0]))  # image v points down


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(**TINY))
    return root


GENERATE = """
import json, sys
from comodo.pipeline.datasets.synthetic import SynthConfig, generate
generate(sys.argv[1], SynthConfig(**json.loads(sys.argv[2])))
"""


def test_same_seed_gives_identical_files_in_fresh_processes(tiny_root: Path, tmp_path: Path) -> None:
    """Two ``comodo synth``-like processes write the same bytes: IMU, videos, truth. (The
    in-process ``tiny_root`` is compared by its rendered frames instead: after other tests
    have run in this process, libx264 occasionally encodes identical frames to other bytes.)"""
    for name in ("one", "two"):
        subprocess.run([sys.executable, "-c", GENERATE, str(tmp_path / name), json.dumps(TINY)],
                       check=True, env={**os.environ, "COMODO_PROGRESS": "0"})
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert any(p.suffix == ".mp4" for p in files) and any(p.suffix == ".csv" for p in files)
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    for rel in files:
        if rel.suffix != ".mp4":
            assert (tiny_root / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes(), rel


def test_same_seed_renders_identical_frames() -> None:
    cfg = SynthConfig(**TINY)
    kwargs = {"imu_rate_hz": cfg.imu_rate_hz, "fps": cfg.fps, "size": cfg.size}
    first, again = (make_recording(7, "circle", cfg.duration_s, 0.5, **kwargs) for _ in range(2))
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.imu, again.imu)


def test_different_seed_gives_different_data(tiny_root: Path, tmp_path: Path) -> None:
    uids = generate(tmp_path / "other", SynthConfig(**TINY, seed=1))
    uid = uids[0]
    assert (tmp_path / "other/imu" / f"{uid}.csv").read_bytes() != \
        (tiny_root / "imu" / f"{uid}.csv").read_bytes()
    assert not np.array_equal(decode(tmp_path / "other/videos" / f"{uid}.mp4"),
                              decode(tiny_root / "videos" / f"{uid}.mp4"))


def test_video_decodes_to_expected_frame_count_size_and_rate(tmp_path: Path) -> None:
    rec = make_recording(3, "circle", duration_s=3.0, imu_start_s=0.0)
    write_recording(tmp_path, "clip", rec)
    with av.open(str(tmp_path / "videos/clip.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(10)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert frames.shape == (30, 224, 224, 3)
    assert np.abs(frames.astype(np.int16) - rec.frames).mean() < 3.0  # lossy but faithful


def test_imu_csv_has_ego4d_header_rate_and_clock_offset(tmp_path: Path) -> None:
    rec = make_recording(4, "swing", duration_s=5.0, imu_start_s=1.3)
    write_recording(tmp_path, "r", rec)
    lines = (tmp_path / "imu/r.csv").read_text().splitlines()
    assert lines[0] == "canonical_timestamp_ms,accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z"
    table = np.loadtxt(tmp_path / "imu/r.csv", delimiter=",", skiprows=1)
    t_ms = table[:, 0]
    assert table.shape == (500, 7)
    assert abs(t_ms[0] - 1300.0) < 2.0
    assert np.all(np.diff(t_ms) > 0) and np.median(np.diff(t_ms)) == pytest.approx(10.0, abs=0.05)
    assert np.abs(np.diff(t_ms) - 10.0).max() > 0.01  # the clock jitters
    assert np.allclose(table[:, 1:], rec.imu, atol=1e-5)


def test_noisy_imu_follows_the_motion_on_the_imu_clock() -> None:
    for label in CLASSES:
        rec = make_recording(11, label, duration_s=8.0, imu_start_s=1.3)
        clean, shifted = rec.motion(rec.imu_t_s), rec.motion(rec.imu_t_s - 1.3)
        strong = clean.std(axis=0) > np.array([0.25] * 3 + [0.025] * 3)  # 5x the noise std
        assert strong.sum() >= 3, label
        for ch in np.flatnonzero(strong):
            assert corr(clean[:, ch], rec.imu[:, ch]) > 0.9, (label, ch)
        worst = min(corr(shifted[:, ch], rec.imu[:, ch]) for ch in np.flatnonzero(strong))
        assert worst < 0.9, label  # the 1.3 s clock offset matters


def test_accelerometer_is_specific_force_and_differs_between_classes() -> None:
    t = np.arange(0.0, 20.0, 0.01)
    norm = {c: np.linalg.norm(make_recording(2, c, 1.0, 0.0).motion(t)[:, :3], axis=1)
            for c in CLASSES}
    assert norm["spin"].mean() == pytest.approx(G, abs=0.05)  # gravity only, rotating
    assert norm["spin"].std() < 0.05
    assert norm["bounce"].max() > 2.0 * G  # the turn at the bottom
    assert norm["shake"].std() > 3.0 * norm["figure_eight"].std() > 0.0
    assert norm["circle"].mean() > G + 0.5  # centripetal force adds to gravity


def test_accelerometer_matches_the_second_derivative_of_the_video_track(tmp_path: Path) -> None:
    rec = make_recording(7, "figure_eight", duration_s=12.0, imu_start_s=1.3)
    write_recording(tmp_path, "f8", rec)
    frames = decode(tmp_path / "videos/f8.mp4")
    t = rec.frame_t_s
    depth_m = rec.trajectory.params["centre_z_m"]  # figure-eight stays at one depth
    uv = centroids(disc_mask(frames))
    x_m = (uv[:, 0] - rec.camera.size / 2) * depth_m / rec.camera.focal_px  # (F,)
    y_m = -(uv[:, 1] - rec.camera.size / 2) * depth_m / rec.camera.focal_px
    xy_m = np.stack([x_m, y_m], axis=-1)  # (F, 2)
    dt = 2.0 / rec.fps  # central second difference over +-2 frames, at t[2:-2]
    acc_video = (xy_m[4:] - 2.0 * xy_m[2:-2] + xy_m[:-4]) / dt**2
    t_mid = t[2:-2]
    inside = (t_mid > rec.imu_t_s[0] + 0.2) & (t_mid < rec.imu_t_s[-1] - 0.2)
    # IMU specific force back to the world frame: R f + g, on the frames' times
    rot = rotation(rec.trajectory.angles(rec.imu_t_s))
    acc_imu = np.einsum("tij,tj->ti", rot, (rec.imu[:, :3] - rec.biases[:3]) / rec.gains[:3])
    acc_imu[:, 1] -= G
    for axis in (0, 1):
        at_frames = np.interp(t_mid[inside], rec.imu_t_s, acc_imu[:, axis])
        assert corr(acc_video[inside, axis], at_frames) > 0.95, axis


def test_spin_gyro_integrates_to_the_rotation_drawn_in_the_video(tmp_path: Path) -> None:
    rec = make_recording(5, "spin", duration_s=8.0, imu_start_s=1.3)
    write_recording(tmp_path, "spin", rec)
    angle_video = red_quadrant_angle(decode(tmp_path / "videos/spin.mp4"))  # (F,)
    gyro_z = (rec.imu[:, 5] - rec.biases[5]) / rec.gains[5]
    turned = np.concatenate([[0.0], np.cumsum(0.5 * (gyro_z[1:] + gyro_z[:-1])
                                              * np.diff(rec.imu_t_s))])  # rad since IMU start
    t = rec.frame_t_s
    inside = (t >= rec.imu_t_s[0]) & (t <= rec.imu_t_s[-1])
    turned_at_frames = np.interp(t[inside], rec.imu_t_s, turned)
    drawn = angle_video[inside] - angle_video[inside][0]
    total = abs(drawn[-1])
    assert total > 10.0  # several turns
    err = np.abs((turned_at_frames - turned_at_frames[0]) - drawn)
    assert err.max() < 0.01 * total + 0.15


def test_disc_centroid_in_the_video_tracks_the_projected_trajectory(tmp_path: Path) -> None:
    for label in ("circle", "figure_eight", "forward_back"):
        rec = make_recording(9, label, duration_s=6.0, imu_start_s=0.0)
        write_recording(tmp_path, label, rec)
        frames = decode(tmp_path / "videos" / f"{label}.mp4")
        truth = rec.project(rec.frame_t_s)  # (F, 4): u, v, radius, angle
        mask = disc_mask(frames)
        uv = centroids(mask)
        assert np.abs(uv - truth[:, :2]).max() < 3.0, label
        if label != "forward_back":
            assert corr(uv[:, 0], truth[:, 0]) > 0.98, label
        else:  # apparent size follows depth
            assert corr(np.sqrt(mask.sum(axis=(1, 2))), truth[:, 2]) > 0.98


def test_split_files_cover_every_uid_once_with_every_class_in_every_split(tiny_root: Path
                                                                          ) -> None:
    truth = json.loads((tiny_root / "truth.json").read_text())
    seen: list[str] = []
    for name in ("train", "val", "test"):
        lines = (tiny_root / f"{name}.txt").read_text().splitlines()
        pairs = [line.split("\t") for line in lines]
        assert all(len(p) == 2 for p in pairs), name
        assert all(truth[uid]["label"] == label for uid, label in pairs), name
        assert {label for _, label in pairs} == set(CLASSES[:2]), name
        seen += [uid for uid, _ in pairs]
    assert sorted(seen) == sorted(truth) and len(seen) == len(set(seen)) == 6
    assert {p.stem for p in (tiny_root / "videos").iterdir()} == set(truth)
    assert {p.stem for p in (tiny_root / "imu").iterdir()} == set(truth)


def test_truth_records_class_parameters_clock_offset_gains_and_biases(tiny_root: Path) -> None:
    truth = json.loads((tiny_root / "truth.json").read_text())
    offsets = [entry["imu_start_s"] for entry in truth.values()]
    assert all(-1.5 <= o <= 1.5 for o in offsets) and len(set(offsets)) == len(offsets)
    for uid, entry in truth.items():
        first_ms = float((tiny_root / "imu" / f"{uid}.csv").read_text().splitlines()[1].split(",")[0])
        assert abs(first_ms / 1000.0 - entry["imu_start_s"]) < 0.002
        assert all(0.95 <= g <= 1.05 for g in entry["gains"]) and len(entry["biases"]) == 6
        assert "freq_hz" in entry["params"] or "rate_rad_s" in entry["params"]


def test_imu_start_override_sets_the_clock_offset(tmp_path: Path) -> None:
    cfg = SynthConfig(**TINY, imu_start_overrides={"circle_001": 1.3})
    generate(tmp_path, cfg)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["circle_001"]["imu_start_s"] == 1.3
    with pytest.raises(ConfigError, match="circle_999"):
        generate(tmp_path / "bad", SynthConfig(**TINY, imu_start_overrides={"circle_999": 0.0}))


@pytest.mark.parametrize(("values", "field", "expected"), [
    ({"n_classes": 99}, "n_classes", "2..7"),
    ({"recordings_per_class": 2}, "recordings_per_class", ">= 3"),
    ({"imu_jitter_s": 0.01}, "imu_jitter_s", "0.0..0.0025"),
    ({"size": 97}, "size", "an even number"),
])
def test_bad_config_raises_config_error_naming_field_and_range(values: dict, field: str,
                                                               expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"{field}=.*expected {expected}"):
        SynthConfig(**values)
    with pytest.raises(ConfigError, match=field):
        build(SynthConfig, values, "params.yaml: synth")


def test_unknown_class_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="figure_eight"):
        make_recording(0, "cartwheel", 1.0, 0.0)


def test_run_replaces_the_folder_whole_and_leaves_it_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    run(SynthConfig(**TINY), out)
    (out / "stale.txt").write_text("from an older run")
    uids = run(SynthConfig(**TINY, seed=3), out)
    assert not (out / "stale.txt").exists()
    assert sorted(json.loads((out / "truth.json").read_text())) == sorted(uids)
    before = (out / "truth.json").read_bytes()
    with pytest.raises(ConfigError):
        run(SynthConfig(**TINY, imu_start_overrides={"nope": 0.0}), out)
    assert (out / "truth.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]  # no temp folders left
