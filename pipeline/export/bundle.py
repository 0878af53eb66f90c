"""An export bundle: the files ``comodo export`` writes and ``comodo predict`` runs.

``exports/<ds>/<run>/`` holds::

    encoder.onnx         the student encoder: ``imu`` (B, C, T) float32 -> ``embedding`` (B, D)
                         float32, B dynamic
    encoder.int8.onnx    with ``--quantize int8``: the same graph with int8 weights (dynamic
                         quantisation: activations quantised per batch at run time)
    classifier.onnx      the fitted classifier: ``features`` (B, D) (float64, or the dtype in
                         bundle.json) -> ``label`` (B,) int64 class ids and ``probabilities``
                         (B, K) float32
    preprocessing.json   how a recording becomes windows (``Preprocessing``)
    bundle.json          classes, files, how the top-1 class is chosen, parity and metrics
                         measured at export
    model_card.md        data, teacher, objective, metrics, size, latency

Only numpy, onnxruntime and comodo's IMU reading and resampling code are needed to run it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from comodo.stores.errors import ModelLoadError

FORMAT_VERSION = 1
ENCODER_FILES = {"fp32": "encoder.onnx", "int8": "encoder.int8.onnx"}
CLASSIFIER_FILE = "classifier.onnx"
TOP1_RULES = ("decision", "probability")  # the classifier's own label, or the most probable class


@dataclass(frozen=True)
class Preprocessing:
    """Everything between an IMU file and the encoder's input, as the pipeline did it."""

    layout: str  # dataset adapter whose IMU reader reads one recording's file
    layout_options: dict[str, Any]  # that adapter's options (units of named columns, rate ...)
    channels: list[str]  # encoder input channels, in order (picked from the recording's)
    units: list[str]  # canonical units after conversion (g, deg/s, or as the source)
    scale: str  # "none" | "mmea": raw counts scaled as the imu stage does
    rate_hz: float | None  # resampling target; None: the native rate is kept
    resampler: str  # signal.RESAMPLERS: the filter from the native to the target rate
    counts: dict[str, float] | None  # raw counts per g and per deg/s (scale "mmea")
    max_gap_s: float  # a recording is split into segments at longer gaps
    window_mode: str  # "tile": windows of window_samples; "whole": one window per recording
    window_samples: int  # T, samples per window
    window_s: float  # T / rate
    normalisation: str = ("none: windows hold the resampled values in the canonical units; "
                          "any per-window normalisation is part of encoder.onnx, the L2 "
                          "normalisation and standardisation of features part of classifier.onnx")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "preprocessing.json") -> Preprocessing:
        try:
            return cls(**data)
        except TypeError as err:  # missing or unknown fields
            raise ModelLoadError(f"{where} does not hold this version's preprocessing ({err}); "
                                 f"re-run `comodo export`") from None


@dataclass(frozen=True)
class BundleInfo:
    """bundle.json: what the bundle is and what was measured when it was written."""

    dataset: str
    run: str
    classes: list[str]
    top1: str  # one of TOP1_RULES
    classifier: dict[str, Any]  # kind, file, class_ids (its probability columns), fitted facts
    encoder: dict[str, Any]  # student spec, out_dim, n_params, files by precision
    parity: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelLoadError(f"{path} not found: {path.parent} is not a complete export bundle; "
                             f"write one with `comodo export`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path} is not valid JSON ({err}); re-run `comodo export`") from None


@dataclass(frozen=True)
class Ranked:
    """Classes of N windows ranked best first (N, K) and each one's probability (N, K)."""

    classes: np.ndarray
    probabilities: np.ndarray


def rank(labels: np.ndarray, proba: np.ndarray, class_ids: np.ndarray, top1: str) -> Ranked:
    """Rank the classifier's classes per row: the top-1 by ``top1``, the others by probability.

    ``labels`` (N,) are the classifier's own class ids, ``proba`` (N, K) its probabilities
    with one column per id of ``class_ids`` (K,), sorted. ``decision``: the classifier's label
    first (an SVM's vote, which Platt probabilities can contradict); ``probability``: the
    first most probable class. The rest follow by decreasing probability (on ties the
    later class first, as scikit-learn's ``top_k_accuracy_score`` orders them).
    """
    n, _k = proba.shape  # (N, K)
    if top1 == "decision":
        first = np.searchsorted(class_ids, labels.astype(np.int64))  # (N,) columns
    else:
        first = np.argmax(proba, axis=1)  # (N,)
    order = np.argsort(proba, axis=1, kind="stable")[:, ::-1]  # (N, K) most probable first
    rest = order[order != first[:, None]].reshape(n, -1)  # (N, K - 1)
    columns = np.concatenate([first[:, None], rest], axis=1)  # (N, K)
    return Ranked(class_ids[columns], np.take_along_axis(proba, columns, axis=1))


def session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session on ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    if not path.is_file():
        raise ModelLoadError(f"{path} not found; re-run `comodo export` (with --quantize int8 "
                             f"for the int8 encoder)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures come back as exceptions, not log lines
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for bad graphs
        raise ModelLoadError(f"{path} could not be loaded by onnxruntime: "
                             f"{str(err).strip().splitlines()[0]}; re-run `comodo export`") from None


class Bundle:
    """A loaded bundle: ``embed`` windows, ``classify`` features, ``predict`` both."""

    def __init__(self, path: str | Path, precision: str = "fp32", threads: int = 1):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ModelLoadError(f"bundle folder {self.path} does not exist; write one with "
                                 f"`comodo export -d DS`")
        self.info = _read_json(self.path / "bundle.json")
        if self.info.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"{self.path}/bundle.json has format version "
                                 f"{self.info.get('format_version')}, this code reads "
                                 f"{FORMAT_VERSION}; re-run `comodo export`")
        self.prep = Preprocessing.from_dict(_read_json(self.path / "preprocessing.json"),
                                            str(self.path / "preprocessing.json"))
        if precision not in ENCODER_FILES:
            raise ModelLoadError(f"unknown precision {precision!r}; valid: {', '.join(ENCODER_FILES)}")
        self.classes: list[str] = list(self.info["classes"])
        self.top1: str = self.info["top1"]
        self.class_ids = np.asarray(self.info["classifier"]["class_ids"], dtype=np.int64)  # (K,)
        self.encoder = session(self.path / ENCODER_FILES[precision], threads)
        self.classifier = session(self.path / self.info["classifier"]["file"], threads)

    def embed(self, imu: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Encoder features (N, D) of windows ``imu`` (N, C, T)."""
        n, channels, samples = imu.shape  # (N, C, T)
        want = (len(self.prep.channels), self.prep.window_samples)
        if (channels, samples) != want:
            raise ModelLoadError(f"windows of shape {(channels, samples)} given to {self.path}, "
                                 f"whose encoder reads (channels, samples) = {want}")
        parts = [self.encoder.run(None, {"imu": np.ascontiguousarray(imu[i:i + batch_size],
                                                                    dtype=np.float32)})[0]
                 for i in range(0, n, batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.info["encoder"]["out_dim"]),
                                                            np.float32)

    def classify(self, z: np.ndarray) -> Ranked:
        """Classes of features ``z`` (N, D), ranked best first, with their probabilities."""
        if not len(z):
            k = len(self.classes)
            return Ranked(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        features = np.asarray(z, self.info["classifier"]["input_dtype"])  # (N, D)
        labels, proba = self.classifier.run(None, {"features": features})
        return rank(np.asarray(labels), np.asarray(proba), self.class_ids, self.top1)

    def predict(self, imu: np.ndarray) -> Ranked:
        return self.classify(self.embed(imu))
