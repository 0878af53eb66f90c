"""`comodo evaluate`: SVM Acc@1/3/5, probes and confusion of a distilled encoder."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def evaluate(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    run_name: str = typer.Option(None, "--run", help="run folder under runs/<ds>/ (overrides params)"),
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
    folds: str = typer.Option(None, "--folds",
                              help="split (the dataset's) or subject (leave one subject out)"),
) -> None:
    """Judge a distilled encoder and its random init: SVM Acc@1/3/5, linear, k-NN, macro-F1."""
    from comodo.pipeline.stages.evaluate import EvaluateConfig, run

    cfg = load_section(EvaluateConfig, "evaluate", params, dataset=dataset,
                       overrides={"run": run_name, "folds": folds})
    record = run(cfg, data_dir(params), dataset, runs_dir, metrics_dir, storage_options(params))
    typer.echo(f"evaluate {dataset}: run {record['run']}"
               + ("" if cfg.run else f" (the last distilled, from {runs_dir / dataset / 'latest'})"))
    for row in record["rows"]:
        typer.echo(f"evaluate {dataset} {row['method']}: acc@1 {row['acc@1']:.3f} "
                   f"acc@3 {row['acc@3']:.3f} acc@5 {row['acc@5']:.3f} "
                   f"linear {row['linear_acc']:.3f} knn {row['knn_acc']:.3f} "
                   f"macro-F1 {row['macro_f1']:.3f}")
    typer.echo(f"metrics written to {metrics_dir / dataset / 'evaluate.json'}")
