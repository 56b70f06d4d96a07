"""Run the same test on every backend: loading, conversion, values and gradients.

A backend that cannot be imported fails the tests that use it, unless the environment
variable ``TRIPLETLAB_SKIP_BACKENDS`` names it (comma separated, e.g. ``tensorflow`` on a
GPU image that ships only PyTorch).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from tripletlab.device import try_gpu

ALL = ("numpy", "torch", "tensorflow")
FRAMEWORKS = ("torch", "tensorflow")
SKIPPED = {s.strip() for s in os.environ.get("TRIPLETLAB_SKIP_BACKENDS", "").split(",") if s}
TORCH_DEVICE = None if "torch" in SKIPPED else try_gpu()
"""Where the torch tests put their tensors: the GPU when there is one."""


def load(name: str):
    """``tripletlab.<name>``; skips only when the backend is named in the skip variable."""
    if name in SKIPPED:
        pytest.skip(f"backend {name} skipped by TRIPLETLAB_SKIP_BACKENDS")
    return importlib.import_module(f"tripletlab.{name}")


def available(names=ALL) -> tuple[str, ...]:
    """``names`` minus the backends named in ``TRIPLETLAB_SKIP_BACKENDS``."""
    return tuple(name for name in names if name not in SKIPPED)


def to_backend(name: str, x, dtype: str = "float64"):
    """A NumPy array as the backend's array type, in ``dtype``."""
    x = np.asarray(x)
    if name == "numpy":
        return x.astype(dtype)
    if name == "torch":
        import torch

        return torch.as_tensor(x).to(device=TORCH_DEVICE, dtype=getattr(torch, dtype))
    import tensorflow as tf  # places its ops on the GPU by itself when there is one

    return tf.cast(tf.constant(x), getattr(tf, dtype))


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def dtype_name(x) -> str:
    """``'float32'`` etc. for an array or tensor of any backend."""
    dtype = x.dtype
    return getattr(dtype, "name", None) or str(dtype).replace("torch.", "")


def value_and_grads(name: str, fn, inputs, weights=None, dtype: str = "float64"):
    """``fn(*inputs)`` and the gradient of ``sum(weights * fn(*inputs))`` w.r.t. each input.

    ``name`` is ``torch`` or ``tensorflow``; returns NumPy arrays. ``weights`` defaults to
    ones; a random weighting checks every output entry's gradient, not just their sum.
    """
    if name == "torch":
        import torch

        xs = [to_backend(name, x, dtype).requires_grad_(True) for x in inputs]
        out = fn(*xs)
        w = torch.ones_like(out) if weights is None else to_backend(name, weights, dtype)
        grads = torch.autograd.grad((out * w).sum(), xs, allow_unused=False)
        return to_numpy(out), [to_numpy(g) for g in grads]
    import tensorflow as tf

    xs = [tf.Variable(to_backend(name, x, dtype)) for x in inputs]
    with tf.GradientTape() as tape:
        out = fn(*xs)
        w = tf.ones_like(out) if weights is None else to_backend(name, weights, dtype)
        total = tf.reduce_sum(out * w)
    grads = tape.gradient(total, xs)
    assert all(g is not None for g in grads), "gradient is disconnected"
    return to_numpy(out), [to_numpy(g) for g in grads]


def numerical_grads(fn, inputs, weights, step: float = 1e-6):
    """Central differences of ``sum(weights * fn(*inputs))`` in float64 (NumPy backend)."""
    grads = []
    for k, x in enumerate(inputs):
        grad = np.zeros_like(x, dtype=np.float64)
        for index in np.ndindex(x.shape):
            shifted = []
            for sign in (1.0, -1.0):
                moved = [np.array(v, dtype=np.float64) for v in inputs]
                moved[k][index] += sign * step
                shifted.append(np.sum(weights * fn(*moved)))
            grad[index] = (shifted[0] - shifted[1]) / (2 * step)
        grads.append(grad)
    return grads
