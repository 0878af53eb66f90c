"""`comodo features`: embed every window's frames with a frozen teacher into the store."""

from __future__ import annotations

import typer

from comodo.cli.common import DATASET_OPTION, PARAMS_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import SCHEDULER_OPTION, data_dir, storage_options
from comodo.pipeline.config import load_section
from comodo.stores.errors import ConfigError


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not of the form i/n (e.g. 0/4)") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: need 0 <= i < n, e.g. 0/4 .. 3/4")
    return i, n


@app.command()
@cli_command
def features(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    shard: str = typer.Option("0/1", "--shard", help="this process's part i/n of the store's chunks"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides params)"),
    scheduler: str = SCHEDULER_OPTION,
) -> None:
    """Extract frozen teacher embeddings of every window into features/<key>.zarr."""
    from comodo.pipeline.stages.features import FeaturesConfig, run

    part = parse_shard(shard)
    cfg = load_section(FeaturesConfig, "features", params, dataset=dataset,
                       overrides={"device": device, "scheduler": scheduler})
    summary = run(cfg, data_dir(params), dataset, shard=part, storage_options=storage_options(params))
    typer.echo(summary.line())
