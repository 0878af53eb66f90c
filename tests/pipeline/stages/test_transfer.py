"""The transfer stage: a run distilled on A, the SVM on B's split with B's labels."""

import json
from pathlib import Path

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


REAL = Path(__file__).resolve().parents[3].parent / "shared/data/real-formats"
HAPT = REAL / "har_imu/maria-o-machado__ProjetoATD"


@pytest.mark.slow
def test_an_accelerometer_only_encoder_is_judged_on_real_hapt_windows(tmp_path):
    if not HAPT.is_dir():
        pytest.skip(f"real HAPT files not found at {HAPT}")
    from comodo.pipeline.stages import imu, ingest, windows

    data = tmp_path / "data"
    options = {"split": "random", "test_fraction": 0.3, "val_fraction": 0.0, "activities": [1, 2, 3, 4, 5, 6]}
    ingest.run(ingest.IngestConfig(), data, "hapt", "hapt", str(HAPT), options)
    imu.run(imu.ImuConfig(workers=1), data, "hapt", "hapt", str(HAPT), options)
    windows.run(windows.WindowsConfig(), data, "hapt")
    target = ChunkedStore.open(str(data / "hapt/windows.zarr"))
    assert target.attrs["channels"] == ["acc_x", "acc_y", "acc_z"]
    assert target.array("imu").shape == (83, 3, 1000)  # 5 s tiles at 200 Hz of 33 stretches
    write_paired_stores(data / "a", 60, n_channels=3, n_samples=64, teacher_dim=8, n_classes=3,
                        chunk_rows=16, teacher_key="t", kind="hidden_class")
    cfg = DistillConfig(teacher="t", epochs=1, batch_size=16, queue_size=16, projector_hidden=16,
                        projector_dim=8, device="cpu", student_options={"widths": [8, 16], "kernels": [5, 3]})
    distill_run(cfg, data, "a", tmp_path / "runs" / "a" / "s0")
    [record] = run(TransferConfig(pairs=[TransferPair(source="a", target="hapt", runs="s*")]), data,
                   tmp_path / "runs", tmp_path / "metrics")
    assert record["target_rate_hz"] == 200.0
    for row in record["rows"]:
        assert 0.0 < row["acc@1"] <= row["acc@3"] <= row["acc@5"] <= 1.0
