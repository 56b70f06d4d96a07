"""The TensorFlow mining engine: how ``tripletlab.tensorflow`` runs its batch-all,
batch-hard and semi-hard losses fast and in ``O(B)`` memory per anchor row. It is the
translation of ``tripletlab._torch_mining``; a design note first.

**The seam.** ``tripletlab.tensorflow`` says what each strategy is: a ``Mining`` of
``select(key, members, is_positive, negative) -> (columns, chosen)``, which picks without
gradient the distances the loss uses (``columns`` ``(R, k)``, or None for whole rows),
and ``loss_of(distances / unit, chosen, unit) -> (value / unit, counts)``, which reads
the loss off the picked distances. ``mine`` validates the batch and runs the two on every
anchor; nothing here knows which strategy it runs. ``key`` ranks the pairs as the
distance does (for the L2 metrics the squared distance of the rows divided by a power of
two), or is the distance itself where ``Mining.on_distances``. Losses are summed in
units of ``unit`` (a power of two near ``max|x|``, exact).

**One compiled kernel per block.** TensorFlow runs each operation as its own pass over
memory; mining is a dozen elementwise passes over ``(B, B)`` around one matrix product,
so ``block_terms`` (the distances of a block of anchor rows, ``select``, ``loss_of`` and
the gradient) runs as one XLA kernel (``tf.function(jit_compile=True)``), which fuses
those passes into a few loops. XLA is part of TensorFlow: no compiler is needed at run
time. The kernel is compiled once per shape ``(R, B, m)`` of its inputs, on the first
call with that shape (about 1 s on 2 cores; a fixed batch size pays it once).

**Counting without sorting.** Each anchor has ``m`` class members (``class_members``:
``m`` is the size of the largest class, known only from the labels; the kernel is
compiled for it). The hinge of ``(a, p, n)`` is active exactly when ``D[a, n] < t_p``
(``hinge_thresholds``), so ``c_an`` (active triplets of the pair ``(a, n)``) and ``c_ap``
are the two sums of the ``(R, B, m)`` comparisons ``D[a, n] < t_p``, which XLA fuses into
loops over the block without storing them: ``O(B^2 m)`` time, exact, no sort
(``active_triplet_weights``). Semi-hard takes, for every pair ``(a, p)``, the minimum
of the negatives beyond ``D[a, p]`` over the same ``(R, m, B)`` comparisons
(``semihard_columns``). Above ``MANY_POSITIVES`` members, and inside a caller's own
``jit_compile=True`` function (where ``m`` cannot depend on the data and would be ``B``),
batch-all and semi-hard fall back to sorting each anchor's ``B`` distances
(``sorted_batch_all``, ``sorted_semihard``; the whole matrix, ``O(B^2 log B)``).

**Blocks and the closed-form gradient.** Up to ``tripletlab._blocks.WHOLE_MATRIX_ROWS``
rows one block holds every anchor; above, blocks of about
``tripletlab._blocks.BLOCK_ENTRIES`` distances, in a ``tf.while_loop``. The norms of a
block cannot all come from its own Gram diagonal, so there identical rows (``UniqueV2``)
are set to distance exactly 0, as the whole matrix gives them. ``mined_sum`` is a
``tf.custom_gradient`` whose forward computes each block's value *and* its gradient, so
that one block of distances exists at a time; backward only scales the summed gradient.
The gradient is computed only where a tape could record it (else on demand in
backward). For the L2 metrics the gradient with respect to the picked distances is
carried to the rows in closed form: through the Gram product (``gram_vjp``, two matrix
products) where whole rows are picked (batch-all), through the picked pairs' differences
(``pair_vjp``, ``O(B k D)``, no ``B x B`` product) where ``k`` columns are picked per
anchor. The other metrics differentiate the block's distances with autodiff.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf
from tensorflow.python.eager import record
from tensorflow.python.ops import control_flow_util

from tripletlab import _blocks, _checks
from tripletlab import tensorflow as _tl
from tripletlab._checks import COSINE_EPS

_L2 = ("euclidean", "sqeuclidean")
# Up to this many members per anchor, batch-all and semi-hard compare every negative with
# every member (m comparisons per distance, fused); above, they sort each anchor's row.
MANY_POSITIVES = 128


class Mining(NamedTuple):
    """A mining loss, as ``block_terms`` runs it on each block of anchors. The same
    object must be given for the same loss (``tripletlab.tensorflow`` caches them): the
    compiled kernels are kept per ``Mining``."""

    select: Callable  # (key, members, is_positive, negative) -> (columns, chosen)
    loss_of: Callable  # (distances / unit, chosen, unit) -> (value / unit, counts)
    on_distances: bool = False  # select ranks distances, not keys


def in_xla_context() -> bool:
    """True while tracing a ``tf.function(jit_compile=True)`` (shapes must be static)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def searchsorted(sorted_sequence: tf.Tensor, values: tf.Tensor, side: str) -> tf.Tensor:
    """``tf.searchsorted(sorted_sequence, values, side, out_type=tf.int32)``, row by row:
    ``(R, n), (R, k) -> (R, k)``, the number of entries ``< value`` (``"left"``) or
    ``<= value`` (``"right"``).

    Under XLA ``tf.searchsorted`` compares every value with every entry, an ``(R, k, n)``
    tensor (5 GB at ``R = k = n = 1024``). There both are merged by one stable sort
    instead: on ties the entries come first for ``"right"`` (they count), the values
    first for ``"left"``; a value's count is the number of entries before it in the
    merged order. ``O(R (n + k) log(n + k))`` time, ``O(R (n + k))`` memory.
    """
    if not in_xla_context():
        return tf.searchsorted(sorted_sequence, values, side=side, out_type=tf.int32)
    entries, count = tf.ones_like(sorted_sequence, tf.int32), tf.shape(values)[1]
    if side == "right":
        merged = tf.concat([sorted_sequence, values], axis=1)
        is_entry = tf.concat([entries, tf.zeros_like(values, tf.int32)], axis=1)
        at = slice(tf.shape(sorted_sequence)[1], None)
    else:
        merged = tf.concat([values, sorted_sequence], axis=1)
        is_entry = tf.concat([tf.zeros_like(values, tf.int32), entries], axis=1)
        at = slice(0, count)
    order = tf.argsort(merged, axis=1, stable=True)
    before = tf.cumsum(tf.gather(is_entry, order, batch_dims=1), axis=1)
    position = tf.argsort(order, axis=1, stable=True)  # where each merged entry went
    return tf.gather(before, position[:, at], batch_dims=1)


