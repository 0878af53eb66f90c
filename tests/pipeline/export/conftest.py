import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic_fixture import Prepared, prepare  # noqa: E402

from comodo.pipeline.stages.evaluate import EvaluateConfig  # noqa: E402
from comodo.pipeline.stages.export import ExportConfig, run  # noqa: E402

EVAL = EvaluateConfig(knn_k=3, n_jobs=1)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def bundle_dir(prepared: Prepared) -> Path:
    """The default bundle of the run, with an int8 encoder beside the fp32 one."""
    out = prepared.data.parent / "exports"
    run(ExportConfig(quantize="int8", latency_windows=20), EVAL, prepared.source, prepared.data,
        "tiny", prepared.runs, prepared.metrics, out)
    return out / "tiny" / "default"
