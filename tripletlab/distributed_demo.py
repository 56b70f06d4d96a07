"""Mining per worker versus over all workers, on processes of one machine (notebook 08).

``torch.multiprocessing.spawn`` pickles the function each process runs by its module and
name, so it must live in an importable module, not in a notebook: this one. ``compare``
starts ``world`` processes joined by ``torch.distributed`` (gloo, on loopback), hands
each one its slice of a global batch, and returns what each measured, with its own
batch only and with ``tripletlab.torch_distributed.CrossReplicaLoss``. ``free_port``
is the one place the course, its tests and its tools find a loopback port. Importing
this module loads NumPy only.
"""

from __future__ import annotations

import os
import socket
import tempfile

import numpy as np

__all__ = ["compare", "free_port", "valid_triplets"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def valid_triplets(labels) -> int:
    """How many (anchor, positive, negative) triplets the labels allow: anchor and positive
    of the same class, distinct; the negative of another class."""
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    positives = same.sum(axis=1) - 1
    negatives = len(labels) - positives - 1
    return int((positives * negatives).sum())


def _rows(rank: int, world: int, n: int) -> slice:
    return slice(rank * n // world, (rank + 1) * n // world)


def _worker(rank, world, port, x, y, margin, out):
    import torch
    import torch.distributed as dist

    from tripletlab.torch_distributed import CrossReplicaLoss, gather_batch
    from tripletlab.torch_losses import BatchAllTripletLoss, BatchHardTripletLoss

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        rows = _rows(rank, world, len(x))
        x_local, y_local = torch.as_tensor(x[rows]), torch.as_tensor(y[rows])
        result = {"rank": rank, "world_size": dist.get_world_size(), "rows": len(y_local)}
        for mode in ("local", "global"):
            batch_all = BatchAllTripletLoss(margin)
            batch_hard = BatchHardTripletLoss(margin)
            wrap = CrossReplicaLoss if mode == "global" else lambda loss: loss
            seen = gather_batch(x_local, y_local)[1] if mode == "global" else y_local
            result[mode] = {
                "labels_seen": len(seen),
                "valid_triplets": valid_triplets(seen.numpy()),
                "batch_all": wrap(batch_all)(x_local, y_local).item(),
                "fraction_positive": batch_all.fraction_positive.item(),
                "batch_hard": wrap(batch_hard)(x_local, y_local).item(),
            }
        # one training step's gradient: a linear layer (the identity) under
        # DistributedDataParallel, the batch-all loss of the global batch
        layer = torch.nn.Linear(x.shape[1], x.shape[1], bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.eye(x.shape[1]))
        model = torch.nn.parallel.DistributedDataParallel(layer)
        CrossReplicaLoss(BatchAllTripletLoss(margin))(model(x_local), y_local).backward()
        result["global"]["weight_grad"] = layer.weight.grad.numpy()
        torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def compare(x, y, world: int = 2, margin: float = 0.2) -> list[dict]:
    """Run ``world`` processes on the global batch ``(x, y)`` (split in rank order) and
    return each rank's measurements, in rank order.

    Each rank reports, for ``"local"`` (its own rows only) and ``"global"``
    (``CrossReplicaLoss``): the number of labels it mined over, the number of valid
    triplets, the batch-all loss and fraction of positive triplets and the batch-hard
    loss; for ``"global"`` also ``"weight_grad"``, the gradient a
    ``DistributedDataParallel`` linear layer (the identity, ``(D, D)``) gets from the
    batch-all loss of its embeddings: the single-process one on the global batch.
    """
    import torch
    import torch.multiprocessing as mp

    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, free_port(), x, y, margin, out), nprocs=world)
        return [
            torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=False) for r in range(world)
        ]
