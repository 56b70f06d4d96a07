"""``make notes``: execute every notebook in a fresh kernel and write HTML pages.

Writes ``<out>/NN_topic.html`` for each source, plus ``<out>/index.html`` linking them in
course order. Math is typeset by a copy of MathJax 3 taken from an installed package
(``django-static-mathjax``: plain MathJax files, no Django needed) and served from the
pages' own folder, so the pages work with no network.

Usage: ``python tools/build_notes.py --out build/notes notebooks/00_setup.py [...]``
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from nbconvert import HTMLExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import execute_source  # noqa: E402

MATHJAX_DIR = "mathjax"
# require.js only serves widget outputs, which the course does not produce.
REQUIRE_JS = re.compile(r'<script src="[^"]*require(\.min)?\.js"></script>')
MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
MATHJAX3 = f"""<!-- MathJax 3, served from this folder -->
<script>
window.MathJax = {{
  tex: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], processEscapes: true, tags: "ams"}},
  options: {{ignoreHtmlClass: "jp-OutputArea"}}
}};
</script>
<script id="MathJax-script" async src="{MATHJAX_DIR}/tex-chtml-full.js"></script>"""


def copy_mathjax(out: Path) -> None:
    """Copy MathJax's ES5 bundle (script, fonts, extensions) next to the pages."""
    source = resources.files("mathjax") / "static" / "mathjax" / "es5"
    target = out / MATHJAX_DIR
    if not target.exists():
        shutil.copytree(str(source), target)


def title_of(notebook, fallback: str) -> str:
    """The first Markdown heading of the notebook, without its ``#``s."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def write_index(out: Path, chapters: list[tuple[str, str, float]]) -> None:
    items = "\n".join(
        f'  <li><a href="{html.escape(page)}">{html.escape(title)}</a>'
        f" <small>(executed in {seconds:.0f} s)</small></li>"
        for page, title, seconds in chapters
    )
    (out / "index.html").write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tripletlab: lecture notes</title>
<style>body {{font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5}}
</style></head>
<body>
<h1>tripletlab: similarity learning, taught by computing</h1>
<p>Each chapter is a notebook executed from its source in a fresh kernel.</p>
<ol start="0">
{items}
</ol>
</body></html>
""",
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/notes"))
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(args.out)
    # No web asset from a CDN: mermaid is loaded only for mermaid diagrams (none here).
    exporter = HTMLExporter(template_name="lab", mermaid_js_url="", mermaid_layout_elk_js_url="")
    chapters = []
    for source in sorted(args.sources):
        notebook, seconds = execute_source(source)
        title = title_of(notebook, source.stem)
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
        body = REQUIRE_JS.sub("", MATHJAX_BLOCK.sub(lambda _: MATHJAX3, body))
        page = source.with_suffix(".html").name
        (args.out / page).write_text(body, encoding="utf-8")
        chapters.append((page, title, seconds))
        print(f"notes: {args.out / page} ({seconds:.1f} s)")
    write_index(args.out, chapters)
    print(f"notes: {args.out / 'index.html'} links {len(chapters)} chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