def class_members(labels: tf.Tensor, static_width: bool = False):
    """``(members, is_positive, n_negatives)``: ``(B, m)`` int32, ``(B, m)``, ``(B,)``.

    ``m`` is the size of the largest class (``B`` when ``static_width``: under XLA shapes
    cannot depend on the labels). ``members[a]`` holds the rows of ``a``'s class in
    increasing order (then repeats the last one); ``is_positive[a, s]`` is True where
    ``members[a, s]`` is a positive of ``a`` (not a pad, not ``a`` itself).
    """
    batch = tf.shape(labels)[0]
    order = tf.argsort(labels, stable=True)
    sorted_labels = tf.gather(labels, order)[None, :]
    start = searchsorted(sorted_labels, labels[None, :], side="left")[0]
    count = searchsorted(sorted_labels, labels[None, :], side="right")[0]
    count -= start
    width = batch if static_width else tf.maximum(tf.reduce_max(count), 1)
    slot = tf.range(width)
    members = tf.gather(order, tf.minimum(start[:, None] + slot[None, :], batch - 1))
    rows = tf.range(batch)[:, None]
    is_positive = (slot[None, :] < count[:, None]) & (members != rows)
    return members, is_positive, batch - count


def hinge_thresholds(d_ap: tf.Tensor, margin: float) -> tf.Tensor:
    """``t`` with: ``(d_ap - d_an) + margin > 0``, as computed in the dtype, exactly when
    ``d_an < t``. The triplet rule of ``tripletlab.numpy``, as a threshold.

    The hinge decreases (weakly) as ``d_an`` grows; the rearranged ``d_ap + margin``
    rounds differently and can be one number off either way, so it is moved up while
    the hinge at ``t`` is still active, then down while the one below is not (at most
    two representable numbers each way).
    """

    def active(d_an):
        return d_ap - d_an + margin > 0

    up = tf.fill(tf.shape(d_ap), tf.constant(float("inf"), d_ap.dtype))
    t = d_ap + margin
    for _ in range(2):
        t = tf.where(active(t), tf.math.nextafter(t, up), t)
    for _ in range(2):
        below = tf.math.nextafter(t, -up)
        t = tf.where(active(below), t, below)
    return t


