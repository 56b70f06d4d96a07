"""Run a notebook source (``.py``, percent format) in a fresh kernel: shared by sync and notes."""

from __future__ import annotations

import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

CELL_TIMEOUT_S = 600


def execute_source(source: Path):
    """Read ``source`` with jupytext, execute it top to bottom in a fresh ``python3``
    kernel whose working directory is the notebook's folder, and return
    ``(notebook, seconds)``. A failing cell raises ``nbclient``'s ``CellExecutionError``.
    """
    notebook = jupytext.read(source, fmt="py:percent")
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    ).execute()
    return notebook, time.perf_counter() - start
