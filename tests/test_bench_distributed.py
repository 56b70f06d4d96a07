"""``tools/bench_distributed.py`` runs (2 gloo processes, tiny batches) and prints its
table: one row per loss, with the times and the three ratios."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "bench_distributed.py"


def test_bench_distributed_smoke_run_prints_its_table():
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--per-worker", "32", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "2 workers x B = 32" in done.stdout and "1 process, B = 64" in done.stdout
    for name in ("batch-all", "batch-hard"):
        (row,) = [line for line in lines if line.startswith(name)]
        assert re.fullmatch(rf"{name}\s+(\d+\.\d\d ms\s+){{4}}(\d+\.\d\d\s+){{2}}\d+\.\d\d", row)
