"""``make platforms``: does the pinned install resolve on each platform and Python?

For every platform x Python of the table below this resolves what ``make setup``
installs (the project's dependencies and every extra, with ``constraints.txt``) with

    pip install --dry-run --only-binary=:all: --platform ... --python-version ...
        --target <tmp> --report <tmp>/report.json -r <requirements> -c constraints.txt

and prints one Markdown table: ``ok`` with the number of packages and the PyTorch
build it would get, or the package pip could not find a wheel for. Nothing is
installed; the package index is needed (this is not part of ``make test``).

Two things pip does not do by itself: it evaluates environment markers
(``sys_platform == "darwin"``) against the Python that runs it, not the target
(pip issues 6117 and 10050), so this script evaluates the project's own markers for
the target and runs pip with its marker environment set to the target's for the
dependencies' markers; and it does not widen ``manylinux_2_35`` to the older glibc
tags, so the compatible ``manylinux`` tags are listed one by one. Local wheel
folders and extra indexes from pip's configuration are left out (``--index-only``,
on by default), so that the table says what a learner gets from the index.

Usage: ``python tools/platforms.py [--python 3.11 3.12 3.13] [--platform linux-x86_64 ...]
[--jobs 3] [--keep-config] [--markdown out.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.11", "3.12", "3.13")
# A patch release of each: some wheels need one (soupsieve 4: Requires-Python >= 3.11.5).
PATCH = 10


def _manylinux(arch: str, glibc_minor: int) -> list[str]:
    """Every manylinux tag a glibc ``2.<glibc_minor>`` system on ``arch`` accepts."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"]
        tags.append("manylinux1_x86_64")
    return tags


