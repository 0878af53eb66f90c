import numpy as np
import polars as pl
import pytest
import torch
from sklearn.metrics import top_k_accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn

from comodo.pipeline.evaluation.svm import (
    C_GRID,
    DIRECT_C,
    SVM_PROTOCOLS,
    ReferenceModel,
    encode_windows,
    evaluate_encoder,
    l2_rows,
    platt_allowed,
    rank_by_probability,
    reference_design,
    reference_svc,
    stratified_cap,
    svm_protocol,
)
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, UnknownNameError
from comodo.stores.index import read_table


class MeanPerChannel(nn.Module):
    """A fixed 'encoder': per-channel means (B, C, T) -> (B, C)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, imu):
        return imu.mean(dim=-1)


def _blobs(n_per, n_classes, dim, spread, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per)
    return centers[y] + spread * rng.normal(size=(len(y), dim)), y


def test_grid_is_1e_minus_4_to_1e4():
    assert C_GRID[0] == pytest.approx(1e-4) and C_GRID[-1] == pytest.approx(1e4)
    assert len(C_GRID) == 9


def test_both_protocols_are_registered_and_reference_is_the_default():
    assert list(SVM_PROTOCOLS) == ["comodo", "reference"]
    x, y = _blobs(12, 6, 8, spread=0.3, seed=0)  # 72 rows, 12 a class: the grid branch
    assert svm_protocol(x, y, x[:6], y[:6])["protocol"] == "reference"
    with pytest.raises(UnknownNameError, match="comodo, reference"):
        svm_protocol(x, y, x, y, protocol="libsvm")


def _blob_split(spread):
    """Train and test windows around the same class centres, with different noise."""
    x, y = _blobs(40, 6, 8, spread=spread, seed=0)
    xt, _ = _blobs(20, 6, 8, spread=0.0, seed=0)
    noise = np.random.default_rng(5).normal(size=xt.shape)
    return x, y, xt + spread * noise, np.repeat(np.arange(6), 20)


@pytest.mark.parametrize("protocol", ["reference", "comodo"])
def test_overlapping_classes_score_high_and_noise_scores_near_chance(protocol):
    x, y, xt, yt = _blob_split(spread=1.0)
    clean = svm_protocol(x, y, xt, yt, protocol=protocol)
    assert clean["acc@1"] > 0.95 and clean["acc@5"] >= clean["acc@3"] >= clean["acc@1"]
    assert clean["grid_branch"] and clean["best_C"] == 10.0
    rng = np.random.default_rng(1)
    noise = svm_protocol(rng.normal(size=x.shape), y, rng.normal(size=xt.shape), yt,
                         protocol=protocol)
    assert noise["acc@1"] < 0.4 and noise["acc@5"] > noise["acc@1"]


def test_reference_top1_falls_to_chance_when_the_grid_picks_a_tiny_c():
    """Well separated classes tie every C in cross-validation; the tie goes to C = 1e-4, whose
    Platt probabilities are flat, so the reference's argmax-of-probability top-1 is class 0
    for every window (1/6) while predict(), comodo's top-1, is right."""
    x, y, xt, yt = _blob_split(spread=0.3)
    ref = svm_protocol(x, y, xt, yt, protocol="reference")
    ours = svm_protocol(x, y, xt, yt, protocol="comodo")
    assert ref["best_C"] == ours["best_C"] == 1e-4 and ref["cv_acc"] == 1.0
    assert ref["acc@1"] == pytest.approx(1 / 6) and ref["acc@3"] == pytest.approx(3 / 6)
    assert ours["acc@1"] == 1.0


@pytest.mark.parametrize("per_class, n_classes", [(4, 6), (8, 5)])
def test_reference_fits_c_1e5_without_a_grid_on_small_data(per_class, n_classes):
    """n_train // n_classes < 5 (4 a class) or n_train < 50 (40 rows): one SVC, C = 1e5."""
    x, y = _blobs(per_class, n_classes, 8, spread=0.5, seed=2)
    out = svm_protocol(x, y, x, y, protocol="reference")
    assert out["best_C"] == DIRECT_C and not out["grid_branch"] and out["cv_acc"] is None
    assert out["n_folds"] == 0 and out["n_train"] == len(y)


