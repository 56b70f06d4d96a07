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
        self.metric = _checks.check_metric(metric)


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
        self.metric = _checks.check_metric(metric)
        self.reduction = _checks.check_reduction(reduction)

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
        self.reduction = _checks.check_reduction(reduction)

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
        self.reduction = _checks.check_reduction(reduction)

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
