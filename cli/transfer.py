"""`comodo transfer`: students distilled on one dataset, judged on another (paper Table 3)."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import METRICS_DIR_OPTION, PARAMS_OPTION, RUNS_DIR_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def transfer(
    params: str = PARAMS_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    metrics_dir: Path = METRICS_DIR_OPTION,
) -> None:
    """SVM Acc@1/3/5 on B's split and labels of encoders distilled on A, windows harmonised."""
    from comodo.pipeline.stages.transfer import TransferConfig, run

    cfg = load_section(TransferConfig, "transfer", params)
    for record in run(cfg, data_dir(params), runs_dir, metrics_dir, storage_options(params)):
        for row in record["rows"]:
            typer.echo(f"transfer {record['source']} -> {record['dataset']} {row['method']:32s} "
                       + "  ".join(f"acc@{k} {100 * row[f'acc@{k}']:5.1f} ± "
                                   f"{100 * row[f'std@{k}']:4.1f}" for k in (1, 3, 5)))
