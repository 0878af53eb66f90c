"""Stage ``sweep``: Acc@1/3/5 against one distill setting -> metrics/<ds>/sweep_<param>.json.

``params`` maps a ``distill`` key (``queue_size``, ``reduction``, ``teacher_temperature``,
``student_temperature``, ``objective``, ...) to the values to try (the paper's Figures 3/4
and Table 5). Each value is a distill run that starts from the ``distill`` section and
changes only that key, the seed and, when set, ``epochs``; it is written to
``runs/<ds>/sweep/<param>/<value>-seed<seed>/`` and judged with the SVM protocol on the
train/test splits. Points hold the mean and std over ``seeds``.

With ``enabled: false`` (the default, so ``dvc repro`` stays quick) the stage writes the
file with no points and says so; ``make sweeps`` runs it enabled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from comodo.pipeline.config import StageConfig
from comodo.pipeline.stages import distill
from comodo.pipeline.stages.benchmark import BenchmarkConfig, aggregate, load_context
from comodo.pipeline.stages.benchmark_methods import svm_scores
from comodo.pipeline.students import load_encoder
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)


class SweepConfig(StageConfig):
    enabled: bool = False
    dataset: str = "synthetic"  # the dataset dvc.yaml sweeps over (`--dataset` of the command)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    epochs: int | None = Field(None, ge=1)  # None: the distill section's
    params: dict[str, list[Any]] = Field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    n_jobs: int = Field(2, ge=1)
    protocol: Literal["reference", "comodo"] = "reference"  # SVM protocol (evaluation.svm)


def point_config(base: distill.DistillConfig, param: str, value: Any, seed: int,
                 epochs: int | None) -> distill.DistillConfig:
    values = {**base.model_dump(), param: value, "seed": seed}
    if epochs is not None:
        values["epochs"] = epochs
    try:
        return distill.DistillConfig.model_validate(values)
    except ValidationError as err:
        raise ConfigError(f"sweep.params.{param}: value {value!r} is not a valid distill "
                          f"setting ({err.errors()[0]['msg']}); sweep keys of the distill "
                          f"section: {', '.join(distill.DistillConfig.model_fields)}") from None


def run(cfg: SweepConfig, distill_cfg: distill.DistillConfig, param: str, data_dir: str,
        dataset: str, runs_dir: Path = Path("runs"), metrics_dir: Path = Path("metrics"),
        storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every value of ``param``; write and return ``metrics/<ds>/sweep_<param>.json``."""
    if param not in cfg.params:
        raise ConfigError(f"sweep.params has no {param!r}; swept keys: "
                          f"{', '.join(cfg.params) or 'none'} (add 'sweep.params.{param}: [...]')")
    for value in cfg.params[param]:  # every value valid before any training
        point_config(distill_cfg, param, value, cfg.seeds[0], cfg.epochs)
    record: dict[str, Any] = {"param": param, "dataset": dataset, "enabled": cfg.enabled,
                              "seeds": cfg.seeds, "svm_protocol": cfg.protocol,
                              "points": []}
    if cfg.enabled:
        bench = BenchmarkConfig(seeds=cfg.seeds, train_split=cfg.train_split,
                                test_split=cfg.test_split, n_jobs=cfg.n_jobs,
                                protocol=cfg.protocol)
        ctx, _classes = load_context(bench, distill_cfg, data_dir, dataset, runs_dir,
                                     storage_options)
        for value in cfg.params[param]:
            per_seed = []
            for seed in cfg.seeds:
                out_dir = Path(runs_dir) / dataset / "sweep" / param / f"{value}-seed{seed}"
                distill.run(point_config(distill_cfg, param, value, seed, cfg.epochs),
                            data_dir, dataset, out_dir, storage_options=storage_options)
                per_seed.append(svm_scores(load_encoder(out_dir / "encoder")[0], ctx, seed))
            point = aggregate(str(value), dataset, per_seed, cfg.seeds, "sweep")
            record["points"].append({"value": value, **{k: v for k, v in point.items()
                                                        if k.startswith(("acc@", "std@"))}})
            log.info("sweep %s %s=%s: acc@1 %.3f", dataset, param, value, point["acc@1"])
    else:
        record["note"] = "sweep.enabled is false: no run; `make sweeps` runs the sweeps"
    out = Path(metrics_dir) / dataset / f"sweep_{param}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    return record
