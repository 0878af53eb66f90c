"""Supervised baselines (DLinear, Informer, TimesNet) as registered (B, C, T) -> (B, D) students."""

import pytest
import torch
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.students.dlinear import MovingAverage
from comodo.pipeline.students.informer import ProbSparseAttention
from comodo.pipeline.students.timesnet import fft_periods
from comodo.stores.errors import ConfigError

TINY = {
    "dlinear": {"seq_len": 64, "d_out": 8, "moving_avg": 7},
    "informer": {"d_model": 16, "heads": 2, "layers": 2, "d_ff": 32, "dropout": 0.0},
    "timesnet": {"d_model": 8, "d_ff": 8, "layers": 1, "top_k": 2, "num_kernels": 2,
                 "dropout": 0.0},
}


def toy_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 2-channel windows: slow vs fast oscillation, jittered phase, noise.

    The phase is kept near 0 so that a linear model (DLinear) can separate the classes too.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    t = torch.arange(64) / 64.0
    freq = torch.where(y == 0, 2.0, 9.0)[:, None, None]  # (N, 1, 1)
    phase = (torch.rand(n, 2, 1, generator=g) - 0.5) * 0.6
    return torch.sin(6.28 * freq * t + phase) + 0.3 * torch.randn(n, 2, 64, generator=g), y


def test_baselines_are_registered():
    assert {"dlinear", "informer", "timesnet"} <= set(STUDENTS)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("samples", [64, 50])
def test_baseline_maps_b_c_t_to_b_d_and_every_parameter_gets_a_gradient(name, samples):
    torch.manual_seed(0)
    student = build_student(StudentSpec(name, 2, samples, None, TINY[name]))
    z = student(torch.randn(3, 2, samples))
    assert z.shape == (3, student.out_dim)
    z.pow(2).mean().backward()
    missing = [n for n, p in student.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


@pytest.mark.parametrize("name", sorted(TINY))
def test_baseline_learns_a_separable_toy_task_above_chance(name):
    torch.manual_seed(0)
    student = build_student(StudentSpec(name, 2, 64, None, TINY[name]))
    head = nn.Linear(student.out_dim, 2)
    opt = torch.optim.Adam([*student.parameters(), *head.parameters()], lr=1e-2)
    x, y = toy_task(64, seed=0)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(head(student(x)), y).backward()
        opt.step()
    x_test, y_test = toy_task(64, seed=1)
    student.eval()
    with torch.no_grad():
        acc = (head(student(x_test)).argmax(1) == y_test).float().mean().item()
    assert acc >= 0.8


def test_informer_eval_features_are_deterministic():
    torch.manual_seed(0)
    student = build_student(StudentSpec("informer", 2, 64, None, TINY["informer"])).eval()
    x = torch.randn(4, 2, 64)
    with torch.no_grad():
        assert torch.equal(student(x), student(x))


def test_probsparse_attention_only_updates_the_top_queries():
    torch.manual_seed(0)
    attention = ProbSparseAttention(8, 1, factor=1, dropout=0.0).eval()
    x = torch.randn(1, 50, 8)
    with torch.no_grad():
        q, k, v = attention.qkv(x).chunk(3, dim=-1)
        context = attention(x)  # (1, 50, 8)
        lazy = attention.out(v.mean(dim=1, keepdim=True))  # (1, 1, 8)
    is_lazy = torch.isclose(context, lazy.expand_as(context), atol=1e-6).all(-1)[0]
    n_active = attention._n(50)
    assert int((~is_lazy).sum()) == n_active < 50


def test_dlinear_trend_is_a_centred_moving_average_and_the_rest_is_seasonal():
    series = torch.arange(10, dtype=torch.float32)[None]  # a pure trend
    assert torch.allclose(MovingAverage(3)(series)[0, 1:-1], series[0, 1:-1])
    with pytest.raises(ConfigError, match="odd"):
        MovingAverage(4)


def test_timesnet_finds_the_period_of_a_sine():
    t = torch.arange(96, dtype=torch.float32)
    x = torch.sin(2 * torch.pi * t / 12)[None, :, None].repeat(2, 1, 3)  # (2, 96, 3)
    periods, weights = fft_periods(x, 1)
    assert periods == [12] and weights.shape == (2, 1)


@pytest.mark.parametrize("name", ["informer", "timesnet"])
def test_joint_channel_baselines_refuse_a_reduction(name):
    with pytest.raises(ConfigError, match="reduction"):
        build_student(StudentSpec(name, 2, 64, "mean", TINY[name]))
