import pytest
import torch

from comodo.pipeline.queue import EmbeddingQueue
from comodo.stores.errors import ConfigError


def _rows(start, n, dim=3):
    return torch.arange(start, start + n, dtype=torch.float32)[:, None].repeat(1, dim)


def test_empty_queue_exposes_only_written_slots():
    queue = EmbeddingQueue(size=5, dim=3)
    assert len(queue) == 0 and queue.features().shape == (0, 3)
    queue.enqueue(_rows(0, 2))
    assert len(queue) == 2
    assert queue.features()[:, 0].tolist() == [0.0, 1.0]


def test_enqueue_wraps_around_and_overwrites_the_oldest():
    queue = EmbeddingQueue(size=5, dim=3)
    queue.enqueue(_rows(0, 4))
    queue.enqueue(_rows(4, 3))  # slots 4, 0, 1
    assert queue.is_full
    assert queue.bank[:, 0].tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]
    assert int(queue.ptr) == 2


def test_batch_larger_than_queue_keeps_its_last_rows():
    queue = EmbeddingQueue(size=4, dim=3)
    queue.enqueue(_rows(0, 1))
    queue.enqueue(_rows(10, 7))
    assert sorted(queue.bank[:, 0].tolist()) == [13.0, 14.0, 15.0, 16.0]
    assert int(queue.ptr) == 1


def test_fill_replaces_everything_and_resets_pointer():
    queue = EmbeddingQueue(size=3, dim=3)
    queue.enqueue(_rows(0, 2))
    queue.fill(_rows(7, 3))
    assert queue.is_full and int(queue.ptr) == 0
    assert queue.features()[:, 0].tolist() == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        queue.fill(_rows(0, 2))


def test_state_dict_round_trip_restores_contents_pointer_and_mask():
    queue = EmbeddingQueue(size=6, dim=3)
    queue.enqueue(_rows(0, 4))
    other = EmbeddingQueue(size=6, dim=3)
    other.load_state_dict(queue.state_dict())
    assert set(queue.state_dict()) == {"bank", "valid", "ptr"}
    assert torch.equal(other.features(), queue.features()) and int(other.ptr) == 4
    other.enqueue(_rows(9, 3))  # slots 4, 5, 0
    assert other.bank[:, 0].tolist() == [11.0, 1.0, 2.0, 3.0, 9.0, 10.0]


def test_enqueue_does_not_track_gradients_and_zero_size_is_a_no_op():
    queue = EmbeddingQueue(size=2, dim=3)
    z = torch.randn(2, 3, requires_grad=True)
    queue.enqueue(z)
    assert not queue.bank.requires_grad
    empty = EmbeddingQueue(size=0, dim=3)
    empty.enqueue(z)
    assert empty.features().shape == (0, 3)


def test_bad_sizes_are_refused():
    with pytest.raises(ConfigError):
        EmbeddingQueue(size=-1, dim=3)
    with pytest.raises(ValueError, match="3-d"):
        EmbeddingQueue(size=2, dim=3).enqueue(torch.zeros(1, 4))
