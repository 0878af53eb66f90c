"""``imu.resampler`` picks the filter of the imu stage and is part of its provenance."""

from __future__ import annotations

import numpy as np
import polars as pl
from ego4d_fixture import make_dataset

from comodo.pipeline import signal
from comodo.pipeline.datasets.base import ImuData
from comodo.pipeline.stages import imu, ingest
from comodo.stores.chunked import ChunkedStore


def test_the_reference_resampler_runs_through_the_imu_stage(tmp_path):
    make_dataset(tmp_path / "raw", {"a": ("walk", "train")}, video_s=6.0, imu_rate=50.0)
    ingest.run(ingest.IngestConfig(require_splits=[]), tmp_path / "data", "tiny", "ego4d",
               str(tmp_path / "raw"), {})  # one recording: no test split needed
    stores = {}
    for name in ("polyphase", "reference"):  # the second run starts the store over
        imu.run(imu.ImuConfig(workers=0, resampler=name), tmp_path / "data", "tiny", "ego4d",
                str(tmp_path / "raw"), {})
        store = ChunkedStore.open(str(tmp_path / "data" / "tiny" / "imu.zarr"))
        stores[name] = (np.asarray(store.array("imu")[:]), store.provenance.config_hash)
    raw = pl.read_csv(next((tmp_path / "raw" / "imu").glob("*.csv")))
    recording = ImuData(raw["canonical_timestamp_ms"].to_numpy() / 1000.0,
                        raw.drop("canonical_timestamp_ms").to_numpy(), raw.columns[1:],
                        ["m/s^2"] * 3 + ["rad/s"] * 3)  # Ego4D's units
    for name, (values, _) in stores.items():
        (segment,), _, _ = signal.process(recording, 200.0, 0.5, "none", name)
        np.testing.assert_array_equal(values, segment.values)
    assert stores["polyphase"][1] != stores["reference"][1]
    assert np.abs(stores["polyphase"][0] - stores["reference"][0]).max() > 1e-4
