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
- Large and small norms do not overflow: rows are rescaled by a power of two (exact)
  before anything is squared.
- The NaN/inf check on inputs runs only when executing eagerly.
"""

from __future__ import annotations

import tensorflow as tf

from tripletlab import _checks
from tripletlab._checks import COSINE_EPS

__all__ = [
    "l2_normalize",
    "cosine_similarity",
    "cosine_distance",
    "similarity_matrix",
    "pairwise_distances",
]

_HALF = (tf.float16, tf.bfloat16)
_EXPONENT_BITS = {tf.float32: (tf.int32, 0x7F800000), tf.float64: (tf.int64, 0x7FF0000000000000)}


# --------------------------------------------------------------------------- checks


def _as_float(name: str, x) -> tuple[tf.Tensor, tf.DType]:
    """``x`` as a float tensor to compute in, plus the dtype the result is returned in."""
    x = tf.convert_to_tensor(x)
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


def _promote(a_dtype: tf.DType, b_dtype: tf.DType) -> tuple[tf.DType, tf.DType]:
    """The result dtype of two float inputs (the wider one), and the dtype to compute in."""
    dtype = a_dtype if a_dtype.size >= b_dtype.size else b_dtype
    return dtype, (tf.float32 if dtype in _HALF else dtype)


def _pair_of_matrices(x, y):
    x, dtype = _as_matrix("x", x)
    if y is None:
        return x, None, dtype
    y, y_dtype = _as_matrix("y", y)
    _checks.check_same_features("x", tuple(x.shape), "y", tuple(y.shape))
    dtype, compute = _promote(dtype, y_dtype)
    return tf.cast(x, compute), tf.cast(y, compute), dtype


def _power_of_two_scale(max_abs: tf.Tensor) -> tf.Tensor:
    """A power of two <= ``max_abs`` (1 where it is 0 or subnormal), with no gradient.

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
    ua, _ = _normalize(tf.cast(a, compute), eps)
    ub, _ = _normalize(tf.cast(b, compute), eps)
    cos = tf.clip_by_value(tf.reduce_sum(ua * ub, axis=-1), -1.0, 1.0)
    return tf.cast(cos, dtype)


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
    if metric == "l1":
        dist = _l1_distances(x, x if y is None else y)
    elif metric == "cosine":
        ux, _ = _normalize(x, COSINE_EPS)
        uy = None if y is None else _normalize(y, COSINE_EPS)[0]
        sq, ux_sq, uy_sq = _gram_squared_distances(ux, uy)
        x_zero, y_zero = ux_sq[:, None] == 0, uy_sq[None, :] == 0
        one_zero = tf.where(x_zero & y_zero, tf.zeros_like(sq), tf.ones_like(sq))
        dist = tf.minimum(tf.where(x_zero | y_zero, one_zero, sq / 2.0), 2.0)
    else:
        max_abs = tf.reduce_max(tf.abs(x))
        if y is not None:
            max_abs = tf.maximum(max_abs, tf.reduce_max(tf.abs(y)))
        scale = _power_of_two_scale(max_abs)
        sq, _, _ = _gram_squared_distances(x / scale, None if y is None else y / scale)
        dist = _scaled_sqrt(sq, scale) if metric == "euclidean" else sq * scale * scale
    # With y None the diagonal is already exactly 0 in every metric: the Gram form gives
    # (n_i + n_i) - 2 n_i = 0, and a row minus itself is 0.
    return tf.cast(dist, dtype)
