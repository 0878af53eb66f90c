"""Models to ONNX: the student encoder (torch), its int8 twin, the fitted classifier (sklearn).

- ``encoder_to_onnx``: ``torch.onnx.export`` with the TorchScript tracer (``dynamo=False``:
  the dynamo exporter needs onnxscript, which is not installed), opset 17, dynamic batch.
  Tracing records one path through the model: shapes that depend on the window length are
  fixed (every bundle has one window length), shapes that depend on the batch stay
  symbolic, and control flow that depends on the values cannot be exported (TimesNet picks
  its periods from each batch's FFT; aten::fft_rfft has no ONNX symbolic either).
  ``embedding_parity`` measures what tracing preserved.
- ``quantize_int8``: onnxruntime's dynamic quantisation (int8 weights of MatMul/Gemm/Conv,
  activations quantised per batch), after its pre-processing pass (ONNX shape inference and
  graph optimisation; the symbolic shape pass is skipped, it fails on the transformer's
  reshapes). Weights use 7 of the 8 bits (``reduce_range``): with full-range weights the
  u8 x s8 products of CPUs without VNNI saturate, and the distilled transformer's int8
  features fell to a cosine of 0.46 with its fp32 ones (0.98 with reduce_range).
- ``classifier_to_onnx``: skl2onnx's conversion of the fitted scikit-learn objects: the
  comodo protocol's pipeline (Normalizer, StandardScaler, SVC with Platt probabilities) or
  the linear probe's (LogisticRegression), input float64; the reference protocol's scaler
  and SVC behind an L2 Normalizer, input float32 as ``svm.l2_rows`` makes it.
  ``classifier_parity`` compares its top-1 classes and probabilities with scikit-learn's.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer
from torch import nn

from comodo.pipeline.evaluation.svm import ReferenceModel
from comodo.pipeline.export.bundle import session
from comodo.stores.errors import ModelLoadError

log = logging.getLogger(__name__)

OPSET = 17
ML_OPSET = 3
PARITY_TOL = 1e-4  # max |ONNX - torch| of an encoder's features accepted at export


def encoder_to_onnx(encoder: nn.Module, n_channels: int, n_samples: int, path: Path,
                    name: str = "student") -> None:
    """Write ``encoder`` (B, C, T) -> (B, D) as ONNX with a dynamic batch axis."""
    example = torch.randn(2, n_channels, n_samples, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # tracer notes on Python values fixed by the window length
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(encoder.eval(), (example,), str(path), input_names=["imu"],
                              output_names=["embedding"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"imu": {0: "batch"}, "embedding": {0: "batch"}})
        except Exception as err:  # the exporter raises many types for unsupported operations
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"student {name!r} cannot be exported to ONNX: {first}") from None
    _check_batches(encoder, example, path, name)


def _check_batches(encoder: nn.Module, example: torch.Tensor, path: Path, name: str) -> None:
    """The graph must run, and match torch within ``PARITY_TOL``, for batch sizes other than
    the traced one (a trace can fix the batch where a model reshapes by Python numbers)."""
    for batch in (1, 3):
        imu = example[:1].repeat(batch, 1, 1) + torch.linspace(0, 1, batch)[:, None, None]
        with torch.inference_mode():
            z_torch = encoder(imu).numpy()
        try:
            z_onnx = run_encoder(path, imu.numpy())
        except Exception as err:  # onnxruntime's own error types
            first = str(err).strip().splitlines()[0][:200]
            raise ModelLoadError(f"student {name!r} exports to ONNX only for the batch size it was "
                                 f"traced with (batch {batch} fails: {first})") from None
        diff = float(np.abs(z_onnx - z_torch).max())
        if diff > PARITY_TOL:
            raise ModelLoadError(f"student {name!r}: ONNX features differ from torch by {diff:.2e} "
                                 f"(> {PARITY_TOL:g}) at batch {batch}; it cannot be exported")


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 quantisation of an ONNX encoder (weights int8, activations per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_logger = logging.getLogger()  # onnxruntime.quantization logs through the root logger
    level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(str(prepared), str(int8_path), weight_type=QuantType.QInt8,
                             reduce_range=True)
    finally:
        quant_logger.setLevel(level)


def run_encoder(path: Path, imu: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Features (N, D) of windows ``imu`` (N, C, T) through the ONNX encoder at ``path``."""
    sess = session(path)
    parts = [sess.run(None, {"imu": np.ascontiguousarray(imu[i:i + batch_size], np.float32)})[0]
             for i in range(0, len(imu), batch_size)]
    return np.concatenate(parts)


