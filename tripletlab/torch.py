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
- Inputs of different float dtypes are computed in the wider one, as
  ``torch.promote_types`` does (float16 with bfloat16: float32).
- Large and small norms do not overflow: rows are rescaled by a power of two (exact)
  no larger than their largest entry before anything is squared.
- The NaN/inf checks (on inputs, and on a loss that a distance overflowing the dtype
  would make infinite) run only in eager mode (not while ``torch.compile`` traces).
- Labels may be any integer dtype, unsigned included (compared as int64).

The mining losses' performance engine (blocks of anchors, the closed-form gradient,
counting active triplets, the ``torch.compile`` path) is ``tripletlab._torch_mining``.
"""

from __future__ import annotations

import math

import torch

from tripletlab import FRAMEWORK_NAMES, PUBLIC_NAMES, _blocks, _checks
from tripletlab import _torch_mining as _engine
from tripletlab._checks import COSINE_EPS

__all__ = list(PUBLIC_NAMES + FRAMEWORK_NAMES)  # the same names in every backend

_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------- checks


def _as_tensor(name: str, x, device=None) -> torch.Tensor:
    """``x`` as a tensor (unchanged if it is one); a ValueError naming ``name`` if it
    cannot be one (strings, ragged lists, objects whose ``__array__`` fails)."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x, device=device)
    except Exception as error:
        raise _checks.not_an_array_error(name, x, error) from None


def _as_float(name: str, x) -> tuple[torch.Tensor, torch.dtype]:
    """``x`` as a float tensor to compute in, plus the dtype the result is returned in."""
    x = _as_tensor(name, x)
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


_UNSIGNED = (torch.uint8, torch.uint16, torch.uint32, torch.uint64)


def _as_numpy_labels(labels, error: Exception):
    """Raise the ValueError for labels PyTorch cannot convert, naming their NumPy dtype."""
    import numpy as np

    try:
        array = np.asarray(labels)
    except Exception:
        raise _checks.not_an_array_error("labels", labels, error) from None
    _checks.check_labels("labels", array.shape, array.dtype.kind, array.dtype, None)
    raise _checks.not_an_array_error("labels", labels, error)


def _as_labels(labels, x: torch.Tensor | None = None) -> torch.Tensor:
    """Class ids as an integer tensor, one per row of the embeddings ``x`` and on their
    device when ``x`` is given. Unsigned ids become int64 (uint64 by reinterpreting its
    bits, which keeps distinct ids distinct): PyTorch sorts and searches few unsigned
    dtypes."""
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception as error:  # strings: say what NumPy reads them as
            _as_numpy_labels(labels, error)
    kind = _checks.dtype_kind(labels.dtype)
    batch = None if x is None else x.shape[0]
    _checks.check_labels("labels", tuple(labels.shape), kind, labels.dtype, batch)
    if labels.dtype == torch.uint64:
        labels = labels.view(torch.int64)
    elif labels.dtype in _UNSIGNED or labels.is_floating_point():  # floats: only when empty
        labels = labels.to(torch.int64)
    return labels if x is None else labels.to(x.device)


def _pair_of_matrices(x, y):
    same = y is x
    x, dtype = _as_matrix("x", x)
    if y is None or same:  # the very same tensor: the distances within one batch
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", tuple(x.shape), "y", tuple(y.shape))
    dtype = torch.promote_types(dtype, y_dtype)
    compute = torch.float32 if dtype in _HALF else dtype
    return x.to(compute), y.to(compute), dtype


def _power_of_two_scale(max_abs: torch.Tensor) -> torch.Tensor:
    """A power of two ``s`` with ``s <= max_abs < 2 s`` (1 where ``max_abs`` is 0),
    detached: dividing by it is exact. (For subnormal ``max_abs``, its own power of two;
    TensorFlow gives 1 there, which the contract allows: any power of two ``<= 1``.)

    The quantities below are homogeneous in the inputs, so a constant rescaling gives
    exact values and exact gradients while keeping squares away from overflow: the
    largest entry divided by it lies in [1, 2). (``2**exponent`` of ``frexp``, the power
    just above ``max_abs``, is ``inf`` for float32 values of ``2**127`` and more.)
    """
    max_abs = max_abs.detach()
    _, exponent = torch.frexp(max_abs)
    scale = torch.ldexp(torch.ones_like(max_abs), exponent - 1)
    return torch.where(max_abs > 0, scale, torch.ones_like(scale))


def _max_abs(x: torch.Tensor) -> torch.Tensor:
    """The largest ``|entry|`` of ``x``, 0 for an empty tensor (``amax`` refuses it)."""
    return x.abs().amax() if x.numel() else x.new_zeros(())


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


