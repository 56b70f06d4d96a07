"""``make learner``: learner copies of the notebooks, with the solutions taken out.

For each notebook source ``notebooks/NN_topic.py`` this writes ``learner/NN_topic.ipynb``
(at the top of the repository, git-ignored, and not under ``build/``, which ``make
clean`` deletes): every code cell tagged ``solution`` is replaced by a placeholder that
keeps the name its self-check reads (``answer = ...  # your code here``, or for a
function its ``def`` line, docstring and ``raise NotImplementedError``), and every
output and execution count is cleared. The placeholder's self-check then prints
``not yet: no answer yet``.

A copy the learner has worked in is never overwritten. ``learner/.generated.json``
records a hash of each copy as written; on the next run a copy whose hash still matches
is refreshed (when the course changed), and one that differs (edited, run, or saved
by JupyterLab) is kept: if the course changed since, the fresh copy goes beside it as
``NN_topic.new.ipynb`` (itself refreshed only while untouched), and the run says so.

Usage: ``python tools/make_learner.py [--out learner] notebooks/NN_topic.py [...]``
(no paths: every ``notebooks/[0-9][0-9]_*.py``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
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
    for number, cell in enumerate(cells):
        cell.metadata.pop("execution", None)
        cell.id = f"{source.stem[:2]}-{number:03d}"  # the same bytes on every run
    return notebook


MANIFEST = ".generated.json"  # in the output folder: {file name: sha256 as written}
BESIDE = ".new.ipynb"  # the fresh copy next to an edited one


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def place(target: Path, text: str, written: dict[str, str]) -> str:
    """Write ``text`` to ``target`` unless the learner changed it; returns what happened.

    ``written`` (the manifest) maps file names to the hash of what this tool last wrote
    there, and is updated. The returned line names the file a learner should open.
    """
    data = text.encode()
    fresh = _digest(data)

    def untouched(path: Path) -> bool:
        return not path.exists() or _digest(path.read_bytes()) == written.get(path.name)

    if untouched(target):
        state = "up to date" if target.exists() and written.get(target.name) == fresh else None
        if state is None:
            target.write_bytes(data)
            written[target.name] = fresh
            state = "written"
        return f"{target}: {state}"
    if written.get(target.name) == fresh:
        return f"{target}: yours (changed by you), kept; the course has not changed since"
    beside = target.with_name(target.name.removesuffix(".ipynb") + BESIDE)
    if not untouched(beside):
        return f"{target}: yours, kept; {beside.name} is yours too: nothing written"
    if written.get(beside.name) != fresh:
        beside.write_bytes(data)
        written[beside.name] = fresh
    return f"{target}: yours (changed by you), kept; the updated copy is {beside}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("learner"))
    parser.add_argument("sources", nargs="*", type=Path)
    args = parser.parse_args(argv)
    sources = args.sources or sorted(Path("notebooks").glob("[0-9][0-9]_*.py"))
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = args.out / MANIFEST
    written = json.loads(manifest.read_text()) if manifest.exists() else {}
    for source in sources:
        notebook = learner_copy(source)
        target = args.out / source.with_suffix(".ipynb").name
        n = sum(EXERCISE_TAG in c.metadata.get("tags", ()) for c in notebook.cells)
        text = nbformat.writes(notebook).rstrip("\n") + "\n"  # as nbformat.write saves it
        print(f"learner: {place(target, text, written)} ({n} exercises)")
        manifest.write_text(json.dumps(written, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
