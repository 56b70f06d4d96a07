"""``make bench``: speed of the distance core, as ratios against peers timed in the same run.

Peers: ``torch.cdist`` (PyTorch's own pairwise distance, forward + backward) for the
PyTorch backend, ``scipy.spatial.distance.cdist`` for the NumPy backend. A ratio
below 1 means tripletlab is faster. Timings are the best of several runs; compare
ratios, not seconds, across machines.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import torch
from scipy.spatial.distance import cdist

from tripletlab import numpy as tl_np
from tripletlab import torch as tl_torch
from tripletlab.timing import best_time

SIZES = (256, 1024, 2048)
FEATURES = 128


def torch_forward_backward(distance_fn, x: torch.Tensor):
    def run():
        x.grad = None
        distance_fn(x).sum().backward()

    return run


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    print(f"euclidean pairwise distances, D = {FEATURES}, torch threads {torch.get_num_threads()}")
    print(
        f"{'B':>6} {'tripletlab.torch':>17} {'torch.cdist':>12} {'ratio':>6}"
        f" {'tripletlab.numpy':>17} {'scipy cdist':>12} {'ratio':>6}"
    )
    for size in SIZES:
        x = torch.randn(size, FEATURES, requires_grad=True)
        ours = best_time(torch_forward_backward(tl_torch.pairwise_distances, x))
        peer = best_time(torch_forward_backward(lambda z: torch.cdist(z, z), x))
        x_np = rng.normal(size=(size, FEATURES))
        ours_np = best_time(lambda a=x_np: tl_np.pairwise_distances(a), repeats=3)
        peer_np = best_time(lambda a=x_np: cdist(a, a), repeats=3)
        print(
            f"{size:>6} {ours * 1e3:>14.1f} ms {peer * 1e3:>9.1f} ms {ours / peer:>6.2f}"
            f" {ours_np * 1e3:>14.1f} ms {peer_np * 1e3:>9.1f} ms {ours_np / peer_np:>6.2f}"
        )


if __name__ == "__main__":
    main()
