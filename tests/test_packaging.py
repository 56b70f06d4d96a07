"""Packaging: metadata, one version, extras by purpose, a complete sdist whose tests run,
a wheel with ``py.typed`` and the files the notebooks read, and the contract in docs/."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import check_python
import pytest
from packaging.requirements import Requirement

import tripletlab
from tripletlab import resources

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HELPERS = ["tests/conftest.py", "tests/backends.py", "tests/oracle.py"]


def test_the_license_and_the_metadata_a_user_reads():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert PROJECT["authors"] and PROJECT["description"]
    classifiers = PROJECT["classifiers"]
    low, high = check_python.supported_range((ROOT / "pyproject.toml").read_text())
    pythons = [c.rsplit(" ", 1)[1] for c in classifiers if c.count("::") == 2 and "3." in c]
    assert pythons == check_python.versions_between(low, high)  # one range, said twice
    assert "Typing :: Typed" in classifiers and (ROOT / "tripletlab" / "py.typed").is_file()


def test_the_version_is_written_once():
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert importlib.metadata.version("tripletlab") == tripletlab.__version__
    assert "tripletlab.__version__" in (ROOT / "docs" / "conf.py").read_text()


def test_extras_by_purpose_and_all_of_them_in_all():
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"torch", "tensorflow", "course", "docs", "dev", "all"}
    (everything,) = extras["all"]
    assert Requirement(everything).extras == set(extras) - {"all"}
    names = {e: {Requirement(r).name for r in extras[e]} for e in extras}
    assert {"jupyterlab", "matplotlib"} <= names["course"] and "sphinx" not in names["course"]
    assert {"sphinx", "myst-nb", "sphinx-copybutton"} <= names["docs"]
    assert {"pytest", "ruff", "build"} <= names["dev"]
    assert {"keras", "tensorflow", "tensorflow-cpu"} == names["tensorflow"]


def test_no_file_points_outside_the_repository_for_the_contract():
    contract = (ROOT / "docs" / "contract.md").read_text()
    assert contract.startswith("# tripletlab: the contract")
    for name in tripletlab.PUBLIC_NAMES[:5]:
        assert f"`{name}(" in contract
    for path in ["README.md", "tripletlab/__init__.py", "docs/index.md"]:
        text = (ROOT / path).read_text()
        assert "shared/SPEC" not in text, path
    assert "docs/contract.md" in (ROOT / "README.md").read_text()
    assert "\ncontract\n" in (ROOT / "docs" / "index.md").read_text()


# ----------------------------------------------------------------- the built distributions


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist, and the wheel built from it (``python -m build``, offline)."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_the_sdist_holds_every_tracked_file(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert set(HELPERS) <= names and "LICENSE" in names and "constraints.txt" in names
    if shutil.which("git") and (ROOT / ".git").exists():
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        missing = sorted(set(tracked) - names - {".gitignore"})
        assert missing == [], f"tracked files missing from the sdist: {missing}"


def test_the_sdist_runs_its_own_tests(dist, tmp_path):
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (source,) = tmp_path.iterdir()
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_install.py"],
        cwd=source,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout


def test_the_wheel_carries_py_typed_the_license_and_the_benchmarks(dist):
    _, wheel = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tripletlab/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    committed = {
        f"tripletlab/benchmarks/{p.relative_to(ROOT / 'benchmarks').as_posix()}"
        for p in (ROOT / "benchmarks").rglob("*")
        if p.is_file()
    }
    assert committed and committed <= names


def test_an_installed_wheel_finds_its_benchmarks_without_the_repository(dist, tmp_path):
    _, wheel = dist
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
        + ["--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "from tripletlab import resources; import tripletlab;"
        "print(tripletlab.__file__); print(resources.benchmarks());"
        "print(len(resources.read_csv('results.csv')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # not the repository: its tripletlab/ must not be found
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    module, folder, rows = done.stdout.split()
    assert Path(module).is_relative_to(target) and Path(folder) == target / "tripletlab/benchmarks"
    assert int(rows) == len(resources.read_csv("results.csv")) > 0


# ----------------------------------------------------------------- tripletlab.resources


def test_a_checkout_reads_the_repositorys_benchmarks():
    assert Path(str(resources.benchmarks())) == ROOT / "benchmarks"
    assert resources.read_text("machine.txt") == (ROOT / "benchmarks/machine.txt").read_text()
    rows = resources.read_csv("results.csv")
    assert {"method", "B", "seconds"} <= set(rows[0])
    assert resources.read_text("spread/07_training.md").startswith("#")


def test_no_benchmarks_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "__file__", str(tmp_path / "tripletlab" / "resources.py"))
    monkeypatch.setattr(resources, "BENCHMARKS", "no-such-folder")
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        resources.benchmarks()
