"""The NumPy backend: the readable reference, and the oracle for the other two.

This module holds the full contract of each function; ``tripletlab.torch`` and
``tripletlab.tensorflow`` repeat the names and signatures and add only what is specific
to their framework. The decisions that hold for every function, in every backend and
loss object:

- **Dtypes.** A function returns the floating dtype it was given (float32 in, float32
  out; integer, boolean or list input gives this backend's default: float64 here,
  ``torch.get_default_dtype()`` in PyTorch, float32 in TensorFlow). Inputs of different
  float dtypes (an anchor in float32, a positive in float64) are computed and returned
  in the wider one, as NumPy and PyTorch promote (float16 with bfloat16: float32); a
  pair label such as ``same`` does not take part. Here values are computed in float64;
  the *decisions* (which triplet is active, which negative is semi-hard) are taken on
  distances rounded to the computing dtype of the frameworks: float32 for
  float16/bfloat16/float32 input, float64 for float64 input, so that a triplet on a
  boundary is counted the same in every backend.
- **Active triplet.** A valid triplet is active when its hinge value as computed in
  that dtype, ``d_ap - d_an + margin``, is ``> 0`` (pytorch-metric-learning's rule):
  ``(d_ap - d_an) + margin`` with the margin rounded to the dtype, never the
  rearranged ``d_an < d_ap + margin``, which rounds differently on the boundary.
- **Semi-hard negative.** Farther than the positive means strictly: ``d_an > d_ap``
  on the distances (not on squared distances), ties excluded.
- **Empty batch.** ``B = 0`` rows is not an error: ``pairwise_distances`` gives a
  ``(0, 0)`` matrix, the row-wise functions ``(0,)`` results, every loss 0 and
  ``fraction_positive`` 0, as when no triplet is valid (in the framework backends a 0
  still connected to the inputs: its gradient is zeros of their shape).
- **Hyperparameters.** ``margin`` and ``eps`` accept every real scalar: a Python or
  NumPy number of any int or float dtype, or a 0-d array or tensor. ``soft`` must be a
  bool (``"no"`` or ``1`` is an error, not a truth value). Labels are integers of any
  signed or unsigned dtype.
- **Large and small values.** Rows are divided by a power of two near their largest
  entry before anything is squared, so no intermediate overflows or underflows when the
  result is in range. A distance beyond the dtype's range is ``inf``; a loss is never
  ``inf`` or NaN: if one would be (a distance it needs overflows the dtype), it is a
  ``ValueError`` naming the inputs (framework backends: when executing eagerly).

Notebooks: 01_cosine_from_l2 (the identities), 02_similarity_matrices (the matrices),
03_triplet_losses, 04_siamese_losses, 05_online_mining (the losses and the mining).
"""

from __future__ import annotations

import numpy as np

from tripletlab import PUBLIC_NAMES, _checks
from tripletlab._checks import COSINE_EPS

__all__ = list(PUBLIC_NAMES)  # the same names in every backend


# --------------------------------------------------------------------------- checks


