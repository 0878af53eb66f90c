"""Each method learns from video labels and unlabelled paired IMU and beats chance on IMU alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from uma_fixture import N_CLASSES, synthetic_arrays

from comodo.pipeline.uma.data import Normalizer, UmaData, eval_view, normalized, train_view
from comodo.pipeline.uma.evaluate import evaluate
from comodo.pipeline.uma.heads import SEQUENCE_HEADS
from comodo.pipeline.uma.methods import METHODS, build_method
from comodo.pipeline.uma.splits import make_splits
from comodo.pipeline.uma.training import ORDERS, UmaSettings
from comodo.stores.errors import UnknownNameError

CPU = torch.device("cpu")
FAST = UmaSettings(latent=16, hidden=32, t_rec=4, epochs=60, batch_size=32, device="cpu")


def fit(data: UmaData, method: str, settings: UmaSettings = FAST, seed: int = 0):
    splits = make_splits(data.labels.size, data.subjects, seed)
    raw = train_view(data, splits)
    norm = Normalizer.fit(raw)
    model = build_method(method)
    model.fit(normalized(raw, norm), settings, seed, CPU)
    return model, eval_view(data, splits.test, norm)


@pytest.mark.parametrize("method", ["st", "ca", "c3t"])
def test_method_beats_chance_on_imu_only_test(method: str) -> None:
    model, test = fit(synthetic_arrays(), method)
    rows = evaluate(model, test, ["imu", "video", "both"], ["clean"], seed=0)
    acc = {r["modality"]: r["accuracy"] for r in rows}
    assert acc["imu"] >= 2.5 / N_CLASSES, acc
    assert acc["video"] >= 2.5 / N_CLASSES, acc
    assert acc["both"] >= 2.5 / N_CLASSES, acc


@pytest.mark.parametrize("order", list(ORDERS))
def test_every_training_order_trains_and_predicts(order: str) -> None:
    settings = FAST.model_copy(update={"order": order, "epochs": 40})
    model, test = fit(synthetic_arrays(), "ca", settings)
    acc = evaluate(model, test, ["imu", "video"], ["clean"], seed=0)
    assert {r["modality"] for r in acc} == {"imu", "video"}
    assert max(r["accuracy"] for r in acc) > 1.5 / N_CLASSES, (order, acc)


@pytest.mark.parametrize("head", list(SEQUENCE_HEADS))
def test_every_c3t_head_fits_and_gives_one_logit_per_class(head: str) -> None:
    settings = FAST.model_copy(update={"head": head, "epochs": 20})
    model, test = fit(synthetic_arrays(), "c3t", settings)
    logits = model.logits(test.imu, None)
    assert logits.shape == (test.labels.size, N_CLASSES)
    assert np.isfinite(logits).all()


def test_unknown_method_error_lists_the_known_methods() -> None:
    with pytest.raises(UnknownNameError, match="known uma methods: c3t, ca, early_fusion"):
        build_method("cca")
    assert set(METHODS) >= {"st", "ca", "c3t"}


@pytest.mark.parametrize("baseline", ["early_fusion", "feature_fusion", "late_fusion"])
def test_fusion_baselines_learn_video_and_predict_from_either_modality_alone(baseline: str) -> None:
    model, test = fit(synthetic_arrays(), baseline, FAST.model_copy(update={"epochs": 30}))
    acc = {r["modality"]: r["accuracy"] for r in evaluate(model, test, ["imu", "video", "both"],
                                                          ["clean"], seed=0)}
    assert acc["video"] >= 2.5 / N_CLASSES, acc
    assert 0.0 <= acc["imu"] <= 1.0 and model.logits(test.imu, None).shape == (test.labels.size, N_CLASSES)