def _infinity(like: tf.Tensor) -> tf.Tensor:
    return tf.constant(float("inf"), like.dtype)


def _by_width(members, compare, sort):
    """``compare()`` up to ``MANY_POSITIVES`` members per anchor, else ``sort()``; a
    ``tf.cond`` where the width is not known while tracing, except inside a caller's
    ``jit_compile=True``: there the width is ``B`` and XLA reserves memory for both
    branches of a ``tf.cond``, the ``(B, B, B)`` comparisons included (5 GB at
    ``B = 1024``), so it sorts."""
    width = members.shape[1]
    if width is not None:
        return compare() if width <= MANY_POSITIVES else sort()
    if in_xla_context():
        return sort()
    return tf.cond(tf.shape(members)[1] <= MANY_POSITIVES, compare, sort)


def active_triplet_weights(dist, members, is_positive, negative, margin):
    """``(c_ap - c_an, N)`` for a block of anchors: per-pair counts of the active
    triplets, ``(R, B)`` in the dtype of ``dist``, and their number (int64), by
    comparisons (``compared_active_triplet_weights``) up to ``MANY_POSITIVES`` members,
    else by sorting (``sorted_active_triplet_weights``)."""
    args = (dist, members, is_positive, negative, margin)
    return _by_width(
        members,
        lambda: compared_active_triplet_weights(*args),
        lambda: sorted_active_triplet_weights(*args),
    )


def _scatter_to_members(weights, members, values):
    """``weights[a, members[a, s]] += values[a, s]``."""
    rows = tf.broadcast_to(tf.range(tf.shape(members)[0])[:, None], tf.shape(members))
    return tf.tensor_scatter_nd_add(weights, tf.stack([rows, members], axis=-1), values)


def sorted_active_triplet_weights(dist, members, is_positive, negative, margin):
    """``active_triplet_weights`` by the bucket method of ``tripletlab._torch_mining``:
    each anchor's thresholds sorted, each negative put in the bucket
    ``#{p : t_p <= D[a, n]}`` (``searchsorted``), then ``c_an = m - bucket`` and
    ``c_ap`` a cumulative sum of the negatives per bucket. ``O(B^2 log m)``."""
    infinity = _infinity(dist)
    thresholds = hinge_thresholds(tf.gather(dist, members, batch_dims=1), margin)
    threshold = tf.where(is_positive, thresholds, -infinity)
    order = tf.argsort(threshold, axis=1, stable=True)  # pads first
    threshold = tf.gather(threshold, order, batch_dims=1)
    farther = tf.where(negative, dist, infinity)  # non-negatives: past every t_p
    bucket = searchsorted(threshold, farther, side="right")
    rows, width = tf.shape(dist)[0], tf.shape(threshold)[1]
    weights = tf.cast(bucket - width, dist.dtype)  # -c_an on negatives, 0 elsewhere
    flat = bucket + (width + 1) * tf.range(rows)[:, None]
    per_bucket = tf.math.unsorted_segment_sum(tf.ones_like(flat), flat, rows * (width + 1))
    c_ap = tf.cumsum(tf.reshape(per_bucket, [rows, width + 1]), axis=1)[:, :width]
    weights = _scatter_to_members(
        weights, tf.gather(members, order, batch_dims=1), tf.cast(c_ap, dist.dtype)
    )
    return weights, tf.reduce_sum(tf.cast(c_ap, tf.int64))


def compared_active_triplet_weights(dist, members, is_positive, negative, margin):
    """``(c_ap - c_an, N)`` for a block of anchors: per-pair counts of the active
    triplets, ``(R, B)`` in the dtype of ``dist``, and their number (int64).

    ``below[a, n, s] = D[a, n] < t_s`` for the negatives ``n`` and the positives ``s``
    among the members (a pad's threshold is ``-inf``: never above a distance) is the
    triplet cube restricted to one anchor's class; ``c_an`` sums it over the members,
    ``c_ap`` over the negatives. XLA fuses the comparisons into both sums. Both come
    from the same comparisons, so ``sum c_ap = sum c_an = N`` exactly.
    """
    infinity = _infinity(dist)
    thresholds = hinge_thresholds(tf.gather(dist, members, batch_dims=1), margin)
    threshold = tf.where(is_positive, thresholds, -infinity)  # (R, m)
    farther = tf.where(negative, dist, infinity)  # non-negatives: past every t_p
    below = tf.cast(farther[:, :, None] < threshold[:, None, :], tf.int32)  # (R, B, m)
    c_an = tf.reduce_sum(below, axis=2)
    c_ap = tf.reduce_sum(below, axis=1)
    weights = _scatter_to_members(-tf.cast(c_an, dist.dtype), members, tf.cast(c_ap, dist.dtype))
    return weights, tf.reduce_sum(tf.cast(c_ap, tf.int64))  # N can pass 2^31


