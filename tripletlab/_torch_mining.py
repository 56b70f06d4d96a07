"""The PyTorch mining engine: how ``tripletlab.torch`` runs its batch-all, batch-hard and
semi-hard losses fast and in ``O(B)`` memory per anchor row. A design note first.

**The seam.** ``tripletlab.torch`` says what each strategy is: a ``Mining`` of
``select(key, members, is_positive, negative) -> (columns, chosen)``, which picks without
gradient the distances the loss uses (``columns`` ``(R, k)``, or None for whole rows),
and ``loss_of(distances / unit, chosen, unit) -> (value / unit, counts)``, which reads
the loss off the picked distances. ``mine`` validates the batch and runs the two on every
anchor; nothing here knows which strategy it runs. ``key`` ranks the pairs as the
distance does (for the L2 metrics the squared distance of the rows divided by a power of
two, so that only picked entries get a square root), or is the distance itself where
``Mining.on_distances``. Losses are summed in units of ``unit`` (a power of two near
``max|x|``, exact), so that sums of many large distances stay finite.

**Blocks and the closed-form gradient.** ``Anchors`` holds a validated batch seen from
its anchors: each anchor's class ``members`` (``class_members``: the ``m`` rows of the
largest class, so sorts and searches run over ``m``, not ``B``) and its distances to
every row, for the whole batch or for blocks of anchor rows: on a CPU blocks of at most
``tripletlab._blocks.CACHE_BLOCK_ENTRIES`` distances (about a million: the dozen eager
passes over a block then read it from the cache, not from memory; at ``B = 4096`` this
made batch-all 1.5x faster), elsewhere the whole batch up to
``tripletlab._blocks.WHOLE_MATRIX_ROWS`` rows and blocks of about ``BLOCK_ENTRIES``
distances above.
``MinedSum`` is an ``autograd.Function`` whose forward computes each block's value *and*
its gradient (``block_terms``), so that one block of distances exists at a time;
backward only scales the summed gradient. For the L2 metrics no ``(R, B)`` autograd
graph is built: the gradient with respect to the picked distances is carried to the rows
in closed form (``dd/dsq = 1 / (2 d)``, 0 where ``d = 0``), then through the Gram
product (``gram_vjp``, two ``B x B x D`` products) where whole rows are picked
(batch-all), or through the picked pairs' differences alone (``pair_vjp``, ``O(B k D)``)
where ``k`` columns per anchor are (batch-hard, semi-hard); the other metrics
differentiate the block's distances with autograd.

**Counting active triplets** (batch-all, ``active_triplet_weights``; semi-hard,
``semihard_columns``). The hinge of ``(a, p, n)`` is active exactly when
``D[a, n] < t_p`` (``hinge_thresholds``). Each anchor's ``m`` thresholds are sorted and
every negative is put in its bucket among them (``bucket_of``), ``O(B^2 log m)``; counts
per bucket and a cumulative sum give how many triplets each pair ``(a, p)`` and
``(a, n)`` is in, and the loss is one weighted sum of distances whose gradient is
exactly the triplet cube's. Two invariants hold the counting up:

- ``bucket_of`` counts in ``uint8`` only while the width ``m <= FEW_POSITIVES``, which is
  below 256, so a count never wraps; wider rows take ``torch.searchsorted`` (int64).
- The pads of ``members`` (a class smaller than ``m`` repeats its last row; the anchor
  itself is a member too) get the threshold ``-inf``: no negative lies below it, so a
  pad's count is 0 and it adds weight 0 to the column it repeats.

**The compile path.** Under ``torch.compile`` shapes cannot depend on the data: ``m`` is
``B``, the whole matrix is one block, ``bucket_of`` always searches, and ``mine`` runs
``select`` and ``loss_of`` in plain autograd on the whole matrix instead of
``MinedSum`` (which the compiler cannot trace through).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from tripletlab import _blocks, _checks
from tripletlab import torch as _tl
from tripletlab._checks import COSINE_EPS

_L2 = ("euclidean", "sqeuclidean")
# Up to this many positives per anchor, m comparisons of the whole block beat a binary
# search. It must stay below 256: ``bucket_of`` counts those comparisons in uint8.
FEW_POSITIVES = 16


class Mining(NamedTuple):
    """A mining loss, as ``block_terms`` runs it on each block of anchors."""

    select: Callable  # (key, members, is_positive, negative) -> (columns, chosen)
    loss_of: Callable  # (distances / unit, chosen, unit) -> (value / unit, counts)
    on_distances: bool = False  # select ranks distances, not keys


def class_members(labels: torch.Tensor):
    """``(members, is_positive, n_negatives)``: ``(B, m)``, ``(B, m)``, ``(B,)``.

    ``m`` is the size of the largest class. ``members[a]`` holds the rows of ``a``'s class
    in increasing order (then repeats the last one); ``is_positive[a, s]`` is True where
    ``members[a, s]`` is a positive of ``a`` (not a pad, not ``a`` itself). Mining only
    needs each anchor's ``m`` positives, so its sorts and searches run over ``m``
    entries, not ``B``. Under ``torch.compile`` ``m`` is ``B``, a shape known without
    looking at the labels.
    """
    batch = labels.shape[0]
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order].contiguous()
    start = torch.searchsorted(sorted_labels, labels, side="left")
    count = torch.searchsorted(sorted_labels, labels, side="right") - start
    width = batch if torch.compiler.is_compiling() else max(int(count.max()), 1)
    slot = torch.arange(width, device=labels.device)
    members = order[(start[:, None] + slot).clamp_max(batch - 1)]
    rows = torch.arange(batch, device=labels.device)[:, None]
    return members, (slot < count[:, None]) & (members != rows), batch - count


class Anchors:
    """A validated batch seen from its anchors: class members, negatives, and the
    distances of blocks of anchor rows to every row.

    One block (all rows) under ``torch.compile`` and up to ``_blocks.WHOLE_MATRIX_ROWS``
    rows (on a CPU, up to ``_blocks.CACHE_BLOCK_ENTRIES`` distances); above, blocks of
    about ``_blocks.BLOCK_ENTRIES`` (on a CPU ``CACHE_BLOCK_ENTRIES``) distances. The
    norms of a block cannot all come from its own Gram diagonal, so there identical rows
    (``torch.unique``) are set to distance exactly 0, as the whole matrix gives them.
    """

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, metric: str):
        self.x, self.labels, self.metric = x, labels, metric
        self.members, self.is_positive, self.n_negatives = class_members(labels)
        batch = x.shape[0]
        entries = _blocks.BLOCK_ENTRIES
        if x.device.type == "cpu":  # blocks that stay in cache between the eager passes
            entries = min(entries, _blocks.CACHE_BLOCK_ENTRIES)
        self.whole = torch.compiler.is_compiling() or (
            batch <= _blocks.WHOLE_MATRIX_ROWS and batch * batch <= entries
        )
        step = batch if self.whole else max(1, entries // batch)
        self.blocks = [slice(s, min(s + step, batch)) for s in range(0, batch, step)]
        self._ids = None  # which rows are identical, where some are and blocks are taken
        if not self.whole:
            rows = _tl._normalize(x, COSINE_EPS)[0] if metric == "cosine" else x
            distinct, ids = torch.unique(rows.detach(), dim=0, return_inverse=True)
            self._ids = ids if distinct.shape[0] < batch else None
        self.scale = _tl._power_of_two_scale(_tl._max_abs(x))
        # the unit the losses are summed in: distances of any size add up without overflow
        self.unit = torch.ones_like(self.scale) if metric == "cosine" else self.scale
        self.scaled = None  # the L2 metrics' rows / scale, read by every block
        if metric in _L2:
            self.scaled = x.detach() / self.scale
            if not self.whole:  # (the whole matrix takes its norms from its diagonal)
                self.sq_norms = (self.scaled * self.scaled).sum(dim=1)

    def negative(self, rows: slice) -> torch.Tensor:
        """``(R, B)``: True where row ``n`` is a negative of the anchor."""
        return _tl._negative_mask(self.labels, rows)

    def _twins(self, rows: slice) -> torch.Tensor:
        return self._ids[rows, None] == self._ids[None, :]

    def l2_keys(self, rows: slice) -> torch.Tensor:
        """``(R, B)`` squared L2 distances of the rows divided by ``scale``, without
        autograd: one matrix product, then in-place passes."""
        with torch.no_grad():
            gram = _tl._matmul_t(self.scaled[rows], self.scaled)
            if self.whole:
                row_norms = col_norms = gram.diagonal()  # identical rows at exactly 0
            else:
                col_norms = self.sq_norms
                row_norms = col_norms[rows]
            # (the broadcast sum written out with expand: a faster kernel)
            sq = torch.add(row_norms[:, None].expand_as(gram), col_norms[None, :].expand_as(gram))
            sq = sq.sub_(gram, alpha=2.0).clamp_min_(0.0)
            return sq if self._ids is None else sq.masked_fill_(self._twins(rows), 0.0)

    def distances(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        """``(R, B)`` cosine or L1 distances of the anchors to every row of ``x`` (this
        batch, or a copy of it to differentiate), with autograd."""
        if self.whole:
            return _tl._distances(x, None, self.metric)
        if self.metric == "l1":
            return torch.cdist(x[rows], x, p=1.0)
        unit, _ = _tl._normalize(x, COSINE_EPS)
        dist = _tl._unit_distances(unit[rows], unit)
        return dist if self._ids is None else dist.masked_fill(self._twins(rows), 0.0)


class Gradient:
    """The gradient of a mined sum with respect to the rows, added up block by block:
    ``rows`` ``(B, D)``, plus ``columns[j] * scaled[j]`` (``(B,)``), the column sums of
    every block's ``gram_vjp``, applied once at the end (``total``) instead of once per
    block."""

    def __init__(self, x: torch.Tensor):
        self.rows = torch.zeros_like(x)
        self.columns = x.new_zeros(x.shape[0])

    def total(self, scaled: torch.Tensor | None) -> torch.Tensor:
        if scaled is not None:
            self.rows.addcmul_(self.columns[:, None], scaled, value=2.0)
        return self.rows


def gram_vjp(grad_sq, scaled, rows, out: Gradient):
    """Add to ``out`` the gradient of ``sum grad_sq * sq`` with respect to the rows, where
    ``sq[i, j] = |s_i|^2 + |s_j|^2 - 2 s_i . s_j`` for the rows ``s = scaled[rows]`` and
    every row ``s_j``: two matrix products and two sums, ``(R, B) -> (B, D)``, in place."""
    out.columns += grad_sq.sum(dim=0)
    out.rows.addmm_(grad_sq.mT, scaled[rows], alpha=-2.0)
    block = out.rows[rows]
    block.addcmul_(grad_sq.sum(dim=1)[:, None], scaled[rows], value=2.0)
    block.addmm_(grad_sq, scaled, alpha=-2.0)


def pair_vjp(grad_sq, columns, scaled, rows, out: Gradient):
    """``gram_vjp`` for ``k`` picked entries per row, ``grad_sq`` ``(R, k)`` at
    ``columns``: ``dsq / ds_i = 2 (s_i - s_j) = -dsq / ds_j``, summed per row;
    ``O(R k D)``, no ``(R, B)`` matrix and no ``B x B`` product. (``index_put_`` with
    ``accumulate``: deterministic on CUDA too.)"""
    pulls = (2.0 * grad_sq)[:, :, None] * (scaled[rows][:, None, :] - scaled[columns])
    out.rows.index_put_((columns.reshape(-1),), pulls.reshape(-1, scaled.shape[1]).neg(), True)
    out.rows[rows] += pulls.sum(dim=1)


def block_terms(anchors: Anchors, rows: slice, mining: Mining, grad: Gradient | None):
    """``(value, counts)`` of one block of anchors; the value's gradient with respect to
    the rows is added to ``grad``, unless it is None.

    ``mining.select(key, members, is_positive, negative) -> (columns, chosen)`` picks,
    without gradient, the distances the loss uses: ``columns`` ``(R, k)``, or None for
    the whole rows; ``key`` ranks the pairs as the distance does (for the L2 metrics the
    squared distance of the scaled rows), or is the distance itself where
    ``mining.on_distances``. ``mining.loss_of(distances / unit, chosen, unit) -> (value,
    counts)``: the distances in units of ``anchors.unit`` (a power of two: exact), so that
    sums over many large distances stay finite; the value is in that unit too.
    For the L2 metrics nothing of the ``(R, B)`` block is differentiated: the gradient
    with respect to the picked distances is carried to the rows in closed form
    (``dd/dsq = 1 / (2 d)``, 0 where ``d = 0``): through the Gram product (``gram_vjp``)
    where whole rows are picked, through the picked pairs (``pair_vjp``) where ``k``
    columns per anchor are. The other metrics differentiate the block's distances with
    autograd.
    """
    members, is_positive = anchors.members[rows], anchors.is_positive[rows]
    negative = anchors.negative(rows)
    if anchors.metric not in _L2:
        with torch.enable_grad():
            x = anchors.x.detach().requires_grad_(grad is not None)
            dist = anchors.distances(x, rows)
            columns, chosen = mining.select(dist.detach(), members, is_positive, negative)
            picked = dist if columns is None else dist.gather(1, columns)
            value, counts = mining.loss_of(picked / anchors.unit, chosen, anchors.unit)
            if grad is not None:
                grad.rows += torch.autograd.grad(value, x)[0]
        return value.detach(), counts
    sq, scale = anchors.l2_keys(rows), anchors.scale

    def root_and_distance(sq):
        if anchors.metric == "sqeuclidean":
            return None, sq * scale * scale
        root = torch.sqrt(sq)
        return root, root * scale

    if mining.on_distances:
        root, dist = root_and_distance(sq)
        columns, chosen = mining.select(dist, members, is_positive, negative)
        if columns is not None:
            root = None if root is None else root.gather(1, columns)
            dist = dist.gather(1, columns)
    else:
        columns, chosen = mining.select(sq, members, is_positive, negative)
        root, dist = root_and_distance(sq.gather(1, columns))
    with torch.enable_grad():
        dist.requires_grad_(grad is not None)
        value, counts = mining.loss_of(dist / anchors.unit, chosen, anchors.unit)
        grad_dist = None if grad is None else torch.autograd.grad(value, dist)[0]
    if grad is None:
        return value.detach(), counts
    # with x = s * scaled: d = s sqrt(sq) gives dx = grad_dist / (2 sqrt(sq)) dsq/dscaled,
    # d = s^2 sq gives dx = s grad_dist dsq/dscaled
    if root is None:
        grad_sq = grad_dist * scale
    else:
        grad_sq = grad_dist.mul_(0.5).div_(root).masked_fill_(root == 0, 0.0)
    if columns is None:
        gram_vjp(grad_sq, anchors.scaled, rows, grad)
    else:
        pair_vjp(grad_sq, columns, anchors.scaled, rows, grad)
    return value.detach(), counts


class MinedSum(torch.autograd.Function):
    """``(value, counts)`` summed over the blocks of anchors; each block's gradient is
    computed with its value, so that one block of distances exists at a time, and
    backward only scales the summed gradient."""

    @staticmethod
    def forward(ctx, x, anchors, mining, with_grad):
        total, counts, grad = 0.0, 0, Gradient(x) if with_grad else None
        for rows in anchors.blocks:
            # autocast off: the backward passes run here would otherwise run in half
            with torch.autocast(x.device.type, enabled=False):
                value, block_counts = block_terms(anchors, rows, mining, grad)
            total, counts = total + value, counts + block_counts
        ctx.grad = None if grad is None else grad.total(anchors.scaled)
        ctx.mark_non_differentiable(counts)
        return total, counts

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total, grad_counts):
        return grad_total * ctx.grad, None, None, None


def mine(embeddings, labels, metric, mining: Mining):
    """Validate, then ``(value, counts, anchors, dtype)``: ``mining.loss_of`` of what
    ``mining.select`` picks, summed over every anchor (see ``block_terms``); for an
    empty batch ``(0, 0, None, dtype)``, the 0 still connected to the embeddings."""
    _checks.check_metric(metric)
    x, dtype = _tl._as_matrix("embeddings", embeddings)
    labels = _tl._as_labels(labels, x)
    if x.shape[0] == 0:
        return x.sum(), torch.zeros((), dtype=torch.int64, device=x.device), None, dtype
    anchors = Anchors(x, labels, metric)
    if not torch.compiler.is_compiling():
        with_grad = torch.is_grad_enabled() and x.requires_grad
        value, counts = MinedSum.apply(x, anchors, mining, with_grad)
        return value, counts, anchors, dtype
    # static shapes, plain autograd: the whole matrix
    key, to_distance = _tl._ranked_distances(x, metric)
    if mining.on_distances:
        key, to_distance = to_distance(key), lambda d: d
    whole = slice(None)
    members, is_positive, negative = anchors.members, anchors.is_positive, anchors.negative(whole)
    columns, chosen = mining.select(key.detach(), members, is_positive, negative)
    picked = to_distance(key if columns is None else key.gather(1, columns))
    return *mining.loss_of(picked / anchors.unit, chosen, anchors.unit), anchors, dtype


def bucket_of(thresholds, values, strict: bool):
    """``#{j : thresholds[r, j] < values[r, b]}`` (``<=`` if not ``strict``), for rows of
    sorted thresholds: ``(R, m), (R, B) -> (R, B)`` int64.

    For a few thresholds, ``m`` comparisons of the whole block (counted in ``uint8``) are
    faster than ``torch.searchsorted``'s binary search; for many, and under
    ``torch.compile`` (where ``m = B``), the binary search.
    """
    width = thresholds.shape[1]
    if width > FEW_POSITIVES or torch.compiler.is_compiling():
        return torch.searchsorted(thresholds, values, side="left" if strict else "right")
    compare = torch.gt if strict else torch.ge
    bucket = compare(values, thresholds[:, :1]).view(torch.uint8)
    past = torch.empty_like(values, dtype=torch.bool)
    for j in range(1, width):
        compare(values, thresholds[:, j : j + 1], out=past)
        bucket += past.view(torch.uint8)
    return bucket.to(torch.int64)


def hinge_thresholds(d_ap: torch.Tensor, margin: float) -> torch.Tensor:
    """``t`` with: ``(d_ap - d_an) + margin > 0``, as computed in the dtype, exactly when
    ``d_an < t``. The triplet rule of ``tripletlab.numpy``, as a threshold to sort.

    The hinge decreases (weakly) as ``d_an`` grows, so the active ``d_an`` are those
    below the smallest number ``t`` at which it is not ``> 0``. The rearranged
    ``d_ap + margin`` rounds differently and can be one number off either way
    (``1 - 1.2 + 0.2 > 0`` in float64, but ``1.2 < 1 + 0.2`` is false): two steps up
    while the hinge at ``t`` is still active, then two down while the one below is not.
    """

    def active(d_an):
        return d_ap - d_an + margin > 0

    t = d_ap + margin
    for _ in range(2):
        t = torch.where(active(t), torch.nextafter(t, t.new_tensor(torch.inf)), t)
    for _ in range(2):
        below = torch.nextafter(t, t.new_tensor(-torch.inf))
        t = torch.where(active(below), t, below)
    return t


def active_triplet_weights(dist, members, is_positive, negative, margin):
    """``(c_ap - c_an, N)`` for a block of anchors: per-pair counts of the active triplets,
    ``(R, B)``, and their number.

    A valid triplet is active when its hinge ``D[a, p] - D[a, n] + margin`` is ``> 0``,
    that is when ``D[a, n] < t_p`` (``hinge_thresholds``). Per anchor, the thresholds of
    its ``m`` positives are sorted and every negative ``n`` is put in the bucket
    ``#{p : t_p <= D[a, n]}`` (``bucket_of``): then ``c_an = m - bucket`` counts the
    positives for which ``(a, p, n)`` is active, and a cumulative sum of the negatives
    per bucket gives ``c_ap``, the active negatives of each positive.
    ``O(B^2 log m)`` time. Both counts use the same comparison, so
    ``sum c_ap = sum c_an = N`` exactly. The counting is in int64 (exact, and a
    deterministic ``cumsum`` on CUDA, where the float one is refused under
    ``torch.use_deterministic_algorithms``). The thresholds' width ``m`` is what
    ``bucket_of`` counts in ``uint8`` up to ``FEW_POSITIVES``.
    """
    thresholds = hinge_thresholds(dist.gather(1, members), margin)
    threshold = torch.where(is_positive, thresholds, -torch.inf)
    # pads (-inf) first: no negative lies below them, so their c_ap is 0 and the column a
    # pad repeats gets weight 0 from it
    threshold, order = torch.sort(threshold, dim=1)
    farther = torch.where(negative, dist, torch.inf)  # non-negatives: past every t_p
    bucket = bucket_of(threshold, farther, strict=False)
    width = threshold.shape[1]
    weights = bucket.to(dist.dtype).sub_(width)  # -c_an on negatives, 0 elsewhere
    per_bucket = bucket.new_zeros((dist.shape[0], width + 1))
    per_bucket.scatter_add_(1, bucket, bucket.new_ones(()).expand_as(bucket))
    c_ap = per_bucket.cumsum(dim=1)[:, :width]  # negatives with D[a, n] < t_p
    weights.scatter_add_(1, members.gather(1, order), c_ap.to(dist.dtype))
    return weights, c_ap.sum()  # N can pass 2^24: counted exactly


def batch_all_mean(total, n_active, margin, unit):
    """The mean active hinge from ``total = sum (c_ap - c_an) D / unit``:
    ``(total * unit + margin N) / N``, or where that sum overflows though the mean does
    not (distances near the dtype's largest number), ``total / N * unit + margin``."""
    count = n_active.clamp_min(1)
    direct = (total * unit + margin * n_active) / count
    in_unit = total / count * unit + (n_active > 0).to(total.dtype) * margin
    return torch.where(torch.isfinite(direct), direct, in_unit)


def semihard_columns(key, members, is_positive, negative):
    """``(columns (R, 2m), pairs (R, m))``: per anchor its ``m`` positives in increasing
    distance, then for each the column of its semi-hard negative: the closest negative
    farther than the positive, else the farthest negative; and which pairs are real.

    The keys of the ``m`` positives are sorted and one binary search puts every negative
    in the bucket ``#{p : key_p < key_n}``; the negatives farther than the ``j``-th
    closest positive are those of the buckets after ``j``. The nearest negative of each
    bucket (``scatter_reduce``; of ties, the lowest index) and a suffix minimum over the
    buckets give every pair's negative. ``O(B^2 log m)`` time.
    """
    batch = key.shape[1]
    positive_key = torch.where(is_positive, key.gather(1, members), torch.inf)
    positive_key, order = torch.sort(positive_key, dim=1)  # pads (inf) last
    width = positive_key.shape[1]
    farther = torch.where(negative, key, torch.inf)
    bucket = bucket_of(positive_key, farther, strict=True)
    buckets = (key.shape[0], width + 1)
    nearest = key.new_full(buckets, torch.inf).scatter_reduce_(1, bucket, farther, "amin")
    # the lowest column holding each bucket's nearest negative (a non-negative, at inf,
    # can match only a bucket without negatives, which is never chosen)
    column = torch.arange(batch, device=key.device).expand_as(bucket)
    is_nearest = farther == nearest.gather(1, bucket)
    first = bucket.new_full(buckets, batch)
    first.scatter_reduce_(1, bucket, torch.where(is_nearest, column, batch), "amin")
    # suffix[:, j]: the nearest negative of the buckets j + 1 .. m, and in which bucket
    suffix, at = torch.cummin(nearest.flip(1), dim=1)
    suffix, at = suffix.flip(1)[:, 1:], width - at.flip(1)[:, 1:]
    pairs = is_positive.gather(1, order) & negative.any(dim=1, keepdim=True)
    # no negative farther than the positive: the farthest one (of ties the highest index,
    # the last entry of a stable ascending sort of the negatives), for the anchors that
    # need it (all of them under torch.compile, whose shapes cannot depend on the data)
    fallback = slice(None)
    if not torch.compiler.is_compiling():
        fallback = ((suffix == torch.inf) & pairs).any(dim=1).nonzero()[:, 0]
    farthest = torch.zeros_like(at[:, :1])
    flipped = torch.where(negative[fallback], key[fallback], -1.0).flip(1)
    farthest[fallback] = (batch - 1) - flipped.argmax(dim=1, keepdim=True)
    chosen = torch.where(suffix < torch.inf, first.gather(1, at), farthest)
    return torch.cat([members.gather(1, order), chosen], dim=1), pairs
