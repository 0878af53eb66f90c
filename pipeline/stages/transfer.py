"""Stage ``transfer``: the paper's Table 3, students distilled on A judged on B.

For every pair of ``pairs``, each run matching ``runs`` under ``<runs_dir>/<source>/`` (one
per seed, e.g. the benchmark's ``benchmark/comodo-seed*``) is loaded, B's train and test
windows are brought to the encoder's rate and length (``evaluation.harmonise``: valid part,
linear resampling to A's rate, cut or zero-pad to A's length), and the SVM protocol runs on
B's train split with B's labels and scores B's test split. With ``random_init`` the same
architecture at each run's seed is scored beside it.

Writes ``metrics/<target>/transfer_from_<source>.json`` in the report's results schema with
``"table": "transfer"``: rows ``<method>`` (source), column dataset = target.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.evaluation.harmonise import harmonise_windows, harmonised_valid
from comodo.pipeline.stages.benchmark import aggregate
from comodo.pipeline.stages.benchmark_methods import encode_array
from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.stages.evaluate import open_windows, split_rows
from comodo.pipeline.students import StudentSpec, load_encoder
from comodo.pipeline.training.model import build_initial_encoder
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ComodoError, ConfigError, StoreNotFoundError

log = logging.getLogger(__name__)


class TransferPair(StageConfig):
    source: str
    target: str
    runs: str = "benchmark/comodo-seed*"  # glob under <runs_dir>/<source>/
    method: str | None = None  # row name; default "<student> <objective> on <source>"
    runs_dir: str | None = None  # the source's runs folder when it is not the default
    data_dir: str | None = None  # the target's data folder when it is not data_dir
    source_data_dir: str | None = None  # the source's data folder (rate when not in lineage)


class TransferConfig(StageConfig):
    pairs: list[TransferPair] = Field(default_factory=list)
    random_init: bool = True
    train_split: str = "train"
    test_split: str = "test"
    n_jobs: int = Field(2, ge=1)
    protocol: Literal["reference", "comodo"] = "reference"  # SVM protocol (evaluation.svm)


def source_runs(pair: TransferPair, runs_dir: Path) -> list[Path]:
    root = Path(pair.runs_dir or runs_dir) / pair.source
    found = sorted(p.parent for p in root.glob(f"{pair.runs}/encoder.json"))
    if not found:
        raise StoreNotFoundError(f"transfer {pair.source} -> {pair.target}: no exported encoder "
                                 f"matches {root}/{pair.runs}/encoder.json; run distill (or "
                                 f"benchmark) on {pair.source} first, or fix pairs[].runs")
    return found


def source_rate(meta: dict[str, Any], where: Path, source: DatasetPaths) -> float:
    """A's rate: the run's windows lineage, else the rate_hz attr of A's windows store."""
    details = ((meta.get("inputs") or {}).get("windows") or {}).get("details") or {}
    if "rate_hz" in details:
        return float(details["rate_hz"])
    source_windows = source.windows_store
    try:
        return float(ChunkedStore.open(source_windows, storage_options=source.options
                                       ).attrs["rate_hz"])
    except (ComodoError, KeyError):
        raise ConfigError(f"{where}/encoder.json names no windows rate_hz in its lineage and "
                          f"{source_windows} gives none; set pairs[].source_data_dir to the "
                          f"source's data folder") from None


def target_splits(cfg: TransferConfig, target: DatasetPaths
                  ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], float]:
    """split -> (imu (N, C, T_B), n_valid (N,), labels (N,)) and B's rate."""
    index, store, _classes = open_windows(target.data_dir, target.dataset, target.options)
    labels = index["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    length = store.array("imu").shape[2]
    n_valid = (index["n_valid"].to_numpy() if "n_valid" in index.columns
               else np.full(len(index), length))
    imu = np.asarray(store.read("imu"), np.float32)
    out = {}
    for split in (cfg.train_split, cfg.test_split):
        rows = split_rows(index, split, store.url)
        out[split] = (imu[rows], n_valid[rows], labels[rows])
    return out, float(store.attrs["rate_hz"])


def score_run(encoder: Any, spec: StudentSpec, rate: float, cfg: TransferConfig,
              splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], rate_b: float,
              seed: int) -> dict[str, float]:
    x, y = {}, {}
    for split, (imu, n_valid, labels) in splits.items():
        windows = harmonise_windows(imu, n_valid, rate_b, rate, spec.n_channels, spec.n_samples)
        valid = harmonised_valid(n_valid, imu.shape[-1], rate_b, rate, spec.n_samples)
        x[split], y[split] = encode_array(encoder, windows, valid), labels
    tr, te = cfg.train_split, cfg.test_split
    out = fast_svm_protocol(x[tr], y[tr], x[te], y[te], seed, cfg.n_jobs, cfg.protocol)
    return {k: float(out[k]) for k in ("acc@1", "acc@3", "acc@5")}


def run_pair(cfg: TransferConfig, pair: TransferPair, data_dir: str, runs_dir: Path,
             storage_options: dict[str, Any]) -> dict[str, Any]:
    target = DatasetPaths(pair.data_dir or data_dir, pair.target, storage_options)
    splits, rate_b = target_splits(cfg, target)
    scores: dict[str, list[dict[str, float]]] = {}
    name = pair.method
    source = DatasetPaths(pair.source_data_dir or data_dir, pair.source, storage_options)
    for seed, run_dir in enumerate(source_runs(pair, runs_dir)):
        encoder, meta = load_encoder(run_dir / "encoder")
        spec = StudentSpec.from_dict(meta["spec"])
        rate = source_rate(meta, run_dir, source)
        name = name or f"{spec.name} {meta.get('objective', 'distilled')} on {pair.source}"
        scores.setdefault(name, []).append(
            score_run(encoder, spec, rate, cfg, splits, rate_b, seed))
        if cfg.random_init:
            scores.setdefault(f"{spec.name} random init ({pair.source} layout)", []).append(
                score_run(build_initial_encoder(spec, seed), spec, rate, cfg, splits, rate_b,
                          seed))
        log.info("transfer %s -> %s (%s): acc@1 %.3f", pair.source, pair.target, run_dir.name,
                 scores[name][-1]["acc@1"])
    n_runs = len(next(iter(scores.values())))
    rows = [aggregate(n, pair.target, s, list(range(n_runs)), "transfer")
            for n, s in scores.items()]
    return {"dataset": pair.target, "source": pair.source, "table": "transfer",
            "target_rate_hz": rate_b, "svm_protocol": cfg.protocol, "rows": rows}


def run(cfg: TransferConfig, data_dir: str, runs_dir: Path = Path("runs"),
        metrics_dir: Path = Path("metrics"), storage_options: dict[str, Any] | None = None
        ) -> list[dict[str, Any]]:
    """Every pair; writes ``metrics/<target>/transfer_from_<source>.json`` for each."""
    records = []
    for pair in cfg.pairs:
        record = run_pair(cfg, pair, str(data_dir), Path(runs_dir), storage_options or {})
        out = Path(metrics_dir) / pair.target / f"transfer_from_{pair.source}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2))
        records.append(record)
    return records
