"""Finding Hugging Face checkpoints (local folder or hub cache) and loading them strictly.

``resolve_checkpoint`` accepts a local folder (``config.json`` + ``model.safetensors`` /
sharded safetensors / ``pytorch_model.bin``) or a hub id. Hub ids are read from the HF cache
without touching the network; files missing there are downloaded only when
``HF_HUB_OFFLINE`` is not set (and the hub is reachable).

``load_strict`` (our own modules) and ``raise_if_not_strict`` (a transformers loading
report) make any missing, unexpected or misshapen key a ``ModelLoadError`` naming the keys,
never a silently random or zero weight.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from comodo.pipeline.teachers.base import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from comodo.stores.errors import ModelLoadError
from comodo.stores.provenance import hash_bytes

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
PREPROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
HOW_TO_PROVIDE = (
    "pass a local folder as 'model' (a save_pretrained output: config.json + model.safetensors), "
    "or put the checkpoint in the HF cache (huggingface-cli download <id> on a machine with "
    "network, then copy ~/.cache/huggingface), and set HF_HUB_OFFLINE=1 to stay offline"
)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on local disk: its config, weight files and preprocessing config."""

    model_id: str
    revision: str
    folder: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    preprocessor: dict[str, Any]


def hub_offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in {"1", "true", "yes", "on"} for f in flags)


def _cache_dir() -> str | None:
    """The HF cache as the environment says now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def _looks_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.path.isdir(os.path.expanduser(model))


def _local_files(folder: Path) -> list[Path]:
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            if name.endswith(".index.json"):
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
                return [folder / s for s in shards]
            return [path]
    return []


def _hub_file(model: str, filename: str, revision: str | None) -> Path | None:
    """A file of a hub repo: from the HF cache first, then (unless offline) the hub."""
    from huggingface_hub import hf_hub_download

    for local_only in (True, False):
        if not local_only and hub_offline():
            break
        try:
            return Path(hf_hub_download(model, filename, revision=revision, cache_dir=_cache_dir(),
                                        local_files_only=local_only))
        except Exception as err:  # not in the repo, not cached, no network: all mean "not here"
            log.debug("%s: %s not available (local_only=%s): %s", model, filename, local_only, err)
    return None


def _hub_folder(model: str, revision: str | None) -> Path:
    config = _hub_file(model, "config.json", revision)
    if config is None:
        mode = "offline (HF_HUB_OFFLINE set)" if hub_offline() else "the hub is unreachable"
        raise ModelLoadError(f"model {model!r}: no local folder of that name and no cached "
                             f"checkpoint; {mode}. To provide it: {HOW_TO_PROVIDE}")
    folder = config.parent
    for name in (*WEIGHT_FILES, *PREPROCESSOR_FILES):
        if not (folder / name).exists():
            got = _hub_file(model, name, revision)
            if got is not None and name.endswith(".index.json"):
                for shard in set(json.loads(got.read_text())["weight_map"].values()):
                    _hub_file(model, shard, revision)
            if got is not None and name in WEIGHT_FILES:
                break
    return folder


def resolve_checkpoint(model: str, revision: str | None = None) -> Checkpoint:
    """A local folder or a hub id -> files on disk; a clear error when they cannot be had."""
    if _looks_local(model):
        folder = Path(os.path.expanduser(model))
        if not folder.is_dir():
            raise ModelLoadError(f"model folder {folder} does not exist; {HOW_TO_PROVIDE}")
        rev = "local"
    else:
        folder = _hub_folder(model, revision)
        rev = folder.name if folder.parent.name == "snapshots" else (revision or "unknown")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model folder {folder} has no config.json; {HOW_TO_PROVIDE}")
    files = _local_files(folder)
    if not files:
        raise ModelLoadError(f"model {model!r}: no weights in {folder} (looked for "
                             f"{', '.join(WEIGHT_FILES)}); {HOW_TO_PROVIDE}")
    preprocessor: dict[str, Any] = {}
    for name in PREPROCESSOR_FILES:
        if (folder / name).is_file():
            preprocessor = json.loads((folder / name).read_text())
            break
    config = json.loads((folder / "config.json").read_text())
    return Checkpoint(model, rev, folder, config, tuple(files), preprocessor)


def weights_hash(files: Sequence[Path]) -> str:
    """sha256 (16 hex digits) of the weight files' bytes, in order."""

    def blocks():
        for path in files:
            with open(path, "rb") as fh:
                while data := fh.read(1 << 22):
                    yield data

    return hash_bytes(blocks())


def read_state_dict(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state.update(load_file(str(path), device="cpu"))
            else:
                state.update(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:  # safetensors and torch raise several types on bad files
            raise ModelLoadError(f"weights file {path} could not be read ({err}); "
                                 f"re-download or re-save the checkpoint") from err
    return state


def rename_keys(state: dict[str, torch.Tensor],
                renames: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Apply regex ``(pattern, replacement)`` renames to every key, in order."""
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def read_matching(files: Sequence[Path], patterns: Sequence[str]) -> dict[str, torch.Tensor]:
    """Only the tensors whose key matches one of ``patterns`` (lazily, for safetensors)."""
    found: dict[str, torch.Tensor] = {}
    for path in files:
        if path.suffix != ".safetensors":
            state = read_state_dict([path])
            found.update({k: v for k, v in state.items() if any(re.search(p, k) for p in patterns)})
            continue
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for key in fh.keys():
                if any(re.search(p, key) for p in patterns):
                    found[key] = fh.get_tensor(key)
    return found


def _key_list(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def raise_if_not_strict(where: str, missing: Collection[str], unexpected: Collection[str],
                        mismatched: Collection[object] = ()) -> None:
    """A ``ModelLoadError`` naming the keys when a checkpoint and its architecture disagree."""
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_key_list(list(missing))}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_key_list(list(unexpected))}")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches: {_key_list([str(m) for m in mismatched], 4)}")
    if parts:
        raise ModelLoadError(f"{where}: checkpoint does not match the architecture: "
                             f"{'; '.join(parts)}. Use a checkpoint saved from this architecture "
                             f"(save_pretrained), unmodified")


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module``; any missing, unexpected or misshapen key is an error."""
    want = module.state_dict()
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(want[k].shape)}"
             for k, v in state.items() if k in want and tuple(v.shape) != tuple(want[k].shape)]
    missing = [k for k in want if k not in state]
    raise_if_not_strict(where, missing, [k for k in state if k not in want], wrong)
    module.load_state_dict(state, strict=True)


def _edge(value: Any, default: int) -> int:
    """An image size from an HF processor field (int, {shortest_edge}, {height, width})."""
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        if "shortest_edge" in value:
            return int(value["shortest_edge"])
        if "height" in value and "width" in value:
            return int(min(value["height"], value["width"]))
    return default


def preprocessing_of(ckpt: Checkpoint, image_size: int) -> Preprocessing:
    """Crop, resize and mean/std from the checkpoint's processor config, else ImageNet defaults."""
    pre = ckpt.preprocessor
    crop = _edge(pre.get("crop_size"), image_size) if pre.get("do_center_crop", True) else image_size
    resize = _edge(pre.get("size"), crop)
    mean = tuple(float(x) for x in pre.get("image_mean", IMAGENET_MEAN))
    std = tuple(float(x) for x in pre.get("image_std", IMAGENET_STD))
    if crop != image_size:
        log.warning("%s: processor crop %d differs from the model's image_size %d; using %d",
                    ckpt.model_id, crop, image_size, image_size)
        crop = image_size
    return Preprocessing(image_size=crop, resize_short=max(resize, crop), mean=mean, std=std)  # type: ignore[arg-type]
