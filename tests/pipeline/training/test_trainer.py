import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from comodo.pipeline.stages.distill import DistillConfig, open_inputs, run, train_data
from comodo.pipeline.students import StudentSpec
from comodo.pipeline.training.checkpoint import WarmupSchedule
from comodo.pipeline.training.model import HeadSettings, build_model
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.pipeline.training.trainer import Trainer, TrainSettings

TINY_CNN = {"widths": [8, 16], "kernels": [5, 3], "dropout": 0.2}
ENV = {**os.environ, "COMODO_PROGRESS": "0", "PYTHONWARNINGS": "ignore"}

RUNNER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from comodo.pipeline.stages.distill import DistillConfig, run
    cfg = DistillConfig.model_validate_json(sys.argv[1])
    kill_at = tuple(int(x) for x in sys.argv[4].split(",")) if len(sys.argv) > 4 else None
    def hook(epoch, batch):
        if (epoch, batch) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    run(cfg, Path(sys.argv[2]), "ds", Path(sys.argv[3]), on_batch_end=hook)
""")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_paired_stores(root / "ds", 160, n_channels=3, n_samples=32, teacher_dim=8,
                        n_classes=3, chunk_rows=16, teacher_key="t", kind="hidden_class")
    return root


def _cfg(**overrides):
    values = dict(teacher="t", epochs=2, batch_size=16, queue_size=24, projector_hidden=32,
                  projector_dim=8, device="cpu", student_options=TINY_CNN)
    return DistillConfig(**{**values, **overrides})


def _weights(run_dir):
    return load_file(str(run_dir / "encoder.safetensors"))


def test_warmup_is_linear_over_a_tenth_then_linear_decay_to_zero_by_default():
    linear = WarmupSchedule.from_fraction(total=100, fraction=0.1, kind="linear")
    assert [linear(s) for s in (0, 9, 10, 55, 99)] == pytest.approx([0.1, 1.0, 1.0, 0.5, 1 / 90])
    assert linear(100) == 0.0
    assert TrainSettings().schedule == "linear" and DistillConfig().schedule == "linear"


def test_warmup_is_linear_over_a_tenth_then_cosine_to_zero_or_constant():
    cosine = WarmupSchedule.from_fraction(total=100, fraction=0.1, kind="cosine")
    assert cosine.warmup == 10
    assert [cosine(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert cosine(55) == pytest.approx(0.5, abs=1e-9) and cosine(100) == pytest.approx(0.0)
    constant = WarmupSchedule.from_fraction(total=100, fraction=0.1, kind="constant")
    assert constant(50) == 1.0 and constant(99) == 1.0


def test_queue_starts_with_train_windows_that_sit_out_the_first_epoch(data_dir, tmp_path):
    cfg = _cfg()
    index, windows, features = open_inputs(cfg, data_dir, "ds")
    data = train_data(cfg, index, windows, features)
    heads = HeadSettings(teacher_dim=8, projector_hidden=32, projector_dim=8, queue_size=24)
    model = build_model(StudentSpec("cnn1d", 3, 32, None, TINY_CNN), heads, seed=0)
    trainer = Trainer(model, data, TrainSettings(batch_size=16, epochs=2), torch.device("cpu"),
                      tmp_path / "checkpoint.pt", "h")
    rows = trainer.queue_rows
    assert len(rows) == 24 and data.train_keep[rows].all()
    assert not trainer._keep(0)[rows].any() and trainer._keep(1)[rows].all()
    feat = torch.as_tensor(features.read_rows("pooled", rows).astype(np.float32))
    assert torch.allclose(model.queue.bank, model.embed_teacher(feat)) and model.queue.is_full


def test_checkpoint_holds_everything_needed_to_resume(data_dir, tmp_path):
    run(_cfg(epochs=1), data_dir, "ds", tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "rng", "position", "history"} <= set(state)
    assert state["position"] == {"epoch": 1, "batch": 0}
    assert {"queue.bank", "queue.ptr", "queue.valid", "projector.net.0.weight",
            "teacher_projector.w1"} <= set(state["model"])
    assert any(k.startswith("student.") for k in state["model"])


class Crash(Exception):
    pass


def test_crash_mid_epoch_then_rerun_ends_with_the_uninterrupted_weights(data_dir, tmp_path):
    cfg = _cfg(epochs=2, checkpoint_every=3)
    run(cfg, data_dir, "ds", tmp_path / "straight")

    def crash(epoch, batch):
        if (epoch, batch) == (1, 4):
            raise Crash

    with pytest.raises(Crash):
        run(cfg, data_dir, "ds", tmp_path / "crashed", on_batch_end=crash)
    seen = []
    run(cfg.model_copy(update={"num_workers": 1}), data_dir, "ds", tmp_path / "crashed",
        on_batch_end=lambda epoch, batch: seen.append((epoch, batch)))
    assert seen[0] == (1, 3)  # resumed at the last checkpoint, not from the start
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "crashed")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_with_the_uninterrupted_weights(data_dir, tmp_path):
    cfg = _cfg(epochs=2, checkpoint_every=3)
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    # the reference runs in a fresh process too, so both use the same torch thread count
    # (a conftest may have changed this process's)
    straight = subprocess.run([sys.executable, str(script), cfg.model_dump_json(), str(data_dir),
                               str(tmp_path / "straight")], env=ENV, capture_output=True, timeout=120)
    assert straight.returncode == 0, straight.stderr.decode()[-2000:]
    # the interrupted run also uses a DataLoader worker: the stream must not depend on it
    resumed_cfg = cfg.model_copy(update={"num_workers": 1}).model_dump_json()
    args = [sys.executable, str(script), resumed_cfg, str(data_dir), str(tmp_path / "killed")]
    killed = subprocess.run([*args, "1,4"], env=ENV, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert state["position"] == {"epoch": 1, "batch": 3}  # batch 4 was lost with the process
    done = subprocess.run(args, env=ENV, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    history = (tmp_path / "killed" / "history.csv").read_text()
    assert len(history.splitlines()) == 3  # header + 2 epochs


def test_two_gloo_processes_give_the_loss_of_one_process_on_the_same_global_batch(
        data_dir, tmp_path):
    # no dropout: each process would draw its own masks
    cfg = _cfg(epochs=2, student_options={**TINY_CNN, "dropout": 0.0})
    run(cfg, data_dir, "ds", tmp_path / "one")
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(script), cfg.model_dump_json(), str(data_dir), str(tmp_path / "two")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4), key


def test_too_large_a_queue_for_the_train_split_is_refused(data_dir, tmp_path):
    from comodo.stores.errors import ConfigError

    with pytest.raises(ConfigError, match="queue_init: empty"):
        run(_cfg(queue_size=5000), data_dir, "ds", tmp_path)
    run(_cfg(queue_size=5000, queue_init="empty", epochs=1), data_dir, "ds", tmp_path)
    state = torch.load(Path(tmp_path) / "checkpoint.pt", weights_only=False)
    assert int(state["model"]["queue.valid"].sum()) > 0
