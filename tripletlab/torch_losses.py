"""The ``tripletlab.torch`` losses as ``torch.nn.Module`` objects, for training loops.

Each class stores its hyperparameters (validated when it is built, so a bad margin or
metric fails at construction, not at the first batch) and calls the function of the
same name in ``tripletlab.torch`` in ``forward``: there is no second copy of any
formula, and values, gradients, dtypes and edge cases are those of the functions.

=============================  ================================  =================================
class                          forward(...)                      wraps ``tripletlab.torch.``
=============================  ================================  =================================
``BatchAllTripletLoss``        ``(embeddings, labels)``          ``batch_all_triplet_loss``
``BatchHardTripletLoss``       ``(embeddings, labels)``          ``batch_hard_triplet_loss``
``BatchSemiHardTripletLoss``   ``(embeddings, labels)``          ``batch_semihard_triplet_loss``
``TripletLoss``                ``(anchor, positive, negative)``  ``triplet_loss``
``ContrastiveLoss``            ``(x1, x2, same)``                ``contrastive_loss``
``ModifiedTripletLoss``        ``(scores)``                      ``modified_triplet_loss``
``InfoNCELoss``                ``(queries, keys, labels=None)``  ``info_nce_loss``
``SupervisedContrastiveLoss``  ``(embeddings, labels)``          ``supervised_contrastive_loss``
=============================  ================================  =================================

``BatchAllTripletLoss`` returns the loss only and keeps the fraction of valid triplets
with a positive loss in ``self.fraction_positive`` (a detached 0-d tensor, ``None``
before the first call) for logging.

Mixed precision: float16/bfloat16 embeddings are computed in float32 and the loss has
their dtype; under ``torch.autocast`` the functions run their matrix products with
autocast off, so the mining picks are those of float32 (see ``tripletlab.torch``). All
of it works under ``torch.compile`` (``fullgraph=True`` too). Importing this module
loads PyTorch only.
"""

from __future__ import annotations

import torch

from tripletlab import _checks
from tripletlab import torch as tl

__all__ = [
    "BatchAllTripletLoss",
    "BatchHardTripletLoss",
    "BatchSemiHardTripletLoss",
    "TripletLoss",
    "ContrastiveLoss",
    "ModifiedTripletLoss",
    "InfoNCELoss",
    "SupervisedContrastiveLoss",
    "CrossWorkerLoss",
    "gather_batch",
]


class _Loss(torch.nn.Module):
    """Shared ``__repr__`` from the hyperparameters in ``_config``."""

    _config: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self._config)


class _MiningLoss(_Loss):
    _config = ("margin", "metric")

    def __init__(self, margin: float = 0.2, metric: str = "euclidean"):
        super().__init__()
        self.margin = _checks.check_margin(margin)
        _checks.check_metric(metric)
        self.metric = metric


class BatchAllTripletLoss(_MiningLoss):
    """``tripletlab.torch.batch_all_triplet_loss`` as a module: ``(embeddings, labels) -> loss``.

    After each call, ``fraction_positive`` holds the batch's fraction of valid triplets
    with a positive loss (a detached 0-d tensor; ``.item()`` it to log).
    """

    def __init__(self, margin: float = 0.2, metric: str = "euclidean"):
        super().__init__(margin, metric)
        self.fraction_positive: torch.Tensor | None = None

    def forward(self, embeddings, labels):
        loss, fraction = tl.batch_all_triplet_loss(embeddings, labels, self.margin, self.metric)
        self.fraction_positive = fraction.detach()
        return loss


class BatchHardTripletLoss(_MiningLoss):
    """``tripletlab.torch.batch_hard_triplet_loss`` as a module: ``(embeddings, labels) -> loss``.

    ``soft=True`` is the soft margin ``softplus(d_ap - d_an)`` (the margin is then unused).
    """

    _config = ("margin", "metric", "soft")

    def __init__(self, margin: float = 0.2, metric: str = "euclidean", soft: bool = False):
        super().__init__(margin, metric)
        self.soft = _checks.check_bool("soft", soft)

    def forward(self, embeddings, labels):
        return tl.batch_hard_triplet_loss(
            embeddings, labels, self.margin, self.metric, soft=self.soft
        )


