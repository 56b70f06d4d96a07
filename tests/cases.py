"""Shared test inputs: the metrics, the mining strategies, awkward label layouts, and one
way to call a mining loss and its loop oracle (``tests/oracle.py``) by name."""

import numpy as np
import oracle

from tripletlab._checks import METRICS  # every metric of pairwise_distances

MINING = ("batch_all", "batch_hard", "batch_hard_soft", "batch_semihard")
"""The mining strategies by name (``batch_hard_soft``: batch-hard with ``soft=True``)."""

__all__ = ["METRICS", "MINING", "layouts", "mining_call", "mining_oracle"]


def layouts():
    """Label layouts x awkward embeddings: (embeddings (B, 5) float64, labels (B,) int64)."""
    rng = np.random.default_rng(10)
    balanced = np.repeat(np.arange(4), 3)
    duplicated = rng.normal(size=(12, 5))
    duplicated[1] = duplicated[0]  # same class
    duplicated[5] = duplicated[0]  # another class, same point
    zero_rows = rng.normal(size=(12, 5))
    zero_rows[[2, 7]] = 0.0
    return {
        "balanced P x K": (rng.normal(size=(12, 5)), balanced),
        "imbalanced": (rng.normal(size=(11, 5)), np.array([0] * 5 + [1] * 2 + [2] + [3] * 3)),
        "one class": (rng.normal(size=(6, 5)), np.zeros(6, np.int64)),
        "all singletons": (rng.normal(size=(6, 5)), np.arange(6)),
        "duplicated embeddings": (duplicated, balanced),
        "zero rows": (zero_rows, balanced),
    }


def mining_call(tl, kind, embeddings, labels, margin=0.2, metric="euclidean"):
    """The loss of one mining strategy (batch-all's loss without its fraction)."""
    if kind == "batch_all":
        return tl.batch_all_triplet_loss(embeddings, labels, margin, metric)[0]
    if kind == "batch_semihard":
        return tl.batch_semihard_triplet_loss(embeddings, labels, margin, metric)
    return tl.batch_hard_triplet_loss(
        embeddings, labels, margin, metric, soft=kind.endswith("soft")
    )


def mining_oracle(kind, embeddings, labels, margin=0.2, metric="euclidean"):
    """The loop oracle of ``mining_call``."""
    if kind == "batch_all":
        return oracle.batch_all(embeddings, labels, margin, metric)[0]
    if kind == "batch_semihard":
        return oracle.batch_semihard(embeddings, labels, margin, metric)
    return oracle.batch_hard(embeddings, labels, margin, metric, soft=kind.endswith("soft"))
