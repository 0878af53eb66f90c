import pytest
import torch

from comodo.pipeline.heads import (
    LearnedTemperature,
    StudentProjector,
    TeacherProjector,
    student_projector,
)
from comodo.stores.errors import ConfigError


def test_student_projector_is_linear_bn_gelu_linear_with_the_requested_sizes():
    head = StudentProjector(in_dim=32, hidden_dim=64, out_dim=16)
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Linear"]
    assert head(torch.randn(5, 32)).shape == (5, 16)


def test_random_teacher_projector_is_frozen_and_reproducible_from_its_seed():
    a = TeacherProjector("random_mlp", in_dim=24, hidden_dim=32, out_dim=8, seed=3)
    b = TeacherProjector("random_mlp", in_dim=24, hidden_dim=32, out_dim=8, seed=3)
    c = TeacherProjector("random_mlp", in_dim=24, hidden_dim=32, out_dim=8, seed=4)
    feat = torch.randn(4, 24)
    assert list(a.parameters()) == []
    assert set(a.state_dict()) == {"w1", "b1", "w2", "b2"}
    assert torch.equal(a(feat), b(feat))
    assert not torch.allclose(a(feat), c(feat))
    assert a(feat).shape == (4, 8)


def test_random_teacher_projector_does_not_depend_on_the_global_rng():
    torch.manual_seed(0)
    a = TeacherProjector("random_mlp", in_dim=6, hidden_dim=8, out_dim=4, seed=1)
    torch.manual_seed(99)
    b = TeacherProjector("random_mlp", in_dim=6, hidden_dim=8, out_dim=4, seed=1)
    assert torch.equal(a.w1, b.w1)


def test_identity_teacher_projector_passes_features_through():
    head = TeacherProjector("identity", in_dim=12)
    feat = torch.randn(3, 12)
    assert head.out_dim == 12 and torch.equal(head(feat), feat)


def test_unknown_teacher_projector_lists_valid_kinds():
    with pytest.raises(ConfigError, match="random_mlp, identity"):
        TeacherProjector("pca", in_dim=4)


def test_linear_student_projector_is_one_linear_layer_with_bias():
    head = student_projector("linear", in_dim=32, hidden_dim=64, out_dim=12)
    assert [type(m).__name__ for m in head.modules()][1:] == ["Linear"]
    assert head.net.bias is not None and head(torch.randn(5, 32)).shape == (5, 12)
    assert isinstance(student_projector("mlp", 32, 64, 12), StudentProjector)
    with pytest.raises(ConfigError, match="mlp, linear"):
        student_projector("deep", 32, 64, 12)


def test_direct_temperature_is_the_parameter_itself_as_imu2clip_learns_it():
    temp = LearnedTemperature(0.1)
    assert temp.parametrisation == "direct" and temp().item() == pytest.approx(0.1)
    temp().backward()
    assert temp.value.grad.item() == 1.0  # d tau / d parameter = 1: tau is learned directly


def test_log_temperature_starts_at_init_and_is_clamped():
    temp = LearnedTemperature(0.07, "log")
    assert temp().item() == pytest.approx(0.07)
    with torch.no_grad():
        temp.value.fill_(-20.0)
    assert temp().item() == pytest.approx(0.01)
    with pytest.raises(ConfigError):
        LearnedTemperature(0.0)
    with pytest.raises(ConfigError, match="direct, log"):
        LearnedTemperature(0.1, "softplus")
