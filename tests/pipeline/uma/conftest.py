import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _uma_one_torch_thread(one_torch_thread):
    """Tiny models: threads only contend on a shared machine (restored after each test)."""