def batch_all_mean(total, n_active, margin, unit):
    """The mean active hinge from ``total = sum (c_ap - c_an) D / unit``:
    ``(total * unit + margin N) / N``, or where that sum overflows though the mean does
    not (distances near the dtype's largest number), ``total / N * unit + margin``."""
    count = tf.maximum(n_active, 1.0)
    direct = (total * unit + margin * n_active) / count
    in_unit = total / count * unit + tf.cast(n_active > 0, total.dtype) * margin
    return tf.where(tf.math.is_finite(direct), direct, in_unit)


def semihard_columns(key, members, is_positive, negative):
    """``(columns (R, 2m), pairs (R, m))``: per anchor its ``m`` members, then for each
    the column of its semi-hard negative: the closest negative farther than the positive
    (of ties the lowest index), else the farthest negative (of ties the highest index);
    and which pairs are real (a positive, and the anchor has a negative). By comparisons
    up to ``MANY_POSITIVES`` members (``compared_semihard_columns``), else by sorting
    (``sorted_semihard_columns``)."""
    args = (key, members, is_positive, negative)
    return _by_width(
        members, lambda: compared_semihard_columns(*args), lambda: sorted_semihard_columns(*args)
    )


def sorted_semihard_columns(key, members, is_positive, negative):
    """``semihard_columns`` by sorting each anchor's negatives (stable) and one binary
    search per member: ``O(B^2 log B)``."""
    infinity = _infinity(key)
    farther = tf.where(negative, key, infinity)
    order = tf.argsort(farther, axis=1, stable=True)
    sorted_negatives = tf.gather(farther, order, batch_dims=1)
    n_negatives = tf.reduce_sum(tf.cast(negative, tf.int32), axis=1, keepdims=True)
    positive_key = tf.gather(key, members, batch_dims=1)
    beyond = searchsorted(sorted_negatives, positive_key, side="right")
    rank = tf.maximum(tf.where(beyond < n_negatives, beyond, n_negatives - 1), 0)
    pairs = is_positive & (n_negatives > 0)
    return tf.concat([members, tf.gather(order, rank, batch_dims=1)], axis=1), pairs


def compared_semihard_columns(key, members, is_positive, negative):
    """``semihard_columns`` by comparisons: ``beyond[a, s, n] = key[a, n] > key[a, p_s]``
    over the negatives, which XLA fuses into two minima (the nearest value beyond each
    positive, then its lowest column). ``O(B^2 m)``, no sort."""
    infinity = _infinity(key)
    batch = tf.shape(key)[1]
    positive_key = tf.where(is_positive, tf.gather(key, members, batch_dims=1), infinity)
    farther = tf.where(negative, key, infinity)[:, None, :]  # (R, 1, B)
    beyond = farther > positive_key[:, :, None]  # (R, m, B)
    nearest = tf.reduce_min(tf.where(beyond, farther, infinity), axis=2, keepdims=True)
    column = tf.range(batch)[None, None, :]
    first = tf.reduce_min(tf.where(beyond & (farther == nearest), column, batch), axis=2)
    # no negative farther than the positive: the farthest one (keys are >= 0)
    far = tf.reduce_max(tf.where(negative, key, -1.0), axis=1, keepdims=True)
    last = tf.reduce_max(tf.where(negative & (key == far), column[0], -1), axis=1)
    farthest = tf.maximum(last, 0)[:, None]  # (an anchor without negatives has no pair)
    chosen = tf.where(nearest[:, :, 0] < infinity, first, farthest)
    pairs = is_positive & tf.reduce_any(negative, axis=1, keepdims=True)
    return tf.concat([members, chosen], axis=1), pairs


# --------------------------------------------------------------------------- one block


