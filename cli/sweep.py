"""`comodo sweep`: Acc@1/3/5 against one distill setting (queue size, pooling, temperatures)."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def sweep(
    dataset: str = DATASET_OPTION,
    param: str = typer.Option(..., "--param", help="a key of sweep.params (a distill setting)"),
    params: str = PARAMS_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
) -> None:
    """One distill run per value of the swept setting, judged by the SVM protocol."""
    from comodo.pipeline.stages.distill import DistillConfig
    from comodo.pipeline.stages.sweep import SweepConfig, run

    cfg = load_section(SweepConfig, "sweep", params, dataset=dataset)
    distill_cfg = load_section(DistillConfig, "distill", params, dataset=dataset)
    record = run(cfg, distill_cfg, param, data_dir(params), dataset, runs_dir, metrics_dir,
                 storage_options(params))
    for point in record["points"]:
        typer.echo(f"sweep {dataset} {param}={point['value']}: acc@1 {100 * point['acc@1']:5.1f} "
                   f"± {100 * point['std@1']:4.1f}")
    typer.echo(record.get("note") or f"{len(record['points'])} points -> "
               f"{metrics_dir / dataset / f'sweep_{param}.json'}")