def _as_float(name: str, x) -> tuple[np.ndarray, np.dtype]:
    """``x`` as a float64 array, plus the dtype the result is returned in."""
    try:
        x = np.asarray(x)
    except Exception as error:  # ragged lists, objects whose __array__ fails
        raise _checks.not_an_array_error(name, x, error) from None
    _checks.check_dtype_kind(name, x.dtype.kind, x.dtype)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise _checks.not_finite_error(name)
    return x, out_dtype


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the framework backends compute ``dtype`` in (float32 up to 32 bits), in
    which the decisions are taken here too."""
    return np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)


def _promote(*dtypes: np.dtype) -> np.dtype:
    """The result dtype of several float inputs: the widest."""
    return np.result_type(*dtypes)


def _finite_loss(value, dtype: np.dtype, names: str):
    """``value`` (float64) as ``dtype``; a ValueError if it is not finite in ``dtype``."""
    value = np.asarray(value, np.float64)
    if not np.all(np.abs(value) <= np.finfo(dtype).max):  # NaN fails too
        raise _checks.overflow_error(names, dtype)
    return value.astype(dtype)


def _power_of_two_scale(max_abs: np.ndarray) -> np.ndarray:
    """A power of two ``<= max_abs`` (1 where it is 0): dividing by it is exact, and the
    largest entry of the divided row lies in [1, 2), so its square cannot overflow."""
    _, exponent = np.frexp(max_abs)
    return np.where(max_abs > 0, np.ldexp(1.0, exponent - 1), 1.0)


def _as_matrix(name: str, x) -> tuple[np.ndarray, np.dtype]:
    x, dtype = _as_float(name, x)
    _checks.check_rank(name, x.shape, rank=2)
    _checks.check_features(name, x.shape)
    return x, dtype


def _as_labels(labels, batch: int | None) -> np.ndarray:
    """Class ids as an integer array; ``batch``: the length they must have, if known."""
    try:
        labels = np.asarray(labels)
    except Exception as error:
        raise _checks.not_an_array_error("labels", labels, error) from None
    _checks.check_labels("labels", labels.shape, labels.dtype.kind, labels.dtype, batch)
    return labels


def _pair_of_matrices(x, y):
    """Validate ``x`` (B, D) and ``y`` (M, D) or None; return both as float64 and the dtype."""
    same = y is x
    x, dtype = _as_matrix("x", x)
    if y is None or same:  # the very same object: the distances within one batch
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", x.shape, "y", y.shape)
    return x, y, _promote(dtype, y_dtype)


# --------------------------------------------------------------------------- distances


def l2_normalize(x, eps: float = 1e-12):
    r"""Scale each row (last axis) to unit L2 norm.

    :math:`u = x / \lVert x \rVert` over the last axis. Shapes: ``(..., D) -> (..., D)``.

    A row whose norm is at most ``eps`` is returned as zeros, with a zero gradient in
    the framework backends (not the ``1/eps``-sized gradient of ``x / max(||x||, eps)``).
    Each row is first divided by a power of two near its largest entry, so rows of any
    finite size (up to the dtype's largest number) are normalized without overflow.

    >>> l2_normalize([[3.0, 4.0], [0.0, 0.0]])
    array([[0.6, 0.8],
           [0. , 0. ]])

    Parameters
    ----------
    x : array_like, shape (..., D)
        Rows on the last axis.
    eps : float, default 1e-12
        Rows whose L2 norm is at most ``eps`` count as zero vectors.

    Returns
    -------
    array, shape (..., D)
        Unit rows (zero rows stay zero), in the input dtype.
    """
    eps = _checks.check_positive("eps", eps)
    x, dtype = _as_float("x", x)
    _checks.check_rank("x", x.shape, min_rank=1)
    _checks.check_features("x", x.shape)
    return _normalize(x, eps).astype(dtype)


def _normalize(x: np.ndarray, eps: float) -> np.ndarray:
    """Unit rows of a validated float64 array; rows of norm <= eps become zeros."""
    scale = _power_of_two_scale(np.abs(x).max(axis=-1, keepdims=True))
    scaled = x / scale
    scaled_norm = np.sqrt(np.sum(scaled * scaled, axis=-1, keepdims=True))
    nonzero = scaled_norm * scale > eps
    return np.where(nonzero, scaled / np.where(nonzero, scaled_norm, 1.0), 0.0)


def cosine_similarity(a, b, eps: float = COSINE_EPS):
    r"""Cosine of the angle between rows of ``a`` and ``b`` (features on the last axis).

    :math:`\cos(a, b) = a \cdot b / (\lVert a \rVert \lVert b \rVert)`, computed as the dot
    product of the two L2-normalized rows and clipped to [-1, 1].
    Shapes: ``(..., D), (..., D) -> (...)``, leading axes broadcast as in NumPy.

    A row whose norm is at most ``eps`` counts as a zero vector: its cosine with
    anything is 0 (as in PyTorch), and the framework backends give it a zero gradient.

    SPEC worked numbers: ``cosine_similarity([1, 2, 3], [1, 2, 3.5]) = 0.9974`` and
    ``cosine_similarity([1, 2, 3], [0, -42, 1]) = -0.5153`` (4 d.p.).
    Notebook: 02_similarity_matrices.

    Parameters
    ----------
    a, b : array_like, shape (..., D)
        Rows on the last axis; leading axes broadcast.
    eps : float, default 1e-8
        Rows whose L2 norm is at most ``eps`` count as zero vectors.

    Returns
    -------
    array, shape (...)
        Cosines in [-1, 1].
    """
    eps = _checks.check_positive("eps", eps)
    a, a_dtype = _as_float("a", a)
    b, b_dtype = _as_float("b", b)
    _checks.check_rank("a", a.shape, min_rank=1)
    _checks.check_rank("b", b.shape, min_rank=1)
    _checks.check_features("a", a.shape)
    _checks.check_broadcast("a", a.shape, "b", b.shape)
    cos = np.sum(_normalize(a, eps) * _normalize(b, eps), axis=-1)
    return np.clip(cos, -1.0, 1.0).astype(_promote(a_dtype, b_dtype))


def cosine_distance(a, b, eps: float = COSINE_EPS):
    """Cosine distance ``1 - cos(a, b)``, in [0, 2]; shapes as ``cosine_similarity``.

    Not a metric (no triangle inequality), but for unit vectors it is half the squared
    L2 distance: ``||a - b||^2 = 2 (1 - cos(a, b))``. In general
    ``||a - b||^2 - (||a|| - ||b||)^2 = 2 ||a|| ||b|| (1 - cos(a, b))``.
    A zero row has cosine 0 with everything, so its cosine distance is 1.
    Notebook: 01_cosine_from_l2.

    Parameters
    ----------
    a, b : array_like, shape (..., D)
        Rows on the last axis; leading axes broadcast.
    eps : float, default 1e-8
        Rows whose L2 norm is at most ``eps`` count as zero vectors.

    Returns
    -------
    array, shape (...)
        ``1 - cos`` in [0, 2].
    """
    return 1.0 - cosine_similarity(a, b, eps)


def similarity_matrix(x, y=None):
    """All cosine similarities between the rows of two batches.

    ``S[i, j] = cos(x_i, y_j)``; ``y=None`` means ``y = x``. Shapes:
    ``x (B, D), y (M, D) -> S (B, M)``. Computed as normalize-then-dot,
    ``S = l2_normalize(x) @ l2_normalize(y).T``, clipped to [-1, 1]; zero rows
    (norm <= 1e-8) give similarity 0, including with themselves.
    Notebook: 02_similarity_matrices (the same matrix by nested loops).

    Parameters
    ----------
    x : array_like, shape (B, D)
        The first batch.
    y : array_like, shape (M, D), optional
        The second batch; ``None`` means ``x``.

    Returns
    -------
    array, shape (B, M)
        ``S[i, j] = cos(x_i, y_j)``.
    """
    x, y, dtype = _pair_of_matrices(x, y)
    ux = _normalize(x, COSINE_EPS)
    uy = ux if y is None else _normalize(y, COSINE_EPS)
    return np.clip(ux @ uy.T, -1.0, 1.0).astype(dtype)


def _scaled_squared_l2(x, y):
    """``(q, s)`` with ``||x_i - y_j||^2 = q_ij s^2``: the Gram form on the rows divided
    by a power of two ``s`` near the largest entry (exact), so nothing overflows."""
    max_abs = np.abs(x).max(initial=0.0)
    if y is not None:
        max_abs = max(max_abs, np.abs(y).max(initial=0.0))
    scale = _power_of_two_scale(np.asarray(max_abs))
    sq, _, _ = _gram_squared_distances(x / scale, None if y is None else y / scale)
    return sq, scale


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

    Shapes: ``x (B, D), y (M, D) -> (B, M)``; ``y=None`` (or ``y`` the very same
    object as ``x``) means the distances within one batch, with exact zeros on the
    diagonal. A ``y`` given is another batch: a row of ``x`` and an equal row of ``y``
    are at distance 0 only up to rounding, because their squared norms come from two
    different sums (for ``10 * randn(64, 128)`` in float32 that is ~0.1 in the
    framework backends); pass ``y=None`` for the distances within a batch.

    ===============  ============================================
    ``metric``       ``D[i, j]``
    ===============  ============================================
    ``euclidean``    ``||x_i - y_j||``
    ``sqeuclidean``  ``||x_i - y_j||^2``
    ``cosine``       ``1 - cos(x_i, y_j)``, in [0, 2]
    ``l1``           ``sum_k |x_ik - y_jk|``
    ===============  ============================================

    The L2 metrics use the Gram form ``|x|^2 + |y|^2 - 2 x . y`` with the squared norms
    read from the Gram diagonal when ``y is None``, so that two identical rows are at
    distance exactly 0 rather than at float32 cancellation noise, and clamp at 0. The
    cosine metric is the same construction on the normalized rows: ``(|u_i|^2 +
    |u_j|^2) / 2 - u_i . u_j``, which is ``1 - cos`` for unit rows; a zero row is at
    distance 1 from a non-zero row and at distance 0 from another zero row (identical
    rows are at distance 0 in every metric). With ``y is None`` the diagonal is exactly 0.

    Values and (framework) gradients are finite everywhere, including identical rows
    and zero rows: the square root is only taken of entries that are > 0. The rows are
    divided by a power of two near their largest entry first, so a distance is ``inf``
    only when it is beyond the dtype's range (``sqeuclidean`` of float32 rows ~1e19
    apart). ``B = 0`` rows give a ``(0, M)`` matrix. Accuracy: the Gram form loses
    about ``eps * max|x|^2`` to cancellation, so in float32 two nearly equal rows can
    come out up to ``~sqrt(8 eps) * max|x|`` (about ``1e-3 * max|x|``) off in the
    euclidean metric; compute in float64 where such small distances matter.
    Notebook: 02_similarity_matrices.

    Parameters
    ----------
    x : array_like, shape (B, D)
        The first batch.
    y : array_like, shape (M, D), optional
        The second batch; ``None`` means ``x``.
    metric : {"euclidean", "sqeuclidean", "cosine", "l1"}, default "euclidean"
        See the table above.

    Returns
    -------
    array, shape (B, M)
        ``D[i, j]``, with an exact zero diagonal when ``y is None``.
    """
    _checks.check_metric(metric)
    x, y, dtype = _pair_of_matrices(x, y)
    with np.errstate(over="ignore"):  # a distance beyond the dtype's range is inf
        return _distances(x, y, metric).astype(dtype)


def _distances(x: np.ndarray, y: np.ndarray | None, metric: str) -> np.ndarray:
    """``pairwise_distances`` of validated float64 arrays, in float64."""
    if metric == "l1":
        other = x if y is None else y
        dist = np.abs(x[:, None, :] - other[None, :, :]).sum(axis=-1)
    elif metric == "cosine":
        ux = _normalize(x, COSINE_EPS)
        uy = None if y is None else _normalize(y, COSINE_EPS)
        sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
        x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
        dist = np.where(x_zero | y_zero, np.where(x_zero & y_zero, 0.0, 1.0), sq / 2.0)
        dist = np.minimum(dist, 2.0)
    else:
        sq, scale = _scaled_squared_l2(x, y)
        dist = np.sqrt(sq) * scale if metric == "euclidean" else sq * scale * scale
    if y is None:
        np.fill_diagonal(dist, 0.0)
    return dist


# --------------------------------------------------------------------------- losses


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return losses.mean() if losses.size else np.zeros((), losses.dtype)
    return losses.sum() if reduction == "sum" else losses


def _row_distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """``d(a_i, b_i)`` row by row, ``(B, D), (B, D) -> (B,)``: the metrics of
    ``pairwise_distances`` on matching rows (differences taken directly, not via Gram)."""
    if metric == "cosine":
        cos = np.sum(_normalize(a, COSINE_EPS) * _normalize(b, COSINE_EPS), axis=-1)
        return 1.0 - np.clip(cos, -1.0, 1.0)
    if metric == "l1":
        return np.abs(a - b).sum(axis=-1)
    scale = _power_of_two_scale(
        np.asarray(max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))
    )
    diff = a / scale - b / scale
    sq = np.sum(diff * diff, axis=-1)
    return np.sqrt(sq) * scale if metric == "euclidean" else sq * scale * scale