def _cosine(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """Row-wise cosine of validated tensors: the dot product of the unit rows, clipped."""
    return (_normalize(a, eps)[0] * _normalize(b, eps)[0]).sum(dim=-1).clamp(-1.0, 1.0)


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
    return _cosine(a.to(compute), b.to(compute), eps).to(dtype)


def cosine_distance(a, b, eps: float = COSINE_EPS):
    """``1 - cosine_similarity(a, b)``, in [0, 2]; see ``tripletlab.numpy``."""
    return 1.0 - cosine_similarity(a, b, eps)


def _matmul_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` in the computing dtype, also inside ``torch.autocast``.

    Autocast would run the product in float16/bfloat16 even for float32 inputs: mining
    picks would flip on near-ties and identical rows would no longer be at distance 0.
    The matrix product is the only op here that autocast lowers.
    """
    with torch.autocast(a.device.type, enabled=False):
        return a @ b.T


def similarity_matrix(x, y=None):
    """``S[i, j] = cos(x_i, y_j)``, ``(B, D), (M, D) -> (B, M)``; see ``tripletlab.numpy``."""
    x, y, dtype = _pair_of_matrices(x, y)
    ux, _ = _normalize(x, COSINE_EPS)
    uy = ux if y is None else _normalize(y, COSINE_EPS)[0]
    return _matmul_t(ux, uy).clamp(-1.0, 1.0).to(dtype)


def _gram_squared_distances(x: torch.Tensor, y: torch.Tensor | None):
    """``(||x_i - y_j||^2, |x_i|^2, |y_j|^2)`` by the Gram form, clamped at 0."""
    gram = _matmul_t(x, x if y is None else y)
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
    # With y None the diagonal is already exactly 0 in every metric: the Gram form gives
    # (n_i + n_i) - 2 n_i = 0, and cdist compares a row with itself.
    return _distances(x, y, metric).to(dtype)


def _scaled_squared_l2(x: torch.Tensor, y: torch.Tensor | None):
    """``(q, s)`` with ``||x_i - y_j||^2 = q_ij s^2``: the Gram form on rows divided by a
    power of two ``s`` (exact), so that nothing overflows before the square root."""
    max_abs = _max_abs(x) if y is None else torch.maximum(_max_abs(x), _max_abs(y))
    scale = _power_of_two_scale(max_abs)
    sq, _, _ = _gram_squared_distances(x / scale, None if y is None else y / scale)
    return sq, scale


def _unit_distances(ux: torch.Tensor, uy: torch.Tensor | None) -> torch.Tensor:
    """Cosine distances ``(1 - u_i . v_j)`` of unit (or zero) rows, as half the squared
    L2 distance; 1 between a zero row and any other row, 0 between two zero rows."""
    sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
    x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
    one_zero = torch.where(x_zero & y_zero, 0.0, 1.0).to(sq.dtype)
    return torch.where(x_zero | y_zero, one_zero, sq / 2.0).clamp_max(2.0)


def _distances(x: torch.Tensor, y: torch.Tensor | None, metric: str) -> torch.Tensor:
    """``pairwise_distances`` of validated tensors in the computing dtype."""
    if metric == "l1":
        return torch.cdist(x, x if y is None else y, p=1.0)
    if metric == "cosine":
        ux, _ = _normalize(x, COSINE_EPS)
        return _unit_distances(ux, None if y is None else _normalize(y, COSINE_EPS)[0])
    sq, scale = _scaled_squared_l2(x, y)
    return _to_distance(metric, scale)(sq)


def _to_distance(metric: str, scale: torch.Tensor | None = None):
    """The map from ranking keys to distances: for the L2 metrics the key is the squared
    distance of the rows divided by ``scale``; for the others it is the distance."""
    if metric == "euclidean":
        return lambda sq: _ScaledSqrt.apply(sq, scale)
    if metric == "sqeuclidean":
        return lambda sq: sq * scale * scale
    return lambda d: d


def _ranked_distances(x: torch.Tensor, metric: str):
    """``(key, to_distance)``: a ``(B, B)`` matrix that orders the pairs as the distance
    does, and the map from its entries to distances. For the L2 metrics the key is the
    scaled squared distance, so that mining that only selects entries takes the square
    root of the selected ones only."""
    if metric in ("euclidean", "sqeuclidean"):
        sq, scale = _scaled_squared_l2(x, None)
        return sq, _to_distance(metric, scale)
    return _distances(x, None, metric), _to_distance(metric)


# --------------------------------------------------------------------------- losses


def _promote(*dtypes: torch.dtype) -> tuple[torch.dtype, torch.dtype]:
    """The result dtype of float inputs (the widest, as ``torch.promote_types``), and the
    dtype to compute in."""
    dtype = dtypes[0]
    for other in dtypes[1:]:
        dtype = torch.promote_types(dtype, other)
    return dtype, (torch.float32 if dtype in _HALF else dtype)


def _finite_loss(loss: torch.Tensor, dtype: torch.dtype, names: str) -> torch.Tensor:
    """``loss`` in ``dtype``; in eager mode a ValueError if it is not finite (a distance
    overflowed the dtype: the inputs themselves are finite)."""
    loss = loss.to(dtype)
    if not torch.compiler.is_compiling() and not torch.isfinite(loss).all():
        raise _checks.overflow_error(names, dtype)
    return loss


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.sum() / max(losses.numel(), 1)  # the mean of no loss is 0, not NaN
    return losses.sum() if reduction == "sum" else losses


def _row_distances(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """``d(a_i, b_i)`` row by row, ``(B, D), (B, D) -> (B,)``; see ``tripletlab.numpy``."""
    if metric == "cosine":
        return 1.0 - _cosine(a, b, COSINE_EPS)
    if metric == "l1":
        return (a - b).abs().sum(dim=-1)
    scale = _power_of_two_scale(torch.maximum(_max_abs(a), _max_abs(b)))
    diff = a / scale - b / scale
    sq = (diff * diff).sum(dim=-1)
    if metric == "half_sqeuclidean":  # the contrastive loss's D^2 / 2, halved before scaling
        return sq * 0.5 * scale * scale
    return _ScaledSqrt.apply(sq, scale) if metric == "euclidean" else sq * scale * scale


def triplet_loss(
    anchor, positive, negative, margin: float = 0.2, metric: str = "sqeuclidean", reduction="mean"
):
    """``max(d(a, p) - d(a, n) + margin, 0)`` per row; see ``tripletlab.numpy.triplet_loss``.

    ``torch.nn.TripletMarginLoss`` is the euclidean case (``p=2``) with the mean
    reduction, except that it adds ``eps=1e-6`` to the differences.
    """
    margin = _checks.check_margin(margin)
    _checks.check_metric(metric)
    _checks.check_reduction(reduction)
    a, a_dtype = _as_matrix("anchor", anchor)
    p, p_dtype = _as_matrix("positive", positive)
    n, n_dtype = _as_matrix("negative", negative)
    _checks.check_same_shape(("anchor", "positive", "negative"), (a.shape, p.shape, n.shape))
    dtype, compute = _promote(a_dtype, p_dtype, n_dtype)
    a, p, n = a.to(compute), p.to(compute), n.to(compute)
    losses = torch.relu(_row_distances(a, p, metric) - _row_distances(a, n, metric) + margin)
    return _finite_loss(_reduce(losses, reduction), dtype, "anchor, positive, negative")


def _as_scores(scores) -> tuple[torch.Tensor, torch.dtype]:
    scores, dtype = _as_float("scores", scores)
    _checks.check_rank("scores", tuple(scores.shape), rank=2)
    _checks.check_square("scores", tuple(scores.shape))
    return scores, dtype


def _off_diagonal(scores: torch.Tensor) -> torch.Tensor:
    return ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)


def _mean_negative(scores: torch.Tensor) -> torch.Tensor:
    return torch.where(_off_diagonal(scores), scores, 0.0).sum(dim=1) / (scores.shape[0] - 1)


def _closest_negative(scores: torch.Tensor) -> torch.Tensor:
    candidate = _off_diagonal(scores) & (scores <= scores.diagonal()[:, None])
    if scores.shape[0] == 0:  # amax refuses an empty reduction
        return scores.new_zeros((0,))
    return torch.where(candidate, scores, -torch.inf).amax(dim=1)


def mean_negative(scores):
    """Per row, the mean off-diagonal score, ``(B, B) -> (B,)``; see ``tripletlab.numpy``."""
    scores, dtype = _as_scores(scores)
    return _mean_negative(scores).to(dtype)


def closest_negative(scores):
    """Per row, the largest off-diagonal score ``<= scores[i, i]``, else ``-inf``.

    ``(B, B) -> (B,)``; see ``tripletlab.numpy.closest_negative``.
    """
    scores, dtype = _as_scores(scores)
    return _closest_negative(scores).to(dtype)


def modified_triplet_loss(scores, margin: float = 0.25, reduction: str = "sum"):
    """Mean-negative + closest-negative loss on a ``(B, B)`` similarity matrix.

    See ``tripletlab.numpy.modified_triplet_loss``: a row with no off-diagonal score
    ``<= s_ap`` has no closest negative and contributes its mean-negative term only.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    scores, dtype = _as_scores(scores)
    s_ap = scores.diagonal()
    loss_mean = torch.relu(_mean_negative(scores) - s_ap + margin)  # L1
    loss_closest = torch.relu(_closest_negative(scores) - s_ap + margin)  # L2, 0 at -inf
    return _reduce(loss_mean + loss_closest, reduction).to(dtype)


def contrastive_loss(x1, x2, same, margin: float = 1.0, reduction: str = "mean"):
    """Hadsell et al. (2006) contrastive loss, ``same = 1`` for the same class.

    See ``tripletlab.numpy.contrastive_loss`` (the paper writes ``Y = 0`` for similar
    pairs). The gradient at ``D = 0`` is finite for both kinds of pair.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    x1, x1_dtype = _as_matrix("x1", x1)
    x2, x2_dtype = _as_matrix("x2", x2)
    _checks.check_same_shape(("x1", "x2"), (x1.shape, x2.shape))
    dtype, compute = _promote(x1_dtype, x2_dtype)
    x1, x2 = x1.to(compute), x2.to(compute)
    same, _ = _as_float("same", _as_tensor("same", same, device=x1.device))
    _checks.check_rank("same", tuple(same.shape), rank=1, what=_checks.SAME_VECTOR)
    _checks.check_same_shape(("same", "rows of x1"), (same.shape, x1.shape[:1]))
    if not torch.compiler.is_compiling() and not ((same == 0) | (same == 1)).all():
        raise _checks.not_binary_error("same")
    same = same == 1
    dist = _row_distances(x1, x2, "euclidean")
    pull = _row_distances(x1, x2, "half_sqeuclidean")
    # each pair its own branch: never 0 * inf for a dissimilar pair far away
    losses = torch.where(same, pull, 0.5 * torch.relu(margin - dist) ** 2)
    return _finite_loss(_reduce(losses, reduction), dtype, "x1, x2")


# --------------------------------------------------------------------------- mining


def _positive_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(B, B)``: True where ``a != p`` and ``label(a) == label(p)``."""
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return (labels[:, None] == labels[None, :]) & ~eye


def _negative_mask(labels: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
    """``(R, B)``: True where ``label(a) != label(n)``, for the anchors ``a`` in ``rows``."""
    return labels[rows, None] != labels[None, :]


def positive_mask(labels):
    """``(B,) -> (B, B)`` booleans: True where ``a != p`` and ``label(a) == label(p)``.

    Row ``a`` marks the positives of anchor ``a``. Notebook: 05_online_mining.
    """
    return _positive_mask(_as_labels(labels))


def negative_mask(labels):
    """``(B,) -> (B, B)`` booleans: True where ``label(a) != label(n)``.

    Row ``a`` marks the negatives of anchor ``a``. A valid triplet ``(a, p, n)`` is one
    with ``positive_mask[a, p] and negative_mask[a, n]``. Notebook: 05_online_mining.
    """
    return _negative_mask(_as_labels(labels))


# Each mining loss below is a ``select`` (what it picks, without gradient) and a
# ``loss_of`` (how its loss reads off the picked distances); ``tripletlab._torch_mining``
# runs the pair over blocks of anchors with a closed-form gradient (its docstring is the
# design note).


def batch_all_triplet_loss(embeddings, labels, margin: float = 0.2, metric: str = "euclidean"):
    """Mean loss over the valid triplets with a positive loss, and their fraction.

    See ``tripletlab.numpy.batch_all_triplet_loss``. No ``(B, B, B)`` tensor: the sum
    of the active hinges ``D[a, p] - D[a, n] + margin`` is
    ``sum c_ap D[a, p] - sum c_an D[a, n] + margin N``, where ``c_ap`` counts the
    active triplets of the pair ``(a, p)`` and ``c_an`` those of ``(a, n)``. The counts
    come from sorting each anchor's ``m`` positive thresholds (``m``: the largest class)
    and one binary search per negative, ``O(B^2 log m)``; the loss is then one weighted
    sum of the distances, whose gradient is exactly the triplet cube's. The anchors
    are taken in blocks (see ``tripletlab._torch_mining.Anchors``).
    """
    margin = _checks.check_margin(margin)

    def select(dist, members, is_positive, negative):
        return None, _engine.active_triplet_weights(dist, members, is_positive, negative, margin)

    def loss_of(dist, chosen, unit):
        weights, n_active = chosen
        return torch.dot(weights.reshape(-1), dist.reshape(-1)), n_active

    mining = _engine.Mining(select, loss_of, on_distances=True)
    total, n_active, anchors, dtype = _engine.mine(embeddings, labels, metric, mining)
    if anchors is None:  # no row
        return total.to(dtype), total.detach().to(dtype)
    n_valid = (anchors.is_positive.sum(dim=1) * anchors.n_negatives).sum().to(total.dtype)
    n_active = n_active.to(total.dtype)
    loss = _engine.batch_all_mean(total, n_active, margin, anchors.unit)
    fraction = n_active / n_valid.clamp_min(1)
    return _finite_loss(loss, dtype, "embeddings"), fraction.to(dtype)


def batch_hard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean", soft: bool = False
):
    """Hardest positive and hardest negative per anchor; see ``tripletlab.numpy``.

    The hardest examples are chosen on the ``(B, B)`` distances without gradient
    (``argmax`` / ``argmin``; of tied examples the lowest index, as in TensorFlow), and
    only the ``2B`` chosen distances carry one. For the L2 metrics the ranking key is
    the squared distance, and the square root is taken of the chosen entries only.
    The anchors are taken in blocks (see ``tripletlab._torch_mining.Anchors``).
    """
    margin = _checks.check_margin(margin)
    soft = _checks.check_bool("soft", soft)

    def select(key, members, is_positive, negative):
        slot = torch.where(is_positive, key.gather(1, members), -1.0).argmax(1, keepdim=True)
        closest = torch.where(negative, key, torch.inf).argmin(dim=1, keepdim=True)  # key >= 0
        valid = is_positive.any(dim=1) & negative.any(dim=1)
        return torch.cat([members.gather(1, slot), closest], dim=1), valid

    def loss_of(dist, valid, unit):
        gap = torch.where(valid, dist[:, 0] - dist[:, 1], 0.0)
        if soft:
            losses = torch.nn.functional.softplus(gap * unit) / unit
        else:
            losses = torch.relu(gap + margin / unit)
        return torch.where(valid, losses, 0.0).sum(), valid.sum()

    mining = _engine.Mining(select, loss_of)
    total, n_valid, anchors, dtype = _engine.mine(embeddings, labels, metric, mining)
    unit = 1.0 if anchors is None else anchors.unit
    return _finite_loss(total / n_valid.clamp_min(1) * unit, dtype, "embeddings")


def batch_semihard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean"
):
    """Semi-hard negative per (anchor, positive) pair; see ``tripletlab.numpy``.

    No ``(B, B, B)`` tensor and no sort of the ``(B, B)`` matrix: each anchor's ``m``
    positives are sorted and every negative is placed among them by a binary search
    (``torch.searchsorted``), ``O(B^2 log m)``. Ties keep the lowest index (the highest
    for the fallback to the farthest negative), as a stable sort of the negatives does,
    in both frameworks. "Farther" compares the distances themselves (for the euclidean
    metric not the squared ones, which can differ where the roots are equal). Only the
    chosen distances carry a gradient. The anchors are taken in blocks (see
    ``tripletlab._torch_mining.Anchors``; the search: ``semihard_columns``).
    """
    margin = _checks.check_margin(margin)

    def loss_of(dist, pairs, unit):
        d_ap, d_an = dist.chunk(2, dim=1)
        losses = torch.relu(d_ap - d_an + margin / unit)
        return torch.where(pairs, losses, 0.0).sum(), pairs.sum()

    mining = _engine.Mining(_engine.semihard_columns, loss_of, on_distances=metric == "euclidean")
    total, n_pairs, anchors, dtype = _engine.mine(embeddings, labels, metric, mining)
    unit = 1.0 if anchors is None else anchors.unit
    return _finite_loss(total / n_pairs.clamp_min(1) * unit, dtype, "embeddings")


# --------------------------------------------------------------------------- softmax losses


def _row_blocks(batch: int) -> list[slice]:
    """The blocks of rows the softmax losses take their logits in: all rows up to
    ``tripletlab._blocks.WHOLE_MATRIX_ROWS``, above it blocks of about
    ``BLOCK_ENTRIES`` logits (the sizes of the mining losses), so that memory grows as
    ``B``, not ``B^2``."""
    whole, entries = _blocks.WHOLE_MATRIX_ROWS, _blocks.BLOCK_ENTRIES
    step = batch if batch <= whole else max(1, entries // batch)
    return [slice(s, min(s + step, batch)) for s in range(0, batch, max(step, 1))]


def _leave_out_diagonal(cos: torch.Tensor, rows: slice) -> None:
    """Set the block's entries ``(i, i)`` to ``-inf``: an anchor is not in its own
    denominator (the supervised contrastive loss)."""
    cos.diagonal(offset=rows.start).fill_(-torch.inf)


def _leave_out_same_label(labels: torch.Tensor):
    """The filler that sets to ``-inf`` the entries ``(i, j)``, ``j != i``, of the same
    label: in-batch false negatives leave the denominator (``info_nce_loss``)."""

    def fill(cos: torch.Tensor, rows: slice) -> None:
        same = labels[rows, None] == labels[None, :]
        same.diagonal(offset=rows.start).fill_(False)
        cos.masked_fill_(same, -torch.inf)

    return fill


def _fixed_shift(temperature: float, dtype: torch.dtype) -> bool:
    """Whether every ``exp(l_ij - 1 / t)`` is a normal number of ``dtype``: then each
    row's softmax can be shifted by the largest possible logit, ``1 / t`` (cosines are at
    most 1), instead of by the row's maximum, which costs a pass over the block. Logits
    are at least ``-1 / t``, so it holds when ``2 / t`` stays below ``-log(tiny)`` (8 to
    spare: ``t > 0.025`` in float32)."""
    return 2.0 / temperature < -math.log(torch.finfo(dtype).tiny) - 8.0


def _shifted_logits(a: torch.Tensor, b_one: torch.Tensor, temperature: float, shift):
    """``a_i . b_j / t - shift_i``, ``(R, M)``, in one matrix product: the rows
    ``[a_i / t, -shift_i]`` times the columns ``[b_j, 1]`` (``b_one``, ``(M, D + 1)``)."""
    column = shift.expand(a.shape[0]) if shift.dim() == 0 else shift
    return torch.cat([a / temperature, -column[:, None]], dim=1) @ b_one.T


class _SoftmaxRows(torch.autograd.Function):
    """Per row ``i`` of ``a``: ``(top_i, log_z_i)`` with the logits ``l_ij = a_i . b_j /
    t`` over the entries ``j`` that ``leave_out`` does not set to ``-inf``, ``top_i`` a
    shift (no gradient: ``1 / t``, or the row's largest logit for small ``t``, see
    ``_fixed_shift``) and ``log_z_i = log sum_j exp(l_ij - top_i)``, so that
    ``logsumexp_j l_ij = top_i + log_z_i``. ``b = None`` means ``b = a``.

    Forward takes the ``(R, M)`` block of logits of each block of rows
    (``_row_blocks``): one matrix product that already subtracts the shift (a column
    appended to each side, ``_shifted_logits``), then ``exp`` and a row sum in place; it
    keeps ``a``, ``b``, ``top`` and ``log_z``, ``O((B + M) D)``, and when the whole matrix
    is one block (up to 4096 rows) its ``exp(l - top)`` too, which backward scales by
    ``g_i exp(-log_z_i) / t`` row by row (three matrix products in all, three passes).
    Above, backward recomputes each block as ``exp(l_ij - top_i - log_z_i + log(|g_i| /
    t))`` (the softmax times the incoming gradient and ``dl/da = b / t``, folded into the
    shift; the sign of a negative ``g_i`` multiplies the block after) and takes its
    products with ``b`` (rows of ``a``) and with the block's rows of ``a`` (added to
    ``b``): four matrix products in all, and three passes over each block. One block of
    logits exists at a time. A row with every entry left out has ``log_z = -inf`` and no
    gradient.
    """

    @staticmethod
    def forward(ctx, a, b, temperature, leave_out):
        ctx.same = b is None  # b = a: one input (torch.compile cannot take a tensor twice)
        b = a if ctx.same else b
        top = a.new_empty(a.shape[0])
        log_z = a.new_empty(a.shape[0])
        fixed = _fixed_shift(temperature, a.dtype)
        blocks = _row_blocks(a.shape[0])
        weights = None
        with torch.autocast(a.device.type, enabled=False):
            b_one = torch.cat([b, b.new_ones((b.shape[0], 1))], dim=1)
            for rows in blocks:
                if fixed:
                    shift = a.new_tensor(1.0 / temperature)
                    logits = _shifted_logits(a[rows], b_one, temperature, shift)
                    leave_out(logits, rows)
                else:
                    logits = (a[rows] / temperature) @ b.T
                    leave_out(logits, rows)
                    shift = logits.amax(dim=1)
                    shift = torch.where(torch.isfinite(shift), shift, 0.0)
                    logits.sub_(shift[:, None])
                top[rows] = shift
                log_z[rows] = torch.log(logits.exp_().sum(dim=1))
        if len(blocks) == 1 and any(ctx.needs_input_grad[:2]):
            weights = logits  # the whole matrix: kept, not recomputed, in backward
        ctx.kept = weights is not None
        ctx.save_for_backward(a, b, top, log_z, *([weights] if ctx.kept else []))
        ctx.temperature, ctx.leave_out = temperature, leave_out
        ctx.mark_non_differentiable(top)
        return top, log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_top, grad_log_z):
        a, b, top, log_z, *kept = ctx.saved_tensors
        t = ctx.temperature
        live = torch.isfinite(log_z) & (grad_log_z != 0)
        if kept:  # exp(l - top) of the whole matrix; p g / t = that * g exp(-log_z) / t
            factor = torch.where(live, grad_log_z / t * torch.exp(-log_z), 0.0)
            with torch.autocast(a.device.type, enabled=False):
                grad_l = kept[0] * factor[:, None]  # not in place: backward may run twice
                grad_a, grad_b = grad_l @ b, grad_l.T @ a
            return (
                (grad_a + grad_b, None, None, None) if ctx.same else (grad_a, grad_b, None, None)
            )
        grad_a, grad_b = torch.zeros_like(a), torch.zeros_like(b)
        # p_ij |g_i| / t = exp(l_ij - shift_i): |g| folded into the shift, its sign (where
        # one is negative) applied after; rows without gradient far below (a finite
        # number: no inf inside the product)
        magnitude = torch.where(live, grad_log_z.abs() / t, 1.0)
        shift = torch.where(live, top + log_z - torch.log(magnitude), torch.finfo(a.dtype).max / 4)
        negative = live & (grad_log_z < 0)
        signed = torch.compiler.is_compiling() or bool(negative.any())
        with torch.autocast(a.device.type, enabled=False):
            b_one = torch.cat([b, b.new_ones((b.shape[0], 1))], dim=1)
            for rows in _row_blocks(a.shape[0]):
                grad_l = _shifted_logits(a[rows], b_one, t, shift[rows])
                ctx.leave_out(grad_l, rows)
                grad_l.exp_()
                if signed:
                    grad_l.mul_(torch.where(negative[rows], -1.0, 1.0)[:, None])
                grad_a[rows] = grad_l @ b
                grad_b.addmm_(grad_l.T, a[rows])
        if ctx.same:
            return grad_a + grad_b, None, None, None
        return grad_a, grad_b, None, None


def _softmax_inputs(name: str, x, other=None):
    """Validated rows as unit rows in the computing dtype (zero rows stay zero, with zero
    gradient): ``(units, dtype)``; with ``other``, both, checked to have the same shape."""
    x, dtype = _as_matrix(name, x)
    if other is None:
        dtype, compute = _promote(dtype)
        return _normalize(x.to(compute), COSINE_EPS)[0], dtype
    other_name, y = other
    y, y_dtype = _as_matrix(other_name, y)
    _checks.check_same_shape((name, other_name), (tuple(x.shape), tuple(y.shape)))
    dtype, compute = _promote(dtype, y_dtype)
    units = (_normalize(v.to(compute), COSINE_EPS)[0] for v in (x, y))
    return *units, dtype


def _check_temperature(temperature: float, compute: torch.dtype) -> None:
    _checks.check_temperature_in(temperature, torch.finfo(compute).tiny, compute)


def _softmax_loss(loss: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``loss`` in ``dtype``; in eager mode a ValueError naming the temperature if it is
    not finite there (a loss reaches ``2 / temperature``)."""
    loss = loss.to(dtype)
    if not torch.compiler.is_compiling() and not torch.isfinite(loss).all():
        raise _checks.temperature_overflow_error(dtype)
    return loss


def info_nce_loss(
    queries,
    keys,
    temperature: float = 0.05,
    symmetric: bool = False,
    labels=None,
    reduction: str = "mean",
):
    """Cross-entropy of ``cos(q_i, k_j) / temperature`` with target ``i``; see
    ``tripletlab.numpy.info_nce_loss`` (``MultipleNegativesRankingLoss`` with ``scale =
    1 / temperature``).

    Never forms more than one block of the ``(B, B)`` logits ``l_ij = c_ij / t``: per
    pair the loss is ``top_i - l_ii + log_z_i``, with the row's shift ``top_i`` and
    ``log_z_i = log sum_j exp(l_ij - top_i)`` from a custom autograd function over
    blocks of rows (all of them up to 4096 rows, then blocks of about ``2**24`` logits)
    that keeps the whole matrix for backward up to 4096 rows and recomputes each block
    above (``_SoftmaxRows``): ``O(B D)`` memory above 4096 rows, three matrix products of
    ``B x B x D`` (four above 4096 rows; twice that with ``symmetric=True``) and three
    passes over the logits. The positives ``l_ii`` are row-wise dot products. The cosines are
    those of the unit rows, not clipped to [-1, 1] (an excess of an ulp changes nothing).
    """
    temperature = _checks.check_temperature(temperature)
    symmetric = _checks.check_bool("symmetric", symmetric)
    _checks.check_reduction(reduction)
    q, k, dtype = _softmax_inputs("queries", queries, ("keys", keys))
    _check_temperature(temperature, q.dtype)
    if labels is None:
        leave_out = _no_leave_out
    else:
        leave_out = _leave_out_same_label(_as_labels(labels, q).detach())
    positive = (q * k).sum(dim=1)
    top, log_z = _SoftmaxRows.apply(q, k, temperature, leave_out)
    losses = (top - positive / temperature) + log_z
    if symmetric:
        top, log_z = _SoftmaxRows.apply(k, q, temperature, leave_out)
        losses = (losses + (top - positive / temperature) + log_z) / 2.0
    return _softmax_loss(_reduce(losses, reduction), dtype)


def _no_leave_out(cos: torch.Tensor, rows: slice) -> None:
    """Every entry stays in the denominator."""


def _class_sums(units: torch.Tensor, labels: torch.Tensor):
    """``(sum of the unit rows of each row's class (B, D), class sizes (B,))``, with
    autograd: ``O(B D)``, no ``(B, B)`` mask (under ``torch.compile``, whose shapes cannot
    depend on the labels, the ``(B, B)`` mask times the rows)."""
    if torch.compiler.is_compiling():
        same = (labels[:, None] == labels[None, :]).to(units.dtype)
        return same @ units, same.sum(dim=1).to(labels.dtype)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    sums = units.new_zeros((counts.shape[0], units.shape[1])).index_add(0, inverse, units)
    return sums[inverse], counts[inverse]


def supervised_contrastive_loss(embeddings, labels, temperature: float = 0.1):
    """Khosla et al. (2020) ``L_out``, NT-Xent for two views; see
    ``tripletlab.numpy.supervised_contrastive_loss``.

    Never forms more than one block of the ``(B, B)`` logits ``l_ij = c_ij / t``. Per
    anchor the loss is ``top_i - mean_p l_ip + log_z_i``: the shift ``top_i`` and
    ``log_z_i = log sum_{j != i} exp(l_ij - top_i)`` come from a custom autograd function
    over blocks of anchors (all of them up to 4096 rows, then blocks of about ``2**24``
    logits) that keeps the whole matrix for backward up to 4096 rows and recomputes each
    block above (``_SoftmaxRows``); the positives' sum is ``u_i . (sum of the class's unit
    rows) - u_i . u_i``, ``O(B D)`` with no ``(B, B)`` mask. Memory ``O(B D)`` plus one
    block; three matrix products of ``B x B x D`` (four above 4096 rows) and three passes
    over the logits. The cosines are those of the unit rows, not
    clipped to [-1, 1]. No anchor with a positive: 0, connected, with zero gradient.
    """
    temperature = _checks.check_temperature(temperature)
    units, dtype = _softmax_inputs("embeddings", embeddings)
    _check_temperature(temperature, units.dtype)
    labels = _as_labels(labels, units).detach()
    if units.shape[0] == 0:
        return _softmax_loss(units.sum(), dtype)
    class_sums, class_sizes = _class_sums(units, labels)
    n_positive = (class_sizes - 1).to(units.dtype)
    anchors = n_positive > 0
    positive_sum = (units * class_sums).sum(dim=1) - (units * units).sum(dim=1)
    top, log_z = _SoftmaxRows.apply(units, None, temperature, _leave_out_diagonal)
    mean_positive = positive_sum / n_positive.clamp_min(1.0)
    losses = torch.where(anchors, (top - mean_positive / temperature) + log_z, 0.0)
    loss = losses.sum() / anchors.sum().clamp_min(1).to(units.dtype)
    return _softmax_loss(loss, dtype)


# --------------------------------------------------------------------------- siamese head


class SiameseHead(torch.nn.Module):
    """Koch, Zemel and Salakhutdinov (2015): is a pair of embeddings of the same class?

    ``logit = w . |e1 - e2| + b`` (a learned, weighted L1 distance), and
    ``p(same) = sigmoid(logit)``. Returns the logit, ``(B, D), (B, D) -> (B,)``; train
    with ``torch.nn.BCEWithLogitsLoss`` on ``same`` (1 for the same class), which is the
    binary cross-entropy of ``sigmoid(logit)`` computed stably. Notebook: 04_siamese_losses.
    """

    def __init__(self, embedding_dim: int):
        super().__init__()
        embedding_dim = _checks.check_int("embedding_dim", embedding_dim, minimum=1)
        self.linear = torch.nn.Linear(embedding_dim, 1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.abs(e1 - e2)).squeeze(-1)
