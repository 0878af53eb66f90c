"""comodo's Mantis student reproduces the reference's (mantis-tsfm ``Mantis8M`` per channel,
inputs resized to 512 with linear interpolation, channel-major concat).

The oracle's reduced Mantis8M is loaded through comodo's own ``load_mantis`` from a folder in
the layout ``save_pretrained`` writes (``config.json`` + ``model.safetensors``)."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from comodo.pipeline.students.base import PerChannel
from comodo.pipeline.students.mantis import ResizedMantis, load_mantis, resize

from .conftest import oracle_path

pytest.importorskip("mantis.architecture", reason="the optional extra mantis-tsfm is not installed "
                                                  "(pip install 'comodo[mantis]')")
ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture
def student(tmp_path):
    shutil.copy(oracle_path("mantis_student.safetensors"), tmp_path / "model.safetensors")
    shutil.copy(oracle_path("mantis_student_config.json"), tmp_path / "config.json")
    network = load_mantis(str(tmp_path)).eval()
    saved = load_file(str(tmp_path / "model.safetensors"))
    assert set(saved) == set(network.state_dict())
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, saved[key], atol=0, rtol=0)
    encoder = ResizedMantis(network)
    return PerChannel(encoder, encoder.out_dim, 6, "concat").eval()


@pytest.mark.parametrize("tag", ["x512", "x1000", "xshort"])
def test_mantis_student_reproduces_the_reference_embeddings(oracle, student, tag):
    ref = oracle("mantis_student")
    x = torch.from_numpy(ref[tag])  # (B, 6, T)
    with torch.no_grad():
        concat = student(x)  # (B, 6 * hidden), channel-major
    torch.testing.assert_close(concat, torch.from_numpy(ref[f"{tag}_concat"]), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(concat.reshape(2, 6, -1), torch.from_numpy(ref[f"{tag}_per_channel"]),
                               atol=ATOL, rtol=RTOL)
    if tag != "x512":
        torch.testing.assert_close(resize(x), torch.from_numpy(ref[f"{tag}_resized"]), atol=1e-6, rtol=0)
