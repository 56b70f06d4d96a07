"""Values against oracles: the losses and online mining of every backend against the loop
oracles (tests/oracle.py), the SPEC's worked numbers, the counts of a larger batch full
of ties, the masks, and pytorch-metric-learning where it computes the same quantity.
Gradients: test_gradients.py; dtypes: test_dtypes.py; errors: test_bad_input.py;
objects: test_loss_objects.py."""

import numpy as np
import oracle
import pytest
from backends import (
    FRAMEWORKS,
    load,
    to_backend,
    to_numpy,
)
from cases import METRICS, MINING, layouts, mining_call, mining_oracle

# ----------------------------------------------------------------- values vs oracle


@pytest.mark.parametrize("layout", layouts())
@pytest.mark.parametrize("metric", METRICS)
def test_mining_losses_match_the_loops(backend, metric, layout):
    tl = load(backend)
    x, labels = layouts()[layout]
    xb = to_backend(backend, x)
    for kind in MINING:
        got = float(to_numpy(mining_call(tl, kind, xb, labels, 0.3, metric)))
        want = mining_oracle(kind, x, labels, 0.3, metric)
        assert got == pytest.approx(want, rel=1e-10, abs=1e-12), kind
    _, fraction = tl.batch_all_triplet_loss(xb, labels, 0.3, metric)
    assert float(to_numpy(fraction)) == pytest.approx(oracle.batch_all(x, labels, 0.3, metric)[1])


@pytest.mark.parametrize("margin", [0.0, 0.2, 5.0])
def test_mining_losses_match_the_loops_for_any_margin(backend, margin):
    tl = load(backend)
    x, labels = layouts()["imbalanced"]
    for kind in MINING:
        got = float(to_numpy(mining_call(tl, kind, to_backend(backend, x), labels, margin)))
        assert got == pytest.approx(mining_oracle(kind, x, labels, margin), rel=1e-10), kind


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_triplet_loss_matches_the_loop(backend, metric, reduction):
    tl = load(backend)
    rng = np.random.default_rng(11)
    a, p, n = (rng.normal(size=(9, 4)) for _ in range(3))
    p[0], n[1] = a[0], a[1]  # a zero distance on each side
    want = oracle.triplet_losses(a, p, n, 0.5, metric)
    want = {"none": want, "mean": want.mean(), "sum": want.sum()}[reduction]
    args = (to_backend(backend, v) for v in (a, p, n))
    got = to_numpy(tl.triplet_loss(*args, margin=0.5, metric=metric, reduction=reduction))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_contrastive_loss_matches_the_loop(backend, reduction):
    tl = load(backend)
    rng = np.random.default_rng(12)
    x1, x2 = rng.normal(size=(10, 3)) * 0.5, rng.normal(size=(10, 3)) * 0.5
    x2[0], x2[1] = x1[0], x1[1]  # D = 0 for a similar and a dissimilar pair
    same = np.array([1, 0, 1, 0, 1, 0, 0, 1, 1, 0])
    want = oracle.contrastive_losses(x1, x2, same, 1.0)
    want = {"none": want, "mean": want.mean(), "sum": want.sum()}[reduction]
    got = tl.contrastive_loss(
        to_backend(backend, x1), to_backend(backend, x2), same, 1.0, reduction
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10)
    as_bool = tl.contrastive_loss(to_backend(backend, x1), to_backend(backend, x2), same == 1)
    assert float(to_numpy(as_bool)) == pytest.approx(
        oracle.contrastive_losses(x1, x2, same, 1).mean()
    )


# ----------------------------------------------------------------- the modified triplet loss

