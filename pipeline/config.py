"""Typed stage configs read from params.yaml.

One frozen pydantic model per stage, unknown keys rejected. The CLI alone reads
params.yaml (``load_section``); below a stage's ``run(cfg, ...)`` only plain values travel.
A dataset entry in ``datasets:`` may override any key of a stage section for that dataset
(``datasets.<name>.<stage>: {...}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comodo.stores.errors import ConfigError

C = TypeVar("C", bound="StageConfig")

DEFAULT_PARAMS = "params.yaml"


class StageConfig(BaseModel):
    """Base of every stage config: frozen, unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetEntry(StageConfig):
    """One entry of the ``datasets:`` map: which adapter reads which raw folder."""

    adapter: str
    root: str
    options: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-stage overrides, e.g. {imu: {scale: mmea}}"
    )


def read_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; run from the project root or pass --params")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"params file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"params file {path} must hold a mapping of sections, found {type(data).__name__}")
    return data


def build(model: type[C], values: dict[str, Any], where: str) -> C:
    """Validate ``values`` into ``model``; errors name the section and the bad key."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<section>'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"invalid config in {where}: {problems}") from None


def dataset_entry(params: dict[str, Any], name: str, params_path: str = DEFAULT_PARAMS) -> DatasetEntry:
    datasets = params.get("datasets") or {}
    if name not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise ConfigError(
            f"dataset {name!r} is not configured in {params_path} (configured: {known}); add "
            f"'datasets.{name}: {{adapter: <adapter>, root: <raw folder>}}' (see README, 'Adding a dataset')"
        )
    return build(DatasetEntry, datasets[name], f"{params_path}: datasets.{name}")


def load_section(
    model: type[C],
    section: str,
    params_path: str | Path = DEFAULT_PARAMS,
    dataset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> C:
    """The config of stage ``section``, with the dataset's overrides and CLI overrides applied."""
    params = read_params(params_path)
    values = dict(params.get(section) or {})
    where = f"{params_path}: {section}"
    if dataset is not None:
        entry = dataset_entry(params, dataset, str(params_path))
        extra = entry.overrides.get(section) or {}
        if extra:
            values.update(extra)
            where += f" (+ datasets.{dataset}.overrides.{section})"
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build(model, values, where)
