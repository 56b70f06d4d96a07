"""``make sync``: regenerate each ``.ipynb`` from its ``.py`` source and execute it in place.

Usage: ``python tools/sync_notebooks.py notebooks/01_cosine_from_l2.py [...]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from execute import execute_source  # a sibling: the script's directory is on sys.path


def main(paths: list[str]) -> int:
    for path in map(Path, paths):
        notebook, seconds = execute_source(path)
        jupytext.write(notebook, path.with_suffix(".ipynb"))
        print(f"sync: {path.with_suffix('.ipynb')} executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
