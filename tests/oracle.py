"""Brute-force oracles: plain Python loops in float64, written from docs/contract.md.

They share no code with the package: each quantity is computed element by element,
the way the notebooks first derive it.
"""

from __future__ import annotations

import math

import numpy as np

COSINE_EPS = 1e-8


def norm(v) -> float:
    return math.sqrt(sum(float(t) * float(t) for t in v))


def is_zero(v, eps: float = COSINE_EPS) -> bool:
    """SPEC: a row whose norm is at most eps counts as a zero vector for cosine."""
    return norm(v) <= eps


def cosine(a, b, eps: float = COSINE_EPS) -> float:
    """cos(a, b) = a.b / (|a| |b|); 0 when either is a zero vector; clipped to [-1, 1]."""
    if is_zero(a, eps) or is_zero(b, eps):
        return 0.0
    dot = sum(float(s) * float(t) for s, t in zip(a, b, strict=True))
    return max(-1.0, min(1.0, dot / (norm(a) * norm(b))))


def distance(u, v, metric: str) -> float:
    """One entry of pairwise_distances; identical rows are at distance 0 in every metric."""
    diff = [float(s) - float(t) for s, t in zip(u, v, strict=True)]
    if metric == "euclidean":
        return math.sqrt(sum(d * d for d in diff))
    if metric == "sqeuclidean":
        return sum(d * d for d in diff)
    if metric == "l1":
        return sum(abs(d) for d in diff)
    if metric == "cosine":
        if is_zero(u) and is_zero(v):
            return 0.0
        return 1.0 - cosine(u, v)
    raise AssertionError(metric)


def l2_normalize(x, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape[:-1]):
        n = norm(x[index])
        if n > eps:
            out[index] = [t / n for t in x[index]]
    return out


def cosine_rows(a, b, eps: float = COSINE_EPS) -> np.ndarray:
    """Row-wise cosine of two broadcastable arrays, one row pair at a time."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    out = np.zeros(a.shape[:-1])
    for index in np.ndindex(out.shape):
        out[index] = cosine(a[index], b[index], eps)
    return out


def similarity_matrix(x, y=None) -> np.ndarray:
    y = x if y is None else y
    return np.array([[cosine(u, v) for v in y] for u in x])


def pairwise_distances(x, y=None, metric: str = "euclidean") -> np.ndarray:
    same = y is None
    y = x if same else y
    out = np.array([[distance(u, v, metric) for v in y] for u in x])
    if same:
        for i in range(len(x)):
            out[i, i] = 0.0
    return out


# ----------------------------------------------------------------- losses, one loop each


def hinge(value: float) -> float:
    return value if value > 0 else 0.0


def softplus(value: float) -> float:
    return math.log1p(math.exp(value)) if value < 30 else value + math.log1p(math.exp(-value))


def triplet_losses(anchor, positive, negative, margin, metric) -> np.ndarray:
    return np.array(
        [
            hinge(distance(a, p, metric) - distance(a, n, metric) + margin)
            for a, p, n in zip(anchor, positive, negative, strict=True)
        ]
    )


def modified_triplet_rows(scores, margin):
    """Per row: (mean_neg, closest_neg or -inf, loss), as the seed's text defines them."""
    rows = []
    batch = len(scores)
    for i in range(batch):
        s_ap = float(scores[i][i])
        negatives = [float(scores[i][j]) for j in range(batch) if j != i]
        mean_neg = sum(negatives) / len(negatives)
        below = [s for s in negatives if s <= s_ap]
        closest = max(below) if below else -math.inf
        loss = hinge(mean_neg - s_ap + margin) + (hinge(closest - s_ap + margin) if below else 0)
        rows.append((mean_neg, closest, loss))
    return rows


def contrastive_losses(x1, x2, same, margin) -> np.ndarray:
    out = []
    for u, v, s in zip(x1, x2, same, strict=True):
        d = distance(u, v, "euclidean")
        out.append(0.5 * s * d * d + 0.5 * (1 - s) * hinge(margin - d) ** 2)
    return np.array(out)


def batch_all(embeddings, labels, margin, metric):
    """(mean of the positive losses over valid triplets, their fraction), by a triple loop."""
    dist = pairwise_distances(embeddings, metric=metric)
    losses, n_valid = [], 0
    batch = len(labels)
    for a in range(batch):
        for p in range(batch):
            for n in range(batch):
                if a != p and labels[a] == labels[p] and labels[n] != labels[a]:
                    n_valid += 1
                    loss = hinge(dist[a, p] - dist[a, n] + margin)
                    if loss > 0:
                        losses.append(loss)
    mean = sum(losses) / len(losses) if losses else 0.0
    return mean, (len(losses) / n_valid if n_valid else 0.0)


def batch_hard(embeddings, labels, margin, metric, soft=False):
    dist = pairwise_distances(embeddings, metric=metric)
    losses = []
    batch = len(labels)
    for a in range(batch):
        positives = [dist[a, p] for p in range(batch) if p != a and labels[p] == labels[a]]
        negatives = [dist[a, n] for n in range(batch) if labels[n] != labels[a]]
        if positives and negatives:
            gap = max(positives) - min(negatives)
            losses.append(softplus(gap) if soft else hinge(gap + margin))
    return sum(losses) / len(losses) if losses else 0.0


def batch_semihard(embeddings, labels, margin, metric):
    dist = pairwise_distances(embeddings, metric=metric)
    losses = []
    batch = len(labels)
    for a in range(batch):
        negatives = [dist[a, n] for n in range(batch) if labels[n] != labels[a]]
        if not negatives:
            continue
        for p in range(batch):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [d for d in negatives if d > dist[a, p]]
            chosen = min(farther) if farther else max(negatives)
            losses.append(hinge(dist[a, p] - chosen + margin))
    return sum(losses) / len(losses) if losses else 0.0