def embedding_parity(path: Path, imu: np.ndarray, z_torch: np.ndarray) -> dict[str, Any]:
    """Max |ONNX - torch| over the windows, in batches and for the first window alone."""
    z_onnx = run_encoder(path, imu)
    single = run_encoder(path, imu[:1], batch_size=1)
    return {"n_windows": int(len(imu)),
            "max_abs_diff": float(np.abs(z_onnx - z_torch).max()),
            "max_abs_diff_batch_1": float(np.abs(single - z_torch[:1]).max()),
            "max_abs_torch": float(np.abs(z_torch).max())}


def per_window_latency_ms(path: Path, imu: np.ndarray, n_windows: int, threads: int = 1) -> float:
    """Median wall time (ms) of one window through the ONNX model at ``path``, batch 1."""
    sess = session(path, threads)
    sess.run(None, {"imu": imu[:1]})  # warm-up
    times = []
    for i in range(n_windows):
        window = np.ascontiguousarray(imu[i % len(imu)][None], np.float32)  # (1, C, T)
        start = time.perf_counter()
        sess.run(None, {"imu": window})
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


@dataclass(frozen=True)
class OnnxClassifier:
    """A classifier as ONNX: the graph, how its top-1 class is chosen, its input dtype."""

    graph: bytes
    top1: str  # "decision": its ``label`` output; "probability": its most probable class
    input_dtype: str  # numpy dtype name of ``features``


@singledispatch
def classifier_to_onnx(model: Any, n_features: int) -> OnnxClassifier:
    """A fitted classifier as ONNX; one converter per model type."""
    raise ModelLoadError(f"no ONNX conversion for a classifier of type {type(model).__name__}")


def sklearn_to_onnx(model: Pipeline, n_features: int, dtype: type = np.float64) -> bytes:
    """skl2onnx's graph of a fitted pipeline, probabilities as a (B, K) tensor, input ``features``."""
    from skl2onnx import to_onnx

    final = model.steps[-1][1]
    with warnings.catch_warnings():  # skl2onnx reads SVC's Platt parameters, deprecated in 1.9
        warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
        onx = to_onnx(model, np.zeros((1, n_features), dtype),
                      target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
                      options={id(final): {"zipmap": False}})
    _rename_input(onx, "features")
    return onx.SerializeToString()


@classifier_to_onnx.register
def _pipeline(model: Pipeline, n_features: int) -> OnnxClassifier:
    """A scikit-learn pipeline; its label is ``predict()``: the top-1 rule ``decision``."""
    return OnnxClassifier(sklearn_to_onnx(model, n_features), "decision", "float64")


@classifier_to_onnx.register
def _reference(model: ReferenceModel, n_features: int) -> OnnxClassifier:
    """The reference protocol's scaler and SVC on L2-normalised float32 rows (as
    ``svm.l2_rows``); its top-1 is the most probable class."""
    l2 = Normalizer().fit(np.zeros((1, n_features)))  # stateless; fitted for skl2onnx's check
    pipe = Pipeline([("l2", l2), ("scaler", model.scaler), ("svc", model.svc)])
    return OnnxClassifier(sklearn_to_onnx(pipe, n_features, np.float32), "probability", "float32")


def _rename_input(onx: Any, name: str) -> None:
    """Call the graph's single input ``name`` (skl2onnx names it ``X``)."""
    old = onx.graph.input[0].name
    onx.graph.input[0].name = name
    for node in onx.graph.node:
        node.input[:] = [name if i == old else i for i in node.input]


def classifier_parity(path: Path, model: Any, x: np.ndarray, top1: str, input_dtype: str
                      ) -> dict[str, Any]:
    """The ONNX classifier against scikit-learn on features ``x`` (N, D): agreement of the
    top-1 class (by the rule ``top1``) and the largest probability difference."""
    labels, proba = session(path).run(None, {"features": np.asarray(x, input_dtype)})
    expected = model.predict_proba(x)  # (N, K)
    if top1 == "decision":
        ours, theirs = np.asarray(labels), model.predict(x)
    else:
        ours, theirs = np.argmax(proba, axis=1), np.argmax(expected, axis=1)
    return {"n": int(len(x)), "label_agreement": float(np.mean(ours == theirs)),
            "probability_max_abs_diff": float(np.abs(proba - expected).max())}
