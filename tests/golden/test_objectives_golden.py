"""COMODO, InfoNCE and L2 objectives against the reference code's numbers (``../shared/oracle``).

Float32 tolerances of the fixtures' README: losses rtol 1e-5; gradients atol 1e-6 + rtol 1e-4
(L2: atol 1e-7); the queue exactly.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from comodo.pipeline.objectives import comodo, infonce, infonce_asymmetric, l2
from comodo.pipeline.queue import EmbeddingQueue

ORACLE = Path(__file__).resolve().parents[3] / "shared" / "oracle"
pytestmark = pytest.mark.skipif(not ORACLE.is_dir(),
                                reason=f"reference fixtures not present at {ORACLE}")


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(ORACLE / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def _loss_and_grad(objective, teacher, student, queue, **kwargs):
    z_student = torch.tensor(student, requires_grad=True)
    loss = objective(torch.tensor(teacher), z_student, queue, **kwargs)
    loss.backward()
    return loss.item(), z_student.grad.numpy()


def test_comodo_loss_gradients_and_queue_over_five_steps_match_the_reference():
    case = _case("comodo_loss")
    queue0 = torch.tensor(case["queue0"])  # (K, D), oldest first
    queue = EmbeddingQueue(*queue0.shape)
    queue.fill(queue0)
    temps = {"teacher_temperature": float(case["teacher_temp"]),
             "student_temperature": float(case["student_temp"])}
    offsets = case["batch_offsets"]
    for step in range(len(case["batch_sizes"])):
        rows = slice(offsets[step], offsets[step + 1])
        oldest_first = torch.roll(queue.bank, -int(queue.ptr), dims=0)  # (K, D)
        assert np.array_equal(oldest_first.numpy(), case["queue_before"][step])
        loss, grad = _loss_and_grad(comodo, case["teacher"][rows], case["student"][rows],
                                    queue.features(), **temps)
        assert loss == pytest.approx(float(case["loss"][step]), rel=1e-5)
        np.testing.assert_allclose(grad, case["grad_student"][rows], atol=1e-6, rtol=1e-4)
        queue.enqueue(torch.tensor(case["teacher"][rows]))
        oldest_first = torch.roll(queue.bank, -int(queue.ptr), dims=0)
        assert np.array_equal(oldest_first.numpy(), case["queue_after"][step])


@pytest.mark.parametrize("tag", ["a", "b"])
@pytest.mark.parametrize("objective, prefix", [(infonce, "i2c"),
                                               (infonce_asymmetric, "comodo")])
def test_infonce_variants_match_imu2clip_and_the_comodo_code(objective, prefix, tag):
    """``infonce``: IMU2CLIP's symmetric sum; ``infonce_asymmetric``: COMODO's defaults."""
    case = _case("infonce")
    loss, grad = _loss_and_grad(objective, case[f"teacher_{tag}"], case[f"student_{tag}"],
                                torch.zeros(0, case[f"teacher_{tag}"].shape[1]),
                                temperature=0.1)
    assert loss == pytest.approx(float(case[f"{prefix}_loss_{tag}"]), rel=1e-5)
    np.testing.assert_allclose(grad, case[f"{prefix}_grad_student_{tag}"], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("tag", ["a", "b"])
def test_infonce_temperature_gradient_is_imu2clips_for_a_directly_learned_tau(tag):
    case = _case("infonce")
    tau = torch.tensor(0.1, requires_grad=True)
    infonce(torch.tensor(case[f"teacher_{tag}"]), torch.tensor(case[f"student_{tag}"]),
            torch.zeros(0, 1), temperature=tau).backward()
    assert tau.grad.item() == pytest.approx(float(case[f"i2c_grad_tau_{tag}_f64"]), rel=1e-4)


@pytest.mark.parametrize("prefix, teacher", [("", "teacher"), ("unnorm_", "unnorm_teacher")])
def test_l2_matches_the_reference_mse_with_the_teacher_as_given(prefix, teacher):
    case = _case("l2")
    loss, grad = _loss_and_grad(l2, case[teacher], case["student"], torch.zeros(0, 1))
    assert loss == pytest.approx(float(case[f"{prefix}loss"]), rel=1e-5)
    np.testing.assert_allclose(grad, case[f"{prefix}grad_student"], atol=1e-7, rtol=1e-4)
