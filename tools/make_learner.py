"""``make learner``: learner copies of the notebooks, with the solutions taken out.

For each notebook source ``notebooks/NN_topic.py`` this writes
``build/learner/NN_topic.ipynb``: every code cell tagged ``solution`` is replaced by a
placeholder that keeps the name its self-check reads (``answer = ...  # your code here``,
or for a function its ``def`` line, docstring and ``raise NotImplementedError``), and
every output and execution count is cleared. The placeholder's self-check then prints
``not yet: no answer yet``. The copies are generated: never edit them by hand.

Usage: ``python tools/make_learner.py [--out build/learner] notebooks/NN_topic.py [...]``
(no paths: every ``notebooks/[0-9][0-9]_*.py``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # what a solution cell is tagged in the learner copy
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", ())


def check_call(cell) -> tuple[str, str] | None:
    """``(exercise id, answer name)`` of the first ``check(...)`` call in a code cell."""
    if cell.cell_type != "code":
        return None
    match = CHECK_CALL.search(cell.source)
    return (match.group(1), match.group(2)) if match else None


def placeholder(solution: str, exercise_id: str, name: str) -> str:
    """The learner's version of a solution cell whose answer is ``name``."""
    header = f"# Exercise {exercise_id}: replace the placeholder with your solution."
    tree = ast.parse(solution)
    lines = solution.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            body = node.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            keep_to = body[0].end_lineno if has_doc else body[0].lineno - 1
            signature = lines[node.lineno - 1 : keep_to]
            return "\n".join(
                [header, *signature, "    raise NotImplementedError  # your code here"]
            )
    return f"{header}\n{name} = ...  # your code here"


def learner_copy(source: Path):
    """The learner notebook of ``source`` (a ``.py`` in percent format)."""
    notebook = jupytext.read(source, fmt="py:percent")
    cells = notebook.cells
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if not is_solution(cell):
            continue
        following = next((c for c in cells[index + 1 :] if c.cell_type == "code"), None)
        call = check_call(following) if following is not None else None
        if call is None:
            raise ValueError(f"{source.name}: solution cell {index} has no check(...) after it")
        cell.source = placeholder(cell.source, *call)
        tags = [t for t in cell.metadata.get("tags", []) if t != SOLUTION_TAG]
        cell.metadata["tags"] = [*tags, EXERCISE_TAG]
    for cell in cells:
        cell.metadata.pop("execution", None)
    return notebook


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/learner"))
    parser.add_argument("sources", nargs="*", type=Path)
    args = parser.parse_args(argv)
    sources = args.sources or sorted(Path("notebooks").glob("[0-9][0-9]_*.py"))
    args.out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        notebook = learner_copy(source)
        target = args.out / source.with_suffix(".ipynb").name
        nbformat.write(notebook, target)
        n = sum(EXERCISE_TAG in c.metadata.get("tags", ()) for c in notebook.cells)
        print(f"learner: {target} ({n} exercises)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
