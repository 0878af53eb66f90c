import importlib.util
import json

import pytest
import torch
from safetensors.torch import save_file

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students import StudentSpec, build_student, count_parameters, load_encoder
from comodo.stores.errors import ConfigError, ModelLoadError, UnknownNameError

TINY = {
    "cnn1d": {"widths": [8, 16], "kernels": [5, 3]},
    "transformer": {"patch_len": 10, "d_model": 16, "depth": 1, "heads": 2},
    "moment": {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_kv": 8, "d_ff": 32,
               "seq_len": 64},
}


def test_builtin_students_are_registered():
    assert {"cnn1d", "transformer", "mantis", "moment"} <= set(STUDENTS)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("reduction", ["concat", "mean"])
def test_student_maps_b_c_t_to_b_d_with_the_declared_width(name, reduction):
    torch.manual_seed(0)
    student = build_student(StudentSpec(name, 3, 50, reduction, TINY[name]))
    z = student(torch.randn(4, 3, 50))
    assert z.shape == (4, student.out_dim)
    per_channel = student.out_dim if reduction == "mean" else student.out_dim // 3
    assert student.out_dim == (3 * per_channel if reduction == "concat" else per_channel)


def test_concat_reduction_encodes_each_channel_with_one_shared_encoder():
    torch.manual_seed(0)
    student = build_student(StudentSpec("transformer", 2, 40, "concat", TINY["transformer"])).eval()
    series = torch.randn(1, 1, 40)
    z = student(torch.cat([series, series], dim=1))  # the same signal on both channels
    first, second = z.chunk(2, dim=1)
    assert torch.allclose(first, second, atol=1e-6)


def test_cnn1d_default_is_joint_over_channels_and_near_one_and_a_half_million_params():
    student = build_student(StudentSpec("cnn1d", 6, 1000))
    assert student.out_dim == 512
    assert 1.2e6 < count_parameters(student) < 1.8e6
    assert student.net.blocks[0].in_channels == 6


def test_unknown_student_and_option_are_refused_with_the_valid_ones():
    known = "cnn1d, dlinear, informer, mantis, moment, timesnet, transformer"
    with pytest.raises(UnknownNameError, match=known):
        build_student(StudentSpec("resnet", 3, 50))
    with pytest.raises(ConfigError, match="takes: widths, kernels, dropout"):
        build_student(StudentSpec("cnn1d", 3, 50, None, {"depth": 3}))
    with pytest.raises(ConfigError, match="concat, mean"):
        build_student(StudentSpec("transformer", 3, 50, "max"))


@pytest.mark.skipif(importlib.util.find_spec("mantis") is not None, reason="mantis-tsfm installed")
def test_mantis_without_its_extra_names_the_extra_to_install():
    with pytest.raises(ModelLoadError, match="mantis-tsfm"):
        build_student(StudentSpec("mantis", 3, 1000))


def test_load_encoder_round_trips_weights_and_spec(tmp_path):
    spec = StudentSpec("cnn1d", 3, 50, "mean", TINY["cnn1d"])
    torch.manual_seed(1)
    student = build_student(spec).eval()
    save_file(student.state_dict(), str(tmp_path / "encoder.safetensors"))
    (tmp_path / "encoder.json").write_text(json.dumps({"spec": spec.to_dict()}))
    loaded, meta = load_encoder(tmp_path / "encoder.safetensors")
    imu = torch.randn(2, 3, 50)
    assert torch.equal(loaded(imu), student(imu))
    assert meta["spec"]["reduction"] == "mean"
    with pytest.raises(ModelLoadError, match="not found"):
        load_encoder(tmp_path / "missing")
