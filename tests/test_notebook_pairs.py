"""The jupytext pair check (tools/check_pairs.py) passes on the course and can fail."""

import shutil
from pathlib import Path

import check_pairs
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_the_course_notebooks_are_paired_and_executed():
    assert sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")), "no notebook sources found"
    assert check_pairs.pair_problems(NOTEBOOKS) == []


@pytest.fixture
def course_copy(tmp_path):
    for path in NOTEBOOKS.glob("00_setup.*"):
        shutil.copy(path, tmp_path)
    assert check_pairs.pair_problems(tmp_path) == []
    return tmp_path


def test_a_source_without_its_notebook_fails(course_copy):
    (course_copy / "00_setup.ipynb").unlink()
    assert check_pairs.pair_problems(course_copy) == ["00_setup.py has no 00_setup.ipynb"]


def test_a_notebook_without_its_source_fails(course_copy):
    (course_copy / "00_setup.py").rename(course_copy / "99_orphan.py")
    problems = check_pairs.pair_problems(course_copy)
    assert "00_setup.ipynb has no 00_setup.py" in problems


def test_an_edited_source_fails_even_with_a_newer_notebook(course_copy):
    source = course_copy / "00_setup.py"
    source.write_text(source.read_text().replace("import", "import  ", 1))
    (course_copy / "00_setup.ipynb").touch()  # file times must not matter
    assert any("differs from the .py" in p for p in check_pairs.pair_problems(course_copy))


def test_an_unexecuted_notebook_fails(course_copy):
    path = course_copy / "00_setup.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
    nbformat.write(nb, path)
    assert any("not executed" in p for p in check_pairs.pair_problems(course_copy))
