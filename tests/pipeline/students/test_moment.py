import pytest
import torch
from safetensors.torch import save_file

from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.students.moment import MomentEncoder, revin
from comodo.stores.errors import ModelLoadError

TINY = {"d_model": 16, "num_layers": 2, "num_heads": 2, "d_kv": 8, "d_ff": 32, "seq_len": 64,
        "dropout_rate": 0.0}
T5_TINY = {**{k: v for k, v in TINY.items() if k != "seq_len"}, "feed_forward_proj": "gated-gelu"}


def _encoder(seed=0):
    torch.manual_seed(seed)
    return MomentEncoder(seq_len=64, patch_len=8, t5_options=T5_TINY).eval()


def test_parameter_names_follow_the_moment_checkpoint():
    keys = set(_encoder().state_dict())
    assert "patch_embedding.value_embedding.weight" in keys
    assert "patch_embedding.mask_embedding" in keys
    assert "encoder.block.0.layer.0.SelfAttention.q.weight" in keys
    assert "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight" in keys
    assert "encoder.final_layer_norm.weight" in keys
    assert not any(k.startswith(("head.", "encoder.embed_tokens")) for k in keys)


def test_a_moment_style_checkpoint_loads_strictly_and_skips_head_and_token_embedding(tmp_path):
    source = _encoder(seed=1)
    state = dict(source.state_dict())
    state["head.linear.weight"] = torch.zeros(8, 16)
    state["encoder.embed_tokens.weight"] = torch.zeros(32128, 16)
    state["patch_embedding.position_embedding.pe"] = torch.zeros(1, 5000, 16)
    save_file(state, str(tmp_path / "model.safetensors"))
    student = build_student(StudentSpec("moment", 2, 64, "mean",
                                        {**TINY, "weights": str(tmp_path)})).eval()
    series = torch.randn(3, 64)
    assert torch.allclose(student.encoder(series), source(series), atol=1e-6)

    del state["encoder.final_layer_norm.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="final_layer_norm"):
        build_student(StudentSpec("moment", 2, 64, "mean", {**TINY, "weights": str(tmp_path)}))


def test_short_series_are_left_padded_and_masked():
    encoder = _encoder()
    series = torch.randn(2, 40)
    padded, mask = encoder.prepare(series)
    assert padded.shape == (2, 64) and mask.shape == (2, 64)
    assert not mask[:, :24].any() and mask[:, 24:].all()
    assert torch.equal(padded[:, 24:], series)
    out = encoder(series)
    assert torch.isfinite(out).all() and out.shape == (2, 16)


def test_padding_content_is_ignored_through_the_mask():
    encoder = _encoder()
    series = torch.randn(2, 48)
    a = encoder(series)
    b = encoder(torch.cat([torch.zeros(2, 16), series], dim=1))  # same length 64, all observed
    assert not torch.allclose(a, b)  # observed zeros are data, masked zeros are not
    long = encoder(torch.randn(2, 200))
    assert long.shape == (2, 16)


def test_revin_uses_only_observed_samples():
    series = torch.tensor([[100.0, 100.0, 1.0, 3.0]])
    mask = torch.tensor([[False, False, True, True]])
    out = revin(series, mask)
    assert out[0, 2:].tolist() == pytest.approx([-1.0, 1.0], abs=1e-4)
    assert out[0, :2].tolist() == [0.0, 0.0]


def test_masked_samples_do_not_change_the_embedding_of_a_full_length_window():
    student = build_student(StudentSpec("moment", 2, 200, "concat", TINY)).eval()
    imu = torch.randn(2, 2, 200)  # longer than seq_len 64: goes in whole (25 patches)
    mask = torch.ones(2, 200)
    mask[:, :40] = 0  # the first 5 patches unobserved
    other = imu.clone()
    other[:, :, :40] = 1e3 * torch.randn(2, 2, 40)
    with torch.no_grad():
        a, b = student(imu, mask), student(other, mask)
        unmasked = student(other)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.allclose(a, unmasked, atol=1e-3)
    # feature-major concat: index k * C + c holds feature k of channel c
    with torch.no_grad():
        per_channel = student.encoder(imu.reshape(4, 200), mask.repeat_interleave(2, 0)).reshape(2, 2, 16)
    torch.testing.assert_close(a[:, 1::2], per_channel[:, 1], atol=1e-6, rtol=0)
