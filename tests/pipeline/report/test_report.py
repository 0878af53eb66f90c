"""`comodo report` on results, features, histories and sweeps laid out in tmp_path."""

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
from typer.testing import CliRunner

from comodo.cli.main import app
from comodo.pipeline.report.build import ReportConfig, results_table, run
from comodo.pipeline.report.document import Document, Heading, Image, to_html, to_markdown

PNG_MAGIC = b"\x89PNG"


def write_inputs(root: Path) -> None:
    ds = root / "metrics" / "toy"
    (ds / "features").mkdir(parents=True)
    rows = [{"method": "cnn1d comodo", "dataset": "toy", "variant": "distilled", "acc@1": 0.8123,
             "acc@3": 0.95, "acc@5": 1.0, "std@1": 0.0123, "confusion": [[3, 1], [0, 4]]},
            {"method": "cnn1d random init", "dataset": "toy", "variant": "random_init",
             "acc@1": 0.5, "acc@3": 1.0, "acc@5": 1.0, "confusion": [[2, 2], [2, 2]]}]
    (ds / "evaluate.json").write_text(json.dumps({"dataset": "toy", "classes": ["sit", "walk"],
                                                  "run": "runs/toy/default", "rows": rows}))
    (root / "metrics" / "other").mkdir()
    (root / "metrics/other/evaluate.json").write_text(json.dumps(
        {"rows": [{"method": "cnn1d comodo", "dataset": "other", "acc@1": 0.3, "acc@3": 0.6,
                   "acc@5": 0.7}]}))
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    for variant, gap in (("random_init", 0.1), ("distilled", 4.0)):
        x = rng.normal(0, 1, (40, 8)) + gap * y[:, None]
        np.savez(ds / "features" / f"{variant}.npz", x=x, y=y, classes=np.array(["sit", "walk"]))
    run_dir = root / "runs" / "toy" / "default"
    run_dir.mkdir(parents=True)
    pl.DataFrame({"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.7, 1.4],
                  "val_anchor_acc": [0.2, 0.4, 0.5], "lr": [1e-3] * 3}).write_csv(
        run_dir / "history.csv")
    (run_dir / "metrics.json").write_text(json.dumps({"train_loss": 1.2}))  # not a results file
    stray = root / "runs" / "toy" / "smoke-test"  # a run no results file names
    stray.mkdir()
    (stray / "history.csv").write_bytes((run_dir / "history.csv").read_bytes())
    (stray / "results.json").write_text(json.dumps(
        {"rows": [{"method": "smoke", "dataset": "toy", "acc@1": 0.1, "acc@3": 0.2, "acc@5": 0.3}]}))
    (ds / "sweep_queue_size.json").write_text(json.dumps(
        {"param": "queue_size", "dataset": "toy",
         "points": [{"value": v, "acc@1": a} for v, a in ((256, 0.5), (1024, 0.6), (4096, 0.7))]}))


def test_report_holds_the_table_and_every_figure_inlined(tmp_path):
    write_inputs(tmp_path)
    md_path, html_path = run(ReportConfig(name="r1", max_map_points=30), tmp_path)
    assert md_path == tmp_path / "reports/r1.md" and html_path == tmp_path / "reports/r1.html"
    md, page = md_path.read_text(), html_path.read_text()
    assert "| cnn1d comodo | 30.0 | 60.0 | 70.0 | 81.2 ± 1.2 | 95.0 | 100.0 |" in md
    assert "| cnn1d random init | – | – | – | 50.0 | 100.0 | 100.0 |" in md
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 4  # one confusion (distilled only), one map, one curve, one sweep
    import base64
    assert all(base64.b64decode(i)[:4] == PNG_MAGIC for i in images)
    files = sorted(p.name for p in (tmp_path / "reports/r1_files").iterdir())
    assert files == ["confusion_toy_cnn1d_comodo.png", "curves_toy_default.png",
                     "embedding_toy.png", "sweep_queue_size.png"]
    assert all(f"r1_files/{f}" in md for f in files)
    assert "src='r1_files" not in page  # the HTML needs no file beside it


def test_missing_inputs_become_notes_not_errors(tmp_path):
    (tmp_path / "metrics/toy").mkdir(parents=True)
    (tmp_path / "metrics/toy/evaluate.json").write_text("{not json")
    (tmp_path / "metrics/toy/bad.json").write_text(json.dumps({"rows": [{"method": 3}]}))
    md_path, html_path = run(ReportConfig(), tmp_path)
    md = md_path.read_text()
    assert "skipped" in md and "not readable JSON" in md and "needs method" in md
    assert "results table skipped" in md and "training curves skipped" in md
    assert "embedding maps skipped" in md and "curve skipped" in md
    assert "runs does not exist" not in md  # no results file names a run: runs/ is not read
    assert "<img" not in html_path.read_text()


def test_a_map_with_one_variant_notes_the_missing_panel(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "metrics/toy/features/random_init.npz").unlink()
    md = run(ReportConfig(max_map_points=30), tmp_path)[0].read_text()
    assert "no random_init.npz" in md and "embedding_toy.png" in md


def test_results_table_keeps_method_order_and_fills_gaps():
    table = results_table([{"method": "b", "dataset": "y", "acc@1": 0.5, "acc@3": None, "acc@5": 1},
                           {"method": "a", "dataset": "x", "acc@1": 0.25, "acc@3": 0.5, "acc@5": 1}])
    assert table.headers[:4] == ["method", "x Acc@1", "x Acc@3", "x Acc@5"]
    assert table.rows == [["b", "–", "–", "–", "50.0", "–", "100.0"],
                          ["a", "25.0", "50.0", "100.0", "–", "–", "–"]]


def test_html_escapes_text_and_markdown_escapes_pipes():
    doc = Document("a <b> | c")
    doc.add(Heading("x & y"))
    doc.add(Image("t", PNG_MAGIC, "f.png"))
    assert "a &lt;b&gt; | c" in to_html(doc) and "x &amp; y" in to_html(doc)
    assert "![t](imgs/f.png)" in to_markdown(doc, "imgs")


def test_report_command_prints_both_paths(tmp_path, monkeypatch):
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--name", "cli", "--runs-dir", "nowhere"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["reports/cli.md", "reports/cli.html"]
    assert "no nowhere/toy/default/history.csv" in (tmp_path / "reports/cli.md").read_text()


def test_report_takes_only_the_runs_the_metrics_files_name(tmp_path):
    write_inputs(tmp_path)
    md_path, _ = run(ReportConfig(name="r2", max_map_points=30), tmp_path)
    md = md_path.read_text()
    assert "curves_toy_default.png" in md
    assert "smoke-test" not in md and "| smoke |" not in md
