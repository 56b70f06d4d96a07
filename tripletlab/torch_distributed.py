"""Mining over the batches of all workers of ``torch.distributed``.

The PyTorch counterpart of ``tripletlab.tf_distributed``, with the same names and the
same convention: **the update equals that of one device on the global batch**, with
nothing for the user to scale. Inside an initialised process group, each worker
gathers every worker's embeddings and labels (``gather_batch``) before mining, so every
anchor sees every positive and negative of the global batch, and each worker's loss
*value* is that of the single-process loss on the concatenated batch (in rank order).

Gradients and scaling. ``gather_batch`` keeps the other workers' rows constant and
this worker's own rows differentiable: the gradient with respect to them is their slice
of ``dL/dx`` on one process. ``DistributedDataParallel`` *averages* the parameter
gradients over the ``N`` workers, which would give ``1 / N`` of the single-process
update; ``CrossReplicaLoss`` therefore returns ``L`` with its gradient scaled by ``N``
(the gradient an all-gather's adjoint gives when every worker computes the same ``L``,
as in TensorFlow), so that the averaged update is exactly the single-process one. (In
``tf.distribute`` the optimizer *sums*, and ``tripletlab.tf_distributed.CrossReplicaLoss``
returns ``L / N`` instead: the same update.) Workers may hold different numbers of rows.
Outside a process group (or with one worker) both are the plain loss. Importing this
module loads PyTorch only.
"""

from __future__ import annotations

import torch

from tripletlab import torch as tl

__all__ = ["gather_batch", "CrossReplicaLoss"]


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


class _ScaledGradient(torch.autograd.Function):
    """The identity on ``value``, with its gradient multiplied by ``factor``."""

    @staticmethod
    def forward(ctx, value, factor):
        ctx.factor = factor
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class CrossReplicaLoss(torch.nn.Module):
    """A mining loss over the batches of all workers: ``(embeddings, labels) -> loss``.

    ``CrossReplicaLoss(BatchHardTripletLoss(0.2))``, a loss of ``tripletlab.torch_losses``,
    gathers the embeddings and labels of every worker (``gather_batch``) before mining:
    each worker returns the loss ``L`` of the concatenated batch, with more negatives per
    anchor than its own rows hold. Its gradient is ``N`` times this worker's slice of
    the single-process gradient (``N`` workers), so that ``DistributedDataParallel``,
    which averages, makes exactly the single-process update on the concatenated batch:
    train as with one process, nothing to multiply. The wrapped module's
    ``fraction_positive`` (batch-all) is that of the concatenated batch. Workers may hold
    different numbers of rows (the last batch of an epoch, a sampler that does not split
    evenly). Outside a process group it is the wrapped loss.
    """

    def __init__(self, loss: torch.nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, embeddings, labels):
        loss = self.loss(*gather_batch(embeddings, labels))
        world = _world_size()
        return loss if world == 1 else _ScaledGradient.apply(loss, float(world))
