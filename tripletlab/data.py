"""Data and determinism for the course.

``seed_everything`` seeds every random number generator the notebooks use, so that a
notebook executed twice prints the same numbers (nbval compares them).
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python's ``random``, NumPy, and PyTorch / TensorFlow if they are imported.

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``, the generator the
    notebooks draw from. Frameworks that are not imported yet are left alone (and not
    imported): call this after your imports.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this one is already hashed
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global state, still used by some libraries)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "keras" in sys.modules:  # Keras 3 keeps its own seed generator beside TensorFlow's
        sys.modules["keras"].utils.set_random_seed(seed)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    return np.random.default_rng(seed)
