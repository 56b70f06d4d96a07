"""``make notes`` (tools/build_notes.py): the site builds, in course order, names no
external host for a script, style sheet, font or image, ships only the MathJax files it
loads, stays under 15 MB, and gives every figure its alt text and caption."""

import html
import re
from pathlib import Path

import nbformat
import notes_cells

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# a script, style sheet, image or font fetched from another host (plain <a> links are fine)
EXTERNAL = re.compile(
    r"""<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+(?:url\()?["']?(?:https?:)?//"""
)


def test_every_notebook_is_a_chapter_in_course_order(site):
    index = (site / "index.html").read_text()
    chapters = re.findall(r'href="notebooks/(\d\d_[a-z0-9_]+)\.html"', index)
    assert list(dict.fromkeys(chapters)) == [p.stem for p in SOURCES]  # in course order
    for source in SOURCES:
        page = (site / "notebooks" / f"{source.stem}.html").read_text()
        assert 'src="../_static/mathjax/es5/tex-chtml-full.js' in page or "$" not in page
    assert (site / "_static" / "mathjax" / "es5" / "tex-chtml-full.js").is_file()
    assert (site / "searchindex.js").is_file() and (site / "search.html").is_file()


def test_the_api_reference_comes_from_the_docstrings(site):
    api = (site / "api.html").read_text()
    for name in ("tripletlab.numpy.batch_all_triplet_loss", "tripletlab.torch.SiameseHead"):
        assert f'id="{name}"' in api
    assert "fraction_positive" in api  # a sentence of the docstring, not just the name


def test_no_page_or_style_sheet_names_an_external_host(site):
    offenders = [
        str(path.relative_to(site))
        for path in site.rglob("*")
        if path.suffix in {".html", ".css"} and EXTERNAL.search(path.read_text(errors="ignore"))
    ]
    assert offenders == []


def test_the_check_finds_an_external_host():
    assert EXTERNAL.search('<script src="https://cdn.example/mathjax.js"></script>')
    assert EXTERNAL.search("@font-face { src: url(//fonts.example/x.woff2) }")
    assert not EXTERNAL.search(
        '<a href="https://arxiv.org/abs/1703.07737">paper</a>'.replace("a href", "a data-x")
    )


def test_the_site_ships_only_the_mathjax_it_loads_and_stays_small(site):
    mathjax = site / "_static" / "mathjax"
    shipped = sorted(p.relative_to(mathjax).as_posix() for p in mathjax.rglob("*") if p.is_file())
    assert shipped[0] == "es5/output/chtml/fonts/woff-v2/MathJax_AMS-Regular.woff"
    assert shipped[-1] == "es5/tex-chtml-full.js"
    assert all(name.endswith(".woff") for name in shipped[:-1])
    assert sum(p.stat().st_size for p in mathjax.rglob("*") if p.is_file()) < 2 * 2**20
    assert not list(site.rglob("*.map"))
    assert sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) < 15 * 2**20


def test_every_figure_has_its_own_alt_text_and_a_caption(site):
    figures = notes_cells.load_figures(ROOT / "docs" / "figures.toml")
    written = {alt for figure in figures for alt in figure.alt}
    for source in SOURCES:
        page = (site / "notebooks" / f"{source.stem}.html").read_text()
        alts = [html.unescape(a) for a in re.findall(r'<img alt="([^"]*)"', page)]
        assert len(alts) == len(re.findall(r"<img\b", page)), source.stem
        assert set(alts) <= written, f"{source.stem}: a figure without docs/figures.toml text"
        assert page.count("<figcaption") == len(alts), source.stem
    assert len(written) >= 14


def test_figures_toml_describes_each_figure_once():
    figures = notes_cells.load_figures(ROOT / "docs" / "figures.toml")
    for source in SOURCES:
        notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
        assert notes_cells.describe_figures(notebook, source.stem, figures) == []


def test_a_figure_without_an_entry_is_reported():
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "plt.show()",
                outputs=[nbformat.v4.new_output("display_data", {"image/png": "iVBOR"})],
            )
        ]
    )
    (problem,) = notes_cells.describe_figures(notebook, "99_new", [])
    assert "99_new cell 0" in problem
    assert notebook.cells[0].metadata["mystnb"]["image"]["alt"] == notes_cells.GENERIC_ALT


def test_every_internal_link_points_to_a_file_of_the_site(site):
    broken = []
    for page in site.rglob("*.html"):
        for href in re.findall(r'<a [^>]*href="([^"#]+)', page.read_text()):
            if not href.startswith(("http:", "https:", "mailto:")):
                target = (page.parent / href).resolve()
                if not (target.is_file() or (target / "index.html").is_file()):
                    broken.append(f"{page.relative_to(site)}: {href}")
    assert broken == []


def test_the_contract_and_how_to_run_the_course_are_pages(site):
    index = (site / "index.html").read_text()
    assert 'href="running.html"' in index and 'href="contract.html"' in index
    contract = (site / "contract.html").read_text()
    assert "batch_all_triplet_loss" in contract and "Worked numbers" in contract
    running = re.sub(r"<[^>]+>", "", (site / "running.html").read_text())
    assert "make lab" in running and "make learner" in running and "self-check" in running
