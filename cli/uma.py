"""`comodo uma`: Unsupervised Modality Adaptation (ST, CA, C3T) on a dataset's feature store."""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, PARAMS_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section


@app.command()
@cli_command
def uma(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    out: Path = typer.Option(Path("metrics"), "--out", help="metrics root; writes <out>/<dataset>/uma/"),
    teacher_key: str = typer.Option(None, "--teacher-key", help="features/<key>.zarr (overrides params)"),
) -> None:
    """Train ST, CA and C3T (video labels, unlabelled paired IMU) and test them on IMU alone."""
    from comodo.pipeline.stages.uma import UmaConfig, run

    cfg = load_section(UmaConfig, "uma", params, dataset=dataset, overrides={"teacher_key": teacher_key})
    summary = run(cfg, data_dir(params), dataset, out, storage_options(params))
    for method, by_modality in summary["test"].items():
        clean = by_modality.get("imu", {}).get("clean")
        if clean:
            typer.echo(f"uma {dataset} {method}: IMU-only test accuracy "
                       f"{clean['mean']:.3f} +- {clean['std']:.3f} over {clean['n_seeds']} seeds")
    typer.echo(f"uma {dataset}: random guess {summary['random_guess']:.3f}; "
               f"metrics in {out / dataset / 'uma'}")