class BatchSemiHardTripletLoss(_MiningLoss):
    """``tripletlab.torch.batch_semihard_triplet_loss`` as a module:
    ``(embeddings, labels) -> loss``."""

    def forward(self, embeddings, labels):
        return tl.batch_semihard_triplet_loss(embeddings, labels, self.margin, self.metric)


class TripletLoss(_Loss):
    """``tripletlab.torch.triplet_loss`` as a module: ``(anchor, positive, negative) -> loss``."""

    _config = ("margin", "metric", "reduction")

    def __init__(self, margin: float = 0.2, metric: str = "sqeuclidean", reduction: str = "mean"):
        super().__init__()
        self.margin = _checks.check_margin(margin)
        _checks.check_metric(metric)
        _checks.check_reduction(reduction)
        self.metric, self.reduction = metric, reduction

    def forward(self, anchor, positive, negative):
        return tl.triplet_loss(
            anchor, positive, negative, self.margin, self.metric, self.reduction
        )


class ContrastiveLoss(_Loss):
    """``tripletlab.torch.contrastive_loss`` as a module: ``(x1, x2, same) -> loss``,
    ``same`` 1 (or True) for a pair of the same class."""

    _config = ("margin", "reduction")

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.margin = _checks.check_margin(margin)
        _checks.check_reduction(reduction)
        self.reduction = reduction

    def forward(self, x1, x2, same):
        return tl.contrastive_loss(x1, x2, same, self.margin, self.reduction)


class ModifiedTripletLoss(_Loss):
    """``tripletlab.torch.modified_triplet_loss`` as a module: ``(scores) -> loss``, on a
    ``(B, B)`` similarity matrix whose diagonal holds the positives (for example
    ``tripletlab.torch.similarity_matrix(anchors, positives)``)."""

    _config = ("margin", "reduction")

    def __init__(self, margin: float = 0.25, reduction: str = "sum"):
        super().__init__()
        self.margin = _checks.check_margin(margin)
        _checks.check_reduction(reduction)
        self.reduction = reduction

    def forward(self, scores):
        return tl.modified_triplet_loss(scores, self.margin, self.reduction)


class InfoNCELoss(_Loss):
    """``tripletlab.torch.info_nce_loss`` as a module: ``(queries, keys, labels=None) ->
    loss``, row ``i`` of ``queries`` paired with row ``i`` of ``keys``; ``labels`` (class
    ids) take in-batch false negatives out of the denominators. sentence-transformers'
    ``MultipleNegativesRankingLoss(scale=s)`` is ``InfoNCELoss(temperature=1 / s)``."""

    _config = ("temperature", "symmetric", "reduction")

    def __init__(self, temperature: float = 0.05, symmetric: bool = False, reduction="mean"):
        super().__init__()
        self.temperature = _checks.check_temperature(temperature)
        self.symmetric = _checks.check_bool("symmetric", symmetric)
        self.reduction = _checks.check_reduction(reduction)

    def forward(self, queries, keys, labels=None):
        return tl.info_nce_loss(
            queries, keys, self.temperature, self.symmetric, labels, self.reduction
        )


class SupervisedContrastiveLoss(_Loss):
    """``tripletlab.torch.supervised_contrastive_loss`` as a module: ``(embeddings, labels)
    -> loss`` (NT-Xent when ``labels`` are instance ids of two views each)."""

    _config = ("temperature",)

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = _checks.check_temperature(temperature)

    def forward(self, embeddings, labels):
        return tl.supervised_contrastive_loss(embeddings, labels, self.temperature)


# --------------------------------------------------------------------------- across workers


_GATHERED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _local_batch(embeddings, labels):
    """``(embeddings, labels as int64, problem)``: this worker's batch, validated without
    raising (a worker that raised alone would leave the others waiting in a collective);
    ``problem`` is the error message, or None."""
    try:
        x, _ = tl._as_matrix("embeddings", embeddings)
        if embeddings.is_floating_point():  # half precision too: gathered as given
            x = embeddings
        return x, tl._as_labels(labels, x).to(torch.int64), None
    except (ValueError, AttributeError) as error:
        return None, None, str(error)


