"""Per-epoch validation: the loss on the val split and the teacher-anchor accuracy.

Teacher-anchor nearest-class accuracy (``val_anchor_acc``): the frozen teacher side defines
one anchor per class, the L2-normalised mean of the projected, L2-normalised teacher
embeddings ``z_teacher`` of that class's *train* windows. A val window counts as correct
when its L2-normalised student embedding ``z_student`` (encoder + projector, eval mode) has
the highest cosine similarity with the anchor of its own class. It asks whether the student
lands in the teacher's class regions without training any classifier; chance is about
1 / n_classes. Val windows whose class has no train window are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from comodo.pipeline.training.loader import Batch, PairSource
from comodo.pipeline.training.model import DistillModel


@torch.no_grad()
def class_anchors(model: DistillModel, source: PairSource, keep: np.ndarray, labels: np.ndarray,
                  device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    """Per-class anchors (K, D_z) from the teacher features of ``keep`` rows, and class ids."""
    store = source.open()[1]
    sums: dict[int, torch.Tensor] = {}
    for chunk in range(store.n_chunks):
        sl = store.chunk_slice(chunk)
        mask = keep[sl] & (labels[sl] >= 0)
        if not mask.any():
            continue
        feat = store.read_span(source.teacher_array, sl.start, sl.stop)
        block = torch.as_tensor(np.asarray(feat, dtype=np.float32)[mask], device=device)
        z_teacher = model.embed_teacher(block)  # (n, D_z)
        ids = torch.as_tensor(labels[sl][mask], device=device)
        for k in ids.unique().tolist():
            part = z_teacher[ids == k].sum(dim=0)
            sums[k] = sums[k] + part if k in sums else part
    class_ids = np.array(sorted(sums), dtype=np.int64)
    if not len(class_ids):
        return torch.zeros(0, model.queue.dim, device=device), class_ids
    anchors = torch.stack([sums[k] for k in class_ids.tolist()])  # (K, D_z)
    return F.normalize(anchors, dim=1), class_ids


def batch_valid(n_valid: np.ndarray | None, rows: np.ndarray, device: torch.device
                ) -> torch.Tensor | None:
    """(B,) real samples of the batch's windows (store ``rows``), or None (all of them)."""
    return None if n_valid is None else torch.as_tensor(n_valid[rows], device=device)


@torch.no_grad()
def validate(model: DistillModel, batches: Iterable[Batch], labels: np.ndarray,
             anchors: torch.Tensor, class_ids: np.ndarray, objective: Callable[..., torch.Tensor],
             objective_kwargs: dict[str, Any], device: torch.device,
             n_valid: np.ndarray | None = None) -> dict[str, float | None]:
    """Mean val loss (queue as it is, nothing enqueued) and teacher-anchor accuracy."""
    was_training = model.training
    model.eval()
    loss_sum, n_loss, correct, n_acc = 0.0, 0, 0, 0
    lookup = {int(k): i for i, k in enumerate(class_ids)}
    for batch in batches:
        imu = batch.imu.to(device, non_blocking=True)
        z_student, z_teacher = model(imu, batch.feat_teacher.to(device),
                                     batch_valid(n_valid, batch.rows, device))
        kwargs = dict(objective_kwargs)
        if "temperature" in kwargs and model.temperature is not None:
            kwargs["temperature"] = model.temperature()
        loss = objective(z_teacher, z_student, model.queue.features(), **kwargs)
        loss_sum += float(loss) * len(batch)
        n_loss += len(batch)
        target = np.array([lookup.get(int(y), -1) for y in labels[batch.rows]])
        known = target >= 0
        if known.any() and len(anchors):
            sims = F.normalize(z_student.float(), dim=1) @ anchors.T  # (B, K)
            pred = sims.argmax(dim=1).cpu().numpy()
            correct += int((pred[known] == target[known]).sum())
            n_acc += int(known.sum())
    model.train(was_training)
    return {
        "val_loss": loss_sum / n_loss if n_loss else None,
        "val_anchor_acc": correct / n_acc if n_acc else None,
    }