def triplet_loss(
    anchor, positive, negative, margin: float = 0.2, metric: str = "sqeuclidean", reduction="mean"
):
    r"""The triplet loss of explicit (anchor, positive, negative) rows.

    :math:`L_i = \max(d(a_i, p_i) - d(a_i, n_i) + m,\ 0)` with margin :math:`m` and ``d``
    any metric of ``pairwise_distances`` (``sqeuclidean`` by default, as in FaceNet). Shapes: three
    ``(B, D)`` arrays -> ``(B,)`` with ``reduction="none"``, else a scalar (``mean``
    or ``sum`` over the B triplets; the mean of zero triplets is 0).

    For unit vectors, the margin ``m`` on ``sqeuclidean`` selects the same triplets as
    ``m / 2`` on ``cosine``, and the loss is twice as large (notebook 01).
    The three inputs may have different float dtypes: the result has the widest.
    Notebook: 03_triplet_losses.

    Parameters
    ----------
    anchor, positive, negative : array_like, shape (B, D)
        The rows of the B triplets.
    margin : float, default 0.2
        The margin ``m`` of the hinge; must be >= 0.
    metric : {"euclidean", "sqeuclidean", "cosine", "l1"}, default "sqeuclidean"
        The distance of ``pairwise_distances``.
    reduction : {"none", "mean", "sum"}, default "mean"
        ``none`` returns one loss per row.

    Returns
    -------
    array
        Shape (B,) with ``reduction="none"``, else a scalar.
    """
    margin = _checks.check_margin(margin)
    _checks.check_metric(metric)
    _checks.check_reduction(reduction)
    (a, a_dtype), (p, p_dtype), (n, n_dtype) = (
        _as_matrix(name, v)
        for name, v in (("anchor", anchor), ("positive", positive), ("negative", negative))
    )
    _checks.check_same_shape(("anchor", "positive", "negative"), (a.shape, p.shape, n.shape))
    dtype = _promote(a_dtype, p_dtype, n_dtype)
    compute = _compute_dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: raised just below
        d_ap = _row_distances(a, p, metric).astype(compute)  # the hinge in the computing
        d_an = _row_distances(a, n, metric).astype(compute)  # dtype, as in the frameworks
        losses = np.maximum(d_ap - d_an + compute.type(margin), 0.0).astype(np.float64)
    return _finite_loss(_reduce(losses, reduction), dtype, "anchor, positive, negative")


