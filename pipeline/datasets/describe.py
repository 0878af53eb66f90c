"""What an adapter finds in a raw folder, in a few lines (``comodo check-dataset``).

``describe`` scans the folder, counts recordings by split and label, groups the rejects by
reason, and reads the IMU of the first ``n_load`` recordings: samples, channels, units,
native rate, duration and the units check (``units_check``) after conversion to g. Raw
counts are converted with the imu stage's default ``scale_factors`` (16384 counts/g),
which the line says.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict

import numpy as np

from comodo.pipeline import signal, units_check
from comodo.pipeline.datasets.base import DatasetAdapter, Recording, Reject
from comodo.pipeline.datasets.common import estimate_rate
from comodo.stores.errors import ComodoError


def describe(adapter: DatasetAdapter, n_load: int = 1, tolerance: float = 0.25,
             quiet_cv: float = units_check.QUIET_CV) -> list[str]:
    """Lines saying what ``adapter`` found under its root (first line: the counts)."""
    recs, rejects = adapter.scan()
    lines = [f"{adapter.dataset}: adapter {adapter.name} at {adapter.root}: "
             f"{len(recs)} recordings, {len(rejects)} rejected"]
    lines += [f"  {line}" for line in adapter.inventory()]
    if recs:
        lines += _recording_lines(recs)
    lines += _reject_lines(rejects)
    for rec in recs[:n_load]:
        lines.append(imu_line(adapter, rec, tolerance, quiet_cv))
    return lines


def _recording_lines(recs: list[Recording]) -> list[str]:
    splits = Counter(r.split for r in recs)
    labels = Counter(r.label for r in recs)
    rates = [r.imu_rate_hz for r in recs if r.imu_rate_hz]
    kinds = Counter(r.video_kind for r in recs)
    subjects = {r.subject for r in recs if r.subject}
    top = ", ".join(f"{label} {n}" for label, n in labels.most_common(6))
    out = [f"  splits: {', '.join(f'{s} {splits[s]}' for s in sorted(splits))}",
           f"  labels: {len(labels)} ({top}{', ...' if len(labels) > 6 else ''})",
           f"  video: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}; "
           f"subjects: {len(subjects) or 'none given'}"]
    if rates:
        out.append(f"  native IMU rate: {min(rates):.1f}-{max(rates):.1f} Hz (median {np.median(rates):.1f})")
    return out


def _reject_lines(rejects: list[Reject]) -> list[str]:
    """Rejects grouped by their reason with paths and numbers blanked out."""
    groups: Counter[str] = Counter()
    example: dict[str, str] = {}
    for r in rejects:
        key = re.sub(r"(/\S+|\d+)", "#", r.reason.replace(r.item, "<id>"))[:90]
        groups[key] += 1
        example.setdefault(key, f"{r.item}: {r.reason}")
    return [f"  rejected {n}x: {example[key][:200]}" for key, n in groups.most_common(3)]


def imu_line(adapter: DatasetAdapter, rec: Recording, tolerance: float, quiet_cv: float) -> str:
    """One recording's IMU: shape, units, rate, span and the units check."""
    try:
        imu = adapter.load_imu(asdict(rec))
        factors, units = signal.unit_factors(imu.units, imu.channels, "mmea")
    except ComodoError as err:
        return f"  imu of {rec.recording_id}: cannot be read: {err}"
    t = np.asarray(imu.t_s, dtype=np.float64)
    rate = estimate_rate(t)
    head = (f"  imu of {rec.recording_id}: {len(t)} samples x {len(imu.channels)} channels "
            f"{imu.channels} in {sorted(set(imu.units))}, {rate:.1f} Hz over {t[-1] - t[0]:.2f} s")
    acc = [i for i, (c, u) in enumerate(zip(imu.channels, units)) if u == "g" and c.startswith("acc")]
    if len(acc) != 3:
        return f"{head}; units check: not applicable (no accelerometer in physical units)"
    counts = signal.MMEA_COUNTS["acc"] if imu.units[acc[0]] == "count" else None
    verdict = units_check.gravity_check(imu.values[:, acc] * factors[acc], rate, tolerance, counts,
                                        quiet_cv=quiet_cv)
    if verdict is None:
        return f"{head}; units check: not judged (no window at rest, or under 32 samples)"
    scaled = f" (counts / {counts:g})" if counts else ""
    return f"{head}; units check{scaled}: {'ok' if verdict.ok else 'FAILED'}, {verdict.message(tolerance)}"
