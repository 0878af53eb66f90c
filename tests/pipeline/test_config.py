"""params.yaml validation: typos and out-of-range values are errors that name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from comodo.pipeline.config import load_section, read_params
from comodo.pipeline.signal import unit_factors
from comodo.pipeline.stages.distill import DistillConfig
from comodo.pipeline.stages.imu import ImuConfig
from comodo.pipeline.stages.ingest import IngestConfig
from comodo.pipeline.stages.windows import WindowsConfig
from comodo.stores.errors import ConfigError, InputDataError

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def with_dataset(**entry) -> dict:
    return {"datasets": {"tiny": {"adapter": "ego4d", "root": "raw", **entry}}}


def test_the_repository_params_file_is_valid():
    read_params(REPO_PARAMS)
    load_section(WindowsConfig, "windows", REPO_PARAMS, dataset="synthetic")


def test_an_unknown_top_level_section_names_the_nearest_section(tmp_path):
    path = write(tmp_path, {"featrues": {"teacher": "x"}})
    with pytest.raises(ConfigError, match=r"'featrues' \(did you mean 'features'\?\)"):
        read_params(path)


def test_an_unknown_override_section_names_the_nearest_section(tmp_path):
    path = write(tmp_path, with_dataset(overrides={"windwos": {"mode": "whole"}}))
    with pytest.raises(ConfigError, match=r"'windwos' \(did you mean 'windows'\?\)"):
        load_section(WindowsConfig, "windows", path, dataset="tiny")


def test_an_unknown_key_in_an_override_names_the_nearest_key(tmp_path):
    path = write(tmp_path, with_dataset(overrides={"distill": {"queu_size": 8}}))
    with pytest.raises(ConfigError, match=r"datasets.tiny.overrides.distill.*'queu_size' "
                                          r"\(did you mean 'queue_size'\?\)"):
        load_section(DistillConfig, "distill", path, dataset="tiny")


def test_an_unknown_key_in_a_nested_list_names_the_nested_model_key(tmp_path):
    from comodo.pipeline.stages.benchmark import BenchmarkConfig

    path = write(tmp_path, {"benchmark": {"methods": [{"name": "r", "knd": "random_init"}]}})
    with pytest.raises(ConfigError, match=r"methods.0.knd: unknown key 'knd' \(did you mean 'kind'\?\)"):
        load_section(BenchmarkConfig, "benchmark", path)


@pytest.mark.parametrize(("model", "section", "values", "key"), [
    (WindowsConfig, "windows", {"window_s": 0}, "window_s"),
    (WindowsConfig, "windows", {"window_s": -5}, "window_s"),
    (WindowsConfig, "windows", {"max_reject_fraction": 1.5}, "max_reject_fraction"),
    (ImuConfig, "imu", {"target_rate_hz": 0}, "target_rate_hz"),
    (ImuConfig, "imu", {"max_gap_s": -1}, "max_gap_s"),
    (IngestConfig, "ingest", {"max_reject_fraction": -0.1}, "max_reject_fraction"),
])
def test_out_of_range_values_are_errors_naming_the_key(tmp_path, model, section, values, key):
    path = write(tmp_path, {section: values})
    with pytest.raises(ConfigError, match=rf"{section}: {key}: Input should be"):
        load_section(model, section, path)


@pytest.mark.parametrize("adapter", ["ego4d", "utd_mhad", "manifest"])
def test_an_unknown_adapter_option_names_the_nearest_option(tmp_path, adapter):
    from comodo.pipeline.stages.ingest import make_adapter

    with pytest.raises(ConfigError, match=r"unknown option\(s\) 'sedd' \(did you mean 'seed'\?\) "
                                          rf"for adapter '{adapter}'; valid options: .*seed"):
        make_adapter(adapter, str(tmp_path), "tiny", {"sedd": 1})


def test_an_unknown_teacher_param_or_student_option_names_the_nearest():
    from comodo.pipeline.registry import load_plugins
    from comodo.pipeline.students.base import StudentSpec, build_student
    from comodo.pipeline.teachers.base import build_teacher

    load_plugins()
    with pytest.raises(ConfigError, match=r"no params 'revison' \(did you mean 'revision'\?\)"):
        build_teacher("timesformer", params={"revison": "main"})
    with pytest.raises(ConfigError, match=r"no option\(s\) 'widht' \(did you mean 'widths'\?\)"):
        build_student(StudentSpec("cnn1d", 6, 1000, None, {"widht": [8]}))


def test_an_unknown_imu_unit_names_channel_unit_and_the_known_units():
    with pytest.raises(InputDataError, match=r"channel acc_y has unknown unit 'furlong/s\^2'; "
                                             r"known units: .*m/s\^2"):
        unit_factors(["g", "furlong/s^2"], ["acc_x", "acc_y"], "none")


def test_known_units_convert_to_canonical_units():
    factors, units = unit_factors(["mg", "rad/s", "a.u."], ["acc_x", "gyro_x", "other"], "none")
    np.testing.assert_allclose(factors, [1e-3, 180.0 / np.pi, 1.0])
    assert units == ["g", "deg/s", "a.u."]
