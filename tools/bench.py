"""``make bench``: speed, as ratios against peers timed in the same run.

1. The distance core: ``tripletlab.torch.pairwise_distances`` against ``torch.cdist``
   (forward + backward), ``tripletlab.numpy`` against ``scipy.spatial.distance.cdist``.
2. Online mining, forward + backward on the CPU, D = 128, 8 samples per class, against
   pytorch-metric-learning (PML): batch-all against ``TripletMarginLoss`` over all
   triplets, batch-hard against ``BatchHardMiner`` + ``TripletMarginLoss``, semi-hard
   against ``TripletMarginMiner("semihard")`` + ``TripletMarginLoss`` (PML's semi-hard
   miner keeps every semi-hard triplet rather than one negative per pair: the nearest
   thing it offers).

A ratio below 1 means tripletlab is faster. Times are the best of several runs;
compare ratios, not seconds, across machines. ``python tools/bench.py --quick`` runs
the smaller sizes only.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import torch
from scipy.spatial.distance import cdist

from tripletlab import numpy as tl_np
from tripletlab import torch as tl_torch
from tripletlab.timing import best_time

FEATURES = 128
PER_CLASS = 8


def forward_backward(loss_fn, x: torch.Tensor):
    def run():
        x.grad = None
        loss_fn(x).backward()

    return run


def distances(sizes) -> None:
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    print(f"\n# euclidean pairwise distances, D = {FEATURES}, torch threads {threads}")
    print(
        f"{'B':>6} {'tripletlab.torch':>17} {'torch.cdist':>12} {'ratio':>6}"
        f" {'tripletlab.numpy':>17} {'scipy cdist':>12} {'ratio':>6}"
    )
    for size in sizes:
        x = torch.randn(size, FEATURES, requires_grad=True)
        ours = best_time(forward_backward(lambda z: tl_torch.pairwise_distances(z).sum(), x))
        peer = best_time(forward_backward(lambda z: torch.cdist(z, z).sum(), x))
        x_np = rng.normal(size=(size, FEATURES))
        ours_np = best_time(lambda a=x_np: tl_np.pairwise_distances(a), repeats=3)
        peer_np = best_time(lambda a=x_np: cdist(a, a), repeats=3)
        print(
            f"{size:>6} {ours * 1e3:>14.1f} ms {peer * 1e3:>9.1f} ms {ours / peer:>6.2f}"
            f" {ours_np * 1e3:>14.1f} ms {peer_np * 1e3:>9.1f} ms {ours_np / peer_np:>6.2f}"
        )


def mining(sizes) -> None:
    from pytorch_metric_learning import distances as pml_distances
    from pytorch_metric_learning import losses, miners

    lp = pml_distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    triplet = losses.TripletMarginLoss(margin=0.2, distance=lp)
    hard_miner = miners.BatchHardMiner(distance=lp)
    semihard_miner = miners.TripletMarginMiner(0.2, distance=lp, type_of_triplets="semihard")
    pairs = {
        "batch-all": (
            lambda x, y: tl_torch.batch_all_triplet_loss(x, y)[0],
            lambda x, y: triplet(x, y),
        ),
        "batch-hard": (
            lambda x, y: tl_torch.batch_hard_triplet_loss(x, y),
            lambda x, y: triplet(x, y, hard_miner(x, y)),
        ),
        "semi-hard": (
            lambda x, y: tl_torch.batch_semihard_triplet_loss(x, y),
            lambda x, y: triplet(x, y, semihard_miner(x, y)),
        ),
    }
    print(f"\n# online mining, forward + backward, D = {FEATURES}, {PER_CLASS} per class")
    print(f"{'B':>6} {'loss':<11} {'tripletlab':>12} {'PML':>12} {'ratio':>6}")
    torch.manual_seed(0)
    for size in sizes:
        x = torch.randn(size, FEATURES, requires_grad=True)
        y = torch.arange(size) // PER_CLASS
        repeats = 3 if size <= 1024 else 1
        for name, (ours_fn, peer_fn) in pairs.items():
            ours = best_time(forward_backward(lambda z, f=ours_fn, y=y: f(z, y), x), repeats)
            peer = best_time(forward_backward(lambda z, f=peer_fn, y=y: f(z, y), x), repeats)
            print(
                f"{size:>6} {name:<11} {ours * 1e3:>9.1f} ms {peer * 1e3:>9.1f} ms"
                f" {ours / peer:>6.2f}"
            )


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    distances((256, 1024) if quick else (256, 1024, 2048))
    mining((256,) if quick else (256, 1024, 2048))


if __name__ == "__main__":
    main(sys.argv[1:])
