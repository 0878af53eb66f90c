import math

import pytest
import torch

from comodo.pipeline.objectives import (
    bind_objective,
    check_objective_params,
    comodo,
    infonce,
    infonce_asymmetric,
    l2,
    objective_params,
)
from comodo.pipeline.registry import OBJECTIVES
from comodo.stores.errors import ConfigError, UnknownNameError


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


TEACHER = [[1.0, 0.0], [0.6, 0.8]]
STUDENT = [[0.8, 0.6], [0.0, 2.0]]  # second row is not unit length: objectives normalise
QUEUE = [[0.0, 1.0]]


def test_comodo_matches_hand_computed_cross_entropy_over_queue_and_batch():
    anchors = QUEUE + TEACHER
    total = 0.0
    for t, s in zip(TEACHER, STUDENT, strict=True):
        p_t = _softmax([_dot(t, a) / 0.1 for a in anchors])
        p_s = _softmax([_dot(_unit(s), a) / 0.05 for a in anchors])
        total += -sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s, strict=True))
    want = total / 2
    got = comodo(torch.tensor(TEACHER), torch.tensor(STUDENT), torch.tensor(QUEUE))
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_comodo_temperatures_change_the_value_and_empty_queue_works():
    t, s = torch.tensor(TEACHER), torch.tensor(STUDENT)
    base = comodo(t, s, torch.tensor(QUEUE))
    warmer = comodo(t, s, torch.tensor(QUEUE), teacher_temperature=0.5, student_temperature=0.5)
    assert not torch.isclose(base, warmer)
    no_queue = comodo(t, s, torch.zeros(0, 2))
    assert torch.isfinite(no_queue)


def test_comodo_is_minimal_when_student_equals_teacher_and_temperatures_match():
    torch.manual_seed(0)
    z_teacher = torch.randn(8, 16)
    queue = torch.nn.functional.normalize(torch.randn(32, 16), dim=1)
    same = comodo(z_teacher, z_teacher.clone(), queue, student_temperature=0.1)
    other = comodo(z_teacher, torch.randn(8, 16), queue, student_temperature=0.1)
    assert same < other


def test_infonce_matches_hand_computed_symmetric_cross_entropy():
    tau = 0.2
    t = [_unit(v) for v in TEACHER]
    s = [_unit(v) for v in STUDENT]
    logits = [[_dot(si, tj) / tau for tj in t] for si in s]
    row = sum(-math.log(_softmax(logits[i])[i]) for i in range(2)) / 2
    col = sum(-math.log(_softmax([logits[j][i] for j in range(2)])[i]) for i in range(2)) / 2
    got = infonce(torch.tensor(TEACHER), torch.tensor(STUDENT), torch.zeros(0, 2), temperature=tau)
    assert got.item() == pytest.approx(row + col, rel=1e-5)  # summed, as IMU2CLIP
    one_way = infonce_asymmetric(torch.tensor(TEACHER), torch.tensor(STUDENT), torch.zeros(0, 2),
                                 temperature=tau)
    assert one_way.item() == pytest.approx(row, rel=1e-5)
    assert objective_params("infonce") == objective_params("infonce_asymmetric") == {
        "temperature": 0.1}


def test_infonce_accepts_a_learned_temperature_tensor_and_sends_it_gradient():
    log_t = torch.tensor(math.log(0.1), requires_grad=True)
    loss = infonce(torch.tensor(TEACHER), torch.tensor(STUDENT), torch.zeros(0, 2),
                   temperature=log_t.exp())
    loss.backward()
    assert log_t.grad is not None and log_t.grad.abs() > 0


def test_l2_is_the_mean_squared_error_to_the_teacher_as_given():
    teacher = [[2.0, 0.0], [0.6, 0.8]]  # first row not unit length: used as given
    want = sum(
        sum((a - b) ** 2 for a, b in zip(_unit(s), t, strict=True))
        for s, t in zip(STUDENT, teacher, strict=True)
    ) / 4  # B * D elements
    got = l2(torch.tensor(teacher), torch.tensor(STUDENT), torch.zeros(0, 2))
    assert got.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("name", ["comodo", "infonce", "infonce_asymmetric", "l2"])
def test_no_gradient_reaches_the_teacher_side(name):
    z_teacher = torch.randn(4, 8, requires_grad=True)
    queue = torch.randn(6, 8, requires_grad=True)
    z_student = torch.randn(4, 8, requires_grad=True)
    OBJECTIVES.get(name)(z_teacher, z_student, queue).backward()
    assert z_teacher.grad is None
    assert queue.grad is None
    assert z_student.grad is not None and z_student.grad.abs().sum() > 0


def test_objective_params_and_binding_pick_only_declared_keywords():
    assert objective_params("comodo") == {"teacher_temperature": 0.1, "student_temperature": 0.05}
    fn, kwargs = bind_objective("infonce", {"temperature": 0.3, "teacher_temperature": 0.1})
    assert fn is infonce and kwargs == {"temperature": 0.3}
    with pytest.raises(ConfigError, match="takes: teacher_temperature, student_temperature"):
        check_objective_params("comodo", {"temperature": 0.2})


def test_unknown_objective_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="comodo, infonce, infonce_asymmetric, l2"):
        OBJECTIVES.get("byol")
