"""``make notes``: the lecture notes as a static site (Sphinx + myst-nb), offline.

Stages ``docs/`` (configuration, index, API reference, contract, how to run the
course) and the notebooks into ``<out>/../site-src``, then runs Sphinx into ``<out>``:
one chapter per notebook in course order, the package's API reference from its
docstrings, search, and MathJax served from the site itself (only the files that
``tex-chtml-full.js`` loads: the script and its fonts). By default the notebooks are
taken with their committed outputs (fast); with ``--execute`` (``make notes
EXECUTE=1``) each one is first executed from its ``.py`` source in a fresh kernel.
Each staged notebook gets its download links, folded set-up and solution cells, and
its figures' alt text and captions (tools/notes_cells.py); its ``.py`` is staged
beside it for download.

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

from importlib import resources

import nbformat
from execute import execute_source  # siblings: the script's directory is on sys.path
from notes_cells import load_figures, prepare
from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parent.parent / "docs"
# What tex-chtml-full.js loads (it bundles the TeX input, every TeX extension, the CHTML
# output and the menu): itself and its web fonts, about 1.7 MB of the package's 43 MB.
MATHJAX_FILES = ("es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2")
MATHJAX_STAGED = "_static_mathjax"  # html_static_path in docs/conf.py


def stage_mathjax(staging: Path) -> None:
    """Only ``MATHJAX_FILES`` of the MathJax package, to ``staging/_static_mathjax/mathjax``."""
    package = resources.files("mathjax") / "static" / "mathjax"
    for name in MATHJAX_FILES:
        source, target = Path(str(package / name)), staging / MATHJAX_STAGED / "mathjax" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)


def stage(sources: list[Path], staging: Path, execute: bool) -> list[str]:
    """``docs/``, ``notebooks/NN_topic.ipynb`` (prepared for the site) and
    ``downloads/NN_topic.ipynb`` and ``.py`` (as they are) per source, into ``staging``.

    Returns the figures that have no alt text in ``docs/figures.toml``.
    """
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(DOCS, staging)
    stage_mathjax(staging)
    (staging / "notebooks").mkdir()
    (staging / "downloads").mkdir()
    figures = load_figures(DOCS / "figures.toml")
    problems = []
    for source in sorted(sources):
        download = staging / "downloads" / source.with_suffix(".ipynb").name
        if execute:
            notebook, seconds = execute_source(source)
            print(f"notes: executed {source.name} in {seconds:.1f} s")
            nbformat.write(notebook, download)
        else:
            shutil.copy(source.with_suffix(".ipynb"), download)
            notebook = nbformat.read(download, as_version=4)
        shutil.copy(source, download.with_suffix(".py"))
        problems += prepare(notebook, source.stem, figures)
        nbformat.write(notebook, staging / "notebooks" / download.name)
    return problems


def drop_source_maps(site: Path) -> None:
    """Delete the theme's ``*.map`` files (3.5 MB): a browser fetches them only for its
    developer tools, and the site stays well under 15 MB."""
    for path in site.glob("_static/**/*.map"):
        path.unlink()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/notes"))
    parser.add_argument("--execute", action="store_true", help="re-execute every notebook first")
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    staging = args.out.parent / "site-src"
    if (args.out / ".buildinfo").exists():  # a previous site: no stale pages or downloads
        shutil.rmtree(args.out)
    for problem in stage(args.sources, staging, args.execute):
        print(f"notes: figure without alt text ({problem}): add it to docs/figures.toml")
    # -E: a fresh environment every time (the staged sources keep their file times, so
    # Sphinx would not see a change of docs/conf.py's code)
    status = build_main(
        ["-b", "html", "-E", "-q", "-W", "--keep-going", str(staging), str(args.out)]
    )
    if status == 0:
        drop_source_maps(args.out)
        size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
        print(f"notes: {args.out / 'index.html'} ({len(args.sources)} chapters, {size:.1f} MB)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
