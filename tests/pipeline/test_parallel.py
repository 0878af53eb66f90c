"""map_parallel on the local process pool: input order kept, errors raised, pool reused."""

import math
import os
import subprocess
import sys

import pytest

from comodo.pipeline import parallel


def test_results_come_back_in_input_order_from_the_pool():
    items = [float(i) for i in range(200)]
    assert parallel.map_parallel(math.sqrt, items, workers=2) == [math.sqrt(x) for x in items]
    pool = parallel.local_pool(2)
    assert parallel.map_parallel(math.sqrt, items[:40], workers=2) == [math.sqrt(x) for x in items[:40]]
    assert parallel.local_pool(2) is pool  # started once, kept for later calls


def test_the_pool_restarts_when_the_environment_changes(monkeypatch):
    pool = parallel.local_pool(2)
    monkeypatch.setenv("COMODO_TEST_MARKER", "1")  # e.g. credentials set after a first run
    assert parallel.local_pool(2) is not pool
    assert parallel.map_parallel(os.getenv, ["COMODO_TEST_MARKER"] * 4, workers=2) == ["1"] * 4


def test_an_error_in_any_item_is_raised_to_the_caller():
    items = [float(i) for i in range(60)]
    items[7] = -1.0  # math.sqrt(-1.0) raises ValueError wherever it runs
    with pytest.raises(ValueError, match="math domain error"):
        parallel.map_parallel(math.sqrt, items, workers=2)
    assert parallel.map_parallel(math.sqrt, [4.0, 9.0], workers=2) == [2.0, 3.0]


def test_one_worker_runs_in_this_process():
    assert parallel.runs_in_process(1, None, 100)
    assert parallel.runs_in_process(4, None, 1)
    assert not parallel.runs_in_process(2, None, 2)
    assert not parallel.runs_in_process(1, "local-cluster", 100)
    assert parallel.chunk_groups(list(range(10)), workers=2, per_worker=2) == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_streamed_results_come_in_input_order_with_a_bounded_window():
    items = [float(i) for i in range(300)]
    stream = parallel.iter_parallel(math.sqrt, items, workers=2, ahead=5)
    assert list(stream) == [math.sqrt(x) for x in items]
    assert list(parallel.iter_parallel(math.sqrt, items[:3], workers=1)) == [math.sqrt(x) for x in items[:3]]


def test_a_streamed_error_is_raised_and_the_pool_still_serves():
    items = [float(i) for i in range(60)]
    items[41] = -1.0
    stream = parallel.iter_parallel(math.sqrt, items, workers=2, ahead=4)
    with pytest.raises(ValueError, match="math domain error"):
        for got, x in zip(stream, items):
            assert got == math.sqrt(x)  # everything before the bad item arrives first
    assert list(parallel.iter_parallel(math.sqrt, [4.0, 9.0, 16.0], workers=2)) == [2.0, 3.0, 4.0]


def test_pool_workers_get_a_share_of_the_cores_for_their_libraries_threads(monkeypatch):
    for name in [*parallel.THREAD_LIMITS, *parallel.MALLOC_ENV]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    parallel.shutdown_local_pool()
    share = str(max(1, parallel.default_workers() // 2))
    pool = parallel.local_pool(2)
    seen = [pool.submit(os.getenv, name).result() for name in ["POLARS_MAX_THREADS", "OMP_NUM_THREADS"] * 3]
    assert seen == [share, "3"] * 3
    trim = "MALLOC_TRIM_THRESHOLD_"
    assert pool.submit(os.getenv, trim).result() == parallel.MALLOC_ENV[trim]
    assert "POLARS_MAX_THREADS" not in os.environ  # this process is left as it was
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ



# eval: a builtin, so workers need not import this test module to run it
GC_STATE = "(__import__('os').getpid(), __import__('gc').isenabled(), __import__('gc').get_freeze_count())"


def test_a_worker_imports_without_the_collector_then_freezes_what_it_imported():
    parallel.shutdown_local_pool()  # fresh workers
    seen = [s for s in parallel.iter_parallel(eval, [GC_STATE] * 40, workers=2) if s[0] != os.getpid()]
    assert seen, "no item ran in a pool worker"
    first: set[int] = set()
    for pid, enabled, frozen in seen:
        if pid not in first:
            first.add(pid)
            assert not enabled  # its first item, whose unpickling imported the modules
        else:
            assert enabled and frozen > 1000  # the imported modules' objects, frozen
    batches = parallel.map_parallel(eval, [GC_STATE] * 40, workers=2)
    assert all(enabled and frozen > 1000 for pid, enabled, frozen in batches if pid in first)


MAIN_SCRIPT = """
import os, sys
with open(sys.argv[1], "a") as marks:  # every process that runs this script adds a line
    print(os.getpid(), file=marks)

from comodo.pipeline import parallel


def double(x):
    return 2 * x


class Point:
    def __init__(self, x):
        self.x = x

    def __str__(self):
        return f"p{self.x}"


if __name__ == "__main__":
    fn, items = {"main": (double, [3] * 40), "items": (str, [Point(1)] * 40),
                 "library": (os.path.basename, ["a/b"] * 40)}[sys.argv[2]]
    out = parallel.map_parallel(fn, items, workers=2)
    assert out == [fn(x) for x in items], out
    parallel.shutdown_local_pool()
"""


@pytest.mark.parametrize(("task", "runs"), [("library", 1), ("main", 3), ("items", 3)])
def test_workers_rerun_the_launching_script_only_for_its_own_tasks(tmp_path, task, runs):
    script, marks = tmp_path / "launch.py", tmp_path / "marks.txt"
    script.write_text(MAIN_SCRIPT)
    subprocess.run([sys.executable, str(script), str(marks), task], check=True, timeout=120)
    # a library function: only the launching process ran the script (a console script's
    # workers would otherwise import the whole CLI); its own function or items: workers too
    assert len(marks.read_text().split()) == runs
