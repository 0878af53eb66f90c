"""``comodo export``: runs/<ds>/<run>/encoder.* + windows.zarr -> exports/<ds>/<run>/ bundle.

The bundle (``export.bundle``) holds the student encoder as ONNX, the classifier that the
evaluate stage fits on its features (refit here: same features, seed and settings) as ONNX,
the class names, the preprocessing of the imu and windows stages, and a model card. Before
it is kept, the bundle is run with onnxruntime on the test split's windows and checked
against the torch encoder (max |difference| of the features) and against evaluate's
predictions (fraction of equal top-1 classes); both go to bundle.json and the card. With
``quantize: int8`` an int8 encoder is written beside the fp32 one, with the test-split
accuracy, size and latency of each.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from torch import nn

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation.svm import encode_windows
from comodo.pipeline.export import card, convert
from comodo.pipeline.export.bundle import (
    CLASSIFIER_FILE,
    ENCODER_FILES,
    Bundle,
    BundleInfo,
    Preprocessing,
    write_json,
)
from comodo.pipeline.export.fit import CLASSIFIERS, Features, Fitted
from comodo.pipeline.stages.common import DatasetPaths, output_config
from comodo.pipeline.stages.distill import latest_run
from comodo.pipeline.stages.evaluate import EvaluateConfig, open_windows, split_rows
from comodo.pipeline.stages.imu import ImuConfig
from comodo.pipeline.students import StudentSpec, count_parameters, load_encoder
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError
from comodo.stores.provenance import config_hash

log = logging.getLogger(__name__)


class ExportConfig(StageConfig):
    run: str | None = None  # runs/<ds>/<run>/; None: evaluate's run, else the latest distill run
    format: Literal["onnx"] = "onnx"
    quantize: Literal["none", "int8"] = "none"
    classifier: str = "svm"  # a name in export.fit.CLASSIFIERS: svm | linear
    latency_windows: int = Field(200, ge=1)  # windows timed one by one for the card, one thread


@dataclass(frozen=True)
class Source:
    """Where the bundle's parts come from: the dataset's layout and the imu stage settings."""

    adapter: str
    adapter_options: dict[str, Any]
    max_gap_s: float
    target_rate_hz: float | None
    scale: str
    resampler: str
    counts: dict[str, float]
    imu_config_hash: str  # of the imu section's output fields, as imu.zarr's provenance has it


def source_of(adapter: str, adapter_options: dict[str, Any], imu_cfg: ImuConfig) -> Source:
    return Source(adapter, dict(adapter_options), imu_cfg.max_gap_s, imu_cfg.target_rate_hz,
                  imu_cfg.scale, imu_cfg.resampler, imu_cfg.scale_factors.model_dump(),
                  config_hash(output_config(imu_cfg)))


def preprocessing(source: Source, store: ChunkedStore, imu_store: ChunkedStore) -> Preprocessing:
    """The bundle's preprocessing: the windows store's layout and the imu stage's settings,
    which must be those imu.zarr was made with."""
    if imu_store.provenance.config_hash != source.imu_config_hash:
        raise ConfigError(f"the imu section of the params differs from the one {imu_store.url} "
                          f"was made with (config hash {imu_store.provenance.config_hash} vs "
                          f"{source.imu_config_hash}); re-run the imu and windows stages or use "
                          f"the params they ran with")
    details = store.provenance.details
    _rows, _channels, n_samples = store.array("imu").shape
    return Preprocessing(
        layout=source.adapter, layout_options=dict(source.adapter_options),
        channels=list(store.attrs["channels"]), units=list(store.attrs["units"]),
        scale=source.scale, rate_hz=source.target_rate_hz, resampler=source.resampler,
        counts=dict(source.counts),
        max_gap_s=source.max_gap_s, window_mode=str(details.get("mode", "tile")),
        window_samples=int(n_samples), window_s=float(store.attrs["window_s"]))


@dataclass(frozen=True)
class Inputs:
    """What the bundle is built from: preprocessing, classes, features and test windows."""

    prep: Preprocessing
    classes: list[str]
    data: Features
    test_imu: np.ndarray  # (N_test, C, T)


def read_inputs(encoder: nn.Module, eval_cfg: EvaluateConfig, source: Source, data_dir: Path,
                dataset: str) -> Inputs:
    """The windows store's train and test windows encoded as evaluate encodes them."""
    index, store, classes = open_windows(data_dir, dataset)
    imu_store = ChunkedStore.open(DatasetPaths(data_dir, dataset).imu_store, expect={"stage": "imu"})
    prep = preprocessing(source, store, imu_store)
    labels = index["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    tr, te = (np.sort(split_rows(index, s, store.url))
              for s in (eval_cfg.train_split, eval_cfg.test_split))
    data = Features(encode_windows(encoder, store, tr, eval_cfg.batch_size), labels[tr],
                    encode_windows(encoder, store, te, eval_cfg.batch_size), labels[te])
    return Inputs(prep, classes, data, store.read_rows("imu", te))