def _as_scores(scores) -> tuple[np.ndarray, np.dtype]:
    scores, dtype = _as_float("scores", scores)
    _checks.check_rank("scores", scores.shape, rank=2)
    _checks.check_square("scores", scores.shape)
    return scores, dtype


def _mean_negative(scores: np.ndarray) -> np.ndarray:
    negative = ~np.eye(len(scores), dtype=bool)
    return np.where(negative, scores, 0.0).sum(axis=1) / (len(scores) - 1)


def _closest_negative(scores: np.ndarray) -> np.ndarray:
    candidate = ~np.eye(len(scores), dtype=bool) & (scores <= np.diag(scores)[:, None])
    return np.where(candidate, scores, -np.inf).max(axis=1, initial=-np.inf)


def mean_negative(scores):
    """Per row of a ``(B, B)`` similarity matrix, the mean of its off-diagonal scores.

    ``mean_neg[i] = sum_{j != i} scores[i, j] / (B - 1)``: the average similarity of
    anchor ``i`` to the negatives (the diagonal holds the positives). ``(B, B) -> (B,)``.
    SPEC worked number: ``[-1/3, -2/15, -2/15, -7/15]`` (see ``modified_triplet_loss``).

    Parameters
    ----------
    scores : array_like, shape (B, B)
        Similarities ``s(A_i, P_j)``; the diagonal holds the positives.

    Returns
    -------
    array, shape (B,)
        The mean off-diagonal score of each row.
    """
    scores, dtype = _as_scores(scores)
    return _mean_negative(scores).astype(dtype)


def closest_negative(scores):
    """Per row, the largest off-diagonal score that is ``<= scores[i, i]`` (the positive).

    The hardest negative that is still less similar than the positive. ``-inf`` where
    a row has no such score (every negative is more similar than the positive): then
    ``max(closest_neg - s_ap + margin, 0) = 0`` with no special case. ``(B, B) -> (B,)``.
    SPEC worked number: ``[0.3, 0.1, -0.8, -0.2]``.

    Parameters
    ----------
    scores : array_like, shape (B, B)
        Similarities ``s(A_i, P_j)``; the diagonal holds the positives.

    Returns
    -------
    array, shape (B,)
        Per row the largest off-diagonal score ``<= scores[i, i]``, or
        ``-inf``.
    """
    scores, dtype = _as_scores(scores)
    return _closest_negative(scores).astype(dtype)


