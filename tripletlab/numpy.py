"""The NumPy backend: the readable reference, and the oracle for the other two.

Every function computes in float64 and returns the floating dtype it was given
(float32 in, float32 out; integer or list input gives float64). This module holds the
full contract of each function; ``tripletlab.torch`` and ``tripletlab.tensorflow``
repeat the names and signatures and add only what is specific to their framework.

Notebooks: 01_cosine_from_l2 (the identities), 02_similarity_matrices (the matrices).
"""

from __future__ import annotations

import numpy as np

from tripletlab import _checks
from tripletlab._checks import COSINE_EPS

__all__ = [
    "l2_normalize",
    "cosine_similarity",
    "cosine_distance",
    "similarity_matrix",
    "pairwise_distances",
]


# --------------------------------------------------------------------------- checks


def _as_float(name: str, x) -> tuple[np.ndarray, np.dtype]:
    """``x`` as a float64 array, plus the dtype the result is returned in."""
    x = np.asarray(x)
    _checks.check_dtype_kind(name, x.dtype.kind, x.dtype)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise _checks.not_finite_error(name)
    return x, out_dtype


def _as_matrix(name: str, x) -> tuple[np.ndarray, np.dtype]:
    x, dtype = _as_float(name, x)
    _checks.check_rank(name, x.shape, rank=2)
    _checks.check_features(name, x.shape)
    return x, dtype


def _pair_of_matrices(x, y):
    """Validate ``x`` (B, D) and ``y`` (M, D) or None; return both as float64 and the dtype."""
    x, dtype = _as_matrix("x", x)
    if y is None:
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", x.shape, "y", y.shape)
    return x, y, np.result_type(dtype, y_dtype)


# --------------------------------------------------------------------------- distances


