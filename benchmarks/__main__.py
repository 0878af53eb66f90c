"""Run every benchmark (``make bench``): each ``bench_*.py`` runs as its own process and
writes JSON with medians to ``benchmarks/results/<name>.json``; a summary is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.{name}"]) != 0:
            failed.append(name)
    summary = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    print(json.dumps(summary, indent=2))
    if failed:
        print(f"failed benchmarks: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
