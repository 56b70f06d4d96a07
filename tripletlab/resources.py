"""Files the notebooks read, found the same way from a source checkout and from an install.

The committed ``make bench`` results live in ``benchmarks/`` at the top of the
repository; a wheel carries the same files as ``tripletlab/benchmarks/`` (pyproject.toml
maps one onto the other). Notebook 05 reads them with::

    from tripletlab import resources
    rows = resources.read_csv("results.csv")

so that it runs from a clone (editable install) and from ``pip install tripletlab``.
"""

from __future__ import annotations

import csv
from importlib import resources as _importlib_resources
from importlib.resources.abc import Traversable
from pathlib import Path

BENCHMARKS = "benchmarks"
"""The folder name, in the repository and inside the installed package."""


def benchmarks() -> Traversable:
    """The folder of the committed ``make bench`` results (``results.csv``, ``results.md``,
    ``machine.txt``, ``time_vs_B.png``, ``spread/``).

    Inside the installed package when it is there (a regular install), else the
    repository's ``benchmarks/`` beside the package (a clone, an editable install).
    Raises ``FileNotFoundError`` when neither exists.
    """
    packaged = _importlib_resources.files("tripletlab") / BENCHMARKS
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / BENCHMARKS
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"no {BENCHMARKS}/ folder: neither inside the installed tripletlab package nor "
        f"in a source checkout at {checkout}"
    )


def read_text(name: str) -> str:
    """The text of ``benchmarks/<name>`` (e.g. ``"machine.txt"``, ``"spread/07_training.md"``)."""
    folder = benchmarks()
    for part in name.split("/"):
        folder = folder / part
    return folder.read_text(encoding="utf-8")


def read_csv(name: str) -> list[dict[str, str]]:
    """The rows of ``benchmarks/<name>`` as dictionaries keyed by the header."""
    return list(csv.DictReader(read_text(name).splitlines()))
