"""``make notes``: the lecture notes as a static site (Sphinx + myst-nb), offline.

Stages ``docs/`` (configuration, index, API reference) and the notebooks into
``<out>/../site-src``, then runs Sphinx into ``<out>``: one chapter per notebook in
course order, the package's API reference from its docstrings, search, and MathJax
served from the site itself. By default the notebooks are taken with their committed
outputs (fast); with ``--execute`` (``make notes EXECUTE=1``) each one is first
executed from its ``.py`` source in a fresh kernel.

Usage: ``python tools/build_notes.py --out build/notes [--execute] notebooks/00_setup.py ...``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

# autodoc imports tripletlab.tensorflow: no TensorFlow start-up chatter on stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import nbformat
from sphinx.cmd.build import build_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import execute_source  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"


def stage(sources: list[Path], staging: Path, execute: bool) -> None:
    """``docs/`` plus one ``notebooks/NN_topic.ipynb`` per source, into ``staging``."""
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(DOCS, staging)
    (staging / "notebooks").mkdir()
    for source in sorted(sources):
        target = staging / "notebooks" / source.with_suffix(".ipynb").name
        if execute:
            notebook, seconds = execute_source(source)
            nbformat.write(notebook, target)
            print(f"notes: executed {source.name} in {seconds:.1f} s")
        else:
            shutil.copy(source.with_suffix(".ipynb"), target)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/notes"))
    parser.add_argument("--execute", action="store_true", help="re-execute every notebook first")
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    staging = args.out.parent / "site-src"
    stage(args.sources, staging, args.execute)
    # -E: a fresh environment every time (the staged sources keep their file times, so
    # Sphinx would not see a change of docs/conf.py's code)
    status = build_main(
        ["-b", "html", "-E", "-q", "-W", "--keep-going", str(staging), str(args.out)]
    )
    if status == 0:
        print(f"notes: {args.out / 'index.html'} ({len(args.sources)} chapters)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
