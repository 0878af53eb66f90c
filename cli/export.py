"""`comodo export` (a run -> an ONNX bundle) and `comodo predict` (a bundle on an IMU file)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import typer

from comodo.cli.common import DATASET_OPTION, METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir
from comodo.pipeline.config import dataset_entry, load_section, read_params


@app.command()
@cli_command
def export(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    run_name: str = typer.Option(None, "--run", help="run folder under runs/<ds>/ (default: evaluate's run)"),
    fmt: str = typer.Option(None, "--format", help="bundle format: onnx"),
    quantize: str = typer.Option(None, "--quantize", help="none | int8 (dynamic quantisation)"),
    classifier: str = typer.Option(None, "--classifier", help="svm (the SVM protocol) | linear"),
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
    out: Path = typer.Option(Path("exports"), "--out", help="bundles go to <out>/<ds>/<run>/"),
) -> None:
    """Write a self-contained ONNX bundle of a run: encoder, classifier, preprocessing, card."""
    from comodo.pipeline.stages.evaluate import EvaluateConfig
    from comodo.pipeline.stages.export import ExportConfig, run, source_of
    from comodo.pipeline.stages.imu import ImuConfig

    cfg = load_section(ExportConfig, "export", params, dataset=dataset, overrides={
        "run": run_name, "format": fmt, "quantize": quantize, "classifier": classifier})
    eval_cfg = load_section(EvaluateConfig, "evaluate", params, dataset=dataset)
    imu_cfg = load_section(ImuConfig, "imu", params, dataset=dataset)
    entry = dataset_entry(read_params(params), dataset, params)
    source = source_of(entry.adapter, entry.options, imu_cfg)
    info = run(cfg, eval_cfg, source, Path(data_dir(params)), dataset, runs_dir, metrics_dir, out)
    bundle = out / dataset / info["run"]
    for precision, m in info["metrics"].items():
        if isinstance(m, dict):
            typer.echo(f"export {dataset} {precision}: acc@1 {m['acc@1']:.3f} acc@3 {m['acc@3']:.3f} "
                       f"size {m['size_bytes'] / 1e6:.2f} MB latency {m['latency_ms_per_window']:.2f} "
                       f"ms/window")
    parity = info["parity"]
    typer.echo(f"parity: max |onnx - torch| {parity['embedding']['max_abs_diff']:.2e}, top-1 equal "
               f"to evaluate's on {parity['top1_agreement']:.3f} of {parity['n_test']} test windows")
    typer.echo(f"bundle written to {bundle}")


@app.command()
@cli_command
def predict(
    bundle: Path = typer.Argument(..., help="bundle folder written by `comodo export`"),
    imu_file: Path = typer.Argument(..., help="IMU recording (CSV/Parquet) in the bundle's layout"),
    hop: float = typer.Option(None, "--hop", help="seconds between window starts (default: window length)"),
    start: float = typer.Option(None, "--from", help="first window starts at or after this time (s)"),
    layout: str = typer.Option(None, "--layout", help="layout of the file (default: the bundle's)"),
    rate: float = typer.Option(None, "--rate", help="native rate (Hz) for files without a time column"),
    option: list[str] = typer.Option([], "--option",
                                     help="layout option KEY=VALUE (VALUE in YAML), e.g. "
                                          "'units={accl_x: m/s^2}'; repeatable"),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | int8 encoder"),
    out: Path = typer.Option(None, "--out", help="write the windows to this Parquet file"),
    follow: bool = typer.Option(False, "--follow", help="read a growing CSV until interrupted"),
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="--follow: seconds between reads"),
    settle: float = typer.Option(0.5, "--settle", min=0.0,
                                 help="--follow: a window is emitted once the file holds this many "
                                      "seconds past its end"),
    idle_exit: float = typer.Option(None, "--idle-exit", min=0.0,
                                    help="--follow: stop when the file has not grown for this long (s)"),
) -> None:
    """Classify the windows of an IMU recording: start, end, label and top-3 per window."""
    import polars as pl

    from comodo.pipeline.export import predict as runner
    from comodo.pipeline.export.bundle import Bundle

    model = Bundle(bundle, precision)
    reading = runner.Reading(layout, _options(option), rate)
    if not follow:
        _show(runner.predict_file(model, imu_file, hop, start, reading), out, header=True)
        return
    tables: list[pl.DataFrame] = []

    def emit(rows: pl.DataFrame) -> None:
        _show(rows, None, header=not tables)
        tables.append(rows)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how following ends
        runner.follow(model, imu_file, emit, hop, start, reading, poll, settle, idle_exit)
    if out is not None:
        _show(pl.concat(tables) if tables else pl.DataFrame(), out, header=False)


def _options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict, each VALUE read as YAML."""
    import yaml

    from comodo.stores.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r} is not KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--option {key}: {value!r} is not valid YAML ({err})") from None
    return out


def _show(rows, out: Path | None, header: bool) -> None:
    """Rows to stdout as CSV, or to a Parquet file."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        rows.write_parquet(out)
        typer.echo(f"{len(rows)} windows written to {out}")
        return
    sys.stdout.write(rows.write_csv(include_header=header, float_precision=4))
    sys.stdout.flush()
