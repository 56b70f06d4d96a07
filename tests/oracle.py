"""Brute-force oracles: plain Python loops in float64, written from SPEC.md.

They share no code with the package: each quantity is computed element by element,
the way the notebooks first derive it.
"""

from __future__ import annotations

import math

import numpy as np

COSINE_EPS = 1e-8


def norm(v) -> float:
    return math.sqrt(sum(float(t) * float(t) for t in v))


def is_zero(v, eps: float = COSINE_EPS) -> bool:
    """SPEC: a row whose norm is at most eps counts as a zero vector for cosine."""
    return norm(v) <= eps


def cosine(a, b, eps: float = COSINE_EPS) -> float:
    """cos(a, b) = a.b / (|a| |b|); 0 when either is a zero vector; clipped to [-1, 1]."""
    if is_zero(a, eps) or is_zero(b, eps):
        return 0.0
    dot = sum(float(s) * float(t) for s, t in zip(a, b, strict=True))
    return max(-1.0, min(1.0, dot / (norm(a) * norm(b))))


def distance(u, v, metric: str) -> float:
    """One entry of pairwise_distances; identical rows are at distance 0 in every metric."""
    diff = [float(s) - float(t) for s, t in zip(u, v, strict=True)]
    if metric == "euclidean":
        return math.sqrt(sum(d * d for d in diff))
    if metric == "sqeuclidean":
        return sum(d * d for d in diff)
    if metric == "l1":
        return sum(abs(d) for d in diff)
    if metric == "cosine":
        if is_zero(u) and is_zero(v):
            return 0.0
        return 1.0 - cosine(u, v)
    raise AssertionError(metric)


def l2_normalize(x, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape[:-1]):
        n = norm(x[index])
        if n > eps:
            out[index] = [t / n for t in x[index]]
    return out


def cosine_rows(a, b, eps: float = COSINE_EPS) -> np.ndarray:
    """Row-wise cosine of two broadcastable arrays, one row pair at a time."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    out = np.zeros(a.shape[:-1])
    for index in np.ndindex(out.shape):
        out[index] = cosine(a[index], b[index], eps)
    return out


def similarity_matrix(x, y=None) -> np.ndarray:
    y = x if y is None else y
    return np.array([[cosine(u, v) for v in y] for u in x])


def pairwise_distances(x, y=None, metric: str = "euclidean") -> np.ndarray:
    same = y is None
    y = x if same else y
    out = np.array([[distance(u, v, metric) for v in y] for u in x])
    if same:
        for i in range(len(x)):
            out[i, i] = 0.0
    return out
