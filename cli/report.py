"""`comodo report`: one Markdown and one self-contained HTML file of every result found."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import PARAMS_OPTION, cli_command
from comodo.cli.main import app
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def report(
    params: str = PARAMS_OPTION,
    name: str = typer.Option(None, "--name", help="file name: reports/<name>.md and .html"),
    out_dir: str = typer.Option(None, "--out-dir", help="folder for the report (default reports)"),
    metrics_dir: str = typer.Option(None, "--metrics-dir", help="results folder (default metrics)"),
    runs_dir: str = typer.Option(None, "--runs-dir", help="training runs folder (default runs)"),
) -> None:
    """Results table, confusion matrices, t-SNE maps, training curves, queue-size sweep."""
    from comodo.pipeline.report.build import ReportConfig, run

    overrides = {"name": name, "out_dir": out_dir, "metrics_dir": metrics_dir, "runs_dir": runs_dir}
    if Path(params).is_file():
        cfg = load_section(ReportConfig, "report", params, overrides=overrides)
    else:  # a report needs no params file: defaults plus the options given
        cfg = ReportConfig(**{k: v for k, v in overrides.items() if v is not None})
    md_path, html_path = run(cfg)
    typer.echo(str(md_path))
    typer.echo(str(html_path))
