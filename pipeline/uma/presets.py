"""Named UMA protocols: ``uma: {preset: paper}`` in params.yaml stands for the settings below.

A preset fills every key it names; keys written next to it in the section win (a nested
mapping such as ``settings`` is merged key by key), so ``{preset: paper, seeds: [0]}`` is the
paper's protocol on one seed.

``paper``: the C3T paper's protocol. Trials split at random per seed 40/40/10/10 (stratified by
class), the IMU's valid part stretched to the trial span the video frames cover, the epoch
tested chosen on D_Val, the paper's learning rate 1.5e-3 and t_rec 8, CA trained ``combined``
and C3T ``align_first`` with the ``mlp_concat`` head (the head with the best D_Val accuracy
of the four on UTD-MHAD; docs/UMA.md), ST, CA and C3T under the whole noise suite.
"""

from __future__ import annotations

import copy
from typing import Any

from comodo.stores.errors import UnknownNameError

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "methods": ["st", "ca", "c3t"],
        "split": "random",
        "stratify": True,
        "fractions": [0.4, 0.4, 0.1, 0.1],
        "time_base": "stretch",
        "select": "val",
        "noises": ["clean", "shift", "misalign", "dilation", "crop"],
        "settings": {"lr": 1.5e-3, "t_rec": 8, "latent": 64, "hidden": 128, "epochs": 60,
                     "batch_size": 32},
        "method_settings": {"ca": {"order": "combined"},
                            "c3t": {"order": "align_first", "head": "mlp_concat"}},
        "map_method": "c3t",
    },
}


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` on top; mappings present in both are merged key by key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def expand_preset(values: dict[str, Any]) -> dict[str, Any]:
    """A config section with its ``preset`` (if any) spelled out; the name is kept."""
    name = values.get("preset")
    if name is None:
        return values
    if name not in PRESETS:
        raise UnknownNameError(f"unknown uma preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return merged(PRESETS[name], values)
