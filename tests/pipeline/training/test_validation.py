import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.objectives import l2
from comodo.pipeline.training.loader import PairSource, epoch_batches
from comodo.pipeline.training.model import DistillModel, HeadSettings
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.pipeline.training.validation import class_anchors, validate
from comodo.stores.chunked import ChunkedStore
from comodo.stores.index import read_table


class FirstFeatures(nn.Module):
    """A 'student' that returns its window's first ``dim`` samples of channel 0."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim

    def forward(self, imu):
        return imu[:, 0, : self.out_dim]


def _setup(tmp_path):
    write_paired_stores(tmp_path, 96, n_channels=1, n_samples=8, teacher_dim=8, n_classes=3,
                        chunk_rows=16, teacher_key="t", kind="hidden_class")
    source = PairSource(str(tmp_path / "windows.zarr"), str(tmp_path / "features" / "t.zarr"))
    index = read_table(str(tmp_path / "windows.parquet"))
    heads = HeadSettings(teacher_dim=8, projector_hidden=8, teacher_projector="identity",
                         queue_size=0)
    model = DistillModel(FirstFeatures(8), heads, seed=0)
    model.projector = nn.Identity()  # student embedding = its raw output
    return source, index, model


def test_anchors_are_normalised_class_means_of_train_teacher_embeddings(tmp_path):
    source, index, model = _setup(tmp_path)
    labels = index["label_id"].to_numpy()
    train = index["split"].to_numpy() == "train"
    anchors, ids = class_anchors(model, source, train, labels, torch.device("cpu"))
    feat = ChunkedStore.open(source.features_url).read_rows("pooled", np.arange(96))
    z_teacher = F.normalize(torch.as_tensor(feat.astype(np.float32)), dim=1)
    for k in ids:
        want = F.normalize(z_teacher[torch.as_tensor(train & (labels == k))].sum(0), dim=0)
        assert torch.allclose(anchors[int(np.flatnonzero(ids == k)[0])], want, atol=1e-5)


def test_a_student_that_copies_the_teacher_scores_full_anchor_accuracy(tmp_path):
    source, index, model = _setup(tmp_path)
    labels = index["label_id"].to_numpy()
    split = index["split"].to_numpy()
    anchors, ids = class_anchors(model, source, split == "train", labels, torch.device("cpu"))
    # write each window's teacher feature into its IMU: the student then reproduces z_teacher
    windows = ChunkedStore.open(source.windows_url, mode="r+")
    feat = ChunkedStore.open(source.features_url).read_rows("pooled", np.arange(96))
    for chunk in range(windows.n_chunks):
        sl = windows.chunk_slice(chunk)
        windows.write_chunk(chunk, {"imu": feat[sl].astype(np.float32)[:, None, :]})
    val = split == "val"
    batches = epoch_batches(source, val, 16, 8, 0, 0, 2, shuffle=False)
    result = validate(model, batches, labels, anchors, ids, l2, {}, torch.device("cpu"))
    assert result["val_anchor_acc"] == 1.0
    assert result["val_loss"] < 1e-6
