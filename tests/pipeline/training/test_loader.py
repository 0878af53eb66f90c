import numpy as np
import pytest

from comodo.pipeline.training.loader import (
    ChunkGroups,
    PairSource,
    epoch_batches,
    plan_epoch,
    stream_batches,
)
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.chunked import ChunkedStore

N, CHUNK = 150, 16


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    write_paired_stores(root, N, n_channels=2, n_samples=8, teacher_dim=4, chunk_rows=CHUNK,
                        teacher_key="t")
    return PairSource(str(root / "windows.zarr"), str(root / "features" / "t.zarr"))


def _rows(batches):
    return np.concatenate([b.rows for b in batches])


def _keep(step=1):
    keep = np.zeros(N, dtype=bool)
    keep[::step] = True
    return keep


def test_each_kept_row_is_served_once_per_epoch_and_no_other(source):
    keep = _keep(step=3)
    rows = _rows(epoch_batches(source, keep, CHUNK, batch_size=10, seed=0, epoch=0,
                               buffer_chunks=2))
    assert sorted(rows.tolist()) == np.flatnonzero(keep).tolist()


def test_order_is_seeded_and_changes_with_the_epoch(source):
    keep = _keep()
    args = dict(chunk_rows=CHUNK, batch_size=10, seed=3, buffer_chunks=2)
    a = _rows(epoch_batches(source, keep, epoch=0, **args))
    b = _rows(epoch_batches(source, keep, epoch=0, **args))
    c = _rows(epoch_batches(source, keep, epoch=1, **args))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_batches_draw_from_a_few_whole_chunks_not_random_single_windows(source):
    batches = list(epoch_batches(source, _keep(), CHUNK, batch_size=8, seed=0, epoch=0,
                                 buffer_chunks=2))
    for batch in batches:  # a batch lies inside one group, or straddles two
        assert len(np.unique(batch.rows // CHUNK)) <= 4
    first_group = set((_rows(batches[:2]) // CHUNK).tolist())
    assert len(first_group) == 2  # the first 16 rows come from the first two chunks read


def test_pairs_stay_aligned(source):
    batch = next(iter(epoch_batches(source, _keep(), CHUNK, batch_size=12, seed=0, epoch=0,
                                    buffer_chunks=2)))
    from comodo.stores.chunked import ChunkedStore

    imu = ChunkedStore.open(source.windows_url).read_rows("imu", batch.rows)
    feat = ChunkedStore.open(source.features_url).read_rows("pooled", batch.rows)
    assert np.array_equal(batch.imu.numpy(), imu)
    assert np.allclose(batch.feat_teacher.numpy(), feat.astype(np.float32))
    assert batch.imu.shape == (12, 2, 8) and batch.feat_teacher.dtype.is_floating_point


def test_stream_does_not_depend_on_the_number_of_workers(source):
    args = dict(chunk_rows=CHUNK, batch_size=8, seed=1, epoch=2, buffer_chunks=2)
    alone = _rows(epoch_batches(source, _keep(), num_workers=0, **args))
    workers = _rows(epoch_batches(source, _keep(), num_workers=2, **args))
    assert np.array_equal(alone, workers)


def test_resuming_at_a_batch_gives_the_rest_of_the_epoch(source):
    args = dict(chunk_rows=CHUNK, batch_size=7, seed=0, epoch=0, buffer_chunks=3)
    full = list(epoch_batches(source, _keep(), **args))
    rest = list(epoch_batches(source, _keep(), start_batch=5, **args))
    assert len(rest) == len(full) - 5
    assert np.array_equal(_rows(rest), _rows(full[5:]))


def test_last_partial_batch_is_kept_only_when_at_least_half_full():
    plan = plan_epoch(np.ones(150, dtype=bool), CHUNK, seed=0, epoch=0, buffer_chunks=2)
    assert plan.n_batches(40) == 4  # 3 full + 30 rows >= 20
    assert plan.n_batches(70) == 2  # 2 full + 10 rows < 35
    blocks = [{"imu": np.zeros((150, 1, 1)), "feat": np.zeros((150, 1)), "row": np.arange(150)}]
    sizes = [len(b) for b in stream_batches(blocks, 40, plan.n_batches(40))]
    assert sizes == [40, 40, 40, 30]


def test_group_blocks_are_bounded_by_the_buffer(source):
    plan = plan_epoch(_keep(), CHUNK, seed=0, epoch=0, buffer_chunks=3)
    groups = ChunkGroups(source, _keep(), plan, CHUNK, seed=0, epoch=0)
    sizes = [len(g["row"]) for g in groups]
    assert max(sizes) <= 3 * CHUNK and sum(sizes) == N


def test_pieces_smaller_than_the_store_chunks_serve_the_same_pairs(tmp_path):
    write_paired_stores(tmp_path, N, n_channels=2, n_samples=8, teacher_dim=4, chunk_rows=64,
                        teacher_key="t")  # store chunks of 64 rows, read in pieces of 16
    wide = PairSource(str(tmp_path / "windows.zarr"), str(tmp_path / "features" / "t.zarr"))
    keep = _keep(3)
    plan = plan_epoch(keep, CHUNK, seed=0, epoch=0, buffer_chunks=2)
    blocks = list(ChunkGroups(wide, keep, plan, CHUNK, seed=0, epoch=0, shuffle=False))
    rows = np.concatenate([b["row"] for b in blocks])
    np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(keep))
    imu = ChunkedStore.open(wide.windows_url).read_span("imu", 0, N)
    for block in blocks:
        np.testing.assert_array_equal(block["imu"], imu[block["row"]])
