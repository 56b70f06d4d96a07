"""The TensorFlow backend: the names and signatures of ``tripletlab.numpy``, on tensors.

The full contract of each function (formula, shapes, edge cases, worked numbers) is
in ``tripletlab.numpy``; the docstrings here add what is specific to TensorFlow.

Framework notes, for every function:

- Works eagerly and inside ``tf.function`` (also with ``jit_compile=True``).
  float32 in gives float32 out, float64 stays float64, float16/bfloat16 are computed
  in float32 and cast back; integer tensors and Python lists become float32.
- Gradients are finite everywhere: zero rows and identical rows get zero gradients
  where the function is not differentiable (``tf.norm`` at a zero vector gives a NaN
  gradient; nothing here takes a square root of 0).
- Inputs of different float dtypes are computed in the wider one (float16 with
  bfloat16: float32), as in the other backends; TensorFlow itself refuses mixed dtypes.
- Large and small norms do not overflow: rows are rescaled by a power of two (exact)
  before anything is squared.
- The NaN/inf checks (on inputs, and on a loss that a distance overflowing the dtype
  would make infinite) run only when executing eagerly.
- Labels may be any integer dtype, unsigned included (compared as int64). Inputs must
  have a known rank (inside ``tf.function``, give an ``input_signature`` with a shape).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from tripletlab import FRAMEWORK_NAMES, PUBLIC_NAMES, _blocks, _checks
from tripletlab import _tf_mining as _engine
from tripletlab._checks import COSINE_EPS

__all__ = list(PUBLIC_NAMES + FRAMEWORK_NAMES)  # the same names in every backend

_HALF = (tf.float16, tf.bfloat16)
_EXPONENT_BITS = {tf.float32: (tf.int32, 0x7F800000), tf.float64: (tf.int64, 0x7FF0000000000000)}


# --------------------------------------------------------------------------- checks


def _as_tensor(name: str, x) -> tf.Tensor:
    """``x`` as a tensor of known rank; a ValueError naming ``name`` if it cannot be one
    (ragged lists, objects whose ``__array__`` fails) or if its rank is unknown."""
    try:
        x = tf.convert_to_tensor(x)
    except (TypeError, ValueError) as error:
        raise _checks.not_an_array_error(name, x, error) from None
    if x.shape.rank is None:
        raise ValueError(
            f"{name} must have a known rank (number of axes); got a tensor of unknown rank "
            "(in a tf.function, give an input_signature with a shape such as [None, D])"
        )
    return x


def _as_float(name: str, x) -> tuple[tf.Tensor, tf.DType]:
    """``x`` as a float tensor to compute in, plus the dtype the result is returned in."""
    x = _as_tensor(name, x)
    real = x.dtype.is_floating or x.dtype.is_integer or x.dtype == tf.bool
    _checks.check_dtype_kind(name, "f" if real else "O", x.dtype)
    out_dtype = x.dtype if x.dtype.is_floating else tf.float32
    x = tf.cast(x, tf.float32 if out_dtype in _HALF else out_dtype)
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(x))):
        raise _checks.not_finite_error(name)
    return x, out_dtype


def _as_matrix(name: str, x) -> tuple[tf.Tensor, tf.DType]:
    x, dtype = _as_float(name, x)
    _checks.check_rank(name, tuple(x.shape), rank=2)
    _checks.check_features(name, tuple(x.shape))
    return x, dtype


def _as_labels(labels, batch: int | None = None) -> tf.Tensor:
    """Class ids as an integer tensor; ``batch``: the length they must have, if known.
    Unsigned ids become int64 (uint64 by reinterpreting its bits: distinct stay distinct)."""
    labels = _as_tensor("labels", labels)
    kind = _checks.dtype_kind(labels.dtype)
    _checks.check_labels("labels", tuple(labels.shape), kind, labels.dtype, batch)
    if labels.dtype == tf.uint64:
        return tf.bitcast(labels, tf.int64)
    if labels.dtype.is_unsigned or labels.dtype.is_floating:  # floats: only when empty
        return tf.cast(labels, tf.int64)
    return labels


def _promote(*dtypes: tf.DType) -> tuple[tf.DType, tf.DType]:
    """The result dtype of float inputs (the widest; float16 with bfloat16 is float32),
    and the dtype to compute in."""
    dtype = dtypes[0]
    for other in dtypes[1:]:
        if other.size > dtype.size:
            dtype = other
        elif other.size == dtype.size and other != dtype:  # float16 and bfloat16
            dtype = tf.float32
    return dtype, (tf.float32 if dtype in _HALF else dtype)


def _finite_loss(loss: tf.Tensor, dtype: tf.DType, names: str) -> tf.Tensor:
    """``loss`` in ``dtype``; when executing eagerly a ValueError if it is not finite (a
    distance overflowed the dtype: the inputs themselves are finite)."""
    loss = tf.cast(loss, dtype)
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(loss))):
        raise _checks.overflow_error(names, dtype.name)
    return loss


def _max_abs(x: tf.Tensor) -> tf.Tensor:
    """The largest ``|entry|`` of ``x``, 0 for an empty tensor (not ``reduce_max``'s -inf)."""
    return tf.maximum(tf.reduce_max(tf.abs(x)), tf.zeros([], x.dtype))


def _pair_of_matrices(x, y):
    same = y is x
    x, dtype = _as_matrix("x", x)
    if y is None or same:  # the very same tensor: the distances within one batch
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", tuple(x.shape), "y", tuple(y.shape))
    dtype, compute = _promote(dtype, y_dtype)
    return tf.cast(x, compute), tf.cast(y, compute), dtype


def _power_of_two_scale(max_abs: tf.Tensor) -> tf.Tensor:
    """A power of two ``s`` with ``s <= max_abs < 2 s`` (1 where ``max_abs`` is 0 or
    subnormal), with no gradient: the contract of every backend's ``_power_of_two_scale``
    (which for subnormals may give any power of two ``<= 1``).

    Keeps only the exponent bits of the float, so dividing by it is exact. The
    quantities below are homogeneous in the inputs, so a constant rescaling gives
    exact values and exact gradients while keeping squares away from overflow.
    """
    int_dtype, mask = _EXPONENT_BITS[max_abs.dtype]
    bits = tf.bitwise.bitwise_and(tf.bitcast(tf.stop_gradient(max_abs), int_dtype), mask)
    scale = tf.bitcast(bits, max_abs.dtype)
    return tf.where(scale > 0, scale, tf.ones_like(scale))


# --------------------------------------------------------------------------- distances


def _normalize(x: tf.Tensor, eps: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Unit rows of ``x`` (computing dtype) and the mask of rows with norm > eps."""
    scale = _power_of_two_scale(tf.reduce_max(tf.abs(x), axis=-1, keepdims=True))
    scaled = x / scale
    sq = tf.reduce_sum(scaled * scaled, axis=-1, keepdims=True)
    nonzero = tf.sqrt(sq) * scale > eps
    safe_norm = tf.sqrt(tf.where(nonzero, sq, tf.ones_like(sq)))
    unit = tf.where(nonzero, scaled / safe_norm, tf.zeros_like(scaled))
    return unit, tf.squeeze(nonzero, -1)


def _cosine(a: tf.Tensor, b: tf.Tensor, eps: float) -> tf.Tensor:
    """Row-wise cosine of validated tensors: the dot product of the unit rows, clipped."""
    dot = tf.reduce_sum(_normalize(a, eps)[0] * _normalize(b, eps)[0], axis=-1)
    return tf.clip_by_value(dot, -1.0, 1.0)


def l2_normalize(x, eps: float = 1e-12):
    """Rows scaled to unit L2 norm; rows with norm <= eps become zeros with zero gradient.

    See ``tripletlab.numpy.l2_normalize``. ``tf.math.l2_normalize`` puts its epsilon on
    the squared norm (``x * rsqrt(max(sum(x**2), eps))``); here eps bounds the norm.
    """
    eps = _checks.check_positive("eps", eps)
    x, dtype = _as_float("x", x)
    _checks.check_rank("x", tuple(x.shape), min_rank=1)
    _checks.check_features("x", tuple(x.shape))
    return tf.cast(_normalize(x, eps)[0], dtype)


def cosine_similarity(a, b, eps: float = COSINE_EPS):
    """Row-wise cosine over the last axis, broadcasting; see ``tripletlab.numpy``.

    ``tf.keras.losses.cosine_similarity`` returns ``-cos`` (a loss to minimise); this
    returns the similarity itself.
    """
    eps = _checks.check_positive("eps", eps)
    a, a_dtype = _as_float("a", a)
    b, b_dtype = _as_float("b", b)
    _checks.check_rank("a", tuple(a.shape), min_rank=1)
    _checks.check_rank("b", tuple(b.shape), min_rank=1)
    _checks.check_features("a", tuple(a.shape))
    _checks.check_broadcast("a", tuple(a.shape), "b", tuple(b.shape))
    dtype, compute = _promote(a_dtype, b_dtype)
    return tf.cast(_cosine(tf.cast(a, compute), tf.cast(b, compute), eps), dtype)


def cosine_distance(a, b, eps: float = COSINE_EPS):
    """``1 - cosine_similarity(a, b)``, in [0, 2]; see ``tripletlab.numpy``.

    Not ``tf.compat.v1.losses.cosine_distance``, which computes ``1 - sum(a * b)`` and
    is a cosine distance only for unit-norm inputs.
    """
    return 1.0 - cosine_similarity(a, b, eps)


def similarity_matrix(x, y=None):
    """``S[i, j] = cos(x_i, y_j)``, ``(B, D), (M, D) -> (B, M)``; see ``tripletlab.numpy``."""
    x, y, dtype = _pair_of_matrices(x, y)
    ux, _ = _normalize(x, COSINE_EPS)
    uy = ux if y is None else _normalize(y, COSINE_EPS)[0]
    return tf.cast(tf.clip_by_value(tf.matmul(ux, uy, transpose_b=True), -1.0, 1.0), dtype)


def _gram_squared_distances(x: tf.Tensor, y: tf.Tensor | None):
    """``(||x_i - y_j||^2, |x_i|^2, |y_j|^2)`` by the Gram form, clamped at 0."""
    gram = tf.matmul(x, x if y is None else y, transpose_b=True)
    x_sq = tf.linalg.diag_part(gram) if y is None else tf.reduce_sum(x * x, axis=1)
    y_sq = x_sq if y is None else tf.reduce_sum(y * y, axis=1)
    return tf.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * gram, 0.0), x_sq, y_sq


@tf.custom_gradient
def _scaled_sqrt(sq: tf.Tensor, scale: tf.Tensor):
    """``sqrt(sq) * scale`` for ``sq >= 0``, with gradient 0 (not inf, not NaN) where ``sq == 0``.

    One pass forward and one backward over the ``(B, M)`` matrix; the composition of
    ``where``, ``sqrt`` and ``where`` that does the same through autodiff costs four.
    """
    dist = tf.sqrt(sq) * scale

    def grad(upstream):
        # d(s sqrt(q))/dq = s^2 / (2 d), evaluated as (g s / d) (s / 2) so that s^2 (up to
        # 2^254 for huge inputs) is never formed; defined as 0 where d == 0
        grad_sq = upstream * scale / dist * (scale / 2)
        return tf.where(dist > 0, grad_sq, tf.zeros_like(grad_sq)), tf.zeros_like(scale)

    return dist, grad


def _l1_distances(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``sum_k |x_ik - y_jk|`` by broadcasting, ``(B, D), (M, D) -> (B, M)``."""
    return tf.reduce_sum(tf.abs(x[:, None, :] - y[None, :, :]), axis=-1)


def pairwise_distances(x, y=None, metric: str = "euclidean"):
    """All distances between rows, ``(B, D), (M, D) -> (B, M)``; see ``tripletlab.numpy``.

    ``l1`` broadcasts a ``(B, M, D)`` difference tensor (TensorFlow has no ``cdist``).
    """
    _checks.check_metric(metric)
    x, y, dtype = _pair_of_matrices(x, y)
    # With y None the diagonal is already exactly 0 in every metric: the Gram form gives
    # (n_i + n_i) - 2 n_i = 0, and a row minus itself is 0.
    return tf.cast(_distances(x, y, metric), dtype)


def _scaled_squared_l2(x: tf.Tensor, y: tf.Tensor | None):
    """``(q, s)`` with ``||x_i - y_j||^2 = q_ij s^2``: the Gram form on rows divided by a
    power of two ``s`` (exact), so that nothing overflows before the square root."""
    max_abs = _max_abs(x)
    if y is not None:
        max_abs = tf.maximum(max_abs, _max_abs(y))
    scale = _power_of_two_scale(max_abs)
    sq, _, _ = _gram_squared_distances(x / scale, None if y is None else y / scale)
    return sq, scale


def _distances(x: tf.Tensor, y: tf.Tensor | None, metric: str) -> tf.Tensor:
    """``pairwise_distances`` of validated tensors in the computing dtype."""
    if metric == "l1":
        return _l1_distances(x, x if y is None else y)
    if metric == "cosine":
        ux, _ = _normalize(x, COSINE_EPS)
        uy = None if y is None else _normalize(y, COSINE_EPS)[0]
        sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
        x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
        one_zero = tf.where(x_zero & y_zero, tf.zeros_like(sq), tf.ones_like(sq))
        return tf.minimum(tf.where(x_zero | y_zero, one_zero, sq / 2.0), 2.0)
    sq, scale = _scaled_squared_l2(x, y)
    return _scaled_sqrt(sq, scale) if metric == "euclidean" else sq * scale * scale


def _ranked_distances(x: tf.Tensor, metric: str):
    """``(key, to_distance)``: a ``(B, B)`` matrix that orders the pairs as the distance
    does, and the map from its entries to distances. For the L2 metrics the key is the
    scaled squared distance, so that mining that only selects entries takes the square
    root of the selected ones only."""
    if metric == "euclidean":
        sq, scale = _scaled_squared_l2(x, None)
        return sq, lambda v: _scaled_sqrt(v, scale)
    if metric == "sqeuclidean":
        sq, scale = _scaled_squared_l2(x, None)
        return sq, lambda v: v * scale * scale
    return _distances(x, None, metric), lambda v: v


# --------------------------------------------------------------------------- losses


def _reduce(losses: tf.Tensor, reduction: str) -> tf.Tensor:
    if reduction == "mean":  # the mean of no loss is 0, not NaN
        return tf.reduce_sum(losses) / tf.cast(tf.maximum(tf.size(losses), 1), losses.dtype)
    return tf.reduce_sum(losses) if reduction == "sum" else losses


def _row_distances(a: tf.Tensor, b: tf.Tensor, metric: str) -> tf.Tensor:
    """``d(a_i, b_i)`` row by row, ``(B, D), (B, D) -> (B,)``; see ``tripletlab.numpy``."""
    if metric == "cosine":
        return 1.0 - _cosine(a, b, COSINE_EPS)
    if metric == "l1":
        return tf.reduce_sum(tf.abs(a - b), axis=-1)
    scale = _power_of_two_scale(tf.maximum(_max_abs(a), _max_abs(b)))
    diff = a / scale - b / scale
    sq = tf.reduce_sum(diff * diff, axis=-1)
    if metric == "half_sqeuclidean":  # the contrastive loss's D^2 / 2, halved before scaling
        return sq * 0.5 * scale * scale
    return _scaled_sqrt(sq, scale) if metric == "euclidean" else sq * scale * scale


def triplet_loss(
    anchor, positive, negative, margin: float = 0.2, metric: str = "sqeuclidean", reduction="mean"
):
    """``max(d(a, p) - d(a, n) + margin, 0)`` per row; see ``tripletlab.numpy.triplet_loss``."""
    margin = _checks.check_margin(margin)
    _checks.check_metric(metric)
    _checks.check_reduction(reduction)
    a, a_dtype = _as_matrix("anchor", anchor)
    p, p_dtype = _as_matrix("positive", positive)
    n, n_dtype = _as_matrix("negative", negative)
    _checks.check_same_shape(
        ("anchor", "positive", "negative"), (tuple(a.shape), tuple(p.shape), tuple(n.shape))
    )
    dtype, compute = _promote(a_dtype, p_dtype, n_dtype)
    a, p, n = (tf.cast(v, compute) for v in (a, p, n))
    losses = tf.nn.relu(_row_distances(a, p, metric) - _row_distances(a, n, metric) + margin)
    return _finite_loss(_reduce(losses, reduction), dtype, "anchor, positive, negative")


def _as_scores(scores) -> tuple[tf.Tensor, tf.DType]:
    scores, dtype = _as_float("scores", scores)
    _checks.check_rank("scores", tuple(scores.shape), rank=2)
    _checks.check_square("scores", tuple(scores.shape))
    return scores, dtype


def _off_diagonal(scores: tf.Tensor) -> tf.Tensor:
    return ~tf.eye(tf.shape(scores)[0], dtype=tf.bool)


def _mean_negative(scores: tf.Tensor) -> tf.Tensor:
    total = tf.reduce_sum(tf.where(_off_diagonal(scores), scores, tf.zeros_like(scores)), axis=1)
    return total / (tf.cast(tf.shape(scores)[0], scores.dtype) - 1.0)


def _closest_negative(scores: tf.Tensor) -> tf.Tensor:
    candidate = _off_diagonal(scores) & (scores <= tf.linalg.diag_part(scores)[:, None])
    minus_infinity = tf.fill(tf.shape(scores), tf.constant(-float("inf"), scores.dtype))
    return tf.reduce_max(tf.where(candidate, scores, minus_infinity), axis=1)


def mean_negative(scores):
    """Per row, the mean off-diagonal score, ``(B, B) -> (B,)``; see ``tripletlab.numpy``."""
    scores, dtype = _as_scores(scores)
    return tf.cast(_mean_negative(scores), dtype)


def closest_negative(scores):
    """Per row, the largest off-diagonal score ``<= scores[i, i]``, else ``-inf``.

    ``(B, B) -> (B,)``; see ``tripletlab.numpy.closest_negative``.
    """
    scores, dtype = _as_scores(scores)
    return tf.cast(_closest_negative(scores), dtype)


def modified_triplet_loss(scores, margin: float = 0.25, reduction: str = "sum"):
    """Mean-negative + closest-negative loss on a ``(B, B)`` similarity matrix.

    See ``tripletlab.numpy.modified_triplet_loss``: a row with no off-diagonal score
    ``<= s_ap`` has no closest negative and contributes its mean-negative term only.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    scores, dtype = _as_scores(scores)
    s_ap = tf.linalg.diag_part(scores)
    loss_mean = tf.nn.relu(_mean_negative(scores) - s_ap + margin)  # L1
    loss_closest = tf.nn.relu(_closest_negative(scores) - s_ap + margin)  # L2, 0 at -inf
    return tf.cast(_reduce(loss_mean + loss_closest, reduction), dtype)


def contrastive_loss(x1, x2, same, margin: float = 1.0, reduction: str = "mean"):
    """Hadsell et al. (2006) contrastive loss, ``same = 1`` for the same class.

    See ``tripletlab.numpy.contrastive_loss`` (the paper writes ``Y = 0`` for similar
    pairs). The gradient at ``D = 0`` is finite for both kinds of pair.
    """
    margin = _checks.check_margin(margin)
    _checks.check_reduction(reduction)
    x1, x1_dtype = _as_matrix("x1", x1)
    x2, x2_dtype = _as_matrix("x2", x2)
    _checks.check_same_shape(("x1", "x2"), (tuple(x1.shape), tuple(x2.shape)))
    dtype, compute = _promote(x1_dtype, x2_dtype)
    x1, x2 = tf.cast(x1, compute), tf.cast(x2, compute)
    same, _ = _as_float("same", same)
    _checks.check_rank("same", tuple(same.shape), rank=1, what=_checks.SAME_VECTOR)
    _checks.check_same_shape(("same", "rows of x1"), (tuple(same.shape), tuple(x1.shape[:1])))
    if tf.executing_eagerly() and not bool(tf.reduce_all((same == 0) | (same == 1))):
        raise _checks.not_binary_error("same")
    dist = _row_distances(x1, x2, "euclidean")
    pull = _row_distances(x1, x2, "half_sqeuclidean")
    # each pair its own branch: never 0 * inf for a dissimilar pair far away
    losses = tf.where(same == 1, pull, 0.5 * tf.nn.relu(margin - dist) ** 2)
    return _finite_loss(_reduce(losses, reduction), dtype, "x1, x2")


# --------------------------------------------------------------------------- mining


def _positive_mask(labels: tf.Tensor) -> tf.Tensor:
    """``(B, B)``: True where ``a != p`` and ``label(a) == label(p)``."""
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    return tf.equal(labels[:, None], labels[None, :]) & ~eye


def _negative_mask(labels: tf.Tensor) -> tf.Tensor:
    """``(B, B)``: True where ``label(a) != label(n)``."""
    return tf.not_equal(labels[:, None], labels[None, :])


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


def _sum_unit(x: tf.Tensor, metric: str) -> tf.Tensor:
    """1 for the cosine metric (distances in [0, 2]), else a power of two near ``max|x|``:
    the unit the mining losses are summed in, so that sums of many large distances stay
    finite."""
    if metric == "cosine":
        return tf.ones([], x.dtype)
    return _power_of_two_scale(_max_abs(x))


# Each strategy is a ``Mining`` of ``select`` (what it picks, without gradient) and
# ``loss_of`` (how its loss reads off the picked distances); ``tripletlab._tf_mining``
# runs them, in one compiled kernel per block of anchors. The same object is returned for
# the same arguments (``lru_cache``): the engine keeps its compiled kernels per Mining.


@functools.lru_cache(maxsize=64)
def _batch_all_mining(margin: float) -> _engine.Mining:
    def select(dist, members, is_positive, negative):
        return None, _engine.active_triplet_weights(dist, members, is_positive, negative, margin)

    def loss_of(dist, chosen, unit):
        weights, n_active = chosen
        return tf.reduce_sum(weights * dist), n_active

    return _engine.Mining(select, loss_of, on_distances=True)


def batch_all_triplet_loss(embeddings, labels, margin: float = 0.2, metric: str = "euclidean"):
    """Mean loss over the valid triplets with a positive loss, and their fraction.

    See ``tripletlab.numpy.batch_all_triplet_loss``; like ``tripletlab.torch``, no
    ``(B, B, B)`` tensor: the loss is ``(sum (c_ap - c_an) * D + margin * N) / N`` with
    counts ``c`` of active triplets, and its gradient is exactly the triplet cube's. The
    counts come from comparing every negative with the anchor's ``m`` positive thresholds
    (``m``: the largest class), fused by XLA, ``O(B^2 m)``; see ``tripletlab._tf_mining``
    (which also says when it sorts instead). Above ``tripletlab._blocks.WHOLE_MATRIX_ROWS``
    rows the anchors are taken in blocks, in ``O(B)`` memory per anchor row.
    """
    margin = _checks.check_margin(margin)
    mining = _batch_all_mining(margin)
    total, n_active, members, dtype, unit = _engine.mine(embeddings, labels, metric, mining)
    if members is None:  # no row
        return tf.cast(total, dtype), tf.cast(tf.stop_gradient(total), dtype)
    _, is_positive, n_negatives = members
    n_positives = tf.reduce_sum(tf.cast(is_positive, tf.int64), axis=1)
    n_valid = tf.cast(tf.reduce_sum(n_positives * tf.cast(n_negatives, tf.int64)), total.dtype)
    n_active = tf.cast(n_active, total.dtype)
    loss = _engine.batch_all_mean(total, n_active, margin, unit)
    fraction = n_active / tf.maximum(n_valid, 1.0)
    return _finite_loss(loss, dtype, "embeddings"), tf.cast(fraction, dtype)


def _first(values: tf.Tensor, best: tf.Tensor) -> tf.Tensor:
    """Per row, the lowest column where ``values == best`` (int32); 0 where none."""
    column = tf.range(tf.shape(values)[1])[None, :]
    first = tf.reduce_min(tf.where(values == best, column, tf.shape(values)[1]), axis=1)
    return tf.minimum(first, tf.maximum(tf.shape(values)[1] - 1, 0))


@functools.lru_cache(maxsize=64)
def _batch_hard_mining(margin: float, soft: bool) -> _engine.Mining:
    def select(key, members, is_positive, negative):
        positive_key = tf.where(is_positive, tf.gather(key, members, batch_dims=1), -1.0)
        negative_key = tf.where(negative, key, float("inf"))  # keys are >= 0
        slot = _first(positive_key, tf.reduce_max(positive_key, axis=1, keepdims=True))
        closest = _first(negative_key, tf.reduce_min(negative_key, axis=1, keepdims=True))
        valid = tf.reduce_any(is_positive, axis=1) & tf.reduce_any(negative, axis=1)
        hardest = tf.gather(members, slot[:, None], batch_dims=1)
        return tf.concat([hardest, closest[:, None]], axis=1), valid

    def loss_of(dist, valid, unit):
        gap = tf.where(valid, dist[:, 0] - dist[:, 1], tf.zeros_like(dist[:, 0]))
        if soft:
            losses = tf.nn.softplus(gap * unit) / unit
        else:
            losses = tf.nn.relu(gap + margin / unit)
        counted = tf.where(valid, losses, tf.zeros_like(losses))
        return tf.reduce_sum(counted), tf.reduce_sum(tf.cast(valid, tf.int64))

    return _engine.Mining(select, loss_of)


def batch_hard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean", soft: bool = False
):
    """Hardest positive and hardest negative per anchor; see ``tripletlab.numpy``.

    The hardest examples are chosen without gradient (of tied examples the lowest index,
    as in PyTorch) and only the ``2B`` chosen distances carry a gradient; for the L2
    metrics the square root is taken of those ``2B`` entries only, and their gradient
    reaches the rows through the chosen pairs alone (no second ``B x B`` product). Above
    ``tripletlab._blocks.WHOLE_MATRIX_ROWS`` rows the anchors are taken in blocks.
    """
    margin = _checks.check_margin(margin)
    soft = _checks.check_bool("soft", soft)
    mining = _batch_hard_mining(margin, soft)
    total, n_valid, _, dtype, unit = _engine.mine(embeddings, labels, metric, mining)
    loss = total / tf.maximum(tf.cast(n_valid, total.dtype), 1.0) * unit
    return _finite_loss(loss, dtype, "embeddings")


@functools.lru_cache(maxsize=64)
def _semihard_mining(margin: float, metric: str) -> _engine.Mining:
    def loss_of(dist, pairs, unit):
        d_ap, d_an = tf.split(dist, 2, axis=1)
        losses = tf.nn.relu(d_ap - d_an + margin / unit)
        counted = tf.where(pairs, losses, tf.zeros_like(losses))
        return tf.reduce_sum(counted), tf.reduce_sum(tf.cast(pairs, tf.int64))

    return _engine.Mining(_engine.semihard_columns, loss_of, on_distances=metric == "euclidean")


def batch_semihard_triplet_loss(
    embeddings, labels, margin: float = 0.2, metric: str = "euclidean"
):
    """Semi-hard negative per (anchor, positive) pair; see ``tripletlab.numpy``.

    No ``(B, B, B)`` tensor and no sort of the ``(B, B)`` matrix: for each of the
    anchor's ``m`` positives, the nearest negative beyond it, by comparisons fused by XLA
    (``O(B^2 m)``; see ``tripletlab._tf_mining``). Ties keep the lowest index (the highest
    for the fallback to the farthest negative), as a stable sort of the negatives does,
    in both frameworks. "Farther" compares the distances themselves (for the euclidean
    metric not the squared ones, which can differ where the roots are equal). Only the
    chosen distances carry a gradient. Above ``tripletlab._blocks.WHOLE_MATRIX_ROWS``
    rows the anchors are taken in blocks.
    """
    margin = _checks.check_margin(margin)
    _checks.check_metric(metric)
    mining = _semihard_mining(margin, metric)
    total, n_pairs, _, dtype, unit = _engine.mine(embeddings, labels, metric, mining)
    loss = total / tf.maximum(tf.cast(n_pairs, total.dtype), 1.0) * unit
    return _finite_loss(loss, dtype, "embeddings")


# --------------------------------------------------------------------------- softmax losses


def _row_blocks(batch: int | None) -> list[slice]:
    """The blocks of rows the logits are taken in: one (every row) up to
    ``tripletlab._blocks.WHOLE_MATRIX_ROWS`` rows or when the batch size is unknown (a
    ``tf.function`` traced for ``[None, D]``), else blocks of about ``BLOCK_ENTRIES``
    logits (the sizes of the mining losses), so that memory grows as B, not B^2."""
    if batch is None or batch <= _blocks.WHOLE_MATRIX_ROWS:
        return [slice(0, batch)]
    step = max(1, _blocks.BLOCK_ENTRIES // batch)
    return [slice(s, min(s + step, batch)) for s in range(0, batch, step)]


def _block_diagonal(block: tf.Tensor, rows: slice, value) -> tf.Tensor:
    """``block`` (rows ``rows`` of a square matrix) with its entries ``(i, i)`` set to
    ``value``."""
    length = tf.minimum(tf.shape(block)[0], tf.shape(block)[1] - rows.start)
    return tf.linalg.set_diag(block, tf.fill([length], tf.cast(value, block.dtype)), k=rows.start)


def _leave_out_diagonal(cos: tf.Tensor, rows: slice) -> tf.Tensor:
    """The anchor is not in its own denominator: entries ``(i, i)`` at ``-inf``."""
    return _block_diagonal(cos, rows, -float("inf"))


def _leave_out_same_label(labels: tf.Tensor):
    """Entries ``(i, j)``, ``j != i``, of the same label at ``-inf`` (in-batch false
    negatives leave the denominator)."""

    def leave_out(cos: tf.Tensor, rows: slice) -> tf.Tensor:
        same = tf.equal(labels[rows, None], labels[None, :])
        same = _block_diagonal(same, rows, False)
        return tf.where(same, tf.constant(-float("inf"), cos.dtype), cos)

    return leave_out


def _no_leave_out(cos: tf.Tensor, rows: slice) -> tf.Tensor:
    """Every entry stays in the denominator."""
    return cos


def _softmax_rows(a: tf.Tensor, b: tf.Tensor, temperature: float, leave_out) -> tf.Tensor:
    """``(B, 2)``: per row of ``a``, ``top_i`` and ``log_z_i``; see
    ``tripletlab.torch._SoftmaxRows``, of which this is the ``tf.custom_gradient``
    counterpart: the logits ``l_ij = a_i . b_j / t`` over the entries ``leave_out`` keeps,
    a shift ``top_i`` (``1 / t``, or the row's largest logit for small ``t``; its gradient
    is not used) and ``log_z_i = log sum_j exp(l_ij - top_i)``. Blocks of rows
    (``_row_blocks``) in forward, recomputed in backward; the shift (and in backward the
    incoming gradient, when it is ``>= 0``) inside the matrix product; when the whole
    matrix is one block, backward scales the forward's ``exp(l - top)`` instead."""
    blocks = _row_blocks(a.shape[0])
    t = temperature
    fixed = 2.0 / t < -np.log(_smallest_normal(a.dtype)) - 8.0  # see tripletlab.torch

    def shifted_logits(a_rows, b_one, shift):
        """``a_i . b_j / t - shift_i`` in one product: ``[a_i / t, -shift_i] . [b_j, 1]``."""
        shift = tf.broadcast_to(shift, tf.shape(a_rows)[:1])
        return tf.matmul(tf.concat([a_rows / t, -shift[:, None]], 1), b_one, transpose_b=True)

    @tf.custom_gradient
    def run(a, b):
        # constants inside: an eager tape would otherwise keep every block for its own
        # backward, the B^2 memory this function exists to avoid
        a, b = tf.stop_gradient(a), tf.stop_gradient(b)
        b_one = tf.concat([b, tf.ones_like(b[:, :1])], axis=1)
        parts = []
        for rows in blocks:
            if fixed:
                shift = tf.fill(tf.shape(a[rows])[:1], tf.constant(1.0 / t, a.dtype))
                logits = leave_out(shifted_logits(a[rows], b_one, shift), rows)
            else:
                logits = leave_out(tf.matmul(a[rows] / t, b, transpose_b=True), rows)
                shift = tf.reduce_max(logits, axis=1)
                shift = tf.where(tf.math.is_finite(shift), shift, tf.zeros_like(shift))
                logits = logits - shift[:, None]
            weights = tf.exp(logits)
            log_z = tf.math.log(tf.reduce_sum(weights, axis=1))
            parts.append(tf.stack([shift, log_z], axis=1))
        out = tf.concat(parts, axis=0)
        kept = weights if len(blocks) == 1 else None  # the whole matrix: not recomputed

        def grad(upstream):
            top, log_z, g = out[:, 0], out[:, 1], upstream[:, 1]
            live = tf.math.is_finite(log_z) & tf.not_equal(g, 0)
            if kept is not None:  # p g / t = exp(l - top) g exp(-log_z) / t
                factor = tf.where(live, g / t * tf.exp(-log_z), tf.zeros_like(g))
                grad_l = kept * factor[:, None]
                return tf.matmul(grad_l, b), tf.matmul(grad_l, a, transpose_a=True)
            # p_ij g_i / t = exp(l_ij - shift_i) with g folded in where g > 0 (see torch)
            fold = tf.reduce_all(tf.logical_or(~live, g > 0))
            safe_g = tf.where(live, tf.abs(g) / t, tf.ones_like(g))
            shift = top + log_z - tf.where(fold, tf.math.log(safe_g), tf.zeros_like(g))
            far = tf.fill(tf.shape(shift), tf.constant(a.dtype.max / 4, a.dtype))
            shift = tf.where(live, shift, far)
            factor = tf.where(fold | ~live, tf.ones_like(g), g / t)
            grad_a, grad_b = [], tf.zeros_like(b)
            for rows in blocks:
                grad_l = tf.exp(leave_out(shifted_logits(a[rows], b_one, shift[rows]), rows))
                grad_l = grad_l * factor[rows, None]
                grad_a.append(tf.matmul(grad_l, b))
                grad_b += tf.matmul(grad_l, a[rows], transpose_a=True)
            return tf.concat(grad_a, axis=0), grad_b

        return out, grad

    return run(a, b)


def _smallest_normal(dtype: tf.DType) -> float:
    return float(np.finfo(dtype.as_numpy_dtype).tiny)


def _softmax_loss(loss: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """``loss`` in ``dtype``; when executing eagerly a ValueError naming the temperature if
    it is not finite there (a loss reaches ``2 / temperature``)."""
    loss = tf.cast(loss, dtype)
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(loss))):
        raise _checks.temperature_overflow_error(dtype.name)
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

    As in ``tripletlab.torch``: per pair ``top_i - l_ii + log_z_i`` (logits ``l = c /
    t``), with the shift ``top_i`` and ``log_z_i`` from a ``tf.custom_gradient`` over
    blocks of rows (the whole matrix up to 4096 rows or when the batch size is unknown
    while tracing, then blocks of about ``2**24`` logits) that recomputes each block in
    backward. The cosines are those of the unit rows, not clipped to [-1, 1].
    """
    temperature = _checks.check_temperature(temperature)
    symmetric = _checks.check_bool("symmetric", symmetric)
    _checks.check_reduction(reduction)
    q, q_dtype = _as_matrix("queries", queries)
    k, k_dtype = _as_matrix("keys", keys)
    _checks.check_same_shape(("queries", "keys"), (tuple(q.shape), tuple(k.shape)))
    dtype, compute = _promote(q_dtype, k_dtype)
    _checks.check_temperature_in(temperature, _smallest_normal(compute), compute.name)
    q = _normalize(tf.cast(q, compute), COSINE_EPS)[0]
    k = _normalize(tf.cast(k, compute), COSINE_EPS)[0]
    leave_out = _no_leave_out
    if labels is not None:
        leave_out = _leave_out_same_label(_as_labels(labels, q.shape[0]))
    positive = tf.reduce_sum(q * k, axis=1)
    out = _softmax_rows(q, k, temperature, leave_out)
    losses = (tf.stop_gradient(out[:, 0]) - positive / temperature) + out[:, 1]
    if symmetric:
        out = _softmax_rows(k, q, temperature, leave_out)
        losses = (losses + (tf.stop_gradient(out[:, 0]) - positive / temperature) + out[:, 1]) / 2
    return _softmax_loss(_reduce(losses, reduction), dtype)


def supervised_contrastive_loss(embeddings, labels, temperature: float = 0.1):
    """Khosla et al. (2020) ``L_out``, NT-Xent for two views; see
    ``tripletlab.numpy.supervised_contrastive_loss``.

    As in ``tripletlab.torch``: per anchor ``top_i - mean_p l_ip + log_z_i`` (logits ``l =
    c / t``), the log-sum-exp over the other rows from a ``tf.custom_gradient`` over
    blocks of anchors (recomputed in backward), the positives' sum from the class sums of
    the unit rows (``unsorted_segment_sum``, no ``(B, B)`` mask). The whole matrix is one
    block up to 4096 rows or when the batch size is unknown while tracing. No anchor with
    a positive: 0, connected, with zero gradient.
    """
    temperature = _checks.check_temperature(temperature)
    x, dtype = _as_matrix("embeddings", embeddings)
    labels = _as_labels(labels, x.shape[0])
    dtype, compute = _promote(dtype)
    _checks.check_temperature_in(temperature, _smallest_normal(compute), compute.name)
    units = _normalize(tf.cast(x, compute), COSINE_EPS)[0]
    classes, inverse = tf.unique(labels)
    n_classes = tf.size(classes)
    class_sums = tf.math.unsorted_segment_sum(units, inverse, n_classes)
    class_sizes = tf.math.unsorted_segment_sum(tf.ones_like(inverse), inverse, n_classes)
    n_positive = tf.cast(tf.gather(class_sizes, inverse) - 1, compute)
    anchors = n_positive > 0
    positive_sum = tf.reduce_sum(units * (tf.gather(class_sums, inverse) - units), axis=1)
    out = _softmax_rows(units, units, temperature, _leave_out_diagonal)
    mean_positive = positive_sum / tf.maximum(n_positive, 1.0)
    losses = (tf.stop_gradient(out[:, 0]) - mean_positive / temperature) + out[:, 1]
    losses = tf.where(anchors, losses, tf.zeros_like(losses))
    count = tf.maximum(tf.reduce_sum(tf.cast(anchors, compute)), 1.0)
    return _softmax_loss(tf.reduce_sum(losses) / count, dtype)


# --------------------------------------------------------------------------- siamese head


@keras.saving.register_keras_serializable(package="tripletlab")
class SiameseHead(keras.layers.Layer):
    """Koch, Zemel and Salakhutdinov (2015): is a pair of embeddings of the same class?

    ``logit = w . |e1 - e2| + b`` (a learned, weighted L1 distance), and
    ``p(same) = sigmoid(logit)``. Called on ``[e1, e2]``, ``(B, D), (B, D) -> (B,)``
    logits; train with ``keras.losses.BinaryCrossentropy(from_logits=True)`` on
    ``same`` (1 for the same class). ``embedding_dim``: ``D``, as in PyTorch; None (the
    Keras way) reads it from the first call. Notebook: 04_siamese_losses.
    """

    def __init__(self, embedding_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if embedding_dim is not None:
            embedding_dim = _checks.check_int("embedding_dim", embedding_dim, minimum=1)
        self.embedding_dim = embedding_dim
        self.dense = keras.layers.Dense(1, dtype=self.dtype_policy)
        if embedding_dim is not None:
            self.build([(None, embedding_dim), (None, embedding_dim)])

    def get_config(self) -> dict:
        return super().get_config() | {"embedding_dim": self.embedding_dim}

    def build(self, input_shape):
        self.dense.build(input_shape[0])

    def call(self, inputs):
        e1, e2 = inputs
        return tf.squeeze(self.dense(tf.abs(e1 - e2)), axis=-1)
