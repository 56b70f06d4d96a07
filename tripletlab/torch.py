"""The PyTorch backend: the names and signatures of ``tripletlab.numpy``, on tensors.

The full contract of each function (formula, shapes, edge cases, worked numbers) is
in ``tripletlab.numpy``; the docstrings here add what is specific to PyTorch.

Framework notes, for every function:

- Tensors stay on their device; nothing is moved. float32 in gives float32 out,
  float64 stays float64, float16/bfloat16 are computed in float32 and cast back,
  integer tensors and Python lists become ``torch.get_default_dtype()``.
- Gradients are finite everywhere: zero rows and identical rows get zero gradients
  where the function is not differentiable (no NaN from ``sqrt(0)``, no ``1/eps``-sized
  gradient as ``torch.nn.functional.cosine_similarity`` gives at a zero vector).
- Large and small norms do not overflow: rows are rescaled by a power of two (exact)
  before anything is squared.
- The NaN/inf check on inputs runs only in eager mode (not while ``torch.compile``
  traces).
"""

from __future__ import annotations

import torch

from tripletlab import _checks
from tripletlab._checks import COSINE_EPS

__all__ = [
    "l2_normalize",
    "cosine_similarity",
    "cosine_distance",
    "similarity_matrix",
    "pairwise_distances",
]

_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------- checks


def _as_float(name: str, x) -> tuple[torch.Tensor, torch.dtype]:
    """``x`` as a float tensor to compute in, plus the dtype the result is returned in."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    _checks.check_dtype_kind(name, "c" if x.is_complex() else "f", x.dtype)
    out_dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    x = x.to(torch.float32 if out_dtype in _HALF else out_dtype)
    if not torch.compiler.is_compiling() and not torch.isfinite(x).all():
        raise _checks.not_finite_error(name)
    return x, out_dtype


def _as_matrix(name: str, x) -> tuple[torch.Tensor, torch.dtype]:
    x, dtype = _as_float(name, x)
    _checks.check_rank(name, tuple(x.shape), rank=2)
    _checks.check_features(name, tuple(x.shape))
    return x, dtype


def _pair_of_matrices(x, y):
    x, dtype = _as_matrix("x", x)
    if y is None:
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", tuple(x.shape), "y", tuple(y.shape))
    dtype = torch.promote_types(dtype, y_dtype)
    compute = torch.float32 if dtype in _HALF else dtype
    return x.to(compute), y.to(compute), dtype


def _power_of_two_scale(max_abs: torch.Tensor) -> torch.Tensor:
    """A power of two close to ``max_abs`` (1 where it is 0), detached: dividing by it is exact.

    The quantities below are homogeneous in the inputs, so a constant rescaling gives
    exact values and exact gradients while keeping squares away from overflow.
    """
    _, exponent = torch.frexp(max_abs.detach())
    return torch.ldexp(torch.ones_like(max_abs), exponent)


# --------------------------------------------------------------------------- distances


def _normalize(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit rows of ``x`` (computing dtype) and the mask of rows with norm > eps."""
    scale = _power_of_two_scale(x.abs().amax(dim=-1, keepdim=True))
    scaled = x / scale
    sq = (scaled * scaled).sum(dim=-1, keepdim=True)
    nonzero = torch.sqrt(sq) * scale > eps
    safe_norm = torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq)))
    unit = torch.where(nonzero, scaled / safe_norm, torch.zeros_like(scaled))
    return unit, nonzero.squeeze(-1)


def l2_normalize(x, eps: float = 1e-12):
    """Rows scaled to unit L2 norm; rows with norm <= eps become zeros with zero gradient.

    See ``tripletlab.numpy.l2_normalize``. Unlike ``torch.nn.functional.normalize``
    (``x / max(||x||, eps)``), a zero row gets a zero gradient, not ``1/eps``.
    """
    eps = _checks.check_positive("eps", eps)
    x, dtype = _as_float("x", x)
    _checks.check_rank("x", tuple(x.shape), min_rank=1)
    _checks.check_features("x", tuple(x.shape))
    return _normalize(x, eps)[0].to(dtype)


