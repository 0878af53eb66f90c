"""`comodo benchmark`: the paper's Table 1 for one dataset (methods x seeds)."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def benchmark(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
    folds: str = typer.Option(None, "--folds",
                              help="split (the dataset's) or subject (leave one subject out)"),
) -> None:
    """Random init, zero-shot, supervised and distilled students: Acc@1/3/5, mean +- std."""
    from comodo.pipeline.stages.benchmark import BenchmarkConfig, run
    from comodo.pipeline.stages.distill import DistillConfig

    cfg = load_section(BenchmarkConfig, "benchmark", params, dataset=dataset,
                       overrides={"folds": folds})
    distill_cfg = load_section(DistillConfig, "distill", params, dataset=dataset)
    record = run(cfg, distill_cfg, data_dir(params), dataset, runs_dir, metrics_dir,
                 storage_options(params))
    for row in record["rows"]:
        typer.echo(f"benchmark {dataset} {row['method']:24s} " + "  ".join(
            f"acc@{k} {100 * row[f'acc@{k}']:5.1f} ± {100 * row[f'std@{k}']:4.1f}"
            for k in (1, 3, 5)))
    typer.echo(f"metrics written to {metrics_dir / dataset / (cfg.table + '.json')}")
