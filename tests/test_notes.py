"""``make notes`` (tools/build_notes.py): the site builds, in course order, and names no
external host for a script, style sheet, font or image."""

import re
from pathlib import Path

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