def modified_triplet_loss(scores, margin: float = 0.25, reduction: str = "sum"):
    """Mean-negative plus closest-negative triplet loss on a similarity matrix.

    ``scores`` is a ``(B, B)`` matrix of similarities ``s(A_i, P_j)`` whose diagonal
    holds the positives ``s(A_i, P_i)`` and whose off-diagonal entries are negatives.
    Per row ``i`` (anchor), with ``s_ap = scores[i, i]``:

    - ``mean_neg``: the mean of the ``B - 1`` off-diagonal scores of the row;
    - ``closest_neg``: the largest off-diagonal score that is ``<= s_ap`` (the hardest
      negative that is still less similar than the positive);
    - ``L1 = max(mean_neg - s_ap + margin, 0)``, ``L2 = max(closest_neg - s_ap +
      margin, 0)``, and the row's loss is ``L1 + L2``.

    A row in which every off-diagonal score is above ``s_ap`` has no closest
    negative (``closest_negative`` gives ``-inf``): its ``L2`` is 0 and the row
    contributes ``L1`` only. (The source this loss comes from masks such entries with
    -2, which makes ``L2`` vanish for any margin below 1; here it is 0 for every margin.)

    Shapes: ``(B, B)`` -> ``(B,)`` with ``reduction="none"``, else a scalar (``sum`` by
    default, as in the source). ``B = 1`` is an error: a row needs a negative (``B = 0``
    has no row, and gives 0).

    SPEC worked numbers: for ``[[0.9, -0.8, 0.3, -0.5], [-0.4, 0.5, 0.1, -0.1],
    [0.3, 0.1, -0.4, -0.8], [-0.5, -0.2, -0.7, 0.5]]``, ``mean_neg = [-1/3, -2/15,
    -2/15, -7/15]``, ``closest_neg = [0.3, 0.1, -0.8, -0.2]``, per-row loss ``[0, 0,
    0.516667, 0]``, sum 0.516667. Notebook: 03_triplet_losses.

    Parameters
    ----------
    scores : array_like, shape (B, B)
        Similarities ``s(A_i, P_j)``; the diagonal holds the positives.
    margin : float, default 0.25
        The margin ``m`` of the hinge; must be >= 0.
    reduction : {"none", "mean", "sum"}, default "sum"
        ``none`` returns one loss per row.

    Returns
    -------
    array
        Shape (B,) with ``reduction="none"``, else a scalar.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    scores, dtype = _as_scores(scores)
    s_ap = np.diag(scores)
    loss_mean = np.maximum(_mean_negative(scores) - s_ap + margin, 0.0)  # L1
    loss_closest = np.maximum(_closest_negative(scores) - s_ap + margin, 0.0)  # L2, 0 at -inf
    return _reduce(loss_mean + loss_closest, reduction).astype(dtype)


def contrastive_loss(x1, x2, same, margin: float = 1.0, reduction: str = "mean"):
    r"""The contrastive loss of pairs of embeddings (Hadsell, Chopra and LeCun, 2006).

    :math:`L_i = \tfrac12 s_i D_i^2 + \tfrac12 (1 - s_i) \max(0, m - D_i)^2` (``s = same``,
    :math:`m` the margin) with
    ``D_i = ||x1_i - x2_i||`` (euclidean). Similar pairs are pulled together; dissimilar
    pairs are pushed apart until they are ``margin`` away, then left alone.

    Label convention: ``same_i = 1`` means the pair is of the same class. Hadsell et
    al. write ``Y = 0`` for similar pairs and ``Y = 1`` for dissimilar ones: pass
    ``same = 1 - Y`` when following the paper.

    Shapes: ``x1, x2 (B, D)``, ``same (B,)`` of 0/1 (bool, int or float) -> ``(B,)``
    with ``reduction="none"``, else a scalar (``mean`` by default, or ``sum``). The
    result has the wider dtype of ``x1`` and ``x2``. Each pair takes its own branch
    (never ``0 * inf``): a dissimilar pair farther than the margin costs exactly 0 at
    any distance. Notebook: 04_siamese_losses.

    Parameters
    ----------
    x1, x2 : array_like, shape (B, D)
        The two rows of each pair.
    same : array_like of 0/1, shape (B,)
        1 when the pair is of the same class (bool, int or float).
    margin : float, default 1.0
        The margin ``m`` of the hinge; must be >= 0.
    reduction : {"none", "mean", "sum"}, default "mean"
        ``none`` returns one loss per row.

    Returns
    -------
    array
        Shape (B,) with ``reduction="none"``, else a scalar.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    x1, x1_dtype = _as_matrix("x1", x1)
    x2, x2_dtype = _as_matrix("x2", x2)
    _checks.check_same_shape(("x1", "x2"), (x1.shape, x2.shape))
    same, _ = _as_float("same", same)
    _checks.check_rank("same", same.shape, rank=1, what=_checks.SAME_VECTOR)
    _checks.check_same_shape(("same", "rows of x1"), (same.shape, x1.shape[:1]))
    if not np.isin(same, (0.0, 1.0)).all():
        raise _checks.not_binary_error("same")
    with np.errstate(over="ignore"):  # overflow: raised just below
        dist = _row_distances(x1, x2, "euclidean")
        pull = 0.5 * _row_distances(x1, x2, "sqeuclidean")
        losses = np.where(same == 1.0, pull, 0.5 * np.maximum(margin - dist, 0.0) ** 2)
        losses = _reduce(losses, reduction)
    return _finite_loss(losses, _promote(x1_dtype, x2_dtype), "x1, x2")


# --------------------------------------------------------------------------- mining


def _positive_mask(labels: np.ndarray) -> np.ndarray:
    """``(B, B)``: True where ``a != p`` and ``label(a) == label(p)``."""
    same = labels[:, None] == labels[None, :]
    return same & ~np.eye(len(labels), dtype=bool)


def _negative_mask(labels: np.ndarray) -> np.ndarray:
    """``(B, B)``: True where ``label(a) != label(n)``."""
    return labels[:, None] != labels[None, :]


def positive_mask(labels):
    """``(B,) -> (B, B)`` booleans: True where ``a != p`` and ``label(a) == label(p)``.

    Row ``a`` marks the positives of anchor ``a``. Notebook: 05_online_mining.

    Parameters
    ----------
    labels : array_like of int, shape (B,)
        The class of each row.

    Returns
    -------
    array of bool, shape (B, B)
        Row ``a`` marks the positives of anchor ``a``.
    """
    return _positive_mask(_as_labels(labels, None))


def negative_mask(labels):
    """``(B,) -> (B, B)`` booleans: True where ``label(a) != label(n)``.

    Row ``a`` marks the negatives of anchor ``a``. A valid triplet ``(a, p, n)`` is one
    with ``positive_mask[a, p] and negative_mask[a, n]``. Notebook: 05_online_mining.

    Parameters
    ----------
    labels : array_like of int, shape (B,)
        The class of each row.

    Returns
    -------
    array of bool, shape (B, B)
        Row ``a`` marks the negatives of anchor ``a``.
    """
    return _negative_mask(_as_labels(labels, None))


def _triplet_mask(labels: np.ndarray) -> np.ndarray:
    """``(B, B, B)``: True where ``(a, p, n)`` is a valid triplet.

    ``a != p``, ``label(a) == label(p)`` and ``label(n) != label(a)``; ``n != a`` and
    ``n != p`` follow from the labels.
    """
    return _positive_mask(labels)[:, :, None] & _negative_mask(labels)[:, None, :]


def _mining_inputs(embeddings, labels, margin, metric):
    """``(D, labels, margin, dtype)``: the distances rounded to the computing dtype, in
    which the mining decides (see the module docstring), and the margin in that dtype."""
    margin = _checks.check_margin(margin)
    _checks.check_metric(metric)
    x, dtype = _as_matrix("embeddings", embeddings)
    labels = _as_labels(labels, x.shape[0])
    compute = _compute_dtype(dtype)
    with np.errstate(over="ignore"):  # a distance beyond the dtype is inf: raised later
        dist = _distances(x, None, metric).astype(compute)
    return dist, labels, compute.type(margin), dtype


