"""Stage commands: thin wrappers that load a config and call the stage's run()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from comodo.cli.common import DATASET_OPTION, PARAMS_OPTION, cli_command
from comodo.cli.main import app
from comodo.pipeline.config import dataset_entry, load_section, read_params
from comodo.stores.errors import ConfigError


def data_dir(params: str) -> str:
    """Top-level ``data_dir``: a local folder or an fsspec URL such as ``s3://bucket/prefix``."""
    return str(read_params(params).get("data_dir", "data"))


def storage_options(params: str) -> dict[str, Any]:
    """Top-level ``storage_options`` (e.g. ``{endpoint_url: ...}``) for ``data_dir``."""
    options = read_params(params).get("storage_options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{params}: storage_options must be a mapping, found {type(options).__name__}")
    return options


# the override sections dvc.yaml tracks for every dataset (sweep's only for sweep.dataset)
DVC_TRACKED = ("ingest", "imu", "windows", "features", "distill", "evaluate", "benchmark", "fewshot",
               "uma")

def require_dvc_sections(values: dict[str, Any], dataset: str, params: str) -> None:
    """A dataset entry lists ``options`` and every override section dvc.yaml tracks."""
    entry = values["datasets"][dataset]
    missing = ([] if "options" in entry else ["options"]) + [
        f"overrides.{s}" for s in DVC_TRACKED if s not in (entry.get("overrides") or {})]
    if missing:
        raise ConfigError(f"{params}: datasets.{dataset} lacks {', '.join(missing)}; dvc.yaml "
                          f"tracks each one: add them as {{}} where nothing is overridden")


SCHEDULER_OPTION = typer.Option(None, help="dask scheduler: local-cluster or tcp://HOST:PORT")


def _run_adapter_stage(run: Any, config: Any, section: str, dataset: str, params: str,
                       workers: int | None, scheduler: str | None) -> None:
    """Call a stage that reads raw files through the dataset's adapter, spread over
    ``workers`` or a dask ``scheduler`` (None: the params value), and print its summary."""
    cfg = load_section(config, section, params, dataset=dataset,
                       overrides={"workers": workers, "scheduler": scheduler})
    entry = dataset_entry(read_params(params), dataset, params)
    summary = run(cfg, data_dir(params), dataset, entry.adapter, entry.root, entry.options,
                  storage_options(params))
    typer.echo(summary.line())


@app.command()
@cli_command
def synth(
    out: Path = typer.Option(Path("data/synthetic/raw"), help="folder to write the raw dataset to"),
    params: str = PARAMS_OPTION,
) -> None:
    """Generate the deterministic synthetic paired dataset (Ego4D layout)."""
    from comodo.pipeline.datasets.synthetic import SynthConfig, run

    cfg = load_section(SynthConfig, "synth", params)
    uids = run(cfg, out)
    typer.echo(f"synth: {len(uids)} recordings written to {out}")


@app.command()
@cli_command
def ingest(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    workers: int = typer.Option(None, min=0, help="processes probing recordings (0: all cores)"),
    scheduler: str = SCHEDULER_OPTION,
) -> None:
    """Read a dataset's native layout into recordings.parquet (+ rejects)."""
    from comodo.pipeline.stages.ingest import IngestConfig, run

    _run_adapter_stage(run, IngestConfig, "ingest", dataset, params, workers, scheduler)


@app.command()
@cli_command
def imu(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    workers: int = typer.Option(None, min=0, help="processes (0: all cores)"),
    scheduler: str = SCHEDULER_OPTION,
) -> None:
    """Clean, convert and resample every recording's IMU into imu.zarr."""
    from comodo.pipeline.stages.imu import ImuConfig, run

    _run_adapter_stage(run, ImuConfig, "imu", dataset, params, workers, scheduler)


@app.command()
@cli_command
def windows(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    workers: int = typer.Option(None, min=0, help="threads writing chunks (0: one per core)"),
    scheduler: str = SCHEDULER_OPTION,
) -> None:
    """Cut time-aligned IMU windows into windows.zarr + windows.parquet."""
    from comodo.pipeline.stages.windows import WindowsConfig, run

    cfg = load_section(WindowsConfig, "windows", params, dataset=dataset,
                       overrides={"workers": workers, "scheduler": scheduler})
    summary = run(cfg, data_dir(params), dataset, storage_options(params))
    typer.echo(summary.line())


@app.command("check-dataset")
@cli_command
def check_dataset(
    dataset: str = typer.Argument(None, help="name in params.yaml datasets: (or --adapter/--root)"),
    params: str = PARAMS_OPTION,
    adapter: str = typer.Option(None, help="adapter name, to check a folder not in params.yaml"),
    root: Path = typer.Option(None, help="the raw folder for --adapter"),
    option: list[str] = typer.Option([], "--option", "-o", help="adapter option key=value (YAML value)"),
    load: int = typer.Option(1, min=0, help="recordings whose IMU is read and checked"),
    quiet_cv: float = typer.Option(0.05, help="units check: at rest when std/mean of |acc| <= this"),
) -> None:
    """Say what a dataset's raw folder holds: recordings, splits, labels, rejects, IMU units."""
    import yaml

    from comodo.pipeline.datasets.describe import describe
    from comodo.pipeline.stages.ingest import make_adapter

    if adapter is None:
        if dataset is None:
            raise ConfigError("check-dataset needs a dataset name from params.yaml, or --adapter and --root")
        values = read_params(params)
        entry = dataset_entry(values, dataset, params)
        require_dvc_sections(values, dataset, params)
        adapter, folder, options = entry.adapter, entry.root, dict(entry.options)
    elif root is None:
        raise ConfigError("check-dataset --adapter needs --root, the dataset's raw folder")
    else:
        folder, options = str(root), {}
    for pair in option:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--option {pair!r}: expected key=value, e.g. --option split=random")
        options[key.strip()] = yaml.safe_load(value)
    for line in describe(make_adapter(adapter, folder, dataset or adapter, options), load, quiet_cv=quiet_cv):
        typer.echo(line)


@app.command()
@cli_command
def summary(metrics_dir: Path = typer.Option(Path("metrics"), help="where evaluate wrote its JSON"),
            reports_dir: Path = typer.Option(Path("reports"), help="where report wrote its files")) -> None:
    """Print SVM Acc@1/3/5 before and after distillation for every evaluated dataset."""
    import json

    from comodo.stores.errors import StoreNotFoundError

    files = sorted(metrics_dir.glob("*/evaluate.json"))
    if not files:
        raise StoreNotFoundError(f"no {metrics_dir}/<dataset>/evaluate.json; run `dvc repro` first")
    for path in files:
        result = json.loads(path.read_text())
        for row in result["rows"]:
            typer.echo(f"{result['dataset']:12s} {row['variant']:12s} {row['method']:24s} SVM "
                       f"acc@1 {100 * row['acc@1']:5.1f}  acc@3 {100 * row['acc@3']:5.1f}  "
                       f"acc@5 {100 * row['acc@5']:5.1f}  (n_test={row['n_test']})")
    for report in sorted(reports_dir.glob("*.html")):
        typer.echo(f"report: {report}")
