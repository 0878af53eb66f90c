"""imap_ordered / map_parallel: input order kept, a bounded window in flight, errors raised."""

import math

import pytest

from comodo.pipeline import parallel


def test_results_come_back_in_input_order_from_the_pool():
    items = [float(i) for i in range(200)]
    assert parallel.map_parallel(math.sqrt, items, workers=2) == [math.sqrt(x) for x in items]


def test_an_error_in_any_item_is_raised_to_the_caller():
    items = [float(i) for i in range(60)]
    items[7] = -1.0  # math.sqrt(-1.0) raises ValueError wherever it runs
    with pytest.raises(ValueError, match="math domain error"):
        parallel.map_parallel(math.sqrt, items, workers=2)


def test_one_worker_runs_in_this_process():
    assert parallel.runs_in_process(1, None, 100)
    assert parallel.runs_in_process(4, None, 1)
    assert not parallel.runs_in_process(2, None, 2)
    assert not parallel.runs_in_process(1, "local-cluster", 100)
    assert parallel.chunk_groups(list(range(10)), workers=2, per_worker=2) == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_streamed_results_keep_order_and_a_stopped_stream_cancels_the_rest():
    items = [float(i) for i in range(50)]
    stream = parallel.imap_ordered(math.sqrt, items, workers=2, ahead=5)
    assert [next(stream) for _ in range(10)] == [math.sqrt(x) for x in items[:10]]
    stream.close()  # the pool shuts down with the queued items cancelled
    assert list(parallel.imap_ordered(math.sqrt, items[:3], workers=1)) == [math.sqrt(x) for x in items[:3]]


def test_threads_keep_input_order():
    assert parallel.map_threads(math.sqrt, [4.0, 9.0, 16.0], workers=2) == [2.0, 3.0, 4.0]