def _mean(losses: np.ndarray) -> float:
    """The mean in float64 (0 for no loss, NaN if a distance overflowed: raised later)."""
    return losses.astype(np.float64).mean() if losses.size else 0.0


def batch_all_triplet_loss(embeddings, labels, margin: float = 0.2, metric: str = "euclidean"):
    """Batch-all online mining: every valid triplet of the batch, averaged over the hard ones.

    With ``D = pairwise_distances(embeddings, metric=metric)``, every valid triplet
    ``(a, p, n)`` (``a != p``, same label; ``n`` of another label) has the loss
    ``max(D[a, p] - D[a, n] + margin, 0)``. Easy triplets (loss 0) are not counted:
    averaging over them would shrink the loss as training succeeds. Returns
    ``(loss, fraction_positive)``:

    - ``loss``: the mean over valid triplets with a positive loss; 0 when there are
      none (with a zero gradient in the framework backends);
    - ``fraction_positive``: (valid triplets with a positive loss) / (valid triplets);
      0 when there are no valid triplets.

    A triplet has a positive loss (is *active*) when its hinge ``d_ap - d_an + margin``,
    as computed in the computing dtype, is ``> 0``; on the boundary, ``x = [[0], [1],
    [1.2]]`` with labels ``[0, 0, 1]`` in float64 gives ``1 - 1.2 + 0.2 = 5.6e-17 > 0``,
    so both valid triplets count: ``(0.5, 1.0)``, as in pytorch-metric-learning.

    Shapes: ``embeddings (B, D)``, ``labels (B,)`` integers -> two scalars.
    This backend builds the ``(B, B, B)`` cube of triplets (readable, ``O(B^3)``
    memory); the framework backends never do. Notebook: 05_online_mining.

    Parameters
    ----------
    embeddings : array_like, shape (B, D)
        One embedding per row.
    labels : array_like of int, shape (B,)
        The class of each row; rows of the same label are positives of each other.
    margin : float, default 0.2
        The margin ``m`` of the hinge; must be >= 0.
    metric : {"euclidean", "sqeuclidean", "cosine", "l1"}, default "euclidean"
        The distance of ``pairwise_distances``.

    Returns
    -------
    loss : array, scalar
        The mean over the valid triplets with a positive loss.
    fraction_positive : array, scalar
        The share of valid triplets with a positive loss.
    """
    dist, labels, margin, dtype = _mining_inputs(embeddings, labels, margin, metric)
    d_ap = dist[:, :, None]  # (B, B, 1): anchor a, positive p
    d_an = dist[:, None, :]  # (B, 1, B): anchor a, negative n
    valid = _triplet_mask(labels)  # (B, B, B)
    with np.errstate(invalid="ignore"):  # inf - inf: an overflowed distance, raised below
        hinge = d_ap - d_an + margin  # in the computing dtype: the one rule for "active"
    active = valid & (hinge > 0)
    n_valid, n_active = valid.sum(), active.sum()
    loss = np.nan if np.isnan(hinge[valid]).any() else _mean(hinge[active])
    fraction = n_active / n_valid if n_valid else 0.0
    return _finite_loss(loss, dtype, "embeddings"), np.asarray(fraction, dtype)


