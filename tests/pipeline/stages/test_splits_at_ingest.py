"""Splits are settled at ingest: subject ids as ints or strings, and a missing test split
is an error there, naming the options to set, instead of at evaluate."""

from __future__ import annotations

import pytest
from ego4d_fixture import make_dataset

from comodo.pipeline.datasets.splits import parse_options
from comodo.pipeline.datasets.utd_mhad import UtdOptions
from comodo.pipeline.stages import ingest
from comodo.stores.errors import ConfigError


def test_subject_lists_accept_ints_and_strings():
    as_ints = parse_options(UtdOptions, {"test_subjects": [8], "val_subjects": [7]}, "utd_mhad", "d")
    as_strings = parse_options(UtdOptions, {"test_subjects": ["8"], "val_subjects": ["7"]},
                               "utd_mhad", "d")
    assert as_ints == as_strings and as_ints.test_subjects == ["8"]


def test_a_dataset_without_a_test_split_fails_at_ingest_naming_the_options(tmp_path):
    make_dataset(tmp_path / "raw", {"a": ("walk", "train"), "b": ("run", "train")}, video_s=3.0)
    with pytest.raises(ConfigError, match=r"no recording is in split\(s\) \['test'\] "
                                          r"\(recordings per split: train 2\).*split: random"):
        ingest.run(ingest.IngestConfig(), tmp_path / "data", "d", "ego4d", str(tmp_path / "raw"), {})
    assert not (tmp_path / "data" / "d" / "recordings.parquet").exists()


def test_a_dataset_with_train_and_test_passes_the_split_check(tmp_path):
    make_dataset(tmp_path / "raw", {"a": ("walk", "train"), "b": ("run", "test")}, video_s=3.0)
    summary = ingest.run(ingest.IngestConfig(), tmp_path / "data", "d", "ego4d",
                         str(tmp_path / "raw"), {})
    assert summary.kept == 2
