"""``make notes`` (tools/build_notes.py) on a one-cell course: pages, index, offline math."""

import re

import build_notes

SOURCE = """# %% [markdown]
# # 01 · A tiny chapter
#
# The identity $\\lVert a - p \\rVert^2 = 2 (1 - \\cos)$ for unit vectors.

# %%
print(6 * 7)
"""


def test_notes_are_written_in_course_order_and_need_no_network(tmp_path):
    (tmp_path / "01_tiny.py").write_text(SOURCE)
    (tmp_path / "00_first.py").write_text(SOURCE.replace("01 · A tiny", "00 · First"))
    out = tmp_path / "notes"
    assert (
        build_notes.main(
            ["--out", str(out), str(tmp_path / "01_tiny.py"), str(tmp_path / "00_first.py")]
        )
        == 0
    )
    index = (out / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', index)
    assert links == ["00_first.html", "01_tiny.html"]
    page = (out / "01_tiny.html").read_text()
    assert "<title>01 · A tiny chapter</title>" in page
    assert "42" in page  # the executed output is on the page
    assert '<script id="MathJax-script" async src="mathjax/tex-chtml-full.js">' in page
    assert (out / "mathjax" / "tex-chtml-full.js").is_file()
    external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', page)
    assert external == []