def gather_batch(embeddings: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Every worker's embeddings and labels, concatenated in rank order.

    Workers may hold different numbers of rows: each first learns every worker's number
    of rows, features and dtype (one small ``all_gather``), pads its rows to the largest
    count for ``torch.distributed.all_gather``, and trims the pads off what it receives.
    A batch that is invalid on any worker (not a matrix, labels of another length,
    another feature count or dtype than the other workers) raises the same
    ``ValueError`` on every worker, before the embeddings are exchanged. The other
    workers' rows are constants here; this worker's own slice is the tensor passed in,
    so the gradient reaches its embeddings. Without an initialised process group, or
    with one worker, returns the inputs unchanged (the labels as a tensor).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return embeddings, torch.as_tensor(labels, device=embeddings.device)
    world, rank = dist.get_world_size(), dist.get_rank()
    x, y, problem = _local_batch(embeddings, labels)
    device = embeddings.device if isinstance(embeddings, torch.Tensor) else None
    code = _GATHERED_DTYPES.index(x.dtype) if x is not None and x.dtype in _GATHERED_DTYPES else -1
    rows, features = (x.shape[0], x.shape[1]) if x is not None else (0, 0)
    meta = torch.tensor([problem is None, rows, features, code], device=device)
    metas = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(metas, meta)
    ok, counts, dims, codes = torch.stack(metas).cpu().T.tolist()
    if not all(ok):
        bad = [r for r in range(world) if not ok[r]]
        mine = f": {problem}" if problem else ""
        raise ValueError(f"gather_batch: the batch of worker(s) {bad} is invalid{mine}")
    if len(set(dims)) > 1 or len(set(codes)) > 1 or -1 in codes:
        shapes = ", ".join(
            f"worker {r} ({counts[r]}, {dims[r]}) "
            f"{_GATHERED_DTYPES[codes[r]] if codes[r] >= 0 else 'of another dtype'}"
            for r in range(world)
        )
        raise ValueError(
            "embeddings must have the same number of features and the same float dtype on "
            f"every worker; got {shapes}"
        )
    most = max(counts)
    padded_x = torch.cat([x.detach(), x.new_zeros((most - rows, features))])
    padded_y = torch.cat([y, y.new_zeros(most - rows)])
    xs = [torch.empty_like(padded_x) for _ in range(world)]
    ys = [torch.empty_like(padded_y) for _ in range(world)]
    dist.all_gather(xs, padded_x.contiguous())
    dist.all_gather(ys, padded_y.contiguous())
    xs = [part[:count] for part, count in zip(xs, counts, strict=True)]
    ys = [part[:count] for part, count in zip(ys, counts, strict=True)]
    xs[rank] = x
    return torch.cat(xs), torch.cat(ys)


class CrossWorkerLoss(torch.nn.Module):
    """A mining loss over the batches of all workers: ``(embeddings, labels) -> loss``.

    Any module called as ``(embeddings, labels)`` can be wrapped: the three mining losses
    and ``SupervisedContrastiveLoss`` (whose every anchor then has the negatives, and
    the positives, of every worker).

    ``CrossWorkerLoss(BatchHardTripletLoss(0.2))`` gathers the embeddings and labels of
    every worker (``gather_batch``) before mining, so each worker sees the loss of the
    concatenated batch, and more negatives per anchor. On each worker, the gradient with
    respect to its own embeddings is its slice of the single-process gradient on the
    concatenated batch. ``DistributedDataParallel`` averages the parameter gradients
    over the workers, so the update is ``1 / world_size`` times the single-process one
    on the concatenated batch: multiply the loss by ``world_size`` (or the learning rate)
    to get exactly that. The wrapped module's ``fraction_positive`` (batch-all) is that
    of the concatenated batch. Workers may hold different numbers of rows (the last batch
    of an epoch, a sampler that does not split evenly), as in
    ``tripletlab.tf_distributed``.
    """

    def __init__(self, loss: torch.nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, embeddings, labels):
        return self.loss(*gather_batch(embeddings, labels))
