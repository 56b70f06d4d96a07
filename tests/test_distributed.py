"""Mining across workers: with 2 processes (gloo on loopback),
``tripletlab.torch_distributed.CrossReplicaLoss`` gives on each rank the loss of the
concatenated batch, each rank's gradient is ``N`` times its slice of the single-process
gradient, and the update of a ``DistributedDataParallel`` model is exactly the
single-process one (the convention of ``tripletlab.tf_distributed`` too)."""

import numpy as np
import pytest
from backends import load

from tripletlab.distributed_demo import free_port

WORLD = 2


def global_batch(seed=50, size=8, dim=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(WORLD * size, dim)).astype(np.float32)
    # every class on both workers: the cross-worker negatives and positives matter
    return x, np.arange(WORLD * size) % 3


def losses():
    from tripletlab import torch_losses as tll

    return {
        "batch_all": tll.BatchAllTripletLoss(0.3),
        "batch_hard": tll.BatchHardTripletLoss(0.3, "sqeuclidean"),
        "batch_semihard": tll.BatchSemiHardTripletLoss(0.3),
    }


def _wrapped_losses_and_gradients(x_local, y_local) -> dict:
    """``{name: (loss, gradient)}`` of every loss of ``losses()`` wrapped in
    ``CrossReplicaLoss``, on this worker's rows (inside an initialised process group)."""
    import torch

    from tripletlab.torch_distributed import CrossReplicaLoss

    results = {}
    for name, loss_fn in losses().items():
        xt = torch.tensor(x_local, requires_grad=True)
        loss = CrossReplicaLoss(loss_fn)(xt, torch.as_tensor(y_local))
        (grad,) = torch.autograd.grad(loss, xt)
        results[name] = (loss.item(), grad.numpy())
    return results


def _linear(dim):
    import torch

    layer = torch.nn.Linear(dim, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.random.default_rng(52).normal(size=(3, dim))))
    return layer


def _ddp_weight_grad(x_local, y_local):
    """The weight gradient of a ``DistributedDataParallel`` linear layer after one
    backward pass of the wrapped batch-all loss (the gradients averaged over the ranks)."""
    import torch

    from tripletlab.torch_distributed import CrossReplicaLoss

    layer = _linear(x_local.shape[1])
    model = torch.nn.parallel.DistributedDataParallel(layer)
    loss_fn = CrossReplicaLoss(losses()["batch_all"])
    loss_fn(model(torch.tensor(x_local)), torch.as_tensor(y_local)).backward()
    return layer.weight.grad.numpy()


def worker(rank, port, out):
    import torch
    import torch.distributed as dist

    from tripletlab.torch_distributed import CrossReplicaLoss

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        x, y = global_batch()
        local = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
        results = _wrapped_losses_and_gradients(x[local], y[local])
        wrapped = losses()["batch_all"]
        CrossReplicaLoss(wrapped)(torch.tensor(x[local]), torch.as_tensor(y[local]))
        results["fraction"] = wrapped.fraction_positive.item()
        results["weight_grad"] = _ddp_weight_grad(x[local], y[local])
        torch.save(results, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_cross_worker_loss_equals_the_loss_of_the_concatenated_batch(tmp_path):
    torch = pytest.importorskip("torch")
    tl = load("torch")
    import torch.multiprocessing as mp

    from tripletlab.torch_distributed import CrossReplicaLoss

    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    x, y = global_batch()
    for name, loss_fn in losses().items():
        xt = torch.tensor(x, requires_grad=True)
        want = CrossReplicaLoss(loss_fn)(xt, y)  # no process group: the plain loss
        (want_grad,) = torch.autograd.grad(want, xt)
        assert want.item() > 0
        for rank, results in enumerate(ranks):
            loss, grad = results[name]
            assert loss == pytest.approx(want.item(), rel=1e-6), (name, rank)
            rows = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
            np.testing.assert_allclose(grad, WORLD * want_grad[rows].numpy(), rtol=1e-5, atol=1e-7)
        # the mining saw the other worker: the local-only loss is different
        local = loss_fn(torch.tensor(x[: len(x) // WORLD]), y[: len(x) // WORLD])
        assert local.item() != pytest.approx(want.item())
    _, fraction = tl.batch_all_triplet_loss(torch.tensor(x), y, 0.3)
    assert all(r["fraction"] == pytest.approx(fraction.item()) for r in ranks)
    # the update: one process's weight gradient on the global batch, nothing to multiply
    layer = _linear(x.shape[1])
    losses()["batch_all"](layer(torch.tensor(x)), torch.as_tensor(y)).backward()
    for results in ranks:
        np.testing.assert_allclose(
            results["weight_grad"], layer.weight.grad.numpy(), rtol=1e-5, atol=1e-7
        )


# ----------------------------------------------------------------- uneven batches

SIZES = (6, 4)  # rows on rank 0 and rank 1


def uneven_worker(rank, port, out):
    import torch
    import torch.distributed as dist

    from tripletlab.torch_distributed import CrossReplicaLoss

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        x, y = global_batch(seed=51, size=5)  # 10 rows: 6 on rank 0, 4 on rank 1
        local = slice(sum(SIZES[:rank]), sum(SIZES[: rank + 1]))
        results = _wrapped_losses_and_gradients(x[local], y[local])
        # an inconsistent batch raises on every rank, before the embeddings are exchanged
        for bad in ("features", "labels"):
            xt = torch.tensor(x[local][:, : 5 - rank if bad == "features" else 5])
            yt = torch.as_tensor(y[local][: len(xt) - (rank if bad == "labels" else 0)])
            try:
                CrossReplicaLoss(losses()["batch_hard"])(xt, yt)
                results[bad] = "no error"
            except ValueError as error:
                results[bad] = str(error)
        torch.save(results, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_cross_worker_loss_with_uneven_batches(tmp_path):
    """6 rows on one worker, 4 on the other: the loss of the 10 rows on both, each worker
    ``N`` times its slice of the gradient; a mismatch raises a ValueError on both workers."""
    torch = pytest.importorskip("torch")
    load("torch")
    import torch.multiprocessing as mp

    from tripletlab.torch_distributed import CrossReplicaLoss

    mp.spawn(uneven_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    x, y = global_batch(seed=51, size=5)
    for name, loss_fn in losses().items():
        xt = torch.tensor(x, requires_grad=True)
        want = CrossReplicaLoss(loss_fn)(xt, y)
        (want_grad,) = torch.autograd.grad(want, xt)
        assert want.item() > 0
        for rank, results in enumerate(ranks):
            loss, grad = results[name]
            assert loss == pytest.approx(want.item(), rel=1e-6), (name, rank)
            rows = slice(sum(SIZES[:rank]), sum(SIZES[: rank + 1]))
            np.testing.assert_allclose(grad, WORLD * want_grad[rows].numpy(), rtol=1e-5, atol=1e-7)
    for results in ranks:
        assert "same number of features" in results["features"]
        assert "worker(s) [1] is invalid" in results["labels"]
    assert "labels must have one entry per embedding row" in ranks[1]["labels"]
