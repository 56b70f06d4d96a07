"""Triplets placed exactly on the mining boundaries count the same everywhere.

Every batch here has distances that every backend computes exactly (points on a line:
``sqrt(x**2) == |x|`` in floating point, and small integers), so that the only thing
that can differ is the rule. The rules (``tripletlab.numpy``'s module docstring):

- batch-all: a valid triplet is active when its hinge ``d_ap - d_an + margin``, as
  computed in the dtype, is ``> 0``; ``d_an < d_ap + margin`` rounds differently, and the
  batches below are chosen where the two disagree;
- semi-hard: a negative is semi-hard when strictly farther, ``d_an > d_ap``.

The three backends, the torch loss module, and pytorch-metric-learning (when installed)
must give the count of a loop that applies the rule in the dtype, in float32 and float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from backends import ALL, load, to_backend, to_numpy

DTYPES = ("float32", "float64")


def line(anchor_gap, negative_gap):
    """An anchor at 0, its positive at ``+anchor_gap``, a negative at ``-negative_gap``."""
    return np.array([[0.0], [anchor_gap], [-negative_gap]]), np.array([0, 0, 1])


# (name, embeddings (B, D), labels, margin, dtype): d_ap and d_an of the first triplet are
# exact; the other valid triplet, (1, 0, 2), is far from its boundary
BOUNDARY = [
    # hinge exactly 0 (dyadic numbers): never active
    ("exact zero", *line(1.0, 1.25), 0.25, "float32"),
    ("exact zero", *line(1.0, 1.25), 0.25, "float64"),
    ("margin 0, d_an = d_ap", *line(1.0, 1.0), 0.0, "float32"),
    ("margin 0, d_an = d_ap", *line(1.0, 1.0), 0.0, "float64"),
    # the reproducer: 1 - 1.2 + 0.2 = 5.6e-17 > 0 in float64, but 1.2 < 1 + 0.2 is
    # false; in float32 the hinge is -4.5e-8 and both rules say inactive
    ("issue 14", *line(1.0, 1.2), 0.2, "float64"),
    ("issue 14", *line(1.0, 1.2), 0.2, "float32"),
    # where the hinge and the rearranged comparison disagree (found by search)
    ("0.5 vs 0.7", *line(0.5, 0.7), 0.2, "float32"),
    ("0.5 vs 0.7", *line(0.5, 0.7), 0.2, "float64"),
    ("1 vs 1.3", *line(1.0, 1.3), 0.3, "float32"),
    ("3 vs 3.1", *line(3.0, 3.1), 0.1, "float32"),
    ("3 vs 3.3", *line(3.0, 3.3), 0.3, "float64"),
    ("0.5 vs 0.6", *line(0.5, 0.6), 0.1, "float64"),
]


def integer_batch(seed=0, size=18):
    """Points on a line at small integers, many of them tied: integer margins put a large
    share of the valid triplets exactly on the boundary, in every metric but cosine."""
    rng = np.random.default_rng(seed)
    return rng.integers(-4, 5, size=(size, 1)).astype(np.float64), rng.integers(0, 3, size)


def rule_counts(x, labels, margin, dtype, metric="euclidean"):
    """``(active, valid, mean hinge of the active)`` by a triple loop, in ``dtype``."""
    t = np.dtype(dtype).type
    points = x.astype(dtype)
    dist = [[t(np.sqrt(np.sum((u.astype(np.float64) - v) ** 2))) for v in points] for u in points]
    if metric == "sqeuclidean":
        dist = [[t(d * d) for d in row] for row in dist]
    elif metric == "l1":
        dist = [[t(np.abs(u.astype(np.float64) - v).sum()) for v in points] for u in points]
    active, valid, hinges = 0, 0, []
    for a in range(len(points)):
        for p in range(len(points)):
            for n in range(len(points)):
                if a != p and labels[a] == labels[p] and labels[n] != labels[a]:
                    valid += 1
                    hinge = dist[a][p] - dist[a][n] + t(margin)  # in the dtype
                    if hinge > 0:
                        active += 1
                        hinges.append(float(hinge))
    return active, valid, (sum(hinges) / len(hinges) if hinges else 0.0)


def ours(backend, x, labels, margin, dtype, metric="euclidean"):
    """``(fraction_positive, loss)`` of ``batch_all_triplet_loss`` in one backend, or of
    the torch module (``torch_losses``)."""
    if backend == "torch_losses":
        load("torch")
        import torch

        from tripletlab.torch_losses import BatchAllTripletLoss

        module = BatchAllTripletLoss(margin, metric)
        loss = module(to_backend("torch", x, dtype), torch.as_tensor(labels))
        return float(module.fraction_positive), float(to_numpy(loss))
    tl = load(backend)
    loss, fraction = tl.batch_all_triplet_loss(
        to_backend(backend, x, dtype), labels, margin, metric
    )
    return float(to_numpy(fraction)), float(to_numpy(loss))


def pml_counts(x, labels, margin, dtype, metric="euclidean"):
    """``(active, valid, loss)`` of pytorch-metric-learning's TripletMarginLoss over all
    triplets, or None where it is not installed."""
    try:
        import torch
        from pytorch_metric_learning import distances, losses, reducers
    except ImportError:
        return None
    power = 2 if metric == "sqeuclidean" else 1
    distance = distances.LpDistance(
        normalize_embeddings=False, p=1 if metric == "l1" else 2, power=power
    )
    xt, yt = torch.as_tensor(x).to(getattr(torch, dtype)), torch.as_tensor(labels)
    per = losses.TripletMarginLoss(margin, distance=distance, reducer=reducers.DoNothingReducer())
    triplets = per(xt, yt)["loss"]["losses"]
    mean = losses.TripletMarginLoss(margin, distance=distance)(xt, yt)  # AvgNonZeroReducer
    return int((triplets > 0).sum()), triplets.numel(), float(mean)


def assert_counts(x, labels, margin, dtype, metric="euclidean"):
    active, valid, mean = rule_counts(x, labels, margin, dtype, metric)
    assert valid > 0
    for backend in (*ALL, "torch_losses"):
        fraction, loss = ours(backend, x, labels, margin, dtype, metric)
        assert round(fraction * valid) == active, (backend, fraction * valid, active)
        assert fraction == pytest.approx(active / valid, rel=1e-6), backend
        assert loss == pytest.approx(mean, rel=1e-5, abs=1e-6), backend
    theirs = pml_counts(x, labels, margin, dtype, metric)
    if theirs is not None:
        assert theirs[:2] == (active, valid), ("pytorch-metric-learning", theirs, active)
        assert theirs[2] == pytest.approx(mean, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "x", "labels", "margin", "dtype"),
    BOUNDARY,
    ids=[f"{case[0]}-{case[-1]}" for case in BOUNDARY],
)
def test_batch_all_counts_the_boundary_triplet_by_the_hinge(name, x, labels, margin, dtype):
    assert_counts(x, labels, margin, dtype)


def test_the_chosen_batches_are_where_the_two_rules_disagree():
    """The cases are not vacuous: the rearranged rule would count them otherwise."""
    disagree = set()
    for name, x, _, margin, dtype in BOUNDARY:
        t = np.dtype(dtype).type
        d_ap, d_an = t(x[1, 0]), t(-x[2, 0])
        if ((d_ap - d_an) + t(margin) > 0) != (d_an < d_ap + t(margin)):
            disagree.add((name, dtype))
    assert disagree == {
        ("issue 14", "float64"),
        ("0.5 vs 0.7", "float32"),
        ("0.5 vs 0.7", "float64"),
        ("1 vs 1.3", "float32"),
        ("3 vs 3.1", "float32"),
        ("3 vs 3.3", "float64"),
        ("0.5 vs 0.6", "float64"),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "l1"])
@pytest.mark.parametrize("margin", [0.0, 1.0, 2.0])
def test_batch_all_on_integer_points_full_of_exact_boundaries(dtype, metric, margin):
    x, labels = integer_batch()
    assert_counts(x, labels, margin, dtype, metric)


# ----------------------------------------------------------------- semi-hard: d_an = d_ap


def semihard_rule(x, labels, margin, dtype, metric="euclidean", strict=True):
    """The loss of a loop with the strict rule: the closest negative with ``d_an > d_ap``,
    else the farthest negative; the mean over (a, p) pairs whose anchor has a negative.
    ``strict=False``: ``d_an >= d_ap``, the rule the tests must tell apart."""
    t = np.dtype(dtype).type
    points = x.astype(dtype).astype(np.float64)
    diff = np.abs(points[:, None, :] - points[None, :, :])
    dist = {"l1": diff.sum(-1), "sqeuclidean": (diff**2).sum(-1)}.get(
        metric, np.sqrt((diff**2).sum(-1))
    )
    dist = dist.astype(dtype)
    losses = []
    for a in range(len(points)):
        negatives = [dist[a, n] for n in range(len(points)) if labels[n] != labels[a]]
        for p in range(len(points)):
            if p == a or labels[p] != labels[a] or not negatives:
                continue
            farther = [d for d in negatives if d > dist[a, p] or (not strict and d == dist[a, p])]
            chosen = min(farther) if farther else max(negatives)
            losses.append(max(float(dist[a, p] - chosen + t(margin)), 0.0))
    return sum(losses) / len(losses) if losses else 0.0


SEMIHARD = [
    # anchor 0, positive at 1; a negative tied at -1 and one farther at 2: the tied one is
    # not semi-hard, so the chosen one is at 2 (loss max(1 - 2 + m, 0) = 0 for m = 0.5),
    # where ">=" would choose the tie (loss m); the same for the anchor at 1
    ("tie and a farther one", np.array([[0.0], [1.0], [-1.0], [2.0]]), np.array([0, 0, 1, 1])),
    # only a tied negative and a closer one: no semi-hard negative, the farthest is chosen
    ("tie is the farthest", np.array([[0.0], [1.0], [-1.0], [0.5]]), np.array([0, 0, 1, 1])),
    ("ties everywhere", *integer_batch(seed=3, size=14)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "l1"])
@pytest.mark.parametrize("case", range(len(SEMIHARD)), ids=[c[0] for c in SEMIHARD])
def test_semihard_negative_is_strictly_farther(case, metric, dtype):
    _, x, labels = SEMIHARD[case]
    want = semihard_rule(x, labels, 0.5, dtype, metric)
    for backend in ALL:
        tl = load(backend)
        got = tl.batch_semihard_triplet_loss(to_backend(backend, x, dtype), labels, 0.5, metric)
        assert float(to_numpy(got)) == pytest.approx(want, rel=1e-6, abs=1e-7), backend
    if case == 0:  # not vacuous: ">=" would choose the tie
        assert want != semihard_rule(x, labels, 0.5, dtype, metric, strict=False)
    strict = pml_semihard_count(x, labels, dtype, metric)
    if strict is not None:
        assert strict == count_strictly_farther(x, labels, dtype, metric)


def count_strictly_farther(x, labels, dtype, metric):
    """Valid triplets with ``d_an > d_ap``, in the dtype (the semi-hard candidates)."""
    points = x.astype(dtype).astype(np.float64)
    diff = np.abs(points[:, None, :] - points[None, :, :])
    dist = {"l1": diff.sum(-1), "sqeuclidean": (diff**2).sum(-1)}.get(
        metric, np.sqrt((diff**2).sum(-1))
    )
    dist = dist.astype(dtype)
    count = 0
    for a in range(len(points)):
        for p in range(len(points)):
            for n in range(len(points)):
                valid = a != p and labels[a] == labels[p] and labels[n] != labels[a]
                count += bool(valid and dist[a, n] > dist[a, p])
    return count


def pml_semihard_count(x, labels, dtype, metric):
    """pytorch-metric-learning's semi-hard triplets (``0 < d_an - d_ap <= margin``) with a
    margin above every distance: its count of strictly farther negatives, or None."""
    try:
        import torch
        from pytorch_metric_learning import distances, miners
    except ImportError:
        return None
    distance = distances.LpDistance(
        normalize_embeddings=False,
        p=1 if metric == "l1" else 2,
        power=2 if metric == "sqeuclidean" else 1,
    )
    miner = miners.TripletMarginMiner(margin=1e6, type_of_triplets="semihard", distance=distance)
    anchors, _, _ = miner(torch.as_tensor(x).to(getattr(torch, dtype)), torch.as_tensor(labels))
    return len(anchors)