# name: (what a learner has, pip's --platform tags, the marker environment)
PLATFORMS = {
    "linux-x86_64": (
        "Linux x86-64 (glibc 2.35+)",
        _manylinux("x86_64", 35),
        {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    ),
    "linux-aarch64": (
        "Linux aarch64 (glibc 2.35+, e.g. Docker on Apple silicon)",
        _manylinux("aarch64", 35),
        {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    ),
    "macos-arm64": (
        "macOS 14+ on Apple silicon",
        ["macosx_14_0_arm64"],  # pip widens a macosx tag to the older releases itself
        {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    ),
    "windows-x86_64": (
        "Windows x86-64",
        ["win_amd64"],
        {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
    ),
}

# pip, run with its marker environment set to the target's (argv[1], JSON)
PIP_FOR_TARGET = """
import json, sys
from pip._vendor.packaging import markers
host, target = markers.default_environment, json.loads(sys.argv[1])
markers.default_environment = lambda: {**host(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def marker_environment(platform: str, python: str) -> dict[str, str]:
    """The PEP 508 marker values of CPython ``python`` on ``platform``."""
    env = dict(PLATFORMS[platform][2])
    env.update(
        os_name="nt" if env["sys_platform"] == "win32" else "posix",
        python_version=python,
        python_full_version=f"{python}.{PATCH}",
        implementation_name="cpython",
        implementation_version=f"{python}.{PATCH}",
        platform_python_implementation="CPython",
        platform_release="",
        platform_version="",
    )
    return env


def requirements(pyproject: dict, env: dict[str, str]) -> list[str]:
    """What ``pip install .[all]`` asks for on ``env``: every extra, markers decided."""
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    wanted, seen, todo = list(project.get("dependencies", [])), set(), ["all"]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in extras[extra]:
            req = Requirement(line)
            if req.name == project["name"]:
                todo.extend(req.extras)
            else:
                wanted.append(line)
    chosen = []
    for line in wanted:
        req = Requirement(line)
        if req.marker is None or Marker(str(req.marker)).evaluate(env):
            req.marker = None
            chosen.append(str(req))
    return sorted(set(chosen))


def pip_environment(keep_config: bool) -> dict[str, str]:
    """The environment for pip: without local wheel folders and extra indexes."""
    env = dict(os.environ)
    if not keep_config:
        env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf at all (pip's documented switch)
        for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
            env.pop(name, None)
    return env


def resolve(platform: str, python: str, pyproject: dict, keep_config: bool) -> dict:
    """One cell of the table: ``{"ok": bool, "packages": {...}, "error": str, ...}``."""
    env = marker_environment(platform, python)
    with tempfile.TemporaryDirectory(prefix="platforms-") as tmp:
        tmp = Path(tmp)
        (tmp / "requirements.txt").write_text("\n".join(requirements(pyproject, env)) + "\n")
        report = tmp / "report.json"
        command = [sys.executable, "-c", PIP_FOR_TARGET, json.dumps(env), "install"]
        command += ["--dry-run", "--ignore-installed", "--only-binary=:all:", "--quiet"]
        command += ["--python-version", f"{python}.{PATCH}", "--implementation", "cp"]
        for tag in PLATFORMS[platform][1]:
            command += ["--platform", tag]
        command += ["--target", str(tmp / "target"), "--report", str(report)]
        command += ["-r", str(tmp / "requirements.txt"), "-c", str(ROOT / "constraints.txt")]
        start = time.monotonic()
        done = subprocess.run(
            command, capture_output=True, text=True, env=pip_environment(keep_config)
        )
        seconds = time.monotonic() - start
        if done.returncode != 0 or not report.exists():
            return {"ok": False, "error": failure(done.stderr), "seconds": seconds}
        installs = json.loads(report.read_text())["install"]
    packages = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in installs
    }
    return {"ok": True, "packages": packages, "seconds": seconds}


def failure(stderr: str) -> str:
    """The line of pip's error output that names what is missing."""
    for pattern in (
        r"No matching distribution found for (\S+)",
        r"Could not find a version that satisfies the requirement (\S+)",
        r"(ResolutionImpossible)",
        r"requires a different Python: (.+)",
    ):
        match = re.search(pattern, stderr)
        if match:
            return f"no wheel: {match.group(1)}" if "Resolution" not in pattern else "conflict"
    lines = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    return lines[0][:80] if lines else stderr.strip()[-80:]


def describe(cell: dict) -> str:
    """``ok, 183 wheels, torch CPU`` or what failed."""
    if not cell["ok"]:
        return cell["error"]
    packages = cell["packages"]
    cuda = sorted(name for name in packages if name.startswith("nvidia-"))
    tf = "tensorflow-cpu" if "tensorflow-cpu" in packages else "tensorflow"
    torch = f"torch CUDA (+{len(cuda)} nvidia-*)" if cuda else "torch CPU"
    return f"ok: {len(packages)} wheels, {tf}, {torch}"


def table(results: dict[tuple[str, str], dict], pythons: list[str]) -> str:
    lines = ["| platform | " + " | ".join(f"Python {p}" for p in pythons) + " |"]
    lines.append("|---" * (len(pythons) + 1) + "|")
    for platform in dict.fromkeys(p for p, _ in results):
        cells = [describe(results[platform, python]) for python in pythons]
        lines.append(f"| {PLATFORMS[platform][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def unpinned(results: dict[tuple[str, str], dict]) -> dict[str, set[str]]:
    """Packages some cell resolves that constraints.txt does not pin, and where."""
    pinned = {
        Requirement(line).name.lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    found: dict[str, set[str]] = {}
    for (platform, python), cell in results.items():
        for name, version in cell.get("packages", {}).items():
            if name not in pinned and name != "tripletlab":
                found.setdefault(f"{name}=={version}", set()).add(f"{platform}/{python}")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", nargs="+", default=list(PYTHONS))
    parser.add_argument("--platform", nargs="+", default=list(PLATFORMS), choices=PLATFORMS)
    parser.add_argument(
        "--keep-config", action="store_true", help="use pip's configuration as it is"
    )
    parser.add_argument("--jobs", type=int, default=3, help="pip processes at once")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    cells = [(platform, python) for platform in args.platform for python in args.python]

    def run(cell: tuple[str, str]) -> dict:
        result = resolve(*cell, pyproject, args.keep_config)
        print(f"platforms: {cell[0]} Python {cell[1]}: {describe(result)}", flush=True)
        return result

    with ThreadPoolExecutor(args.jobs) as pool:  # pip waits on the network much of the time
        results = dict(zip(cells, pool.map(run, cells), strict=True))
    text = table(results, args.python)
    extra = unpinned(results)
    if extra:
        text += "\n\nResolved but not pinned in constraints.txt (the index's newest):\n"
        text += "\n".join(f"- {name}: {', '.join(sorted(where))}" for name, where in extra.items())
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0 if all(cell["ok"] for cell in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
