"""The benchmarks run end to end with tiny sizes and print their table.

Only that the table is produced with all eleven figures is checked: the figures
themselves are measurements, and CI machines are too noisy to hold them to targets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_print_a_table_with_all_eleven_figures() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YC_", "YAGPT_")) and k not in ("API_KEY", "IAM_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| figure"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "figure", "baseline", "ours", "ratio", "target", "result"
    ]
    rows = [line for line in lines if line.startswith("| ") and line is not header]
    assert [row[2:].split(".", 1)[0] for row in rows] == [str(n) for n in range(1, 12)]
    for row in rows:
        assert row.rstrip(" |").endswith(("pass", "FAIL")), row
    assert "machine:" in done.stdout
