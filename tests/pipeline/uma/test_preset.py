"""`uma: {preset: paper}` is the paper's protocol spelled out; keys beside it win."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from comodo.pipeline.config import load_section
from comodo.pipeline.stages.uma import UmaConfig
from comodo.stores.errors import ConfigError

PAPER_SPELLED_OUT = yaml.safe_load("""
methods: [st, ca, c3t]
split: random
stratify: true
fractions: [0.4, 0.4, 0.1, 0.1]
time_base: stretch
select: val
noises: [clean, shift, misalign, dilation, crop]
settings: {lr: 0.0015, t_rec: 8, latent: 64, hidden: 128, epochs: 60, batch_size: 32}
method_settings: {ca: {order: combined}, c3t: {order: align_first, head: mlp_concat}}
map_method: c3t
""")


def section(tmp_path: Path, uma: dict) -> UmaConfig:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"uma": uma}))
    return load_section(UmaConfig, "uma", params)


def test_the_paper_preset_equals_its_spelled_out_settings(tmp_path: Path) -> None:
    preset = section(tmp_path, {"preset": "paper"})
    spelled = section(tmp_path, PAPER_SPELLED_OUT)
    assert preset.model_dump(exclude={"preset"}) == spelled.model_dump(exclude={"preset"})
    assert preset.settings_for("c3t").order == "align_first" and preset.settings_for("c3t").lr == 0.0015
    assert preset.settings_for("ca").order == "combined"
    assert preset != section(tmp_path, {})  # the preset is not the default protocol


def test_keys_beside_the_preset_win_and_nested_settings_merge(tmp_path: Path) -> None:
    cfg = section(tmp_path, {"preset": "paper", "seeds": [4], "settings": {"epochs": 5}})
    assert cfg.seeds == (4,) and cfg.settings.epochs == 5 and cfg.settings.t_rec == 8
    assert cfg.split == "random"


def test_an_unknown_preset_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises((ConfigError, KeyError), match="paper"):
        section(tmp_path, {"preset": "mine"})
