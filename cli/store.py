"""The `comodo-store` command: list, inspect and verify the feature store.

Results go to stdout (rich tables, or JSON with --json); problems go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from comodo.cli.common import cli_command
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ComodoError, StoreNotFoundError
from comodo.stores.inspect import describe, describe_table, scan
from comodo.stores.lock import unlock
from comodo.stores.verify import verify

app = typer.Typer(
    name="comodo-store",
    help="Browse and check the feature store (Zarr arrays + Parquet index tables).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PATH_ARG = typer.Argument("data", help="a store, a Parquet table or a folder searched at any depth")
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of tables")


@app.callback()
def main() -> None:
    """Browse and check the feature store (Zarr arrays + Parquet index tables)."""


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def each(urls: list[str], fn: Callable[[str], Any], errors: list[str]) -> list[Any]:
    """``fn`` over ``urls``; a ComodoError for one URL is kept in ``errors`` and skipped."""
    out = []
    for url in urls:
        try:
            out.append(fn(url))
        except ComodoError as err:
            errors.append(str(err))
    return out


def fail_on(errors: list[str]) -> None:
    for err in errors:
        typer.echo(f"error: {err}", err=True)
    if errors:
        raise typer.Exit(1)


def render_store(out: Console, info: dict[str, Any]) -> None:
    table = Table(title=f"{info['url']}  ({info['stage']})", title_justify="left")
    numbers = ("on disk", "written", "stored/written")
    for col in ("array", "shape", "dtype", "chunks", "codecs", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    for arr in info["arrays"]:
        ratio = "-" if arr["ratio"] is None else f"{arr['ratio']:.2f}x"
        table.add_row(
            arr["name"], str(tuple(arr["shape"])), arr["dtype"], str(tuple(arr["chunks"])),
            ", ".join(arr["codecs"]), human_bytes(arr["bytes_on_disk"]),
            human_bytes(arr["bytes_logical"]), ratio,
        )
    out.print(table)
    out.print(
        f"rows {info['n_rows']}  chunks {info['n_complete']}/{info['n_chunks']} complete "
        f"({info['percent_complete']:.1f}%)  index {info['index'] or '-'}"
    )
    prov = dict(info["provenance"])
    details = prov.pop("details", {}) or {}
    out.print("provenance: " + "  ".join(f"{k}={v}" for k, v in prov.items()))
    for key, value in details.items():
        out.print(f"  {key}: {json.dumps(value)}")
    render_labels(out, info.get("label_counts"), info.get("index_error"))
    out.print()


def render_labels(out: Console, counts: dict[str, int] | None, error: str | None = None) -> None:
    if error:
        out.print(f"labels: index unreadable ({error})")
    elif counts is None:
        out.print("labels: - (no index with a 'label' column)")
    else:
        out.print(f"labels ({len(counts)}): " + ", ".join(f"{k}={n}" for k, n in counts.items()))


def render_tables(out: Console, tables: list[dict[str, Any]]) -> None:
    if not tables:
        return
    table = Table(title="Parquet tables", title_justify="left")
    for col in ("path", "rows", "columns", "labels"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for info in tables:
        counts = info["label_counts"]
        labels = "-" if counts is None else f"{len(counts)} labels"
        table.add_row(info["url"], str(info["n_rows"]), ", ".join(info["columns"]), labels)
    out.print(table)


@app.command("inspect")
@cli_command
def inspect_cmd(path: str = PATH_ARG, as_json: bool = JSON_OPTION) -> None:
    """Show every store under PATH: arrays, codecs, sizes, completeness, provenance, labels."""
    store_urls, table_urls = scan(path)
    errors: list[str] = []
    stores = each(store_urls, describe, errors)
    tables = each(table_urls, describe_table, errors)
    if as_json:
        typer.echo(json.dumps({"stores": stores, "tables": tables}, indent=2, default=str))
    else:
        out = console()
        for info in stores:
            render_store(out, info)
        render_tables(out, tables)
        if not stores and not tables:
            typer.echo(f"no stores or Parquet tables under {path}", err=True)
    fail_on(errors)


@app.command("verify")
@cli_command
def verify_cmd(
    path: str = typer.Argument(..., help="a store, or a folder whose stores are all checked"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check chunks, markers, decoding, NaN/inf, index and schema; exit 1 on any problem."""
    store_urls = scan(path)[0]
    if not store_urls:
        raise StoreNotFoundError(f"no store at or under {path}; pass a store folder")
    reports = [verify(url) for url in store_urls]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    for report in reports:
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        for problem in report.problems:
            typer.echo(f"problem: {problem}", err=True)
        if report.ok and not as_json:
            typer.echo(f"ok {report.url} ({report.n_complete}/{report.n_chunks} chunks, "
                       f"arrays: {', '.join(report.arrays)})")
    bad = [r for r in reports if not r.ok]
    if bad:
        n = sum(len(r.problems) for r in bad)
        typer.echo(f"{n} problem(s) in {len(bad)} of {len(reports)} store(s)", err=True)
        raise typer.Exit(1)


def summary(url: str) -> dict[str, Any]:
    store = ChunkedStore.open(url)
    mask = store.complete_mask()
    return {
        "url": url,
        "n_rows": store.n_rows,
        "percent_complete": round(100.0 * float(mask.mean()), 2),
        "stage": store.provenance.stage,
    }


@app.command("ls")
@cli_command
def ls_cmd(path: str = PATH_ARG, as_json: bool = JSON_OPTION) -> None:
    """One line per store under PATH: path, rows, percent complete, producing stage."""
    errors: list[str] = []
    rows = each(scan(path)[0], summary, errors)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        width = max((len(r["url"]) for r in rows), default=0)
        for r in rows:
            typer.echo(f"{r['url']:<{width}}  {r['n_rows']:>9} rows  "
                       f"{r['percent_complete']:6.1f}% complete  {r['stage']}")
    fail_on(errors)


@app.command("unlock")
@cli_command
def unlock_cmd(path: str = typer.Argument(..., help="the store whose write lock is stale")) -> None:
    """Remove a store's write lock (and its shards' locks) left by a writer that is gone."""
    removed = unlock(path)
    if not removed:
        typer.echo(f"{path} has no write lock")
    for holder in removed:
        typer.echo(f"removed {holder['lock']} (pid {holder.get('pid')} on host {holder.get('host')} "
                   f"since {holder.get('since')})")
