"""Sphinx configuration of the lecture notes (``make notes``).

tools/build_notes.py stages this folder and the notebooks into build/site-src and runs
Sphinx there: the notebooks are read with their committed outputs (myst-nb, no
execution) unless ``make notes EXECUTE=1`` re-executed them first. MathJax 3 is served
from the site itself (the files of the PyPI package django-static-mathjax), never from
a CDN.
"""

from importlib import resources

import tripletlab

project = "tripletlab"
author = "the tripletlab authors"
copyright = "2026, the tripletlab authors"  # noqa: A001 (Sphinx's name)
release = tripletlab.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

nb_execution_mode = "off"  # the notebooks are executed by make sync / make notes EXECUTE=1
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "sphinx_book_theme"
html_title = "tripletlab: similarity learning, taught by computing"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
# MathJax from the site: _static/mathjax/es5/... comes from the installed package
html_static_path = [str(resources.files("mathjax") / "static")]
mathjax_path = "mathjax/es5/tex-chtml-full.js"
html_last_updated_fmt = None
html_show_sourcelink = False
