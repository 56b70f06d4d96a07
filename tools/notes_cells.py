"""What ``make notes`` changes in the staged copy of each notebook before Sphinx reads it.

The notebooks themselves are not edited: tools/build_notes.py applies these to the copy
it stages in ``build/site-src``.

- **Downloads**: under the chapter's title, links to its ``.ipynb`` (with outputs, as
  committed or as ``EXECUTE=1`` ran it, without these changes) and its percent-format
  ``.py`` source, which tools/build_notes.py stages in ``downloads/`` and Sphinx's
  ``{download}`` role copies into the site.
- **The set-up cell** (the first code cell, which sets the TensorFlow variables, imports
  and seeds) is folded, its output shown; chapter 00, which is about that cell, keeps
  it open.
- **Solutions** (code cells tagged ``solution``) are folded, with their output, behind
  "Show the solution", so that a reader can try an exercise before seeing its answer.
- **Figures** get the alt text and caption written for them in ``docs/figures.toml``,
  matched by a piece of the cell's source; a figure without an entry gets a generic
  alt text and is reported (``tests/test_notes.py`` fails on it). A cell that draws
  several figures has a list of alt texts and captions, one per figure: its outputs
  are split over cells (the later ones without their input), since myst-nb reads them
  per cell.

Folding uses myst-nb's ``hide-input`` and ``hide-cell`` tags: a ``<details>`` element,
no JavaScript.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path

SOLUTION_TAG = "solution"
SETUP_MARKER = 'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL"'
FOLDED_SETUP = "Show the set-up cell (TensorFlow variables, imports, seeds)"
FOLDED_SOLUTION = "Show the solution"
DOWNLOADS = "../downloads"  # from a chapter's page; docs/conf.py excludes it from the docs
GENERIC_ALT = "A figure drawn by the code cell above; see the text around it."


@dataclass(frozen=True)
class Figure:
    """One entry of docs/figures.toml: per figure of the cell, an alt text and a caption."""

    notebook: str
    match: str
    alt: tuple[str, ...]
    caption: tuple[str, ...]


def load_figures(path: Path) -> list[Figure]:
    """The entries of ``docs/figures.toml`` (``[[figure]]`` tables)."""

    def texts(value) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        return tuple(" ".join(v.split()) for v in values)

    entries = tomllib.loads(path.read_text())["figure"]
    return [
        Figure(e["notebook"], e["match"], texts(e["alt"]), texts(e["caption"])) for e in entries
    ]


def _fold(cell, prompt: str, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)
    mystnb = cell.metadata.setdefault("mystnb", {})
    mystnb["code_prompt_show"] = prompt
    mystnb["code_prompt_hide"] = prompt.replace("Show", "Hide", 1)


def _image_count(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def add_downloads(notebook, stem: str) -> None:
    """Links to ``<stem>.ipynb`` and ``<stem>.py`` under the title of the first cell."""
    first = notebook.cells[0]
    lines = first.source.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    links = (
        f"{{download}}`Download the notebook (.ipynb, with outputs) <{DOWNLOADS}/{stem}.ipynb>`"
        f" · {{download}}`the percent-format source (.py) <{DOWNLOADS}/{stem}.py>` · "
        "[how to run this course](../running.md)"
    )
    lines[title + 1 : title + 1] = ["", links]
    first.source = "\n".join(lines)


def fold_setup_and_solutions(notebook, stem: str) -> None:
    """Fold the set-up cell (chapters 01 on) and every solution cell."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code and not stem.startswith("00") and SETUP_MARKER in code[0].source:
        _fold(code[0], FOLDED_SETUP, "hide-input")  # its output, the device line, stays
    for cell in code:
        if SOLUTION_TAG in cell.metadata.get("tags", ()):
            _fold(cell, FOLDED_SOLUTION, "hide-cell")  # its output may give the answer away


def split_by_image(cell) -> list:
    """``cell`` itself if it draws one figure; else one cell per figure, the later ones
    holding only their outputs (tagged ``remove-input``)."""
    if _image_count(cell) < 2:
        return [cell]
    parts, outputs = [], []
    for output in cell.outputs:
        outputs.append(output)
        if "image/png" in output.get("data", {}):
            parts.append(outputs)
            outputs = []
    parts[-1] += outputs  # what follows the last figure stays with it
    cells = []
    for number, part in enumerate(parts):
        piece = copy.deepcopy(cell)
        piece.outputs = part
        if number:
            piece.source = "# drawn by the cell above"  # hidden; myst-nb skips empty cells
            piece.id = f"{cell.get('id', 'cell')}-{number}"
            piece.metadata["tags"] = [*piece.metadata.get("tags", []), "remove-input"]
        cells.append(piece)
    return cells


def describe_figures(notebook, stem: str, figures: list[Figure]) -> list[str]:
    """Alt text and caption on each figure; returns what is missing or ambiguous."""
    problems, cells = [], []
    mine = [f for f in figures if f.notebook == stem]
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not _image_count(cell):
            cells.append(cell)
            continue
        found = [f for f in mine if f.match in cell.source]
        pieces = split_by_image(cell)
        if len(found) != 1 or len(found[0].alt) != len(pieces):
            problems.append(
                f"{stem} cell {index}: {len(found)} entries of docs/figures.toml for "
                f"{len(pieces)} figures"
            )
            texts = [(GENERIC_ALT, "")] * len(pieces)
        else:
            texts = zip(found[0].alt, found[0].caption, strict=True)
        for piece, (alt, caption) in zip(pieces, texts, strict=True):
            mystnb = piece.metadata.setdefault("mystnb", {})
            mystnb["image"] = {"alt": alt}
            if caption:
                mystnb["figure"] = {"caption": caption}
        cells += pieces
    notebook.cells = cells
    sources = [c.source for c in notebook.cells if c.cell_type == "code" and _image_count(c)]
    for entry in mine:
        if not any(entry.match in source for source in sources):
            problems.append(f"{stem}: no figure cell contains {entry.match!r}")
        if len(entry.alt) != len(entry.caption):
            problems.append(f"{stem}: {entry.match!r} has not one caption per alt text")
    return problems


def prepare(notebook, stem: str, figures: list[Figure]) -> list[str]:
    """Every change above, in place; returns the figure problems (empty when none)."""
    add_downloads(notebook, stem)
    fold_setup_and_solutions(notebook, stem)
    return describe_figures(notebook, stem, figures)
