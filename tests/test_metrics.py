"""Retrieval metrics against plain-loop oracles written from the definitions, hand-computed
examples, edge cases, and pytorch-metric-learning's AccuracyCalculator."""

import numpy as np
import pytest

from tripletlab.metrics import map_at_r, precision_at_1, r_precision, retrieval_metrics


def oracle(embeddings, labels):
    """P@1, R-precision and MAP@R by loops (euclidean; ties by index; lone queries skipped)."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    p1, rp, mapr = [], [], []
    for q in range(n):
        others = [j for j in range(n) if j != q]
        dist = {j: float(np.sqrt(np.sum((x[q] - x[j]) ** 2))) for j in others}
        ranked = sorted(others, key=lambda j: (dist[j], j))
        r = sum(1 for j in others if labels[j] == labels[q])
        if r == 0:
            continue
        rel = [1 if labels[j] == labels[q] else 0 for j in ranked]
        p1.append(rel[0])
        rp.append(sum(rel[:r]) / r)
        total = 0.0
        for i in range(1, r + 1):
            if rel[i - 1]:
                total += sum(rel[:i]) / i
        mapr.append(total / r)
    return {"precision_at_1": np.mean(p1), "r_precision": np.mean(rp), "map_at_r": np.mean(mapr)}


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_the_loop_oracle(seed):
    rng = np.random.default_rng(seed)
    n = 30
    labels = rng.integers(0, 4, size=n)
    labels[0] = 9  # a lone class: excluded
    x = rng.normal(size=(n, 3)) + labels[:, None] * 0.5
    got = retrieval_metrics(x, labels)
    want = oracle(x, labels)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert precision_at_1(x, labels) == got["precision_at_1"]
    assert r_precision(x, labels) == got["r_precision"]
    assert map_at_r(x, labels) == got["map_at_r"]


def test_ties_are_broken_by_index_as_in_the_oracle():
    # integer grid points: many equal distances
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(20, 2)).astype(float)
    labels = rng.integers(0, 3, size=20)
    got, want = retrieval_metrics(x, labels), oracle(x, labels)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # all points identical: the ranking is the index order
    labels = np.array([0, 1, 0, 1])
    got = retrieval_metrics(np.zeros((4, 2)), labels)
    # q0: others 1,2,3 -> rel 0,1,0 ; q1: 0,2,3 -> 0,0,1 ; q2: 0,1,3 -> 1,0,0 ; q3: 0,1,2 -> 0,1,0
    assert got["precision_at_1"] == 0.25
    assert got["r_precision"] == 0.25
    assert got["map_at_r"] == 0.25


def test_hand_computed_example():
    # 1-D points; class 0 at 0, 1, 5; class 1 at 2, 6
    x = np.array([[0.0], [1.0], [5.0], [2.0], [6.0]])
    labels = np.array([0, 0, 0, 1, 1])
    # q0 (R=2): 1(rel), 2(not), 5(rel)        -> P@1 1, RP 1/2, AP (1/1)/2 = 1/2
    # q1 (R=2): 0 and 2 tie at 1 -> index 0 (rel), 3 (not), then 5 (rel) -> 1, 1/2, 1/2
    # q5 (R=2): 6(not), 2(not)              -> 0, 0, 0
    # q2 (R=1): 1(not)                      -> 0, 0, 0
    # q6 (R=1): 5(not)                      -> 0, 0, 0
    got = retrieval_metrics(x, labels)
    assert got["precision_at_1"] == pytest.approx(2 / 5)
    assert got["r_precision"] == pytest.approx((0.5 + 0.5) / 5)
    assert got["map_at_r"] == pytest.approx((0.5 + 0.5) / 5)
    # every query's first R neighbours are of other classes: all three are 0
    x2 = np.array([[0.0], [2.0], [1.0], [10.0]])
    l2 = np.array([0, 0, 1, 1])
    # q0 (R=1): 2 (not); q1 (R=1): 2 (not); q2 (R=1): 0 and 1 tie -> 0 (not); q3 (R=1): 1 (not)
    assert retrieval_metrics(x2, l2) == {
        "precision_at_1": 0.0,
        "r_precision": 0.0,
        "map_at_r": 0.0,
    }
    x3 = np.array([[0.0], [0.5], [0.6], [3.0]])
    l3 = np.array([0, 1, 0, 0])
    # q0 (R=2): 1(not), 2(rel), 3(rel): RP 1/2, AP (1/2)/2 = 1/4, P@1 0
    # q2 (R=2): 1(not), 0(rel): RP 1/2, AP 1/4, P@1 0
    # q3 (R=2): 2(rel), 1(not), 0(rel): RP 1/2, AP 1/2, P@1 1; q1 lone: excluded
    # (MAP@R < R-precision: the hits of q0 and q2 come second)
    got = retrieval_metrics(x3, l3)
    assert got["precision_at_1"] == pytest.approx(1 / 3)
    assert got["r_precision"] == pytest.approx(1 / 2)
    assert got["map_at_r"] == pytest.approx((1 / 4 + 1 / 4 + 1 / 2) / 3)


def test_perfect_embedding_gives_one():
    labels = np.repeat(np.arange(5), 4)
    x = labels[:, None] * 10.0 + np.random.default_rng(0).normal(size=(20, 3))
    assert retrieval_metrics(x, labels) == {
        "precision_at_1": 1.0,
        "r_precision": 1.0,
        "map_at_r": 1.0,
    }


def test_lone_queries_are_excluded_and_no_query_raises():
    x = np.array([[0.0], [0.1], [5.0]])
    assert retrieval_metrics(x, np.array([0, 0, 1]))["map_at_r"] == 1.0
    with pytest.raises(ValueError, match="^labels"):
        retrieval_metrics(x, np.array([0, 1, 2]))


@pytest.mark.parametrize(
    ("x", "labels", "name"),
    [
        (np.zeros((3, 2)), np.array([0, 0]), "labels"),
        (np.zeros((3, 2)), np.array([0.0, 0.0, 1.0]), "labels"),
        (np.zeros(3), np.array([0, 0, 1]), "embeddings"),
        (np.array([[np.nan], [0.0], [1.0]]), np.array([0, 0, 1]), "embeddings"),
        (np.zeros((0, 2)), np.zeros(0, int), "embeddings must have at least one row"),
    ],
)
def test_bad_input_raises_naming_it(x, labels, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        retrieval_metrics(x, labels)


def test_metric_is_passed_to_the_distances():
    x = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0], [0.6, 8.0]])
    labels = np.array([0, 0, 1, 1])
    assert retrieval_metrics(x, labels, metric="cosine")["map_at_r"] == 1.0
    assert retrieval_metrics(x, labels)["map_at_r"] < 1.0
    with pytest.raises(ValueError, match="metric"):
        retrieval_metrics(x, labels, metric="chebyshev")


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_pytorch_metric_learning(seed):
    import torch
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=60)
    labels[:2] = 7  # a class of two
    x = (rng.normal(size=(60, 4)) + labels[:, None] * 0.3).astype(np.float32)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        avg_of_avgs=False,
        knn_func=CustomKNN(LpDistance(normalize_embeddings=False)),
        device=torch.device("cpu"),
    )
    xt, lt = torch.as_tensor(x), torch.as_tensor(labels)
    pml = calculator.get_accuracy(xt, lt, xt, lt, ref_includes_query=True)
    ours = retrieval_metrics(x, labels)
    assert ours["precision_at_1"] == pytest.approx(pml["precision_at_1"], abs=1e-9)
    assert ours["r_precision"] == pytest.approx(pml["r_precision"], abs=1e-9)
    assert ours["map_at_r"] == pytest.approx(pml["mean_average_precision_at_r"], abs=1e-9)


# --------------------------------------------------------------------------- over seeds


def test_interval_is_the_student_t_half_width():
    from tripletlab.metrics import interval

    mean, half = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert half == pytest.approx(2.7764451 * np.sqrt(2.5 / 5), rel=1e-7)
    assert interval([2.0, 2.0]) == (2.0, 0.0)


@pytest.mark.parametrize("values", [[1.0], [], [[1.0, 2.0]], [1.0, np.nan]])
def test_interval_refuses_what_has_no_spread(values):
    from tripletlab.metrics import interval

    with pytest.raises(ValueError, match="^values"):
        interval(values)


def test_compare_needs_intervals_that_do_not_overlap():
    from tripletlab.metrics import compare

    assert compare((0.8, 0.05), (0.7, 0.04)) == "above"
    assert compare((0.7, 0.04), (0.8, 0.05)) == "below"
    assert compare((0.8, 0.05), (0.72, 0.04)) == "no difference measured"
    assert compare((0.5, 0.0), (0.5, 0.0)) == "no difference measured"