def run(cfg: ExportConfig, eval_cfg: EvaluateConfig, source: Source, data_dir: Path, dataset: str,
        runs_dir: Path = Path("runs"), metrics_dir: Path = Path("metrics"),
        out_root: Path = Path("exports")) -> dict[str, Any]:
    """Write ``out_root/<ds>/<run>/``; returns bundle.json's content."""
    run_name = cfg.run or eval_cfg.run or latest_run(Path(runs_dir) / dataset)
    run_dir = Path(runs_dir) / dataset / run_name
    encoder, meta = load_encoder(run_dir / "encoder")
    inputs = read_inputs(encoder, eval_cfg, source, data_dir, dataset)
    fitted = CLASSIFIERS.get(cfg.classifier)(inputs.data, eval_cfg.seed, eval_cfg.n_jobs,
                                             eval_cfg.protocol)
    final = Path(out_root) / dataset / run_name
    work = final.with_name(f".{run_name}.partial")  # the bundle appears whole or not at all
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info = write_models(work, cfg, encoder, meta, fitted, inputs) | {"dataset": dataset,
                                                                     "run": run_name}
    write_json(work / "preprocessing.json", inputs.prep.to_dict())
    write_json(work / "bundle.json", BundleInfo(**info).to_dict())
    info |= verify(work, cfg, fitted, inputs.data, inputs.test_imu, info)
    write_json(work / "bundle.json", BundleInfo(**info).to_dict())
    card.write(work / "model_card.md", info, inputs.prep,
               _evaluated(Path(metrics_dir) / dataset / "evaluate.json", run_name),
               _read_optional(run_dir / "metrics.json"))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    log.info("export %s: bundle in %s (top-1 agreement with evaluate %.3f, max |onnx - torch| %.2e)",
             dataset, final, info["parity"]["top1_agreement"],
             info["parity"]["embedding"]["max_abs_diff"])
    return BundleInfo(**info).to_dict()


def write_models(work: Path, cfg: ExportConfig, encoder: nn.Module, meta: dict[str, Any],
                 fitted: Fitted, inputs: Inputs) -> dict[str, Any]:
    """encoder.onnx (+ int8) and classifier.onnx; returns bundle.json's fields about them."""
    spec = StudentSpec.from_dict(meta["spec"])
    convert.encoder_to_onnx(encoder, spec.n_channels, spec.n_samples, work / ENCODER_FILES["fp32"],
                            spec.name)
    if cfg.quantize == "int8":
        convert.quantize_int8(work / ENCODER_FILES["fp32"], work / ENCODER_FILES["int8"])
    onx = convert.classifier_to_onnx(fitted.model, inputs.data.test_x.shape[1])
    (work / CLASSIFIER_FILE).write_bytes(onx.graph)
    return {
        "classes": inputs.classes, "top1": onx.top1,
        "classifier": {"kind": fitted.kind, "file": CLASSIFIER_FILE, "protocol": fitted.protocol,
                       "input_dtype": onx.input_dtype,
                       "class_ids": [int(c) for c in fitted.model.classes_],
                       "facts": _plain(fitted.facts)},
        "encoder": {"spec": spec.to_dict(), "out_dim": int(encoder.out_dim),
                    "n_params": count_parameters(encoder), "teacher": meta.get("teacher"),
                    "objective": meta.get("objective"),
                    "files": {p: f for p, f in ENCODER_FILES.items() if (work / f).is_file()}},
    }


def verify(work: Path, cfg: ExportConfig, fitted: Fitted, data: Features, test_imu: np.ndarray,
           info: dict[str, Any]) -> dict[str, Any]:
    """Parity of the written bundle with torch and evaluate, and each precision's metrics."""
    parity = {"embedding": convert.embedding_parity(work / ENCODER_FILES["fp32"], test_imu,
                                                    data.test_x),
              "classifier": convert.classifier_parity(
                  work / CLASSIFIER_FILE, fitted.model, np.concatenate([data.train_x, data.test_x]),
                  info["top1"], info["classifier"]["input_dtype"])}
    metrics = {}
    for precision, name in ENCODER_FILES.items():
        if not (work / name).is_file():
            continue
        ranked = Bundle(work, precision).predict(test_imu).classes  # (N_test, K)
        metrics[precision] = {
            **{f"acc@{k}": _acc_at(ranked, data.test_y, k) for k in (1, 3, 5)},
            "size_bytes": (work / name).stat().st_size,
            "latency_ms_per_window": round(convert.per_window_latency_ms(
                work / name, test_imu, cfg.latency_windows), 4),
            "latency_windows": cfg.latency_windows, "threads": 1}
        if precision == "fp32":
            parity["top1_agreement"] = float(np.mean(ranked[:, 0] == fitted.pred))
            parity["n_test"] = int(len(fitted.pred))
    metrics["classifier_size_bytes"] = (work / CLASSIFIER_FILE).stat().st_size
    return {"parity": parity, "metrics": metrics}


def _acc_at(ranked: np.ndarray, labels: np.ndarray, k: int) -> float | None:
    if not len(labels):
        return None
    return float((ranked[:, :k] == labels[:, None]).any(axis=1).mean())


def _plain(facts: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe scalars of a classifier's facts."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in facts.items()
            if isinstance(v, (int, float, str, bool, np.generic)) or v is None}


def _evaluated(path: Path, run_name: str) -> dict[str, Any] | None:
    """evaluate.json's row of this run's distilled encoder, when evaluate judged this run."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if Path(str(record.get("run", ""))).name != run_name:
        return None
    return next((r for r in record.get("rows", []) if r.get("variant") == "distilled"), None)


def _read_optional(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None
