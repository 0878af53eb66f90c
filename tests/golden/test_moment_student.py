"""comodo's MOMENT student reproduces the reference's (momentfm ``classify`` + IMUStudentMLP).

The oracle's reduced MOMENT (T5 d_model 64, 2 layers) loads strictly into comodo's student
under the same key names (its pre-training head, token embedding and position table are
skipped; the position table equals the one comodo computes)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.students.moment import positions

from .conftest import oracle_path

ATOL, RTOL = 1e-5, 1e-4


def oracle_student(input_length: str = "full"):
    config = json.loads(oracle_path("moment_student_config.json").read_text())
    t5 = config["t5_config"]
    options = {"weights": str(oracle_path("moment_student.safetensors")), "seq_len": config["seq_len"],
               "patch_len": config["patch_len"], "input_length": input_length,
               **{k: t5[k] for k in ("d_model", "num_layers", "num_heads", "d_kv", "d_ff",
                                      "feed_forward_proj", "dropout_rate")}}
    return build_student(StudentSpec("moment", 6, 1000, "concat", options)).eval()


@pytest.mark.parametrize("tag", ["x512", "x1000", "xpad"])
def test_moment_student_reproduces_the_reference_embeddings(oracle, tag):
    ref = oracle("moment_student")
    student = oracle_student()
    x = torch.from_numpy(ref[tag])  # (B, 6, T)
    mask = torch.from_numpy(ref["xpad_mask"]) if tag == "xpad" else None  # (B, T)
    with torch.no_grad():
        pooled = student(x, mask)  # (B, 6 * d), index d * 6 + c
        per_channel = student.encoder(x.reshape(-1, x.shape[-1]),
                                      None if mask is None else mask.repeat_interleave(6, 0))
    torch.testing.assert_close(pooled, torch.from_numpy(ref[f"{tag}_pooled"]), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(per_channel.reshape(x.shape[0], 6, -1),
                               torch.from_numpy(ref[f"{tag}_per_channel"]), atol=ATOL, rtol=RTOL)
    assert x.shape[-1] // 8 == int(ref[f"{tag}_n_patches"])


def test_short_recordings_are_left_padded_and_masked_as_the_reference_collate(oracle):
    ref = oracle("moment_student")
    with torch.no_grad():
        pooled = oracle_student()(torch.from_numpy(ref["xshort"]))  # (B, 6, 420): padded to 512 inside
    torch.testing.assert_close(pooled, torch.from_numpy(ref["xpad_pooled"]), atol=ATOL, rtol=RTOL)


def test_resizing_to_512_is_an_option_and_differs_from_the_reference(oracle):
    ref = oracle("moment_student")
    x1000 = torch.from_numpy(ref["x1000"])
    with torch.no_grad():
        resized = oracle_student("resize")(x1000)
        direct = oracle_student("resize")(torch.nn.functional.interpolate(x1000, size=512, mode="linear"))
    torch.testing.assert_close(resized, direct, atol=1e-6, rtol=0)
    assert (resized - torch.from_numpy(ref["x1000_pooled"])).abs().max() > 1e-2


def test_the_skipped_position_table_is_the_one_comodo_computes():
    table = load_file(str(oracle_path("moment_student.safetensors")))["patch_embedding.position_embedding.pe"]
    torch.testing.assert_close(positions(125, 64, torch.device("cpu")), table[0, :125], atol=1e-6, rtol=0)