def _l2_keys(scaled, rows_scaled, start, whole, ids):
    """``(R, B)`` squared L2 distances of the rows divided by ``scale``."""
    gram = tf.matmul(rows_scaled, scaled, transpose_b=True)
    if whole:
        row_norms = col_norms = tf.linalg.diag_part(gram)  # identical rows at exactly 0
    else:
        col_norms = tf.reduce_sum(scaled * scaled, axis=1)
        row_norms = tf.slice(col_norms, [start], [tf.shape(rows_scaled)[0]])
    sq = tf.maximum(row_norms[:, None] + col_norms[None, :] - 2.0 * gram, 0.0)
    return sq if whole else tf.where(_twins(ids, start, tf.shape(sq)[0]), tf.zeros_like(sq), sq)


def _twins(ids, start, rows):
    return tf.slice(ids, [start], [rows])[:, None] == ids[None, :]


def _distances(x, start, rows, metric, whole, ids):
    """``(R, B)`` cosine or L1 distances of the anchors to every row, differentiable."""
    if whole:
        return _tl._distances(x, None, metric)
    if metric == "l1":
        return _tl._l1_distances(tf.slice(x, [start, 0], [rows, -1]), x)
    unit, _ = _tl._normalize(x, COSINE_EPS)
    dist = _tl._distances(tf.slice(unit, [start, 0], [rows, -1]), unit, "cosine")
    return tf.where(_twins(ids, start, rows), tf.zeros_like(dist), dist)


def gram_vjp(grad_sq, scaled, rows_scaled):
    """``(grad, grad_rows)``: the gradient of ``sum grad_sq * sq`` where
    ``sq[i, j] = |s_i|^2 + |s_j|^2 - 2 s_i . s_j`` for the block's rows ``s_i``
    (``rows_scaled``) and every row ``s_j``: ``grad`` ``(B, D)`` through the columns,
    ``grad_rows`` ``(R, D)`` through the rows; two matrix products and two sums."""
    grad = 2.0 * (
        tf.reduce_sum(grad_sq, axis=0)[:, None] * scaled
        - tf.matmul(grad_sq, rows_scaled, transpose_a=True)
    )
    grad_rows = 2.0 * (
        tf.reduce_sum(grad_sq, axis=1)[:, None] * rows_scaled - tf.matmul(grad_sq, scaled)
    )
    return grad, grad_rows


def pair_vjp(grad_sq, columns, scaled, rows_scaled):
    """``gram_vjp`` for ``k`` picked entries per row, ``grad_sq`` ``(R, k)`` at
    ``columns``: ``dsq / ds_i = 2 (s_i - s_j) = -dsq / ds_j``, summed per row;
    ``O(R k D)``, no ``(R, B)`` matrix."""
    batch = tf.shape(scaled)[0]
    pulls = (2.0 * grad_sq)[:, :, None] * (rows_scaled[:, None, :] - tf.gather(scaled, columns))
    pushed = tf.reshape(pulls, [-1, tf.shape(scaled)[1]])
    grad = -tf.math.unsorted_segment_sum(pushed, tf.reshape(columns, [-1]), batch)
    return grad, tf.reduce_sum(pulls, axis=1)


def picked_vjp(grad_sq, columns, scaled, rows_scaled):
    """``pair_vjp`` for up to ``2 * MANY_POSITIVES`` picked columns per row; above (a
    caller's ``jit_compile=True``, where ``k = 2B``), whose ``(R, k, D)`` differences
    would take ``O(B^2 D)`` memory, the picked entries are added into an ``(R, B)``
    matrix and carried by ``gram_vjp`` (two matrix products)."""

    def dense():
        rows, batch = tf.shape(columns)[0], tf.shape(scaled)[0]
        flat = tf.reshape(columns + batch * tf.range(rows)[:, None], [-1])
        summed = tf.math.unsorted_segment_sum(tf.reshape(grad_sq, [-1]), flat, rows * batch)
        return gram_vjp(tf.reshape(summed, [rows, batch]), scaled, rows_scaled)

    def pairs():
        return pair_vjp(grad_sq, columns, scaled, rows_scaled)

    width = columns.shape[1]
    if width is not None:
        return pairs() if width <= 2 * MANY_POSITIVES else dense()
    return tf.cond(tf.shape(columns)[1] <= 2 * MANY_POSITIVES, pairs, dense)