def cosine_similarity(a, b, eps: float = COSINE_EPS):
    """Row-wise cosine over the last axis, broadcasting; see ``tripletlab.numpy``.

    ``torch.nn.functional.cosine_similarity`` agrees on values (including 0 at a zero
    vector) but takes ``dim=1`` by default and gives ~1e8-sized gradients at a zero
    vector; here the feature axis is always the last one and that gradient is 0.
    """
    eps = _checks.check_positive("eps", eps)
    a, a_dtype = _as_float("a", a)
    b, b_dtype = _as_float("b", b)
    _checks.check_rank("a", tuple(a.shape), min_rank=1)
    _checks.check_rank("b", tuple(b.shape), min_rank=1)
    _checks.check_features("a", tuple(a.shape))
    _checks.check_broadcast("a", tuple(a.shape), "b", tuple(b.shape))
    dtype = torch.promote_types(a_dtype, b_dtype)
    compute = torch.float32 if dtype in _HALF else dtype
    ua, _ = _normalize(a.to(compute), eps)
    ub, _ = _normalize(b.to(compute), eps)
    return (ua * ub).sum(dim=-1).clamp(-1.0, 1.0).to(dtype)


def cosine_distance(a, b, eps: float = COSINE_EPS):
    """``1 - cosine_similarity(a, b)``, in [0, 2]; see ``tripletlab.numpy``."""
    return 1.0 - cosine_similarity(a, b, eps)


def similarity_matrix(x, y=None):
    """``S[i, j] = cos(x_i, y_j)``, ``(B, D), (M, D) -> (B, M)``; see ``tripletlab.numpy``."""
    x, y, dtype = _pair_of_matrices(x, y)
    ux, _ = _normalize(x, COSINE_EPS)
    uy = ux if y is None else _normalize(y, COSINE_EPS)[0]
    return (ux @ uy.T).clamp(-1.0, 1.0).to(dtype)


def _gram_squared_distances(x: torch.Tensor, y: torch.Tensor | None):
    """``(||x_i - y_j||^2, |x_i|^2, |y_j|^2)`` by the Gram form, clamped at 0."""
    gram = x @ (x if y is None else y).T
    x_sq = gram.diagonal() if y is None else (x * x).sum(dim=1)
    y_sq = x_sq if y is None else (y * y).sum(dim=1)
    return (x_sq[:, None] + y_sq[None, :] - 2.0 * gram).clamp_min(0.0), x_sq, y_sq


class _ScaledSqrt(torch.autograd.Function):
    """``sqrt(sq) * scale`` for ``sq >= 0``, with gradient 0 (not inf, not NaN) where ``sq == 0``.

    One pass forward and one backward over the ``(B, M)`` matrix; the composition of
    ``where``, ``sqrt`` and ``where`` that does the same in autograd costs four.
    """

    @staticmethod
    def forward(ctx, sq, scale):
        dist = torch.sqrt(sq).mul_(scale)
        ctx.save_for_backward(dist, scale)
        return dist

    @staticmethod
    def backward(ctx, grad):
        dist, scale = ctx.saved_tensors
        # d(s sqrt(q))/dq = s^2 / (2 d), evaluated as (g s / d) (s / 2) so that s^2 (up to
        # 2^254 for huge inputs) is never formed; defined as 0 where d == 0
        grad_sq = (grad * scale).div_(dist).mul_(scale / 2)
        grad_sq = torch.where(dist > 0, grad_sq, 0.0)
        return grad_sq, None


def pairwise_distances(x, y=None, metric: str = "euclidean"):
    """All distances between rows, ``(B, D), (M, D) -> (B, M)``; see ``tripletlab.numpy``.

    ``l1`` uses ``torch.cdist(p=1)``, which never materialises the ``(B, M, D)``
    differences. ``torch.cdist(p=2)`` is not used for the L2 metrics: above 25 rows it
    switches to the Gram form without reading the norms from the Gram diagonal, and a
    row's float32 distance to itself or to its duplicate comes out near 1e-3, not 0.
    """
    _checks.check_metric(metric)
    x, y, dtype = _pair_of_matrices(x, y)
    if metric == "l1":
        dist = torch.cdist(x, x if y is None else y, p=1.0)
    elif metric == "cosine":
        ux, _ = _normalize(x, COSINE_EPS)
        uy = None if y is None else _normalize(y, COSINE_EPS)[0]
        sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
        x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
        one_zero = torch.where(x_zero & y_zero, 0.0, 1.0).to(sq.dtype)
        dist = torch.where(x_zero | y_zero, one_zero, sq / 2.0).clamp_max(2.0)
    else:
        max_abs = x.abs().amax() if y is None else torch.maximum(x.abs().amax(), y.abs().amax())
        scale = _power_of_two_scale(max_abs)
        sq, _, _ = _gram_squared_distances(x / scale, None if y is None else y / scale)
        dist = _ScaledSqrt.apply(sq, scale) if metric == "euclidean" else sq * scale * scale
    # With y None the diagonal is already exactly 0 in every metric: the Gram form gives
    # (n_i + n_i) - 2 n_i = 0, and cdist compares a row with itself.
    return dist.to(dtype)