def batch_hard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean", soft: bool = False
):
    """Batch-hard online mining (Hermans, Beyer and Leibe, 2017).

    For each anchor ``a``: the hardest positive is the *farthest* example of the same
    label (``a`` itself excluded), the hardest negative the *closest* example of
    another label. The anchor's loss is ``max(hardest_positive - hardest_negative +
    margin, 0)``, or with ``soft=True`` the soft margin
    ``softplus(hardest_positive - hardest_negative) = log(1 + exp(.))`` (no margin).
    The loss is the mean over anchors that have at least one positive and one
    negative; 0 when no anchor has both.

    The hardest positive is a maximum over the anchor's *positives*, not over the
    whole row: the row's maximum is usually a negative (notebook 05 shows the wrong
    answer that shortcut gives).

    Shapes: ``embeddings (B, D)``, ``labels (B,)`` integers -> a scalar.
    Notebook: 05_online_mining.

    Parameters
    ----------
    embeddings : array_like, shape (B, D)
        One embedding per row.
    labels : array_like of int, shape (B,)
        The class of each row; rows of the same label are positives of each other.
    margin : float, default 0.2
        The margin ``m`` of the hinge; must be >= 0.
    metric : {"euclidean", "sqeuclidean", "cosine", "l1"}, default "euclidean"
        The distance of ``pairwise_distances``.
    soft : bool, default False
        ``softplus(d_ap - d_an)`` instead of the hinge (``margin`` unused).

    Returns
    -------
    array, scalar
        The mean over the anchors with a positive and a negative.
    """
    soft = _checks.check_bool("soft", soft)
    dist, labels, margin, dtype = _mining_inputs(embeddings, labels, margin, metric)
    positive, negative = _positive_mask(labels), _negative_mask(labels)
    valid = positive.any(axis=1) & negative.any(axis=1)
    hardest_positive = np.where(positive, dist, -np.inf).max(axis=1, initial=-np.inf)
    hardest_negative = np.where(negative, dist, np.inf).min(axis=1, initial=np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf: an overflowed distance, raised below
        gap = (hardest_positive - hardest_negative)[valid]
    losses = np.logaddexp(0.0, gap) if soft else np.maximum(gap + margin, 0.0)
    return _finite_loss(_mean(losses), dtype, "embeddings")


def batch_semihard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean"
):
    """Semi-hard online mining (Schroff, Kalenichenko and Philbin, 2015: FaceNet).

    For each valid pair ``(a, p)`` (``a != p``, same label): the semi-hard negative is
    the closest negative that is *farther* than the positive, ``min {D[a, n] : D[a, n]
    > D[a, p]}``; if there is none, the farthest negative of ``a`` (the rule of
    TF-Addons' ``TripletSemiHardLoss``). The pair's loss is ``max(D[a, p] -
    D[a, n*] + margin, 0)``; the loss is the mean over all pairs whose anchor has a
    negative (easy pairs included, as in TF-Addons); 0 when there are none.
    "Farther" is strict and on the distances in the computing dtype: a negative at
    exactly ``D[a, p]`` is not semi-hard.

    Shapes: ``embeddings (B, D)``, ``labels (B,)`` integers -> a scalar.
    Notebook: 05_online_mining.

    Parameters
    ----------
    embeddings : array_like, shape (B, D)
        One embedding per row.
    labels : array_like of int, shape (B,)
        The class of each row; rows of the same label are positives of each other.
    margin : float, default 0.2
        The margin ``m`` of the hinge; must be >= 0.
    metric : {"euclidean", "sqeuclidean", "cosine", "l1"}, default "euclidean"
        The distance of ``pairwise_distances``.

    Returns
    -------
    array, scalar
        The mean over the valid (anchor, positive) pairs.
    """
    dist, labels, margin, dtype = _mining_inputs(embeddings, labels, margin, metric)
    positive, negative = _positive_mask(labels), _negative_mask(labels)
    pairs = positive & negative.any(axis=1, keepdims=True)  # (B, B): valid (a, p)
    d_ap = dist[:, :, None]  # (B, B, 1)
    d_an = np.broadcast_to(dist[:, None, :], (len(dist),) * 3)  # (B, B, B): [a, p, n]
    farther = negative[:, None, :] & (d_an > d_ap)  # n is a negative beyond the positive
    semihard = np.where(farther, d_an, np.inf).min(axis=2, initial=np.inf)
    farthest = np.where(negative, dist, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    chosen = np.where(farther.any(axis=2), semihard, farthest)
    with np.errstate(invalid="ignore"):  # inf - inf: an overflowed distance, raised below
        losses = np.maximum(dist - chosen + margin, 0.0)[pairs]
    return _finite_loss(_mean(losses), dtype, "embeddings")


# --------------------------------------------------------------------------- softmax losses


def _unit_cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(B, M)`` cosines of validated float64 rows, as ``similarity_matrix``: zero rows
    (norm <= 1e-8) have cosine 0 with everything, themselves included."""
    return np.clip(_normalize(x, COSINE_EPS) @ _normalize(y, COSINE_EPS).T, -1.0, 1.0)


def _log_softmax(cos: np.ndarray, kept: np.ndarray, temperature: float) -> np.ndarray:
    """``log softmax`` of each row of ``cos / temperature`` over its ``kept`` entries
    (``-inf`` elsewhere; a row with no kept entry is all ``-inf``).

    Computed as ``(c - m) / t - log sum exp((c - m) / t)`` with ``m`` the row's largest
    kept cosine: every exponent is ``<= 0``, and nothing overflows for any ``t > 0``.
    """
    top = np.where(kept, cos, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0.0)  # a row with nothing kept
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        shifted = np.where(kept, (cos - top) / temperature, -np.inf)
        log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return np.where(kept, shifted - log_z, -np.inf)


def _softmax_loss(value, dtype: np.dtype) -> np.ndarray:
    """``value`` (float64) as ``dtype``; a ValueError naming the temperature if it is
    not finite there (a loss reaches ``2 / temperature``)."""
    value = np.asarray(value, np.float64)
    if not np.all(np.abs(value) <= np.finfo(dtype).max):
        raise _checks.temperature_overflow_error(dtype)
    return value.astype(dtype)


def info_nce_loss(
    queries,
    keys,
    temperature: float = 0.05,
    symmetric: bool = False,
    labels=None,
    reduction: str = "mean",
):
    r"""The InfoNCE loss of paired rows, with the other rows of the batch as negatives.

    Row ``i`` of ``queries`` is paired with row ``i`` of ``keys`` (two views of one
    example, a question and its answer, an image and its caption); every other key is a
    negative of query ``i`` ("in-batch negatives"). With the logits
    :math:`s_{ij} = \cos(q_i, k_j) / \tau` (:math:`\tau` the temperature), query ``i``
    costs the cross-entropy of the softmax over its row with target ``i``:

    .. math:: L_i = -\log \frac{\exp s_{ii}}{\sum_{j \in K(i)} \exp s_{ij}}
              = \operatorname{logsumexp}_{j \in K(i)} s_{ij} - s_{ii}

    where :math:`K(i)` is every key (van den Oord, Li and Vinyals 2018). This is
    sentence-transformers' ``MultipleNegativesRankingLoss`` with ``scale = 1 /
    temperature`` (its default ``scale = 20`` is ``temperature = 0.05``, the default
    here), and ``torch.nn.functional.cross_entropy(S / temperature, arange(B))`` on the
    cosine matrix ``S``.

    - ``symmetric=True`` averages the two directions, ``(L_i + L'_i) / 2`` with ``L'_i``
      the cross-entropy of key ``i`` over the column ``s_{ji}``, ``j`` the queries
      (CLIP, Radford et al. 2021).
    - ``labels`` (class ids, ``(B,)``): a key of the same label as query ``i``, other than
      ``k_i``, is not a negative but an in-batch false negative; it leaves the
      denominator: :math:`K(i) = \{i\} \cup \{j : y_j \ne y_i\}` (and the same for the
      queries in the key->query direction). Without labels every row is its own class.

    Cosines are those of ``similarity_matrix``: a zero row (norm <= 1e-8) has cosine 0
    with everything. Each logit lies in ``[-1 / t, 1 / t]`` and every softmax is
    computed with its largest logit subtracted (log-sum-exp), so any ``t > 0`` is safe;
    a loss beyond the result dtype's range (``2 / t`` can be, for float16) is a
    ``ValueError``, and so is a temperature below the smallest normal number of the
    computing dtype (float32 for float16/bfloat16/float32 input: ``1.2e-38``).
    ``B = 0`` gives 0 (``(0,)`` with ``reduction="none"``); ``B = 1`` gives 0 (the pair
    is its own softmax; up to rounding in the framework backends, which shift the
    softmax by ``1 / t``, not by the row's largest logit, where that is safe).

    Shapes: ``queries, keys (B, D)``, ``labels (B,)`` integers or None -> ``(B,)`` with
    ``reduction="none"``, else a scalar (``mean`` by default, or ``sum``). The result
    has the wider dtype of ``queries`` and ``keys``.

    Parameters
    ----------
    queries, keys : array_like, shape (B, D)
        Row ``i`` of each is one pair.
    temperature : float, default 0.05
        The softmax temperature ``t > 0``: logits are cosines divided by it.
    symmetric : bool, default False
        Average the query->key and key->query losses (CLIP).
    labels : array_like of int, shape (B,), optional
        Class ids: keys (and in the symmetric direction, queries) of the row's label
        other than its pair leave the denominator.
    reduction : {"none", "mean", "sum"}, default "mean"
        ``none`` returns one loss per pair.

    Returns
    -------
    array
        Shape (B,) with ``reduction="none"``, else a scalar.
    """
    temperature = _checks.check_temperature(temperature)
    symmetric = _checks.check_bool("symmetric", symmetric)
    _checks.check_reduction(reduction)
    q, q_dtype = _as_matrix("queries", queries)
    k, k_dtype = _as_matrix("keys", keys)
    _checks.check_same_shape(("queries", "keys"), (q.shape, k.shape))
    dtype = _promote(q_dtype, k_dtype)
    _checks.check_temperature_in(temperature, np.finfo(_compute_dtype(dtype)).tiny, dtype)
    batch = q.shape[0]
    pair = np.eye(batch, dtype=bool)
    kept = np.ones((batch, batch), bool)
    if labels is not None:
        labels = _as_labels(labels, batch)
        kept = _negative_mask(labels) | pair  # symmetric: the same for the key->query side
    cos = _unit_cosines(q, k)
    losses = -_log_softmax(cos, kept, temperature)[pair]
    if symmetric:
        losses = (losses + -_log_softmax(cos.T, kept.T, temperature)[pair]) / 2.0
    return _softmax_loss(_reduce(losses, reduction), dtype)


def supervised_contrastive_loss(embeddings, labels, temperature: float = 0.1):
    r"""The supervised contrastive loss (Khosla et al. 2020), in its :math:`L^{out}` form.

    With the logits :math:`s_{ij} = \cos(x_i, x_j) / \tau`, every row ``i`` (anchor)
    with at least one positive (another row of its label) costs the mean, over its
    positives :math:`P(i)`, of the cross-entropy of the softmax over all the *other*
    rows :math:`A(i) = \{j \ne i\}` (the anchor itself is never in the denominator):

    .. math:: L_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
              \log \frac{\exp s_{ip}}{\sum_{a \in A(i)} \exp s_{ia}}
              = \operatorname{logsumexp}_{a \ne i} s_{ia}
                - \frac{1}{|P(i)|} \sum_{p \in P(i)} s_{ip}

    and the loss is the mean of :math:`L_i` over the anchors that have a positive;
    anchors without one are dropped, and when none has one the loss is 0 (a 0 still
    connected to the embeddings in the framework backends, with zero gradient, as the
    margin losses give when no triplet is valid). Positives stay in the denominator
    (the paper's :math:`L^{out}`, the one it recommends; :math:`L^{in}` averages inside
    the log).

    NT-Xent, the loss of SimCLR (Chen et al. 2020), is the case of two views per
    instance: with ``embeddings`` the ``2N`` views and ``labels`` the instance ids
    (each id twice), every anchor has exactly one positive ``p(i)`` and
    :math:`L_i = -\log \big(\exp s_{i p(i)} / \sum_{a \ne i} \exp s_{ia}\big)`, averaged
    over the ``2N`` views.

    Cosines are those of ``similarity_matrix`` (a zero row has cosine 0 with
    everything); every softmax is computed with its largest logit subtracted, so any
    ``t > 0`` is safe (a loss beyond the result dtype's range is a ``ValueError``, and so
    is a temperature below the smallest normal number of the computing dtype).
    Unlike pytorch-metric-learning's ``SupConLoss``, a batch of one class (no negative
    at all) is not 0: its anchors still have a denominator.

    Shapes: ``embeddings (B, D)``, ``labels (B,)`` integers -> a scalar.

    Parameters
    ----------
    embeddings : array_like, shape (B, D)
        One embedding per row.
    labels : array_like of int, shape (B,)
        The class of each row; rows of the same label are positives of each other.
    temperature : float, default 0.1
        The softmax temperature ``t > 0``: logits are cosines divided by it.

    Returns
    -------
    array, scalar
        The mean over the anchors with a positive.
    """
    temperature = _checks.check_temperature(temperature)
    x, dtype = _as_matrix("embeddings", embeddings)
    _checks.check_temperature_in(temperature, np.finfo(_compute_dtype(dtype)).tiny, dtype)
    labels = _as_labels(labels, x.shape[0])
    others = ~np.eye(x.shape[0], dtype=bool)
    positive = _positive_mask(labels)
    log_prob = _log_softmax(_unit_cosines(x, x), others, temperature)
    n_positive = positive.sum(axis=1)
    anchors = n_positive > 0
    losses = -np.where(positive, log_prob, 0.0).sum(axis=1)[anchors] / n_positive[anchors]
    return _softmax_loss(_mean(losses), dtype)