def block_terms(x, labels, start, members, is_positive, ids, *, mining, metric, whole, with_grad):
    """``(value, counts, grad, grad_rows)`` of the block of anchors ``start .. start + R``
    (``R`` rows of ``members``): the value in units of ``unit``, and with ``with_grad``
    its gradient, ``grad`` ``(B, D)`` plus ``grad_rows`` ``(R, D)`` for the block's own
    rows (in one ``(B, D)`` tensor when ``whole``).

    ``mining.select`` picks, without gradient, what ``mining.loss_of`` reads (see
    ``Mining``). For the L2 metrics only the picked distances are differentiated, and
    the gradient is carried to the rows in closed form: ``dd/dsq = 1 / (2 d)`` (0 where
    ``d = 0``), then ``gram_vjp`` or ``picked_vjp``. The other metrics differentiate the
    block's distances with autodiff.
    """
    rows = tf.shape(members)[0]
    scale = _tl._power_of_two_scale(_tl._max_abs(x))
    unit = tf.ones_like(scale) if metric == "cosine" else scale
    row_labels = tf.slice(labels, [start], [rows])
    negative = row_labels[:, None] != labels[None, :]
    nothing = tf.zeros([0], x.dtype)
    if metric not in _L2:
        with tf.GradientTape() as tape:
            tape.watch(x)
            dist = _distances(x, start, rows, metric, whole, ids)
            columns, chosen = mining.select(tf.stop_gradient(dist), members, is_positive, negative)
            picked = dist if columns is None else tf.gather(dist, columns, batch_dims=1)
            value, counts = mining.loss_of(picked / unit, chosen, unit)
        if not with_grad:
            return value, counts, nothing, nothing
        grad_rows = nothing if whole else tf.zeros([rows, tf.shape(x)[1]], x.dtype)
        return value, counts, tape.gradient(value, x), grad_rows  # all in grad
    scaled = x / scale
    rows_scaled = tf.slice(scaled, [start, 0], [rows, -1])
    sq = _l2_keys(scaled, rows_scaled, start, whole, ids)

    def root_and_distance(sq):
        if metric == "sqeuclidean":
            return None, sq * scale * scale
        root = tf.sqrt(sq)
        return root, root * scale

    if mining.on_distances:
        root, dist = root_and_distance(sq)
        columns, chosen = mining.select(dist, members, is_positive, negative)
        if columns is not None:
            root = None if root is None else tf.gather(root, columns, batch_dims=1)
            dist = tf.gather(dist, columns, batch_dims=1)
    else:
        columns, chosen = mining.select(sq, members, is_positive, negative)
        root, dist = root_and_distance(tf.gather(sq, columns, batch_dims=1))
    with tf.GradientTape() as tape:
        tape.watch(dist)
        value, counts = mining.loss_of(dist / unit, chosen, unit)
    if not with_grad:
        return value, counts, nothing, nothing
    grad_dist = tape.gradient(value, dist)
    # with x = s * scaled: d = s sqrt(sq) gives dx = grad_dist / (2 sqrt(sq)) dsq/dscaled,
    # d = s^2 sq gives dx = s grad_dist dsq/dscaled
    if root is None:
        grad_sq = grad_dist * scale
    else:
        grad_sq = tf.math.divide_no_nan(grad_dist * 0.5, root)
    if columns is None:
        grad, grad_rows = gram_vjp(grad_sq, scaled, rows_scaled)
    else:
        grad, grad_rows = picked_vjp(grad_sq, columns, scaled, rows_scaled)
    if whole:
        return value, counts, grad + grad_rows, nothing
    return value, counts, grad, grad_rows


_KERNELS: dict = {}
# Below this many rows the kernel's operations run as they are (eagerly, or in the
# caller's graph): each pass over a small block is cheap, and nothing is compiled.
COMPILE_ROWS = 512


def _kernel(mining: Mining, metric: str, whole: bool, with_grad: bool, rows=None):
    """``block_terms`` for these static arguments, as one XLA kernel (made once) unless
    the batch is known to have fewer than ``COMPILE_ROWS`` rows."""
    key = (mining, metric, whole, with_grad)
    run = functools.partial(
        block_terms, mining=mining, metric=metric, whole=whole, with_grad=with_grad
    )
    if rows is not None and rows < COMPILE_ROWS:
        return run
    if key not in _KERNELS:
        kernel = tf.function(run, jit_compile=True)
        # traced once per input shape by design (XLA compiles each): no retracing warning
        kernel._omit_frequent_tracing_warning = True
        _KERNELS[key] = kernel
    return _KERNELS[key]


