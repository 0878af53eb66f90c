"""Typed stage configs read from params.yaml.

One frozen pydantic model per stage, unknown keys rejected. The CLI alone reads
params.yaml (``load_section``); below a stage's ``run(cfg, ...)`` only plain values travel.
A dataset entry in ``datasets:`` may override any key of a stage section for that dataset
(``datasets.<name>.<stage>: {...}``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from comodo.stores.errors import ConfigError

C = TypeVar("C", bound="StageConfig")

DEFAULT_PARAMS = "params.yaml"

# every params.yaml section a stage reads; a dataset entry may override the stage ones
STAGE_SECTIONS = ("synth", "ingest", "imu", "windows", "features", "distill", "evaluate", "uma",
                  "benchmark", "transfer", "sweep", "report", "export", "fewshot")
OVERRIDABLE = ("ingest", "imu", "windows", "features", "distill", "evaluate", "uma", "benchmark",
               "sweep", "fewshot")  # the sections a stage reads for one dataset (``--dataset``)
TOP_LEVEL_KEYS = ("data_dir", "storage_options", "runs_dir", "datasets", *STAGE_SECTIONS)


def nearest(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(name), sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def with_nearest(names: Iterable[str], valid: Iterable[str]) -> str:
    """``'a' (did you mean 'b'?), 'c'``: each unknown name with its closest valid one, if any."""
    valid = sorted(valid)
    return ", ".join(f"{name!r}{nearest(name, valid)}" for name in names)


def unknown_name(what: str, name: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    return f"unknown {what} {name!r}{nearest(name, valid)}; valid: {', '.join(valid)}"


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

    @field_validator("overrides")
    @classmethod
    def _known_sections(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for section in value:
            if section not in OVERRIDABLE:
                raise ValueError(unknown_name("override section", section, OVERRIDABLE))
        return value


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
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: {unknown_name('top-level section', key, TOP_LEVEL_KEYS)}")
    return data


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (``list[M]``, ``M | None``, ``dict[str, M]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple, dict):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The field names valid at ``loc`` (a pydantic error location) inside ``model``."""
    models = [model]
    for part in loc:
        if not isinstance(part, str):
            continue  # a list index or dict key: the same models hold
        inner = [m for m in models if part in m.model_fields]
        models = [x for m in inner for x in _models_in(m.model_fields[part].annotation)] or models
    return {name for m in models for name in m.model_fields}


def _problem(model: type[BaseModel], error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "<section>"
    if error["type"] == "extra_forbidden":
        key = error["loc"][-1]
        valid = _fields_at(model, error["loc"][:-1])
        return f"{where}: {unknown_name('key', key, valid)}"
    return f"{where}: {error['msg']}"


def build(model: type[C], values: dict[str, Any], where: str) -> C:
    """Validate ``values`` into ``model``; errors name the section and the bad key."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(_problem(model, e) for e in err.errors())
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