SPEC_SCORES = [
    [0.9, -0.8, 0.3, -0.5],
    [-0.4, 0.5, 0.1, -0.1],
    [0.3, 0.1, -0.4, -0.8],
    [-0.5, -0.2, -0.7, 0.5],
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_spec_worked_numbers_of_the_modified_triplet_loss(backend, dtype):
    tl = load(backend)
    scores = to_backend(backend, SPEC_SCORES, dtype)
    tol = {"rtol": 1e-6 if dtype == "float32" else 1e-12}
    np.testing.assert_allclose(
        to_numpy(tl.mean_negative(scores)), [-1 / 3, -2 / 15, -2 / 15, -7 / 15], **tol
    )
    np.testing.assert_allclose(
        to_numpy(tl.closest_negative(scores)), [0.3, 0.1, -0.8, -0.2], **tol
    )
    per_row = to_numpy(tl.modified_triplet_loss(scores, reduction="none"))
    np.testing.assert_allclose(per_row, [0, 0, 0.516667, 0], atol=1e-6)
    assert round(float(to_numpy(tl.modified_triplet_loss(scores))), 6) == 0.516667
    np.testing.assert_allclose(
        per_row, [row[2] for row in oracle.modified_triplet_rows(SPEC_SCORES, 0.25)], **tol
    )


def test_a_row_without_closest_negative_keeps_only_its_mean_term(backend):
    """Every negative of row 0 is more similar than its positive: L2 vanishes (not -2 + ...)."""
    tl = load(backend)
    scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.9, -0.2], [-0.1, 0.2, 0.6]])
    for margin in (0.25, 1.5, 3.0):  # the seed's -2 mask would leak into L2 above margin 1
        per_row = to_numpy(tl.modified_triplet_loss(to_backend(backend, scores), margin, "none"))
        want = [row[2] for row in oracle.modified_triplet_rows(scores, margin)]
        np.testing.assert_allclose(per_row, want, rtol=1e-12)
        assert per_row[0] == pytest.approx(max((0.5 + 0.4) / 2 - 0.1 + margin, 0.0))
    assert to_numpy(tl.closest_negative(to_backend(backend, scores)))[0] == -np.inf


def test_modified_triplet_loss_matches_the_loop_on_random_scores(backend):
    tl = load(backend)
    scores = np.random.default_rng(13).uniform(-1, 1, size=(7, 7))
    got = to_numpy(tl.modified_triplet_loss(to_backend(backend, scores), 0.3, "none"))
    np.testing.assert_allclose(got, [r[2] for r in oracle.modified_triplet_rows(scores, 0.3)])


# ----------------------------------------------------------------- scale and structure


@pytest.mark.parametrize("name", FRAMEWORKS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_batch_all_counts_equal_the_cube_on_a_larger_batch_full_of_ties(name, margin):
    """Sorting and binary search against the NumPy cube: B = 96 with many duplicates."""
    rng = np.random.default_rng(17)
    points = rng.normal(size=(24, 6))
    x = points[rng.integers(0, 24, size=96)]  # every point four times on average
    labels = rng.integers(0, 8, size=96)
    want = load("numpy").batch_all_triplet_loss(x, labels, margin)
    got = load(name).batch_all_triplet_loss(to_backend(name, x), labels, margin)
    for g, w in zip(got, want, strict=True):
        assert float(to_numpy(g)) == pytest.approx(float(w), rel=1e-10)


# ----------------------------------------------------------------- pytorch-metric-learning


def test_agrees_with_pytorch_metric_learning():
    """Batch-hard = PML's BatchHardMiner + TripletMarginLoss(MeanReducer), and batch-all =
    TripletMarginLoss over all triplets with PML's default AvgNonZeroReducer."""
    import pytorch_metric_learning as pml  # a pinned test dependency: missing must fail
    import torch
    from pytorch_metric_learning import distances, losses, miners, reducers

    assert pml.__version__
    tl = load("torch")
    rng = np.random.default_rng(16)
    x = torch.tensor(rng.normal(size=(24, 8)))
    labels = torch.tensor(np.repeat(np.arange(6), 4))
    lp = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    for margin in (0.1, 0.5, 2.0):
        hard_loss = losses.TripletMarginLoss(margin, distance=lp, reducer=reducers.MeanReducer())
        mined = miners.BatchHardMiner(distance=lp)(x, labels)
        theirs = hard_loss(x, labels, mined)
        ours = tl.batch_hard_triplet_loss(x, labels, margin)
        assert float(ours) == pytest.approx(float(theirs), rel=1e-9), margin
        all_loss = losses.TripletMarginLoss(margin, distance=lp)  # AvgNonZeroReducer
        ours_all, _ = tl.batch_all_triplet_loss(x, labels, margin)
        assert float(ours_all) == pytest.approx(float(all_loss(x, labels)), rel=1e-9), margin


# ----------------------------------------------------------------- masks


def test_masks_match_their_definitions(backend):
    tl = load(backend)
    labels = np.array([2, 0, 2, 1, 0, 2])
    positive = to_numpy(tl.positive_mask(labels))
    negative = to_numpy(tl.negative_mask(labels))
    for a in range(6):
        for b in range(6):
            assert positive[a, b] == (a != b and labels[a] == labels[b])
            assert negative[a, b] == (labels[a] != labels[b])
    with pytest.raises(ValueError, match="labels must hold integer"):
        tl.positive_mask(labels.astype(float))
    with pytest.raises(ValueError, match="labels must be a vector"):
        tl.negative_mask(labels[None])
