"""The transfer stage: a run distilled on A, the SVM on B's split with B's labels."""

import json

import pytest

from comodo.pipeline.stages.distill import DistillConfig
from comodo.pipeline.stages.distill import run as distill_run
from comodo.pipeline.stages.transfer import TransferConfig, TransferPair, run
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import StoreNotFoundError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_encoder_from_a_scores_b_at_b_labels_after_resampling(tmp_path):
    data = tmp_path / "data"
    write_paired_stores(data / "a", 60, n_channels=2, n_samples=32, teacher_dim=8, n_classes=3,
                        chunk_rows=16, teacher_key="t", kind="hidden_class")
    write_paired_stores(data / "b", 60, n_channels=2, n_samples=16, teacher_dim=8, n_classes=4,
                        chunk_rows=16, teacher_key="t", kind="hidden_class", seed=1)
    rate_a = ChunkedStore.open(str(data / "a/windows.zarr")).attrs["rate_hz"]
    cfg = DistillConfig(teacher="t", epochs=1, batch_size=16, queue_size=16, projector_hidden=16,
                        projector_dim=8, device="cpu",
                        student_options={"widths": [8, 16], "kernels": [5, 3]})
    for seed in (0, 1):
        distill_run(cfg.model_copy(update={"seed": seed}), data, "a",
                    tmp_path / "runs" / "a" / f"s{seed}")
    pair = TransferPair(source="a", target="b", runs="s*")
    [record] = run(TransferConfig(pairs=[pair]), data, tmp_path / "runs", tmp_path / "metrics")
    on_disk = json.loads((tmp_path / "metrics/b/transfer_from_a.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["target_rate_hz"] == ChunkedStore.open(str(data / "b/windows.zarr")
                                                         ).attrs["rate_hz"]
    assert rate_a > 0
    names = [r["method"] for r in on_disk["rows"]]
    assert names == ["cnn1d comodo on a", "cnn1d random init (a layout)"]
    for row in on_disk["rows"]:
        assert row["dataset"] == "b" and row["table"] == "transfer" and row["n_seeds"] == 2
        assert row["acc@1"] <= row["acc@3"] <= row["acc@5"] == 1.0  # four classes of B


def test_missing_source_runs_are_named(tmp_path):
    write_paired_stores(tmp_path / "data" / "b", 20, n_channels=2, n_samples=16, teacher_dim=8,
                        n_classes=2, chunk_rows=16, teacher_key="t")
    pair = TransferPair(source="a", target="b", runs="nothing*")
    with pytest.raises(StoreNotFoundError, match="nothing"):
        run(TransferConfig(pairs=[pair]), tmp_path / "data", tmp_path / "runs", tmp_path / "m")
