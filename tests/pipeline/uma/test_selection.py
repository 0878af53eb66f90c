"""Model selection on D_Val: the tested weights are those of the best validation epoch."""

from __future__ import annotations

import numpy as np
import torch
from uma_fixture import synthetic_arrays

from comodo.pipeline.uma.data import Normalizer, eval_view, normalized, train_view
from comodo.pipeline.uma.evaluate import accuracy
from comodo.pipeline.uma.methods import SupervisedImu, build_method
from comodo.pipeline.uma.selection import BestEpoch, candidates
from comodo.pipeline.uma.splits import make_splits
from comodo.pipeline.uma.training import UmaSettings

SETTINGS = UmaSettings(latent=8, hidden=16, t_rec=2, epochs=6, batch_size=16, lr=3e-3, device="cpu")


def setup(seed: int = 0):
    data = synthetic_arrays(seed)
    splits = make_splits(data.labels.size, data.subjects, seed, kind="random", labels=data.labels)
    raw = train_view(data, splits)
    norm = Normalizer.fit(raw)
    return data, splits, norm, normalized(raw, norm), eval_view(data, splits.val, norm)


def test_the_restored_weights_are_the_best_validation_epoch_of_the_run() -> None:
    data, splits, norm, _view, val = setup()
    rows = np.concatenate([splits.har, splits.align])
    model = SupervisedImu()
    hook = BestEpoch(model, val)
    model.fit(norm.imu(data.imu[rows]), data.labels[rows], data.n_classes, SETTINGS, 0,
              torch.device("cpu"), hook)
    scores = [h.val_accuracy for h in hook.history]
    assert len(scores) == SETTINGS.epochs and len(set(scores)) > 1  # the epochs differ
    best = hook.restore()
    last_best = max(i for i, a in enumerate(scores) if a == max(scores)) + 1
    assert best.epoch == last_best and best.val_accuracy == max(scores)
    assert accuracy(model.logits(val.imu, None), val.labels) == max(scores)


def test_every_phase_of_an_align_first_run_is_scored_and_the_best_is_kept() -> None:
    _data, _splits, _norm, view, val = setup(1)
    model = build_method("c3t")
    hook = BestEpoch(model, val)
    model.fit(view, SETTINGS, 1, torch.device("cpu"), hook)
    assert [h.phase for h in hook.history] == ["align"] * 6 + ["har"] * 6
    best = hook.restore()
    assert best.val_accuracy == max(h.val_accuracy for h in hook.history)
    assert accuracy(model.logits(val.imu, None), val.labels) == best.val_accuracy


def test_a_search_grid_expands_to_every_combination_over_the_base_settings() -> None:
    grid = {"head": ["mlp_sum", "mlp_concat"], "t_rec": [4, 8]}
    out = candidates(SETTINGS, grid)
    assert [c for c, _ in out] == [{"head": h, "t_rec": t} for h in grid["head"] for t in grid["t_rec"]]
    assert all(s.lr == SETTINGS.lr and s.head == c["head"] and s.t_rec == c["t_rec"] for c, s in out)
