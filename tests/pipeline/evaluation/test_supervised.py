"""The supervised reference: a student + linear head trained with cross-entropy."""

import numpy as np
import pytest

from comodo.pipeline.evaluation.supervised import (
    SupervisedSettings,
    head_topk,
    predict_logits,
    same_steps,
    train_supervised,
)
from comodo.pipeline.students import StudentSpec
from comodo.stores.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# the classes below differ only in their channel means, which per-window instance
# normalisation removes by design: this student reads its input as stored
SPEC = StudentSpec("cnn1d", 2, 32, None, {"widths": [8, 16], "kernels": [5, 3]}, "none")


def separable(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by the sign pattern of the channel means, plus noise."""
    rng = np.random.default_rng(seed)
    means = np.array([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0]])  # (K, C)
    y = np.repeat(np.arange(3), n_per_class)
    x = means[y][:, :, None] + rng.normal(0, 0.5, (len(y), 2, 32))  # (N, C, T)
    return x.astype(np.float32), y


def test_supervised_student_learns_a_separable_task_its_random_init_does_not_solve():
    x_train, y_train = separable(12, seed=0)
    x_test, y_test = separable(10, seed=1)
    settings = SupervisedSettings(epochs=8, batch_size=12, lr=3e-3, weight_decay=0.0)
    untrained = train_supervised(SPEC, x_train, y_train, 3, settings.__class__(epochs=1, lr=1e-9),
                                 seed=0)
    model = train_supervised(SPEC, x_train, y_train, 3, settings, seed=0)
    trained = head_topk(predict_logits(model, x_test), y_test)
    before = head_topk(predict_logits(untrained, x_test), y_test)
    assert trained["acc@1"] >= 0.95
    assert before["acc@1"] < 0.8
    assert trained["acc@3"] == 1.0  # three classes


def test_head_topk_counts_the_true_class_among_the_k_largest_logits():
    logits = np.array([[0.0, 3.0, 1.0, 2.0, -1.0, -2.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    scores = head_topk(logits, np.array([3, 4]))
    assert scores == {"acc@1": 0.0, "acc@3": 0.5, "acc@5": 1.0}


def test_labels_outside_the_class_range_are_refused():
    x, y = separable(4, seed=0)
    with pytest.raises(ConfigError, match="labels must lie in"):
        train_supervised(SPEC, x, y + 1, 3, SupervisedSettings(epochs=1), seed=0)


@pytest.mark.parametrize(("n_subset", "epochs"), [(27, 330), (270, 37), (323, 30), (1000, 11)])
def test_same_steps_gives_a_few_labels_the_steps_of_every_label(n_subset, epochs):
    full = SupervisedSettings(epochs=30, batch_size=32)  # 323 windows: 11 steps per epoch, 330 steps
    scaled = same_steps(full, 323, n_subset)
    assert scaled.epochs == epochs and (scaled.batch_size, scaled.lr) == (full.batch_size, full.lr)
