"""The jupytext pair check: every notebook source has its executed twin, and they agree.

For each ``NN_topic.py`` (percent format, the source) there must be an ``NN_topic.ipynb``
and the reverse; the cells of the ``.ipynb`` (type, source, tags) must equal what
jupytext makes of the ``.py``; and the ``.ipynb`` must have been executed top to
bottom in one kernel (execution counts 1, 2, 3, ...). File times are not used.

Usage: ``python tools/check_pairs.py notebooks`` (exit status 1 and a list of problems
if anything is off). ``make sync`` repairs a stale pair.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOK_GLOB = "[0-9][0-9]_*"


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (cell.cell_type, cell.source, tuple(cell.get("metadata", {}).get("tags", ())))
        for cell in nb.cells
    ]


def pair_problems(folder: Path) -> list[str]:
    """Everything wrong with the notebook pairs in ``folder``, as readable lines."""
    sources = {p.stem: p for p in folder.glob(NOTEBOOK_GLOB + ".py")}
    notebooks = {p.stem: p for p in folder.glob(NOTEBOOK_GLOB + ".ipynb")}
    problems = [f"{sources[s].name} has no {s}.ipynb" for s in sorted(sources.keys() - notebooks)]
    problems += [f"{notebooks[s].name} has no {s}.py" for s in sorted(notebooks.keys() - sources)]
    for stem in sorted(sources.keys() & notebooks.keys()):
        expected = _cells(jupytext.read(sources[stem], fmt="py:percent"))
        notebook = nbformat.read(notebooks[stem], as_version=4)
        actual = _cells(notebook)
        if len(expected) != len(actual):
            problems.append(
                f"{stem}: the .py makes {len(expected)} cells, the .ipynb has {len(actual)}"
            )
        for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
            if want != got:
                problems.append(f"{stem}: cell {index} differs from the .py ({want[0]} cell)")
                break
        counts = [c.get("execution_count") for c in notebook.cells if c.cell_type == "code"]
        if counts != list(range(1, len(counts) + 1)):
            problems.append(
                f"{stem}: the .ipynb is not executed top to bottom in one kernel "
                f"(execution counts {counts[:8]}...)"
            )
    return problems


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "notebooks")
    problems = pair_problems(folder)
    for line in problems:
        print(f"pair check: {line}", file=sys.stderr)
    if not problems:
        n = len(list(folder.glob(NOTEBOOK_GLOB + ".py")))
        print(f"pair check: {n} notebook pairs agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
