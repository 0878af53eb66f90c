"""Hugging Face teachers: outputs equal the model's own forward, loading is strict."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    TimesformerForVideoClassification,
    VideoMAEForVideoClassification,
    ViTConfig,
    ViTModel,
)

from comodo.pipeline.registry import TEACHERS
from comodo.pipeline.teachers import build_teacher
from comodo.pipeline.teachers.base import IMAGENET_MEAN, IMAGENET_STD
from comodo.pipeline.teachers.tiny import TINY_MEAN, TINY_STD, save_tiny_timesformer, save_tiny_videomae
from comodo.stores.errors import ConfigError, ModelLoadError, UnknownNameError


@pytest.fixture(scope="module")
def tiny_timesformer(tmp_path_factory):
    return save_tiny_timesformer(tmp_path_factory.mktemp("tts") / "model")


@pytest.fixture(scope="module")
def tiny_videomae(tmp_path_factory):
    return save_tiny_videomae(tmp_path_factory.mktemp("tvm") / "model")


def frames(batch=2, n=4, size=32, seed=0):
    return torch.randn(batch, n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_all_teachers_registered():
    assert {"timesformer", "videomae", "hf_auto", "mobilenetv2_imagenet"} <= set(TEACHERS)


def test_unknown_teacher_and_param_list_the_valid_ones(tiny_timesformer):
    with pytest.raises(UnknownNameError, match="mobilenetv2_imagenet"):
        build_teacher("timesformerx")
    with pytest.raises(ConfigError, match="revision"):
        build_teacher("timesformer", model=str(tiny_timesformer), params={"layers": 3})


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_timesformer_pooled_equals_direct_model_call(tiny_timesformer, pooling):
    teacher = build_teacher("timesformer", model=str(tiny_timesformer), pooling=pooling)
    ref = TimesformerForVideoClassification.from_pretrained(str(tiny_timesformer)).eval()
    x = frames()
    with torch.no_grad():
        pooled, per_frame = teacher(x)
        tokens = ref.timesformer(pixel_values=x).last_hidden_state  # (B, 1 + P*F, D)
    want = tokens.mean(1) if pooling == "mean" else tokens[:, 0]
    torch.testing.assert_close(pooled, want, rtol=0, atol=1e-6)
    # per frame: patch tokens are space-major (P x F); mean over the P patches of each frame
    want_frames = tokens[:, 1:].reshape(2, -1, 4, 32).mean(1)
    torch.testing.assert_close(per_frame, want_frames, rtol=0, atol=1e-6)
    assert teacher.num_frames == 4 and teacher.dim == 32 and teacher.image_size == 32


def test_videomae_pools_the_plain_token_mean_by_default_and_the_classifier_input_on_request(tiny_videomae):
    teacher = build_teacher("videomae", model=str(tiny_videomae))
    with_fc_norm = build_teacher("videomae", model=str(tiny_videomae), pooling="fc_norm_mean")
    ref = VideoMAEForVideoClassification.from_pretrained(str(tiny_videomae)).eval()
    x = frames(seed=1)
    with torch.no_grad():
        pooled, per_frame = teacher(x)
        classifier_input, _ = with_fc_norm(x)
        out = ref(pixel_values=x, output_hidden_states=True)
    assert teacher.pooling == "mean" and with_fc_norm.pooling == "fc_norm_mean"
    torch.testing.assert_close(pooled, out.hidden_states[-1].mean(1), rtol=0, atol=1e-6)
    torch.testing.assert_close(ref.classifier(classifier_input), out.logits, rtol=0, atol=1e-5)
    assert not torch.allclose(pooled, classifier_input, atol=1e-2)
    assert per_frame.shape == (2, 2, 32) and teacher.frames_out == 2  # 4 frames, tubelet 2


def test_videomae_without_mean_pooling_uses_the_first_token(tmp_path):
    folder = save_tiny_videomae(tmp_path / "m", use_mean_pooling=False)
    teacher = build_teacher("videomae", model=str(folder))
    ref = VideoMAEForVideoClassification.from_pretrained(str(folder)).eval()
    x = frames(seed=2)
    with torch.no_grad():
        pooled, _ = teacher(x)
        logits = ref(pixel_values=x).logits
    assert teacher.pooling == "cls"
    torch.testing.assert_close(ref.classifier(pooled), logits, rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="'fc_norm_mean' needs a checkpoint with an fc_norm"):
        build_teacher("videomae", model=str(folder), pooling="fc_norm_mean")


def _bias_keys(state):
    return sorted(k for k in state if k.endswith(("q_bias", "v_bias", "query.bias", "value.bias")))


def test_videomae_q_v_bias_round_trip(tiny_videomae, tmp_path):
    saved = load_file(str(tiny_videomae / "model.safetensors"))
    legacy = [k for k in saved if k.endswith(("q_bias", "v_bias"))]
    assert len(legacy) == 4  # 2 layers x (q, v), as the original checkpoints name them
    teacher = build_teacher("videomae", model=str(tiny_videomae))
    loaded = teacher.net.state_dict()
    for key in legacy:
        new_key = key.replace("q_bias", "query.bias").replace("v_bias", "value.bias")
        assert saved[key].abs().sum() > 0
        torch.testing.assert_close(loaded[new_key], saved[key], rtol=0, atol=0)
    # the same weights stored under the module's own names load to the same teacher
    renamed = {k.replace("q_bias", "query.bias").replace("v_bias", "value.bias"): v for k, v in saved.items()}
    other = tmp_path / "renamed"
    other.mkdir()
    save_file(renamed, str(other / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "preprocessor_config.json"):
        (other / name).write_text((tiny_videomae / name).read_text())
    twin = build_teacher("videomae", model=str(other))
    x = frames(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(twin(x)[0], teacher(x)[0], rtol=0, atol=0)
    assert twin.weights_hash != teacher.weights_hash


def _copy_with_state(src, dst, state):
    dst.mkdir()
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    (dst / "config.json").write_text((src / "config.json").read_text())


def test_strict_loading_rejects_an_extra_key(tiny_timesformer, tmp_path):
    state = load_file(str(tiny_timesformer / "model.safetensors"))
    state["timesformer.extra_head.weight"] = torch.zeros(3)
    _copy_with_state(tiny_timesformer, tmp_path / "extra", state)
    with pytest.raises(ModelLoadError, match=r"1 unexpected keys: timesformer\.extra_head\.weight"):
        build_teacher("timesformer", model=str(tmp_path / "extra"))


def test_strict_loading_rejects_a_missing_key(tiny_videomae, tmp_path):
    state = load_file(str(tiny_videomae / "model.safetensors"))
    del state["videomae.encoder.layer.1.attention.attention.v_bias"]
    _copy_with_state(tiny_videomae, tmp_path / "missing", state)
    missing = r"1 missing keys: .*layer\.1\.attention\.attention\.value\.bias"
    with pytest.raises(ModelLoadError, match=missing):
        build_teacher("videomae", model=str(tmp_path / "missing"))


def test_wrong_architecture_for_the_teacher(tiny_videomae):
    with pytest.raises(ModelLoadError, match="needs a timesformer checkpoint"):
        build_teacher("timesformer", model=str(tiny_videomae))


def test_offline_hub_id_without_local_weights_says_how_to_provide_them(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as err:
        build_teacher("timesformer")
    assert "facebook/timesformer-base-finetuned-k400" in str(err.value)
    assert "local folder" in str(err.value) and "HF cache" in str(err.value)


def test_missing_local_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        build_teacher("videomae", model=str(tmp_path / "nope"))


def test_mean_std_and_sizes_come_from_the_processor_config(tiny_timesformer, tmp_path):
    teacher = build_teacher("timesformer", model=str(tiny_timesformer))
    assert teacher.mean == tuple(TINY_MEAN) and teacher.std == tuple(TINY_STD)
    assert teacher.info.preprocessing.resize_short == 36
    bare = tmp_path / "bare"
    _copy_with_state(tiny_timesformer, bare, load_file(str(tiny_timesformer / "model.safetensors")))
    plain = build_teacher("timesformer", model=str(bare))
    assert plain.mean == IMAGENET_MEAN and plain.std == IMAGENET_STD
    assert plain.info.preprocessing.resize_short == 32


def test_frames_must_match_the_checkpoint(tiny_timesformer):
    with pytest.raises(ConfigError, match="built for 4 frames"):
        build_teacher("timesformer", model=str(tiny_timesformer), frames=8)


def test_hf_auto_video_matches_the_videomae_teacher(tiny_videomae):
    auto = build_teacher("hf_auto", model=str(tiny_videomae), pooling="mean")
    named = build_teacher("videomae", model=str(tiny_videomae), pooling="mean")
    x = frames(seed=4)
    with torch.no_grad():
        for got, want in zip(auto(x), named(x), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_hf_auto_image_model_embeds_each_frame(tmp_path):
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=48)
    torch.manual_seed(0)
    ViTModel(config).eval().save_pretrained(str(tmp_path / "vit"))
    (tmp_path / "vit" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3,
                                                                           "image_std": [0.5] * 3}))
    teacher = build_teacher("hf_auto", model=str(tmp_path / "vit"), frames=3, pooling="cls")
    ref = ViTModel.from_pretrained(str(tmp_path / "vit")).eval()
    x = frames(batch=2, n=3, seed=5)
    with torch.no_grad():
        pooled, per_frame = teacher(x)
        want = ref(pixel_values=x[1]).last_hidden_state[:, 0]  # (3, D) for the second window
    torch.testing.assert_close(per_frame[1], want, rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled, per_frame.mean(1))
    assert teacher.mean == (0.5, 0.5, 0.5) and teacher.num_frames == 3 and teacher.dim == 24


def test_legacy_q_v_biases_left_at_zero_by_the_loader_are_restored(tiny_videomae):
    """The transformers 5 failure mode: q_bias/v_bias reported unexpected, biases left zero."""
    from comodo.pipeline.teachers.hf_video import repair_legacy_keys
    from comodo.pipeline.teachers.hub import resolve_checkpoint

    ckpt = resolve_checkpoint(str(tiny_videomae))
    net = VideoMAEForVideoClassification.from_pretrained(str(tiny_videomae)).eval()
    saved = load_file(str(tiny_videomae / "model.safetensors"))
    legacy = {k for k in saved if k.endswith(("q_bias", "v_bias"))}
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith(("query.bias", "value.bias")):
                param.zero_()
    report = {"missing_keys": set(), "unexpected_keys": set(legacy), "mismatched_keys": set()}
    assert repair_legacy_keys(net, ckpt, report) == 4
    assert report["unexpected_keys"] == set()
    bias = net.videomae.encoder.layer[1].attention.attention.value.bias
    torch.testing.assert_close(bias, saved["videomae.encoder.layer.1.attention.attention.v_bias"])


def test_hub_id_is_read_from_the_hf_cache_offline(tiny_timesformer, monkeypatch, tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-timesformer"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in tiny_timesformer.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    teacher = build_teacher("timesformer", model="acme/tiny-timesformer")
    local = build_teacher("timesformer", model=str(tiny_timesformer))
    assert teacher.info.model_id == "acme/tiny-timesformer" and teacher.info.revision == commit
    assert teacher.weights_hash == local.weights_hash