# --------------------------------------------------------------------------- all blocks


def _whole(x, labels, members, is_positive, mining, metric, with_grad):
    kernel = _kernel(mining, metric, whole=True, with_grad=with_grad, rows=x.shape[0])
    value, counts, grad, _ = kernel(x, labels, 0, members, is_positive, tf.zeros([0], tf.int32))
    return value, counts, grad


def _in_blocks(x, labels, members, is_positive, mining, metric, with_grad):
    """``(value, counts, grad)`` summed over blocks of about ``BLOCK_ENTRIES`` distances."""
    batch = tf.shape(x)[0]
    rows = _tl._normalize(x, COSINE_EPS)[0] if metric == "cosine" else x
    ids = tf.raw_ops.UniqueV2(x=tf.stop_gradient(rows), axis=[0], out_idx=tf.int32).idx
    step = tf.maximum(1, _blocks.BLOCK_ENTRIES // tf.maximum(batch, 1))
    kernel = _kernel(mining, metric, whole=False, with_grad=with_grad, rows=x.shape[0])

    def body(start, total, counts, grad):
        stop = tf.minimum(start + step, batch)
        value, block_counts, block_grad, grad_rows = kernel(
            x, labels, start, members[start:stop], is_positive[start:stop], ids
        )
        if with_grad:
            block_rows = tf.range(start, stop)[:, None]
            grad = tf.tensor_scatter_nd_add(grad + block_grad, block_rows, grad_rows)
        return stop, total + value, counts + block_counts, grad

    zero = tf.zeros([], x.dtype)
    grad = tf.zeros_like(x) if with_grad else tf.zeros([0], x.dtype)
    initial = (tf.constant(0), zero, tf.zeros([], tf.int64), grad)
    _, total, counts, grad = tf.while_loop(lambda start, *_: start < batch, body, initial)
    return total, counts, grad


def _blocks_of(x, labels, members, is_positive, mining, metric, with_grad):
    """The whole matrix up to ``WHOLE_MATRIX_ROWS`` rows (and under XLA), else blocks."""
    args = (x, labels, members, is_positive, mining, metric, with_grad)
    size = x.shape[0]
    if in_xla_context() or (size is not None and size <= _blocks.WHOLE_MATRIX_ROWS):
        return _whole(*args)
    if size is not None:
        return _in_blocks(*args)
    return tf.cond(
        tf.shape(x)[0] <= _blocks.WHOLE_MATRIX_ROWS,
        lambda: _whole(*args),
        lambda: _in_blocks(*args),
    )


def mined_sum(x, labels, members, is_positive, mining: Mining, metric: str):
    """``(value, counts)`` summed over every anchor, with a custom gradient: the forward
    computes the gradient with the value where a tape could record it (one block of
    distances at a time), the backward scales it (or computes it, if it was not)."""

    @tf.custom_gradient
    def total(x):
        with_grad = record.could_possibly_record()
        # the kernels are differentiated here, not by a tape outside (which would build
        # the gradient of their gradient)
        args = (tf.stop_gradient(x), labels, members, is_positive, mining, metric)
        value, counts, grad = _blocks_of(*args, with_grad)

        def backward(upstream, _counts_upstream=None):
            computed = grad if with_grad else _blocks_of(*args, True)[2]
            return upstream * computed

        return (value, counts), backward

    return total(x)


def mine(embeddings, labels, metric, mining: Mining):
    """Validate, then ``(value, counts, members, dtype, unit)``: ``mining.loss_of`` of
    what ``mining.select`` picks, summed over every anchor (see ``block_terms``), the
    class members (``class_members``), the dtype to return, and the unit the value is in.
    For an empty batch ``(0, 0, None, dtype, 1)``, the 0 still connected to the
    embeddings."""
    _checks.check_metric(metric)
    x, dtype = _tl._as_matrix("embeddings", embeddings)
    labels = _tl._as_labels(labels, x.shape[0])
    unit = _tl._sum_unit(x, metric)
    if x.shape[0] == 0:
        return tf.reduce_sum(x), tf.zeros([], tf.int64), None, dtype, unit
    members = class_members(labels, static_width=in_xla_context())
    value, counts = mined_sum(x, labels, *members[:2], mining, metric)
    return value, counts, members, dtype, unit