def l2_normalize(x, eps: float = 1e-12):
    """Scale each row (last axis) to unit L2 norm.

    ``u = x / ||x||`` over the last axis. Shapes: ``(..., D) -> (..., D)``.

    A row whose norm is at most ``eps`` is returned as zeros, with a zero gradient in
    the framework backends (not the ``1/eps``-sized gradient of ``x / max(||x||, eps)``).

    >>> l2_normalize([[3.0, 4.0], [0.0, 0.0]])
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    eps = _checks.check_positive("eps", eps)
    x, dtype = _as_float("x", x)
    _checks.check_rank("x", x.shape, min_rank=1)
    _checks.check_features("x", x.shape)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    nonzero = norm > eps
    unit = np.where(nonzero, x / np.where(nonzero, norm, 1.0), 0.0)
    return unit.astype(dtype)


def cosine_similarity(a, b, eps: float = COSINE_EPS):
    """Cosine of the angle between rows of ``a`` and ``b`` (features on the last axis).

    ``cos(a, b) = a . b / (||a|| ||b||)``, computed as the dot product of the two
    L2-normalized rows and clipped to [-1, 1]. Shapes: ``(..., D), (..., D) -> (...)``,
    leading axes broadcast as in NumPy.

    A row whose norm is at most ``eps`` counts as a zero vector: its cosine with
    anything is 0 (as in PyTorch), and the framework backends give it a zero gradient.

    SPEC worked numbers: ``cosine_similarity([1, 2, 3], [1, 2, 3.5]) = 0.9974`` and
    ``cosine_similarity([1, 2, 3], [0, -42, 1]) = -0.5153`` (4 d.p.).
    Notebook: 02_similarity_matrices.
    """
    eps = _checks.check_positive("eps", eps)
    a, a_dtype = _as_float("a", a)
    b, b_dtype = _as_float("b", b)
    _checks.check_rank("a", a.shape, min_rank=1)
    _checks.check_rank("b", b.shape, min_rank=1)
    _checks.check_features("a", a.shape)
    _checks.check_broadcast("a", a.shape, "b", b.shape)
    cos = np.sum(l2_normalize(a, eps) * l2_normalize(b, eps), axis=-1)
    return np.clip(cos, -1.0, 1.0).astype(np.result_type(a_dtype, b_dtype))


def cosine_distance(a, b, eps: float = COSINE_EPS):
    """Cosine distance ``1 - cos(a, b)``, in [0, 2]; shapes as ``cosine_similarity``.

    Not a metric (no triangle inequality), but for unit vectors it is half the squared
    L2 distance: ``||a - b||^2 = 2 (1 - cos(a, b))``. In general
    ``||a - b||^2 - (||a|| - ||b||)^2 = 2 ||a|| ||b|| (1 - cos(a, b))``.
    A zero row has cosine 0 with everything, so its cosine distance is 1.
    Notebook: 01_cosine_from_l2.
    """
    return 1.0 - cosine_similarity(a, b, eps)


def similarity_matrix(x, y=None):
    """All cosine similarities between the rows of two batches.

    ``S[i, j] = cos(x_i, y_j)``; ``y=None`` means ``y = x``. Shapes:
    ``x (B, D), y (M, D) -> S (B, M)``. Computed as normalize-then-dot,
    ``S = l2_normalize(x) @ l2_normalize(y).T``, clipped to [-1, 1]; zero rows
    (norm <= 1e-8) give similarity 0, including with themselves.
    Notebook: 02_similarity_matrices (the same matrix by nested loops).
    """
    x, y, dtype = _pair_of_matrices(x, y)
    ux = l2_normalize(x, COSINE_EPS)
    uy = ux if y is None else l2_normalize(y, COSINE_EPS)
    return np.clip(ux @ uy.T, -1.0, 1.0).astype(dtype)


def _gram_squared_distances(x, y):
    """``(||x_i - y_j||^2, |x_i|^2, |y_j|^2)`` by the Gram form, clamped at 0.

    ``|x_i|^2 + |y_j|^2 - 2 x_i . y_j``; with ``y is None`` the squared norms are the
    Gram diagonal, so identical rows cancel exactly.
    """
    gram = x @ (x if y is None else y).T
    x_sq = np.diag(gram) if y is None else np.sum(x * x, axis=1)
    y_sq = x_sq if y is None else np.sum(y * y, axis=1)
    return np.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * gram, 0.0), x_sq, y_sq


def pairwise_distances(x, y=None, metric: str = "euclidean"):
    """Distances between every row of ``x`` and every row of ``y``.

    Shapes: ``x (B, D), y (M, D) -> (B, M)``; ``y=None`` means ``y = x``.

    ==============  ============================================
    ``metric``      ``D[i, j]``
    ==============  ============================================
    ``euclidean``   ``||x_i - y_j||``
    ``sqeuclidean`` ``||x_i - y_j||^2``
    ``cosine``      ``1 - cos(x_i, y_j)``, in [0, 2]
    ``l1``          ``sum_k |x_ik - y_jk|``
    ==============  ============================================

    The L2 metrics use the Gram form ``|x|^2 + |y|^2 - 2 x . y`` with the squared norms
    read from the Gram diagonal when ``y is None``, so that two identical rows are at
    distance exactly 0 rather than at float32 cancellation noise, and clamp at 0. The
    cosine metric is the same construction on the normalized rows: ``(|u_i|^2 +
    |u_j|^2) / 2 - u_i . u_j``, which is ``1 - cos`` for unit rows; a zero row is at
    distance 1 from a non-zero row and at distance 0 from another zero row (identical
    rows are at distance 0 in every metric). With ``y is None`` the diagonal is exactly 0.

    Values and (framework) gradients are finite everywhere, including identical rows
    and zero rows: the square root is only taken of entries that are > 0.
    Notebook: 02_similarity_matrices.
    """
    _checks.check_metric(metric)
    x, y, dtype = _pair_of_matrices(x, y)
    if metric == "l1":
        other = x if y is None else y
        dist = np.abs(x[:, None, :] - other[None, :, :]).sum(axis=-1)
    elif metric == "cosine":
        ux = l2_normalize(x, COSINE_EPS)
        uy = None if y is None else l2_normalize(y, COSINE_EPS)
        sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
        x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
        dist = np.where(x_zero | y_zero, np.where(x_zero & y_zero, 0.0, 1.0), sq / 2.0)
        dist = np.minimum(dist, 2.0)
    else:
        dist, _, _ = _gram_squared_distances(x, y)
        if metric == "euclidean":
            dist = np.sqrt(dist)
    if y is None:
        np.fill_diagonal(dist, 0.0)
    return dist.astype(dtype)
