"""How much a notebook's trained numbers move with the seed and with the CPU's kernels.

A float32 training run rounds differently on another CPU (oneDNN and PyTorch pick
their kernels by instruction set), with another thread count, or on a GPU. The
notebooks therefore assert their trained claims with margins, and this tool measures
the spread those margins must cover: it executes a notebook source in a fresh kernel
for every seed x kernel variant, with its one line ``SEED = 0`` swapped for the seed,
and records the variables named by ``--collect`` as JSON.

Usage::

    python tools/spread.py notebooks/07_training.py --collect results histories \\
        --seeds 0 1 2 3 4 --out benchmarks/spread/07_training.json

Kernel variants (``VARIANTS``): the machine's own kernels; AVX2 oneDNN with PyTorch's
portable ATen kernels (``ATEN_CPU_CAPABILITY=default``); SSE4.1 oneDNN with the same;
and the machine's kernels on one core (a different thread count). Cells that fail are
recorded (``errors``) rather than stopping the run, so a claim that does not hold for
some seed shows up in the table instead of hiding it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import numpy as np
from nbclient import NotebookClient

SEED_LINE = "SEED = 0"
VARIANTS = {
    "native": {},
    "avx2+aten-default": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "default"},
    "sse41+aten-default": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
    "one-core": {},  # run through tools/one_core.py
}
ONE_CORE = [sys.executable, str(Path(__file__).with_name("one_core.py"))]
COLLECT_CELL = """
import json as _json


def _plain(value):  # JSON: tuple keys joined with " | ", arrays and NumPy scalars as lists
    if isinstance(value, dict):
        join = lambda k: " | ".join(map(str, k)) if isinstance(k, tuple) else str(k)
        return {{join(k): _plain(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value


print("SPREAD-JSON " + _json.dumps(_plain({names})))
"""


def _with_seed(source_text: str, seed: int) -> str:
    lines = source_text.split("\n")
    hits = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == SEED_LINE]
    if len(hits) != 1:
        raise ValueError(f"the notebook must have exactly one line {SEED_LINE!r}; found {hits}")
    lines[hits[0]] = lines[hits[0]].replace(SEED_LINE, f"SEED = {seed}", 1)
    return "\n".join(lines)


def run_one(source: Path, seed: int, collect: list[str]) -> dict:
    """Execute ``source`` with ``SEED = seed`` in this process's environment; return
    ``{"values": {name: value}, "errors": [first line of each failing cell]}``."""
    notebook = jupytext.reads(_with_seed(source.read_text(), seed), fmt="py:percent")
    names = "{" + ", ".join(f"{n!r}: {n}" for n in collect) + "}"
    notebook.cells.append(jupytext.reads(COLLECT_CELL.format(names=names), "py:percent").cells[0])
    NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(source.parent)}},
    ).execute()
    errors, values = [], None
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"{cell.source.splitlines()[0]}: {output['ename']}")
            text = output.get("text", "")
            if output.get("output_type") == "stream" and "SPREAD-JSON " in text:
                values = json.loads(text.split("SPREAD-JSON ", 1)[1])
    return {"values": values, "errors": errors}


def _child(source: Path, seed: int, variant: str, collect: list[str]) -> dict:
    env = {**os.environ, **VARIANTS[variant]}
    command = [sys.executable, __file__, str(source), "--one", str(seed), "--collect", *collect]
    command = ONE_CORE + command if variant == "one-core" else command
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return {"seed": seed, "variant": variant, **json.loads(done.stdout.splitlines()[-1])}


def flatten(value, prefix: str = "") -> dict[str, float]:
    """The numbers in nested dicts and lists as ``{"a/b/0": x}`` (text and None left out)."""
    if isinstance(value, dict):
        return {
            k: v
            for key, item in value.items()
            for k, v in flatten(item, f"{prefix}{key}/").items()
        }
    if isinstance(value, list):
        return {
            k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}/").items()
        }
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {}
    return {prefix.rstrip("/"): value}


def summary(runs: list[dict]) -> str:
    """A markdown table: each scalar's min, mean and max over all runs, and over the
    kernel variants of one seed at most (the largest such range over the seeds)."""
    flat = [flatten(run["values"]) for run in runs]
    keys = sorted(set().union(*flat), key=lambda k: [k.count("/"), k])
    rows = [
        "| figure | min | mean | max | largest range over kernels, one seed |",
        "|---|---|---|---|---|",
    ]
    for key in keys:
        values = np.array([f.get(key, np.nan) for f in flat], dtype=float)
        if not np.isfinite(values).any():
            continue
        by_seed = {}
        for run, value in zip(runs, values, strict=True):
            by_seed.setdefault(run["seed"], []).append(value)
        kernel_range = max(np.ptp(v) for v in by_seed.values())
        rows.append(
            f"| {key} | {np.nanmin(values):.4f} | {np.nanmean(values):.4f} | "
            f"{np.nanmax(values):.4f} | {kernel_range:.4f} |"
        )
    failed = [f"- seed {r['seed']}, {r['variant']}: {e}" for r in runs for e in r["errors"]]
    return "\n".join(rows + ["", "Failing cells:", *(failed or ["- none"])]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--collect", nargs="+", required=True, help="variables to record")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="JSON of every run; a .md summary beside it")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.source, args.one, args.collect)))
        return 0
    jobs = [(seed, variant) for seed in args.seeds for variant in args.variants]
    runs = []
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for run in pool.map(lambda job: _child(args.source, *job, args.collect), jobs):
            runs.append(run)
            print(f"seed {run['seed']} {run['variant']}: {len(run['errors'])} failing cells")
            if args.out:  # after every run: a long measurement that stops keeps what it had
                args.out.write_text(json.dumps(runs, indent=1) + "\n")
    table = summary(runs)
    if args.out:
        args.out.with_suffix(".md").write_text(
            f"# Spread of {args.source.name}: seeds {args.seeds}, kernels {args.variants}\n\n"
            + table
        )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
