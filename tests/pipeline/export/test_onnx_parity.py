"""ONNX against torch for every student: features within 1e-4, any batch size."""

import importlib.util

import numpy as np
import pytest
import torch

from comodo.pipeline.export.convert import embedding_parity, encoder_to_onnx
from comodo.pipeline.students import StudentSpec, build_student
from comodo.stores.errors import ModelLoadError

EXPORTABLE = {
    "cnn1d": (None, {"widths": [8, 16], "kernels": [5, 3]}),
    "cnn1d per channel": ("concat", {"widths": [8, 16], "kernels": [5, 3]}),
    "transformer": ("concat", {"patch_len": 10, "d_model": 16, "depth": 1, "heads": 2}),
    "dlinear": (None, {}),
    "informer": (None, {"d_model": 16, "heads": 2, "layers": 1, "d_ff": 32}),
    "moment": ("mean", {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_kv": 8, "d_ff": 32,
                        "seq_len": 64}),
}


@pytest.mark.parametrize("case", sorted(EXPORTABLE))
def test_onnx_features_equal_torch_within_1e4_for_every_batch_size(case, tmp_path, one_torch_thread):
    reduction, options = EXPORTABLE[case]
    spec = StudentSpec(case.split()[0].rstrip(","), 3, 100, reduction, options)
    torch.manual_seed(0)
    encoder = build_student(spec).eval()
    encoder_to_onnx(encoder, 3, 100, tmp_path / "encoder.onnx", spec.name)
    imu = np.random.default_rng(1).normal(0, 2, (7, 3, 100)).astype(np.float32)  # (N, C, T)
    with torch.inference_mode():
        z_torch = encoder(torch.as_tensor(imu)).numpy()
    parity = embedding_parity(tmp_path / "encoder.onnx", imu, z_torch)
    assert parity["max_abs_diff"] < 1e-4 and parity["max_abs_diff_batch_1"] < 1e-4
    assert parity["max_abs_torch"] > 1e-2  # features that could differ


def test_transformer_masking_a_padded_patch_is_refused_not_exported_wrong(tmp_path,
                                                                         one_torch_thread):
    # 100 samples in patches of 7: the last patch is mostly padding and masked out; that
    # attention path fixes the traced batch size in the graph
    spec = StudentSpec("transformer", 3, 100, "mean",
                       {"patch_len": 7, "d_model": 16, "depth": 1, "heads": 2})
    with pytest.raises(ModelLoadError, match="only for the batch size it was traced with"):
        encoder_to_onnx(build_student(spec).eval(), 3, 100, tmp_path / "encoder.onnx", "transformer")


def test_timesnet_cannot_be_exported_and_says_why(tmp_path, one_torch_thread):
    spec = StudentSpec("timesnet", 3, 100, None, {"d_model": 8, "d_ff": 16, "layers": 1, "top_k": 2})
    with pytest.raises(ModelLoadError, match="timesnet.*cannot be exported to ONNX.*fft"):
        encoder_to_onnx(build_student(spec), 3, 100, tmp_path / "encoder.onnx", "timesnet")


@pytest.mark.skipif(importlib.util.find_spec("mantis") is None,
                    reason="mantis-tsfm (the mantis extra) is not installed")
def test_mantis_exports_within_1e4(tmp_path, one_torch_thread):
    spec = StudentSpec("mantis", 2, 512, "concat", {})
    encoder = build_student(spec).eval()
    encoder_to_onnx(encoder, 2, 512, tmp_path / "encoder.onnx", "mantis")
    imu = np.random.default_rng(1).normal(0, 1, (3, 2, 512)).astype(np.float32)
    with torch.inference_mode():
        z_torch = encoder(torch.as_tensor(imu)).numpy()
    assert embedding_parity(tmp_path / "encoder.onnx", imu, z_torch)["max_abs_diff"] < 1e-4
