"""Registries and typed stage configs."""

import pytest

from comodo.pipeline.config import dataset_entry, load_section
from comodo.pipeline.registry import DATASETS, Registry, load_plugins
from comodo.pipeline.stages.imu import ImuConfig
from comodo.pipeline.stages.windows import WindowsConfig
from comodo.stores.errors import ConfigError, UnknownNameError


def test_unknown_registry_name_lists_the_known_ones():
    load_plugins()
    with pytest.raises(UnknownNameError) as err:
        DATASETS.get("ego5d")
    assert "unknown dataset 'ego5d'" in str(err.value) and "ego4d" in str(err.value)


def test_registering_a_name_twice_is_refused():
    reg: Registry = Registry("thing")
    reg.register("a")(object)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(object)


def test_unknown_config_key_is_rejected_naming_section_and_key(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("imu:\n  target_rate_hz: 200\n  resample_rate: 100\n")
    with pytest.raises(ConfigError, match=r"imu: resample_rate: unknown key 'resample_rate'"):
        load_section(ImuConfig, "imu", params)


def test_dataset_overrides_apply_to_their_stage_only(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "windows: {window_s: 5.0}\n"
        "datasets:\n  utd: {adapter: utd_mhad, root: x, overrides: {windows: {mode: whole}}}\n"
    )
    assert load_section(WindowsConfig, "windows", params, dataset="utd").mode == "whole"
    assert load_section(WindowsConfig, "windows", params).mode == "tile"
    cfg = load_section(WindowsConfig, "windows", params, dataset="utd")
    with pytest.raises(Exception, match="frozen"):
        cfg.mode = "tile"


def test_missing_dataset_names_the_params_key_to_set(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets.ego4d: \{adapter"):
        dataset_entry({"datasets": {"synthetic": {}}}, "ego4d")
