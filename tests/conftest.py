"""Test set-up: quiet TensorFlow, torch imported before TensorFlow, hypothesis profiles."""

import os
import sys
from pathlib import Path

# Before any TensorFlow import: no start-up chatter, no oneDNN reordering of sums.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# The tests import their helpers (tests/backends.py, tests/oracle.py) and tools/.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tools")]

import backends  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Importing torch before TensorFlow avoids a known clash of their OpenMP runtimes. On a
# GPU, TF32 matrix products (10-bit mantissa) are turned off: these are correctness runs.
if "torch" not in backends.SKIPPED:
    import torch  # noqa: F401
if "tensorflow" not in backends.SKIPPED:
    import tensorflow as tf  # noqa: F401
from tripletlab.device import full_float32  # noqa: E402

full_float32()

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: `make test` twice gives the same result
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=backends.ALL)
def backend(request):
    """Each backend name in turn: the test runs once per backend."""
    return request.param


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The real lecture notes (tools/build_notes.py), built once from the committed outputs."""
    import build_notes

    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    out = tmp_path_factory.mktemp("site") / "notes"
    assert build_notes.main(["--out", str(out), *map(str, sources)]) == 0
    return out
