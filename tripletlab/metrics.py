"""Retrieval metrics of an embedding: precision@1, R-precision and MAP@R.

Musgrave, Belongie and Lim (2020), "A Metric Learning Reality Check": every point is a
query against all the *other* points; its neighbours are ranked by distance. For a
query ``q`` of class ``c``, ``R_q`` is the number of other points of class ``c``, and
``rel_q(i) = 1`` when its ``i``-th neighbour (``i = 1, 2, ...``) is of class ``c``.

- ``precision_at_1``: mean over queries of ``rel_q(1)``.
- ``r_precision``: mean over queries of ``(1 / R_q) sum_{i <= R_q} rel_q(i)``.
- ``map_at_r``: mean over queries of
  ``(1 / R_q) sum_{i <= R_q} P_q(i) rel_q(i)``, with
  ``P_q(i) = (1 / i) sum_{j <= i} rel_q(j)`` (precision at ``i``). Unlike R-precision
  it rewards putting the relevant neighbours first, not only within the first ``R_q``.

Conventions (all three functions):

- Distances are ``tripletlab.numpy.pairwise_distances(embeddings, metric=metric)``
  (float64; ``euclidean`` by default; ``sqeuclidean`` ranks like ``euclidean``).
- The query itself is never its own neighbour (it is excluded, not just ranked first).
- Ties in distance are broken by index: a stable sort, so of two neighbours at the same
  distance the one with the smaller index ranks first (the result is deterministic,
  though a tie between a relevant and an irrelevant neighbour then depends on the
  order of the data).
- A query whose class has no other point (``R_q = 0``) has no defined R-precision or
  MAP@R and is excluded from all three means (as in pytorch-metric-learning's
  ``AccuracyCalculator``); if no query remains, ``ValueError`` (as for ``N = 0``).
- Errors name the arguments, ``embeddings`` and ``labels``, as the losses do.

Shapes: ``embeddings (N, D)``, ``labels (N,)`` integers; each function returns a Python
float in [0, 1]. NumPy only (``O(N^2)`` memory). Notebook: 07_training.

Comparing results over seeds (notebooks 07 and 09): ``interval`` gives the mean of one
score over the seeds and the half-width of its 95% Student-t interval; ``compare`` reads
two such intervals and calls them different only when they do not overlap.
"""

from __future__ import annotations

import numpy as np

from tripletlab import _checks
from tripletlab import numpy as tl

__all__ = [
    "precision_at_1",
    "r_precision",
    "map_at_r",
    "retrieval_metrics",
    "interval",
    "compare",
]


def _ranked_relevance(embeddings, labels, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(relevant (Q, N - 1) bool, R (Q,) int)`` for the queries with ``R_q > 0``.

    ``relevant[q, i]``: the ``(i + 1)``-th nearest other point of query ``q`` shares its
    class. Rows are the kept queries, in index order.
    """
    _checks.check_metric(metric)
    x, dtype = tl._as_matrix("embeddings", embeddings)
    labels = tl._as_labels(labels, len(x))
    if len(x) == 0:
        raise ValueError("embeddings must have at least one row (N > 0): there is no query")
    # in the embeddings' dtype, as pairwise_distances returns them: float32 rows keep
    # the ties that float32 distances have
    dist = tl.pairwise_distances(x.astype(dtype), metric=metric).astype(np.float64)
    n = len(dist)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1  # other points of the query's class
    keep = r > 0
    if not keep.any():
        raise ValueError(
            "labels must give at least one query a class with another point: "
            "every class has a single sample, so no metric is defined"
        )
    np.fill_diagonal(dist, np.inf)  # the query is never its own neighbour: sorted last
    order = np.argsort(dist[keep], axis=1, kind="stable")[:, : n - 1]
    relevant = labels[order] == labels[keep][:, None]
    return relevant, r[keep]


def _scores(relevant: np.ndarray, r: np.ndarray) -> dict[str, float]:
    rank = np.arange(1, relevant.shape[1] + 1)  # i = 1 .. N - 1
    within_r = rank[None, :] <= r[:, None]
    hits = relevant & within_r
    precision_at_i = np.cumsum(relevant, axis=1) / rank
    return {
        "precision_at_1": float(np.mean(relevant[:, 0])),
        "r_precision": float(np.mean(hits.sum(axis=1) / r)),
        "map_at_r": float(np.mean((precision_at_i * hits).sum(axis=1) / r)),
    }


def precision_at_1(embeddings, labels, metric: str = "euclidean") -> float:
    """Fraction of queries whose nearest other point has their class.

    ``P@1 = mean_q rel_q(1)`` over queries with ``R_q > 0``; see the module docstring
    for the ranking, ties and exclusions.
    """
    return _scores(*_ranked_relevance(embeddings, labels, metric))["precision_at_1"]


def r_precision(embeddings, labels, metric: str = "euclidean") -> float:
    """Mean over queries of the fraction of relevant points among the first ``R_q``.

    ``RP = mean_q (1 / R_q) sum_{i <= R_q} rel_q(i)``; 1 exactly when every query's
    ``R_q`` nearest other points are its whole class.
    """
    return _scores(*_ranked_relevance(embeddings, labels, metric))["r_precision"]


def map_at_r(embeddings, labels, metric: str = "euclidean") -> float:
    """Mean average precision at R (Musgrave et al., 2020).

    ``MAP@R = mean_q (1 / R_q) sum_{i <= R_q} P_q(i) rel_q(i)`` with
    ``P_q(i) = (1 / i) sum_{j <= i} rel_q(j)``. At most the R-precision; equal to it
    when the relevant points among the first ``R_q`` all come first.
    """
    return _scores(*_ranked_relevance(embeddings, labels, metric))["map_at_r"]


def retrieval_metrics(embeddings, labels, metric: str = "euclidean") -> dict[str, float]:
    """All three from one ranking: ``{"precision_at_1", "r_precision", "map_at_r"}``."""
    return _scores(*_ranked_relevance(embeddings, labels, metric))


# --------------------------------------------------------------------------- over seeds


def interval(values) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval of the mean of ``values``.

    For ``n >= 2`` values: ``t_{0.975, n - 1} * std(values, ddof=1) / sqrt(n)`` (with 5
    values, ``2.776 * std / sqrt(5)``). ``values`` is a 1-D sequence of finite numbers
    (one score per seed); fewer than 2 is a ``ValueError``: one run has no spread.
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(
            f"values must be a 1-D sequence of at least 2 numbers; got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("values must be finite (no NaN or inf)")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


def compare(a: tuple[float, float], b: tuple[float, float]) -> str:
    """``"above"``, ``"below"`` or ``"no difference measured"``: ``a`` against ``b``.

    ``a`` and ``b`` are ``(mean, half_width)`` pairs, as ``interval`` returns (a fixed
    number is ``(value, 0.0)``). ``a`` is above ``b`` only when its whole interval is,
    ``mean_a - half_a > mean_b + half_b``; below likewise; overlapping intervals measure
    no difference.
    """
    (ma, ha), (mb, hb) = a, b
    if ma - ha > mb + hb:
        return "above"
    if ma + ha < mb - hb:
        return "below"
    return "no difference measured"
