"""A stage killed with SIGKILL while its local process pool is busy leaves no pool process
behind: each pool process dies with the stage (``pipeline.lifetime.die_with_parent``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ego4d_fixture import make_dataset

from comodo.pipeline.stages import ingest

# The imu stage on a process pool whose reader takes a minute per recording: each pool
# process writes its pid, then is still busy when the stage is killed.
SCRIPT = """
import os, sys, time
from pathlib import Path
from comodo.pipeline.datasets.ego4d import Ego4D
from comodo.pipeline.registry import DATASETS


@DATASETS.register("slow_ego4d")
class SlowEgo4D(Ego4D):
    def load_imu(self, rec):
        (Path(os.environ["PIDS"]) / str(os.getpid())).write_text("busy")
        time.sleep(60)
        return super().load_imu(rec)


if __name__ == "__main__":
    from comodo.pipeline.stages import imu
    cfg = imu.ImuConfig(workers=2, threads=False)
    imu.run(cfg, sys.argv[1], "t", "slow_ego4d", sys.argv[2], {})
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the kernel's parent-death signal is Linux's")
def test_sigkill_of_the_imu_stage_ends_its_pool_processes(tmp_path):
    recs = {f"r{i}": ("walk", "train") for i in range(4)}
    make_dataset(tmp_path / "raw", recs, video_s=2.0)
    raw, data = str(tmp_path / "raw"), str(tmp_path / "data")
    ingest.run(ingest.IngestConfig(require_splits=[]), data, "t", "ego4d", raw, {})
    script, pids = tmp_path / "stage.py", tmp_path / "pids"
    script.write_text(SCRIPT)
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), data, raw],
                            env={**os.environ, "PIDS": str(pids), "COMODO_PROGRESS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, f"the stage ended before it could be killed: {proc.stderr.read()[-2000:]}"
        time.sleep(0.05)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2, "the pool processes did not start"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == [], f"{len(alive)} pool process(es) outlived the killed stage by 5 s"
