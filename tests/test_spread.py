"""tools/spread.py: the seed swap, one real run on another CPU's kernels, the summary."""

import os
import subprocess
import sys

import pytest
import spread

NOTEBOOK = """# %%
SEED = 0  # swapped
x = SEED * 10
assert x < 25

# %%
import numpy as np

y = [x, x + 1]
z = {("a", 1): np.float32(0.5), "b": np.arange(2)}
"""


def test_the_seed_line_is_swapped_once_and_must_exist():
    assert "SEED = 3  # swapped" in spread._with_seed(NOTEBOOK, 3)
    assert "SEED = 0" not in spread._with_seed(NOTEBOOK, 3)
    with pytest.raises(ValueError, match="exactly one line"):
        spread._with_seed(NOTEBOOK.replace("SEED = 0", "SEED = 1"), 2)
    with pytest.raises(ValueError, match="exactly one line"):
        spread._with_seed(NOTEBOOK + "SEED = 0\n", 2)


def test_runs_record_values_and_failing_cells_per_seed_and_variant(tmp_path):
    source = tmp_path / "99_tiny.py"
    source.write_text(NOTEBOOK)
    out = tmp_path / "spread.json"
    done = subprocess.run(
        [
            sys.executable,
            spread.__file__,
            str(source),
            "--collect",
            "x",
            "y",
            "z",
            "--seeds",
            "1",
            "3",
        ]
        + ["--variants", "native", "one-core", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = spread.json.loads(out.read_text())
    assert [(r["seed"], r["variant"]) for r in runs] == [
        (1, "native"),
        (1, "one-core"),
        (3, "native"),
        (3, "one-core"),
    ]
    z = {"a | 1": 0.5, "b": [0, 1]}
    assert [r["values"] for r in runs[:2]] == [{"x": 10, "y": [10, 11], "z": z}] * 2
    failed = ["SEED = 3  # swapped: AssertionError"]
    assert [r["errors"] for r in runs] == [[], [], failed, failed]
    assert runs[2]["values"] == {"x": 30, "y": [30, 31], "z": z}  # later cells still ran
    table = out.with_suffix(".md").read_text()
    assert "| x | 10.0000 | 20.0000 | 30.0000 | 0.0000 |" in table
    assert "| y/1 | 11.0000 | 21.0000 | 31.0000 | 0.0000 |" in table
    assert "- seed 3, one-core: SEED = 3  # swapped: AssertionError" in table


def test_flatten_names_nested_numbers_by_path():
    nested = {"a": {"b": [1.0, 2.0]}, "c": 3}
    assert spread.flatten(nested) == {"a/b/0": 1.0, "a/b/1": 2.0, "c": 3}
