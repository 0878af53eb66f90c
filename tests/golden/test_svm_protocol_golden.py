"""The SVM protocol against the reference code's numbers (``../shared/oracle/svm_protocol``).

Sets A, B: the grid branch (600 train rows); C, D: the small-data branch (C = 1e5). Chosen C
and branch must be exact; Acc@1/3/5 within one test window (the fixture's tolerance), and in
fact exact, because the Platt seed is drawn as the reference draws it.
"""

from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.evaluation.svm import (
    C_GRID,
    ReferenceModel,
    platt_allowed,
    reference_design,
    reference_svc,
    svm_protocol,
)

ORACLE = Path(__file__).resolve().parents[3] / "shared" / "oracle" / "svm_protocol.npz"
pytestmark = pytest.mark.skipif(not ORACLE.is_file(),
                                reason=f"reference fixtures not present at {ORACLE}")
SETS = ["A", "B", "C", "D"]
PATHS = {
    "fast": fast_svm_protocol,
    "fast_sklearn_refit": lambda *a, **k: fast_svm_protocol(*a, **k, refit="sklearn"),
    "plain": svm_protocol,
}


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(ORACLE) as data:
        return {k[2:]: data[k] for k in data.files if k.startswith(f"{name}_")}


def _run(path: str, case: dict[str, np.ndarray]) -> dict:
    return PATHS[path](case["X_train"], case["y_train"], case["X_test"], case["y_test"], seed=0,
                       protocol="reference")


def _params(slow_sets: tuple[str, ...]) -> list:
    """(path, set) pairs; the plain path on the grid sets takes a minute: marked slow."""
    return [pytest.param(p, s, marks=[pytest.mark.slow] if p == "plain" and s in slow_sets else [])
            for p in PATHS for s in SETS]


@pytest.mark.parametrize("path, name", _params(("A", "B")))
def test_reference_protocol_reproduces_the_reference_c_branch_and_acc_at_k(path, name):
    case = _case(name)
    out = _run(path, case)
    assert out["best_C"] == float(case["chosen_C"])
    assert out["grid_branch"] == bool(case["grid_branch"])
    n_test = len(case["y_test"])
    for k in (1, 3, 5):
        assert abs(out[f"acc@{k}"] - float(case[f"acc{k}"])) <= 1 / n_test + 1e-12
        assert out[f"acc@{k}"] == float(case[f"acc{k}"])  # exact: same Platt seed, same libsvm


@pytest.mark.parametrize("name", ["A", "B"])
def test_fast_grid_search_gives_the_reference_cv_scores(name):
    case = _case(name)
    out = fast_svm_protocol(case["X_train"], case["y_train"], case["X_test"], case["y_test"],
                            protocol="reference")
    best = int(np.argmax(case["cv_mean_test_score"]))  # first best = the reference's tie rule
    assert C_GRID[best] == out["best_C"]
    assert out["cv_acc"] == pytest.approx(float(case["cv_mean_test_score"][best]), abs=1e-12)


@pytest.mark.parametrize("name", SETS)
def test_reference_probabilities_and_predict_top1(name):
    case = _case(name)
    design = reference_design(case["X_train"], case["y_train"])
    with platt_allowed():
        svc = reference_svc(float(case["chosen_C"]), 0, design.grid).fit(design.z, design.y)
    model = ReferenceModel(design.scaler, svc)
    assert np.allclose(model.predict_proba(case["X_test"]), case["proba_test"], atol=0.02)
    pred = svc.predict(design.scaler.transform(case["X_test"].astype(np.float32)))
    assert np.mean(pred == case["y_test"]) == float(case["acc1_predict"])
