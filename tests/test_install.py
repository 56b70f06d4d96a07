"""Installing the course: the Makefile's setup command line, the Python check, ``make help``,
and the marker logic of ``make platforms`` (tools/platforms.py; the resolution itself needs
the package index and is not run here)."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import check_python
import platforms
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def make_dry_run(*args: str) -> list[str]:
    """The commands ``make -n -B`` would run (every target remade, nothing executed)."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    done = subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", "-n", "-B", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.replace("\\\n", " ").splitlines()


def pip_line(lines: list[str]) -> str:
    (line,) = [line for line in lines if "-m pip install" in line]
    return line


def test_setup_checks_the_python_version_before_it_creates_the_venv():
    lines = make_dry_run("setup")
    check = next(i for i, line in enumerate(lines) if "tools/check_python.py" in line)
    venv = next(i for i, line in enumerate(lines) if "-m venv" in line)
    install = lines.index(pip_line(lines))
    assert check < venv < install


def test_setup_shows_pips_progress_and_installs_every_extra_with_the_pins():
    line = pip_line(make_dry_run("setup"))
    assert "--quiet" not in line and " -q" not in line
    assert "-e '.[all]'" in line and "-c constraints.txt" in line


def test_torch_cpu_adds_pytorchs_cpu_index_as_an_extra_index():
    default = pip_line(make_dry_run("setup"))
    cpu = pip_line(make_dry_run("setup", "TORCH_CPU=1"))
    assert "download.pytorch.org" not in default
    assert cpu.split() == default.split() + ["--extra-index-url", TORCH_CPU_INDEX]
    # an extra index, not a replacement: every other package still comes from PyPI
    assert not re.search(r"(^|\s)(--index-url|-i)\s", cpu)
    assert pip_line(make_dry_run("setup", "TORCH_CPU=0")).split() == default.split()


def run_check_python(version: str) -> subprocess.CompletedProcess:
    """tools/check_python.py run as if on Python ``version``."""
    script = str(ROOT / "tools" / "check_python.py")
    return subprocess.run(
        [sys.executable, script, "--version", version], capture_output=True, text=True
    )


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_the_supported_pythons_pass_the_check(version):
    done = run_check_python(version)
    assert done.returncode == 0 and f"Python {version}" in done.stdout


@pytest.mark.parametrize("version", ["3.10", "3.14", "2.7"])
def test_an_unsupported_python_stops_with_a_message_before_installing(version):
    done = run_check_python(version)
    assert done.returncode == 1
    assert f"is Python {version}" in done.stderr
    assert "needs Python 3.11, 3.12 or 3.13" in done.stderr
    assert "make setup PYTHON=python3.13" in done.stderr


def test_the_check_reads_the_range_from_requires_python():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.14"
    low, high = check_python.supported_range((ROOT / "pyproject.toml").read_text())
    assert (low, high) == ((3, 11), (3, 14))
    assert check_python.versions_between(low, high) == ["3.11", "3.12", "3.13"]
    with pytest.raises(ValueError, match="requires-python"):
        check_python.supported_range('requires-python = ">=3.11"\n')


def test_make_help_lists_every_target():
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (phony,) = re.findall(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    shown = subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", "help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    listed = re.findall(r"^  make (\S+)", shown, re.MULTILINE)
    assert sorted(listed) == sorted(phony.split())


# ----------------------------------------------------------------- make platforms


@pytest.mark.parametrize(
    ("platform", "tensorflow"),
    [
        ("linux-x86_64", "tensorflow-cpu"),
        ("windows-x86_64", "tensorflow-cpu"),
        ("macos-arm64", "tensorflow"),
        ("linux-aarch64", "tensorflow"),
    ],
)
def test_each_platform_asks_for_the_tensorflow_that_has_wheels_there(platform, tensorflow):
    env = platforms.marker_environment(platform, "3.12")
    names = {re.split(r"[<>=!~; \[]", line)[0] for line in platforms.requirements(PYPROJECT, env)}
    other = {"tensorflow", "tensorflow-cpu"} - {tensorflow}
    assert tensorflow in names and not names & other
    assert {"keras", "torch", "numpy", "jupyterlab", "sphinx"} <= names
    assert all(";" not in line for line in platforms.requirements(PYPROJECT, env))


def test_the_marker_environment_is_the_targets():
    env = platforms.marker_environment("windows-x86_64", "3.13")
    assert env["sys_platform"] == "win32" and env["os_name"] == "nt"
    assert env["python_version"] == "3.13" and env["python_full_version"].startswith("3.13.")
    assert platforms.marker_environment("macos-arm64", "3.11")["platform_machine"] == "arm64"


def test_linux_targets_accept_every_older_manylinux_tag():
    tags = platforms.PLATFORMS["linux-aarch64"][1]
    assert tags[0] == "manylinux_2_35_aarch64" and "manylinux_2_17_aarch64" in tags
    assert "manylinux2014_aarch64" in tags and not any("x86_64" in t for t in tags)
    assert "manylinux1_x86_64" in platforms.PLATFORMS["linux-x86_64"][1]


def test_a_failed_resolution_names_the_missing_wheel():
    stderr = (
        "ERROR: Could not find a version that satisfies the requirement "
        "tensorflow-cpu==2.21.0 (from versions: none)\n"
        "ERROR: No matching distribution found for tensorflow-cpu==2.21.0\n"
    )
    assert platforms.failure(stderr) == "no wheel: tensorflow-cpu==2.21.0"
    cell = {"ok": True, "packages": {"torch": "2.13.0", "nvidia-cublas": "13", "tensorflow": "2"}}
    assert platforms.describe(cell) == "ok: 3 wheels, tensorflow, torch CUDA (+1 nvidia-*)"
