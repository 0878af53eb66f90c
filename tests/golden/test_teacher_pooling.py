"""TimeSformer and VideoMAE teachers pool as the reference's ``VideoTeacher.encode``.

The oracle's tiny checkpoints go through comodo's own loading code (hub folder layout:
``model.safetensors`` + ``config.json``). Stores hold the pooled vector as it comes out; the
L2 normalisation the reference applies in ``encode`` happens in comodo after the teacher
projector (``DistillModel.embed_teacher``): with ``teacher_projector: identity`` that is
``F.normalize(pooled)``, the reference's ``pooled_l2``.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from comodo.pipeline.heads import TeacherProjector
from comodo.pipeline.teachers import build_teacher

from .conftest import oracle_path

ATOL, RTOL = 1e-5, 1e-4  # the oracle README's tolerance for pooled vectors and hidden states
CASES = [("timesformer", "timesformer", "mean"), ("videomae", "videomae", "mean"),
         ("videomae_nomp", "videomae", "cls")]


def hub_folder(tmp_path, case: str):
    folder = tmp_path / case
    folder.mkdir()
    shutil.copy(oracle_path(f"teacher_{case}.safetensors"), folder / "model.safetensors")
    shutil.copy(oracle_path(f"teacher_{case}_config.json"), folder / "config.json")
    return folder


@pytest.mark.parametrize(("case", "teacher_name", "pooling"), CASES)
def test_teacher_pooling_and_hidden_states_match_the_reference(oracle, tmp_path, case, teacher_name,
                                                               pooling):
    ref = oracle("teacher_pooling")
    teacher = build_teacher(teacher_name, model=str(hub_folder(tmp_path, case)))
    assert teacher.pooling == pooling  # the reference's rule, chosen by default
    x = torch.from_numpy(ref[f"{case}_pixel_values"])  # (B, T, 3, H, W), normalised
    with torch.no_grad():
        pooled, _ = teacher(x)
        hidden = teacher.backbone(pixel_values=x).last_hidden_state  # (B, N, D)
        projector = TeacherProjector("identity", teacher.dim)
        pooled_l2 = F.normalize(projector(pooled), dim=1)  # as DistillModel.embed_teacher
    want = {"last_hidden_state": hidden, "pooled": pooled, "pooled_l2": pooled_l2}
    for name, got in want.items():
        torch.testing.assert_close(got, torch.from_numpy(ref[f"{case}_{name}"]), atol=ATOL, rtol=RTOL,
                                   msg=lambda m, n=name: f"{case} {n}: {m}")


def test_videomae_cls_pooling_is_an_option_that_differs_from_the_reference(oracle, tmp_path):
    ref = oracle("teacher_pooling")
    folder = hub_folder(tmp_path, "videomae")
    teacher = build_teacher("videomae", model=str(folder), pooling="cls")
    with torch.no_grad():
        pooled, _ = teacher(torch.from_numpy(ref["videomae_pixel_values"]))
    assert (pooled - torch.from_numpy(ref["videomae_pooled"])).abs().max() > 1e-2
