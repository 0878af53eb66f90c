"""Golden fixtures computed with the reference implementations (``../shared/oracle``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ORACLE = Path(__file__).resolve().parents[3] / "shared" / "oracle"


def oracle_path(name: str) -> Path:
    path = ORACLE / name
    if not path.exists():
        pytest.skip(f"reference fixture {path} is not available (needs ../shared/oracle beside the repo)")
    return path


@pytest.fixture
def oracle():
    """``oracle("case")`` -> the arrays of ``case.npz`` as a dict (skips when absent)."""

    def load(case: str) -> dict[str, np.ndarray]:
        with np.load(oracle_path(f"{case}.npz"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    return load
