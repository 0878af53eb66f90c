"""What every student reads: the valid part of each window, standardised per channel."""

import importlib.util

import numpy as np
import pytest
import torch

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.students.base import NORM_EPS, masked_channel_stats, resample_valid
from comodo.pipeline.windowing import stretch_windows
from comodo.stores.errors import ConfigError

T = 64
TINY = {
    "cnn1d": {"widths": [8, 16], "kernels": [5, 3]},
    "transformer": {"patch_len": 8, "d_model": 16, "depth": 1, "heads": 2},
    "moment": {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_kv": 8, "d_ff": 32,
               "seq_len": 64},
    "mantis": {},
    "dlinear": {"seq_len": T, "d_out": 8, "moving_avg": 7},
    "informer": {"d_model": 16, "heads": 2, "layers": 1, "d_ff": 32, "dropout": 0.0},
    "timesnet": {"d_model": 8, "d_ff": 8, "layers": 1, "top_k": 2, "num_kernels": 2,
                 "dropout": 0.0},
}


def _student(name: str, input_norm: str = "instance") -> torch.nn.Module:
    if name == "mantis" and importlib.util.find_spec("mantis") is None:
        pytest.skip("mantis needs the mantis-tsfm extra")
    torch.manual_seed(0)
    return build_student(StudentSpec(name, 3, T, None, TINY[name], input_norm)).eval()


def _windows(n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(T) / T
    gains = torch.tensor([1.0, 250.0, 0.02])[None, :, None]  # g, deg/s, a small channel
    return (torch.sin(6.28 * 3 * t + torch.rand(n, 3, 1, generator=g)) + 0.5) * gains \
        + 0.1 * torch.randn(n, 3, T, generator=g)


def test_every_registered_student_is_covered():
    assert set(STUDENTS) <= set(TINY)


NATIVE = {"moment"}  # reads its own mask: RevIN over observed samples, padded patches masked


@pytest.mark.parametrize("name", sorted(set(TINY) - NATIVE))
@torch.no_grad()
def test_a_window_and_its_zero_padded_copy_give_the_same_embedding(name):
    student = _student(name)
    imu = _windows()
    padded = torch.cat([imu, torch.zeros(2, 3, 37)], dim=2)  # (2, 3, T + 37)
    z = student(imu)
    z_padded = student(padded, torch.tensor([T, T]))
    torch.testing.assert_close(z_padded, z, atol=1e-5, rtol=1e-4)
    # what the padding would do if it were read as data
    assert not torch.allclose(student(padded), z, atol=1e-3)


@pytest.mark.parametrize("name", sorted(NATIVE))
@torch.no_grad()
def test_a_masked_student_never_reads_the_values_of_the_padding(name):
    """MOMENT means over every patch as the reference does (masked ones too), so its padded
    copy is not the unpadded window's embedding; what lies in the padding never matters."""
    student = _student(name)
    imu = _windows()
    zeros = torch.cat([imu, torch.zeros(2, 3, 64)], dim=2)  # (2, 3, 2T)
    noise = torch.cat([imu, 100 * torch.randn(2, 3, 64)], dim=2)
    n_valid = torch.tensor([T, T])
    torch.testing.assert_close(student(noise, n_valid), student(zeros, n_valid), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(student(noise), student(zeros), atol=1e-3)


@pytest.mark.parametrize("name", ["cnn1d", "dlinear"])
@torch.no_grad()
def test_windows_of_different_lengths_in_one_batch_read_only_their_own_samples(name):
    student = _student(name)
    short = _windows(1)[:, :, :40]  # a 40-sample trial
    batch = torch.zeros(2, 3, T + 10)
    batch[0, :, :T] = _windows(1)[0]
    batch[1, :, :40] = short[0]
    z = student(batch, torch.tensor([T, 40]))
    torch.testing.assert_close(z[1:], student(short), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z[:1], student(_windows(1)), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["cnn1d", "transformer"])
@torch.no_grad()
def test_instance_norm_makes_students_blind_to_units_and_offsets(name):
    imu = _windows()
    rescaled = imu * torch.tensor([9.81, 1 / 57.3, 1000.0])[None, :, None] + 3.0
    normalised = _student(name)
    torch.testing.assert_close(normalised(rescaled), normalised(imu), atol=1e-4, rtol=1e-3)
    raw = _student(name, "none")
    assert not torch.allclose(raw(rescaled), raw(imu), atol=1e-3)


def test_unknown_input_norm_names_the_valid_ones():
    with pytest.raises(ConfigError, match="instance, none"):
        build_student(StudentSpec("cnn1d", 3, T, None, TINY["cnn1d"], "revin"))


def test_masked_statistics_never_count_the_padding():
    imu = _windows()
    padded = torch.cat([imu, torch.zeros(2, 3, 50)], dim=2)
    mean, std = masked_channel_stats(padded, torch.tensor([T, T]))
    torch.testing.assert_close(mean[..., 0], imu.mean(dim=-1))
    torch.testing.assert_close(std[..., 0], torch.sqrt(imu.var(dim=-1, unbiased=False) + NORM_EPS))


def test_resampling_the_valid_part_matches_the_windows_stage_stretch():
    samples = np.random.default_rng(0).normal(size=(1, 40, 3)).astype(np.float32)
    padded = torch.zeros(1, 3, 70)
    padded[0, :, :40] = torch.as_tensor(samples[0].T)
    got = resample_valid(padded, torch.tensor([40]), 100)
    np.testing.assert_allclose(got.numpy(), stretch_windows(samples, 100), atol=1e-6)
