"""`comodo fewshot`: k-shot curves (and leave-one-subject-out) for every benchmark encoder."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def fewshot(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
) -> None:
    """Acc@1/3/5 and macro-F1 with k labelled windows per class, mean and 95% interval over draws."""
    from comodo.pipeline.stages.benchmark import BenchmarkConfig
    from comodo.pipeline.stages.distill import DistillConfig
    from comodo.pipeline.stages.fewshot import FewshotConfig, run

    cfg = load_section(FewshotConfig, "fewshot", params, dataset=dataset)
    bench = load_section(BenchmarkConfig, "benchmark", params, dataset=dataset)
    distill_cfg = load_section(DistillConfig, "distill", params, dataset=dataset)
    record = run(cfg, bench, distill_cfg, data_dir(params), dataset, runs_dir, metrics_dir,
                 storage_options(params))
    for result in record["results"]:
        for curve in result["curves"]:
            typer.echo(f"fewshot {dataset} {result['fold']:10s} {curve['method']:28s} " + "  ".join(
                f"k={p['k']}: {100 * p['acc@1']['mean']:5.1f}" for p in curve["points"]))
    if record["skipped"]:
        typer.echo(f"{len(record['skipped'])} (fold, k) skipped: a class had fewer train windows")
    typer.echo(f"metrics written to {metrics_dir / dataset / (cfg.table + '.json')}")
