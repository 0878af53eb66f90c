"""UMA tables and the latent map enter the report."""

import json

from comodo.pipeline.report.build import ReportConfig, run


def _cell(mean, std=0.0):
    return {"mean": mean, "std": std, "n_seeds": 1}


def test_uma_tables_list_methods_modalities_noises_and_chance(tmp_path):
    uma = tmp_path / "metrics/ds/uma"
    uma.mkdir(parents=True)
    test = {"c3t": {"imu": {"clean": _cell(0.5), "shift": _cell(0.25)},
                    "video": {"clean": _cell(0.75)}, "both": {"clean": _cell(0.8, 0.1)}}}
    selected = {"c3t": {"setting": {"head": "mlp_sum"}, "phase": "har", "epoch": 7, "val_accuracy": 0.625}}
    (uma / "metrics.json").write_text(json.dumps(
        {"dataset": "ds", "seeds": [0], "random_guess": 0.1, "test": test,
         "splits": {"0": {"selected": selected}}}))
    md, html = run(ReportConfig(name="r"), tmp_path)
    text = md.read_text()
    assert "| c3t | 50.0 ± 0.0 | 75.0 ± 0.0 | 80.0 ± 10.0 |" in text
    assert "| method (IMU only) | clean | shift |" in text
    assert "| random guess | 10.0 | 10.0 |" in text
    assert "| c3t | 0 | head=mlp_sum | har | 7 | 62.5 |" in text
    assert "Unsupervised Modality Adaptation" in html.read_text()


def test_missing_uma_results_become_a_note(tmp_path):
    md, _ = run(ReportConfig(name="r"), tmp_path)
    assert "<ds>/uma/metrics.json (run `comodo uma`): UMA skipped" in md.read_text()
