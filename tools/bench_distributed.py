"""What mining across workers costs: ``CrossReplicaLoss`` on 2 processes against one
process mining the same global batch.

Forward + backward of the loss alone (no model), D = 128, 8 samples per class, on the
CPU. Two processes joined by ``torch.distributed`` (gloo, loopback) each hold B rows
(``--per-worker``, 512 by default) and run ``CrossReplicaLoss(loss)``: all_gather of
the embeddings and labels, then mining over the N x B rows. They are compared with:

- one process mining the global batch (N x B rows), with as many threads as the
  workers have together (the same cores), and with one thread (one worker's share);
- each worker mining its own B rows only (what the gathering replaces).

Times are the best of ``--repeats`` steps after a warm-up; a distributed step takes
as long as its slowest worker (each step starts at a barrier). Prints a table and the
ratios: distributed / one process with all the threads, with one thread (the cost of
the gathering itself: every worker mines the whole global batch on its one thread),
and distributed / local only (global against per-worker mining).

Usage: ``python tools/bench_distributed.py [--per-worker 512] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from tripletlab.distributed_demo import free_port
from tripletlab.timing import best_time

FEATURES = 128
PER_CLASS = 8
MARGIN = 0.2


def batch(rows: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, FEATURES, generator=generator)
    return x, torch.arange(rows) // PER_CLASS


def losses():
    from tripletlab.torch_losses import BatchAllTripletLoss, BatchHardTripletLoss

    return {"batch-all": BatchAllTripletLoss(MARGIN), "batch-hard": BatchHardTripletLoss(MARGIN)}


def step(loss_fn, x, y) -> None:
    xt = x.detach().requires_grad_(True)
    loss_fn(xt, y).backward()


def single_process(rows: int, threads: int, repeats: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    x, y = batch(rows)
    return {
        name: best_time(lambda f=f: step(f, x, y), repeats, warmup=2)
        for name, f in losses().items()
    }


def _worker(rank, world, port, per_worker, repeats, out):
    import torch
    import torch.distributed as dist

    from tripletlab.torch_distributed import CrossReplicaLoss

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        x, y = batch(world * per_worker)
        rows = slice(rank * per_worker, (rank + 1) * per_worker)
        x_local, y_local = x[rows].contiguous(), y[rows].contiguous()
        result = {}
        for name, loss_fn in losses().items():
            for mode, fn in (("global", CrossReplicaLoss(loss_fn)), ("local", loss_fn)):
                times = []
                for i in range(2 + repeats):
                    dist.barrier()
                    start = time.perf_counter()
                    step(fn, x_local, y_local)
                    elapsed = torch.tensor([time.perf_counter() - start])
                    slowest = [torch.zeros(1) for _ in range(world)]
                    dist.all_gather(slowest, elapsed)
                    if i >= 2:  # after the warm-up
                        times.append(max(t.item() for t in slowest))
                result[f"{name} {mode}"] = min(times)
        if rank == 0:
            with open(os.path.join(out, "times.json"), "w") as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()


def distributed(world: int, per_worker: int, repeats: int) -> dict[str, float]:
    import torch.multiprocessing as mp

    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, port, per_worker, repeats, out), nprocs=world)
        with open(os.path.join(out, "times.json")) as f:
            return json.load(f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-worker", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    world, per_worker = args.workers, args.per_worker
    total = world * per_worker

    import torch

    dist_times = distributed(world, per_worker, args.repeats)
    one_all = single_process(total, world, args.repeats)
    one_single = single_process(total, 1, args.repeats)

    print(
        f"forward + backward, D = {FEATURES}, {PER_CLASS} per class, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{world} workers x B = {per_worker} (gloo, 1 thread each) vs 1 process, B = {total}")
    header = (
        f"{'loss':11s} {'1 proc ' + str(world) + ' thr':>12s} {'1 proc 1 thr':>12s} "
        f"{'distributed':>12s} {'local only':>12s} {'d/1p ' + str(world) + 'thr':>9s} "
        f"{'d/1p 1thr':>9s} {'d/local':>8s}"
    )
    print(header)
    for name in losses():
        g, loc = dist_times[f"{name} global"], dist_times[f"{name} local"]
        print(
            f"{name:11s} {one_all[name] * 1e3:9.2f} ms {one_single[name] * 1e3:9.2f} ms "
            f"{g * 1e3:9.2f} ms {loc * 1e3:9.2f} ms {g / one_all[name]:9.2f} "
            f"{g / one_single[name]:9.2f} {g / loc:8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
