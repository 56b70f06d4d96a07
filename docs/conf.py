"""Sphinx configuration of the lecture notes (``make notes``).

tools/build_notes.py stages this folder and the notebooks into build/site-src and runs
Sphinx there: the notebooks are read with their committed outputs (myst-nb, no
execution) unless ``make notes EXECUTE=1`` re-executed them first. MathJax 3 is served
from the site itself (tex-chtml-full.js and its fonts, which tools/build_notes.py stages
from the PyPI package django-static-mathjax), never from a CDN.
"""

import importlib
import inspect

import tripletlab

project = "tripletlab"
author = "the tripletlab authors"
copyright = "2026, the tripletlab authors"  # noqa: A001 (Sphinx's name)
release = tripletlab.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
]
root_doc = "index"
# downloads/: each chapter's .ipynb and .py as they are, offered for download, not pages
exclude_patterns = ["_build", "**.ipynb_checkpoints", "downloads"]

nb_execution_mode = "off"  # the notebooks are executed by make sync / make notes EXECUTE=1
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# the NumPy backend's docstrings end with numpydoc Parameters / Returns sections
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "sphinx_book_theme"
html_title = "tripletlab: similarity learning, taught by computing"
html_theme_options = {
    "show_toc_level": 2,
    # off: each chapter links its own .ipynb and .py under its title (tools/notes_cells.py)
    "use_download_button": False,
    "home_page_in_toc": True,
}
# MathJax from the site: _static/mathjax/es5/..., staged by tools/build_notes.py
html_static_path = ["_static_mathjax", "_static"]
html_css_files = ["notes.css"]
mathjax_path = "mathjax/es5/tex-chtml-full.js"
# a copy button on every code cell (not on outputs) and on the shell and Python
# examples; prompts (>>>, ..., $) are left out of the copied text
copybutton_selector = ", ".join(
    f"div.{kind} div.highlight pre"
    for kind in ("cell_input", "highlight-bash", "highlight-python", "highlight-default")
)
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
html_last_updated_fmt = None
html_show_sourcelink = False
# no _sources/ copy: each chapter links its .ipynb and .py downloads under its title
html_copy_source = False

FRAMEWORK_BACKENDS = {"tripletlab.torch": "tensor", "tripletlab.tensorflow": "tensor"}


def parameters_from_numpy(app, what, name, obj, options, lines):
    """A framework backend's function without a Parameters section gets the NumPy
    backend's (same names and signatures), arrays read as tensors: one text, three pages."""
    module, _, short = name.rpartition(".")
    if what != "function" or module not in FRAMEWORK_BACKENDS:
        return
    if short not in tripletlab.PUBLIC_NAMES or "Parameters" in (s.strip() for s in lines):
        return
    reference = inspect.getdoc(getattr(importlib.import_module("tripletlab.numpy"), short))
    reference = reference.splitlines()
    if "Parameters" not in reference:
        return
    kind = FRAMEWORK_BACKENDS[module]
    sections = reference[reference.index("Parameters") :]
    lines.extend(["", *(s.replace("array_like", kind).replace("array", kind) for s in sections)])


def setup(app):
    # before napoleon (priority 500) turns the numpydoc sections into field lists
    app.connect("autodoc-process-docstring", parameters_from_numpy, priority=400)
