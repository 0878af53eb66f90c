import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from comodo.pipeline.evaluation.svm import (
    C_GRID,
    encode_windows,
    evaluate_encoder,
    stratified_cap,
    svm_protocol,
)
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError
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


def test_separable_classes_score_high_and_noise_scores_near_chance():
    x, y = _blobs(40, 6, 8, spread=0.3, seed=0)
    xt, yt = _blobs(20, 6, 8, spread=0.3, seed=0)
    clean = svm_protocol(x, y, xt, yt)
    assert clean["acc@1"] > 0.95 and clean["acc@5"] >= clean["acc@3"] >= clean["acc@1"]
    rng = np.random.default_rng(1)
    noise = svm_protocol(rng.normal(size=x.shape), y, rng.normal(size=xt.shape), yt)
    assert noise["acc@1"] < 0.4 and noise["acc@5"] > noise["acc@1"]


def test_stratified_cap_keeps_class_proportions():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    picked = stratified_cap(labels, cap=100)
    assert len(picked) <= 100 and len(set(picked)) == len(picked)
    assert np.bincount(labels[picked]).tolist() == [90, 9, 1]
    assert len(stratified_cap(labels[:50], cap=100)) == 50


def test_single_class_is_refused():
    with pytest.raises(ConfigError, match=">= 2 classes"):
        svm_protocol(np.zeros((10, 2)), np.zeros(10, int), np.zeros((2, 2)), np.zeros(2, int))


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
