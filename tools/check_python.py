"""``make setup`` runs this first: is this Python one the course supports?

The supported range is ``requires-python`` in pyproject.toml (read with a regular
expression, so that the check itself runs on any Python, also one that is too old for
``tomllib`` or ``pathlib``). Outside the range it says which versions work and how to point
``make`` at one, and exits with status 1 before anything is installed: a Python the
pinned wheels do not exist for would otherwise fail deep inside pip's resolver.

Usage: ``python tools/check_python.py [--version X.Y]`` (``--version`` checks that
version instead of the running one; the tests use it).
"""

import os
import re
import sys

# os.path, not pathlib: the check must also run on Python 2, to tell its user so
PYPROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pyproject.toml")


def supported_range(pyproject_text):
    """``((3, lowest), (3, first unsupported))`` from ``requires-python = ">=3.a,<3.b"``."""
    match = re.search(r'^requires-python\s*=\s*"([^"]*)"', pyproject_text, re.MULTILINE)
    if match is None:
        raise ValueError("pyproject.toml has no requires-python")
    spec = match.group(1).replace(" ", "")
    low = re.search(r">=(\d+)\.(\d+)", spec)
    high = re.search(r"<(\d+)\.(\d+)", spec)
    if low is None or high is None:
        raise ValueError("requires-python must read '>=3.X,<3.Y', not %r" % spec)
    return (int(low.group(1)), int(low.group(2))), (int(high.group(1)), int(high.group(2)))


def versions_between(low, high):
    """``["3.11", "3.12", "3.13"]`` for ``(3, 11)`` and ``(3, 14)``."""
    return ["%d.%d" % (low[0], minor) for minor in range(low[1], high[1])]


def message(version, low, high, executable):
    """What to tell a user whose Python is ``version``; ``None`` when it is supported."""
    if low <= tuple(version[:2]) < high:
        return None
    names = versions_between(low, high)
    listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return (
        "tripletlab needs Python %s (its pinned PyTorch and TensorFlow wheels exist for "
        "those); %s is Python %d.%d.\n"
        "Install one of them (python.org, your package manager, pyenv or conda), then run\n"
        "    make setup PYTHON=python%s\n"
        "(and `rm -rf .venv` first if a .venv was made with another Python)."
        % (listed, executable, version[0], version[1], names[-1])
    )


def main(argv):
    version = sys.version_info[:2]
    if len(argv) == 2 and argv[0] == "--version":
        version = tuple(int(part) for part in argv[1].split(".")[:2])
    with open(PYPROJECT) as handle:
        low, high = supported_range(handle.read())
    text = message(version, low, high, sys.executable)
    if text is not None:
        sys.stderr.write(text + "\n")
        return 1
    print("setup: Python %d.%d (%s) is supported" % (version[0], version[1], sys.executable))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
