"""``make bench`` is not part of the test suite; this smoke run (B = 64) is."""

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_run_writes_its_table_and_agrees_with_pml(tmp_path):
    import pytorch_metric_learning  # noqa: F401  (a pinned test dependency: missing fails)

    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    methods = {row["method"] for row in rows}
    assert {"gram matmul", "tl.torch batch-all", "PML batch-all", "cube batch-all"} <= methods
    agreement = {row["method"]: row["agrees_with_PML"] for row in rows if row["agrees_with_PML"]}
    assert agreement == {
        "tl.torch batch-all": "True",
        "tl.torch batch-hard": "True",
        "tl.torch info-nce": "True",  # with the plain fused softmax
        "tl.torch supcon": "True",  # with PML's SupConLoss
        "tl.torch nt-xent": "True",  # with PML's NTXentLoss
    }
    for row in rows:
        assert float(row["seconds"]) > 0 and float(row["peak_mib"]) > 0
    assert (tmp_path / "results.md").read_text().count("\n| ") == len(rows) + 1
    assert (tmp_path / "time_vs_B.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "softmax_time_vs_B.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "machine.txt").read_text().count("cores") == 1
    (tmp_path / "time_vs_B.png").unlink()
    redraw = [
        sys.executable,
        str(ROOT / "tools" / "bench.py"),
        "--plot-only",
        "--out",
        str(tmp_path),
    ]
    assert subprocess.run(redraw, capture_output=True, timeout=120).returncode == 0
    assert (tmp_path / "time_vs_B.png").read_bytes()[:4] == b"\x89PNG"