def test_reference_scales_with_all_train_rows_and_caps_like_train_test_split():
    x, y = _blobs(50, 6, 8, spread=0.5, seed=3)
    design = reference_design(x, y, cap=120)
    assert design.grid and len(design.y) == 120
    assert np.allclose(design.scaler.mean_, l2_rows(x).mean(axis=0), atol=1e-6)
    full = design.scaler.transform(l2_rows(x))
    want_z, _, want_y, _ = train_test_split(full, y, train_size=120, random_state=0, stratify=y)
    assert np.array_equal(design.z, want_z) and np.array_equal(design.y, want_y)
    assert np.bincount(design.y).tolist() == [20] * 6


def test_reference_platt_seed_is_the_first_draw_after_np_random_seed():
    x, y = _blobs(10, 4, 6, spread=1.5, seed=4)
    z = reference_design(x, y).z
    with platt_allowed():
        ours = reference_svc(1.0, 7, grid=False).fit(z, y).predict_proba(z)
        np.random.seed(7)
        theirs = reference_svc(1.0, 7, grid=False).set_params(random_state=None).fit(z, y)
    assert np.array_equal(ours, theirs.predict_proba(z))


def test_probability_ranking_gives_argmax_and_sklearns_top_k():
    x, y = _blobs(15, 7, 6, spread=2.0, seed=5)
    xt, yt = _blobs(10, 7, 6, spread=2.0, seed=6)
    design = reference_design(x, y)
    with platt_allowed():
        model = ReferenceModel(design.scaler, reference_svc(1.0, 0, True).fit(design.z, design.y))
    proba = model.predict_proba(xt)
    ranked = rank_by_probability(model, xt)
    assert np.array_equal(ranked[:, 0], np.argmax(proba, axis=1))
    for k in (3, 5):
        hit = (ranked[:, :k] == yt[:, None]).any(axis=1).mean()
        assert hit == pytest.approx(top_k_accuracy_score(yt, proba, k=k), abs=0)


def test_stratified_cap_keeps_class_proportions():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    picked = stratified_cap(labels, cap=100)
    assert len(picked) <= 100 and len(set(picked)) == len(picked)
    assert np.bincount(labels[picked]).tolist() == [90, 9, 1]
    assert len(stratified_cap(labels[:50], cap=100)) == 50


@pytest.mark.parametrize("protocol", ["reference", "comodo"])
def test_single_class_is_refused(protocol):
    with pytest.raises(ConfigError, match=">= 2 classes"):
        svm_protocol(np.zeros((10, 2)), np.zeros(10, int), np.zeros((2, 2)), np.zeros(2, int),
                     protocol=protocol)


def test_evaluate_encoder_reads_the_splits_of_the_index(tmp_path):
    write_paired_stores(tmp_path, 90, n_channels=3, n_samples=16, teacher_dim=4, n_classes=3,
                        chunk_rows=16, teacher_key="t")
    store = ChunkedStore.open(str(tmp_path / "windows.zarr"), mode="r+")
    index = read_table(str(tmp_path / "windows.parquet"))
    # make the class readable from the direction of the channel means
    labels = index["label_id"].to_numpy()
    for chunk in range(store.n_chunks):
        sl = store.chunk_slice(chunk)
        block = store.read_chunk(chunk)["imu"] * 0.1
        block[np.arange(len(block)), labels[sl], :] += 2.0
        store.write_chunk(chunk, {"imu": block})
    result = evaluate_encoder(MeanPerChannel(), store, index)
    assert result["n_train"] == int((index["split"] == "train").sum())
    assert result["n_test"] == int((index["split"] == "test").sum())
    assert result["acc@1"] > 0.9
    rows = np.array([17, 3, 40])
    feats = encode_windows(MeanPerChannel(), store, rows)
    assert np.allclose(feats, store.read_rows("imu", np.sort(rows)).mean(axis=-1), atol=1e-6)
    with pytest.raises(ConfigError, match="splits present"):
        evaluate_encoder(MeanPerChannel(), store, index.with_columns(pl.lit("x").alias("split")))
