"""Labels of D_Align and the IMU of D_HAR never reach training: poisoning them changes no weight."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from uma_fixture import N_CLASSES, synthetic_arrays

from comodo.pipeline.uma.data import Normalizer, UmaData, normalized, train_view
from comodo.pipeline.uma.methods import build_method
from comodo.pipeline.uma.splits import make_splits
from comodo.pipeline.uma.training import UmaSettings

SETTINGS = UmaSettings(latent=8, hidden=16, t_rec=2, epochs=3, batch_size=16, device="cpu")


def trained_weights(data: UmaData, method: str) -> dict[str, torch.Tensor]:
    splits = make_splits(data.labels.size, data.subjects, seed=1)
    raw = train_view(data, splits)
    model = build_method(method)
    model.fit(normalized(raw, Normalizer.fit(raw)), SETTINGS, 1, torch.device("cpu"))
    return {k: v.clone() for k, v in model.state_dict().items()}


def poisoned(data: UmaData) -> UmaData:
    splits = make_splits(data.labels.size, data.subjects, seed=1)
    rng = np.random.default_rng(99)
    labels, imu = data.labels.copy(), data.imu.copy()
    labels[splits.align] = rng.integers(0, N_CLASSES, splits.align.size)
    imu[splits.har] = 50.0 * rng.standard_normal(imu[splits.har].shape).astype(np.float32)
    return dataclasses.replace(data, labels=labels, imu=imu)


@pytest.mark.parametrize("method", ["st", "ca", "c3t", "early_fusion", "feature_fusion", "late_fusion"])
def test_poisoned_align_labels_and_har_imu_leave_weights_bit_identical(method: str) -> None:
    data = synthetic_arrays()
    bad = poisoned(data)
    assert not np.array_equal(bad.labels, data.labels) and not np.array_equal(bad.imu, data.imu)
    clean_w, bad_w = trained_weights(data, method), trained_weights(bad, method)
    assert clean_w.keys() == bad_w.keys()
    for name in clean_w:
        assert torch.equal(clean_w[name], bad_w[name]), name


def test_poisoning_a_training_input_does_change_the_weights() -> None:
    data = synthetic_arrays()
    splits = make_splits(data.labels.size, data.subjects, seed=1)
    labels = data.labels.copy()
    labels[splits.har] = (labels[splits.har] + 1) % N_CLASSES
    moved = dataclasses.replace(data, labels=labels)
    a, b = trained_weights(data, "ca"), trained_weights(moved, "ca")
    assert any(not torch.equal(a[k], b[k]) for k in a)
