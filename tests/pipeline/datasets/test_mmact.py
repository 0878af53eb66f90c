from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.mmact import Mmact
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import ConfigError, InputDataError, LayoutError

RATES = {"acc_watch_clip": 100, "acc_phone_clip": 100, "gyro_clip": 50, "orientation_clip": 20}
T0 = datetime(2018, 10, 17, 14, 22, 59, 500000)


def _csv(path: Path, rate: float, offset_s: float, seconds: float = 2.0, base: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(int(seconds * rate)):
        t = offset_s + i / rate
        stamp = (T0 + timedelta(seconds=t)).strftime("%Y%m%d_%H:%M:%S.%f")[:-3]
        rows.append(f"{stamp},{base + t:.6f},{-t:.6f},9.81")
    path.write_text("\n".join(rows) + "\n")


def _fixture(root: Path, make_video, subjects=("1", "2", "3"), actions=("talking", "Walking")) -> Path:
    for subject in subjects:
        for action in actions:
            for k, (stream, rate) in enumerate(RATES.items()):
                name = action.lower() if stream == "gyro_clip" else action  # case differs across streams
                _csv(root / "sensor" / stream / f"subject{subject}/scene1/session1/{name}.csv", rate,
                     offset_s=0.01 * k, base=10.0 * k)
            video = root / "video" / f"subject{subject}/cam1/scene1/session1/{action}.mp4"
            make_video(video, seconds=2.0, fps=10)
    return root


def test_registered_by_name():
    assert DATASETS.get("mmact") is Mmact


def test_clips_are_matched_across_streams_and_labelled_in_lower_case(tmp_path, make_video):
    recs, rejects = Mmact(_fixture(tmp_path / "mmact", make_video), test_subjects=["3"]).scan()
    assert rejects == []
    assert sorted(r.recording_id for r in recs if r.subject == "1") == [
        "subject1/scene1/session1/talking", "subject1/scene1/session1/walking"]
    assert {r.label for r in recs} == {"talking", "walking"}
    expected = {("1", "train"): 2, ("2", "train"): 2, ("3", "test"): 2}
    assert Counter((r.subject, r.split) for r in recs) == expected
    assert recs[0].imu_rate_hz == pytest.approx(100, rel=0.02)
    assert '"align": "trial_span"' in recs[0].extra and recs[0].video_kind == "mp4"


def test_twelve_channels_on_the_watch_clock(tmp_path, make_video):
    adapter = Mmact(_fixture(tmp_path / "mmact", make_video, subjects=("1",)), probe_video=False)
    rec = asdict(adapter.scan()[0][0])
    imu = adapter.load_imu(rec)
    assert imu.values.shape[1] == 12
    assert imu.channels[:3] == ["watch_acc_x", "watch_acc_y", "watch_acc_z"]
    assert imu.units == ["m/s^2"] * 6 + ["rad/s"] * 3 + ["deg"] * 3
    assert imu.t_s[0] == 0.0 and np.allclose(np.diff(imu.t_s), 0.01, atol=1e-6)
    # orientation starts 30 ms after the watch: the watch is cut to the common span, and the
    # other streams (value = 10 * stream index + own time) are interpolated onto watch times
    t_abs = imu.t_s + 0.03
    for k in range(4):
        assert np.allclose(imu.values[:, 3 * k], 10.0 * k + t_abs, atol=2e-3)


def test_clip_missing_a_stream_or_video_is_rejected(tmp_path, make_video):
    root = _fixture(tmp_path / "mmact", make_video, subjects=("1",))
    (root / "sensor" / "gyro_clip" / "subject1/scene1/session1/talking.csv").unlink()
    (root / "video" / "subject1/cam1/scene1/session1/Walking.mp4").unlink()
    recs, rejects = Mmact(root, split="random").scan()
    assert recs == []
    reasons = {r.item: r.reason for r in rejects}
    assert "no ['gyro_clip'] CSV" in reasons["subject1/scene1/session1/talking"]
    assert "no video" in reasons["subject1/scene1/session1/walking"]


def test_streams_option_selects_and_orders_channels(tmp_path, make_video):
    root = _fixture(tmp_path / "mmact", make_video, subjects=("1",))
    adapter = Mmact(root, streams=["gyro_clip", "acc_watch_clip"], probe_video=False, split="random")
    imu = adapter.load_imu(asdict(adapter.scan()[0][0]))
    assert imu.channels == ["phone_gyro_x", "phone_gyro_y", "phone_gyro_z",
                            "watch_acc_x", "watch_acc_y", "watch_acc_z"]
    assert np.allclose(np.diff(imu.t_s), 0.02, atol=1e-6)
    with pytest.raises(ConfigError, match="streams"):
        Mmact(root, streams=["magnetometer_clip"])


def test_unparseable_time_column_names_the_file(tmp_path, make_video):
    root = _fixture(tmp_path / "mmact", make_video, subjects=("1",))
    bad = root / "sensor" / "acc_watch_clip" / "subject1/scene1/session1/talking.csv"
    bad.write_text("yesterday,1,2,3\nlater,4,5,6\n")
    recs, rejects = Mmact(root, probe_video=False, split="random").scan()
    assert [r.item for r in rejects] == ["subject1/scene1/session1/talking"]
    assert "first column holds no times like 20181017_14:22:32.123 (found 'yesterday')" in rejects[0].reason


def test_missing_stream_folder_is_a_layout_error(tmp_path):
    (tmp_path / "video").mkdir()
    (tmp_path / "sensor" / "acc_watch_clip").mkdir(parents=True)
    with pytest.raises(LayoutError, match="acc_phone_clip folder not found"):
        Mmact(tmp_path).scan()


def test_wrong_column_count_is_an_input_error(tmp_path, make_video):
    root = _fixture(tmp_path / "mmact", make_video, subjects=("1",))
    adapter = Mmact(root, probe_video=False, split="random")
    rec = asdict(adapter.scan()[0][0])
    Path(rec["imu_path"]).write_text("20181017_14:22:32.123,1,2\n")
    with pytest.raises(InputDataError, match=r"talking\.csv: expected 4 columns \(time, x, y, z\), found 3"):
        adapter.load_imu(rec)
