"""Losses and online mining in every backend: values against the loop oracles, SPEC
numbers, gradients, edge layouts, the chunked batch-all, errors, and agreement with
pytorch-metric-learning where it computes the same quantity."""

import numpy as np
import oracle
import pytest
from backends import (
    ALL,
    FRAMEWORKS,
    available,
    load,
    numerical_grads,
    to_backend,
    to_numpy,
    value_and_grads,
)

METRICS = ("euclidean", "sqeuclidean", "cosine", "l1")
MINING = ("batch_all", "batch_hard", "batch_hard_soft", "batch_semihard")


@pytest.fixture(params=ALL)
def backend(request):
    return request.param


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
    if kind == "batch_all":
        return oracle.batch_all(embeddings, labels, margin, metric)[0]
    if kind == "batch_semihard":
        return oracle.batch_semihard(embeddings, labels, margin, metric)
    return oracle.batch_hard(embeddings, labels, margin, metric, soft=kind.endswith("soft"))


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


# ----------------------------------------------------------------- gradients

LOSS_CASES = {
    "triplet_loss": (lambda tl: lambda a, p, n: tl.triplet_loss(a, p, n, 0.5), 3),
    "triplet_loss_cosine": (lambda tl: lambda a, p, n: tl.triplet_loss(a, p, n, 0.1, "cosine"), 3),
    "modified_triplet_loss": (lambda tl: lambda s: tl.modified_triplet_loss(s, 0.4), 1),
    "contrastive_loss": (
        lambda tl: lambda a, b: tl.contrastive_loss(a, b, [1, 0, 1, 0, 0, 1], 2.0),
        2,
    ),
    **{
        f"{kind}_{metric}": (
            lambda tl, k=kind, m=metric: lambda x: mining_call(tl, k, x, LABELS, 0.5, m),
            1,
        )
        for kind in MINING
        for metric in METRICS
    },
}
LABELS = np.array([0, 0, 1, 1, 1, 2])


def generic_inputs(count, seed=14):
    """Random (6, 6) inputs (square, for the score matrix): no ties, no hinge at exactly 0."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(6, 6)) for _ in range(count)]


@pytest.mark.parametrize("case", LOSS_CASES)
def test_torch_gradcheck_float64(case):
    import torch

    make, count = LOSS_CASES[case]
    inputs = [to_backend("torch", x).requires_grad_(True) for x in generic_inputs(count)]
    assert torch.autograd.gradcheck(make(load("torch")), inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", LOSS_CASES)
def test_torch_tensorflow_and_numerical_gradients_agree(case):
    make, count = LOSS_CASES[case]
    inputs = generic_inputs(count)
    reference = make(load("numpy"))
    expected = numerical_grads(reference, inputs, np.ones(()))
    for name in available(FRAMEWORKS):
        value, grads = value_and_grads(name, make(load(name)), inputs)
        assert float(value) == pytest.approx(float(reference(*inputs)), rel=1e-10), name
        for got, want in zip(grads, expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("layout", layouts())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_no_nan_or_inf_gradient_on_edge_layouts(name, dtype, layout):
    tl = load(name)
    x, labels = layouts()[layout]
    for kind in MINING:
        for metric in METRICS:
            fn = lambda z, k=kind, m=metric: mining_call(tl, k, z, labels, 0.2, m)  # noqa: E731
            value, (grad,) = value_and_grads(name, fn, [x], dtype=dtype)
            assert np.isfinite(value) and np.isfinite(grad).all(), (kind, metric)


@pytest.mark.parametrize("layout", ["one class", "all singletons"])
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_no_valid_triplet_gives_zero_loss_with_a_zero_gradient(name, layout):
    """Connected to the embeddings: the gradient exists (not None) and is all zeros."""
    tl = load(name)
    x, labels = layouts()[layout]
    for kind in MINING:
        value, (grad,) = value_and_grads(
            name, lambda z, k=kind: mining_call(tl, k, z, labels), [x]
        )
        assert float(value) == 0.0 and grad.shape == x.shape and np.all(grad == 0.0), kind
    _, fraction = tl.batch_all_triplet_loss(to_backend(name, x), labels)
    assert float(to_numpy(fraction)) == 0.0


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_easy_triplets_only_give_zero_loss_and_zero_gradient(name):
    """Valid triplets exist but none is active: the mean over positive losses is 0, not NaN."""
    tl = load(name)
    x = np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    labels = np.array([0, 0, 1, 1])
    value, (grad,) = value_and_grads(name, lambda z: tl.batch_all_triplet_loss(z, labels)[0], [x])
    assert float(value) == 0.0 and np.all(grad == 0.0)


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


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_mining_keeps_the_input_dtype(backend, dtype):
    tl = load(backend)
    x, labels = layouts()["balanced P x K"]
    xb = to_backend(backend, x, dtype)
    outputs = [mining_call(tl, kind, xb, labels) for kind in MINING]
    outputs += [tl.batch_all_triplet_loss(xb, labels)[1], tl.triplet_loss(xb, xb, xb)]
    for out in outputs:
        assert str(getattr(out.dtype, "name", out.dtype)).replace("torch.", "") == dtype
    want = [mining_oracle(kind, x.astype(dtype).astype(np.float64), labels) for kind in MINING]
    got = [float(to_numpy(o)) for o in outputs[: len(MINING)]]
    np.testing.assert_allclose(got, want, rtol=2e-3 if dtype == "float16" else 1e-5)


# ----------------------------------------------------------------- errors


def _error_cases():
    x, ok = np.ones((4, 3)), np.array([0, 0, 1, 1])
    return [
        (lambda tl, T: tl.batch_all_triplet_loss(T(x), ok[:3]), "labels must have one entry"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(x), ok.astype(float)), "labels must hold int"),
        (lambda tl, T: tl.batch_semihard_triplet_loss(T(x), ok[None]), "labels must be a vector"),
        (lambda tl, T: tl.batch_all_triplet_loss(T(x), ok, margin=-0.1), "margin must be"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(x), ok, metric="dot"), "metric must be"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(np.ones(3)), ok), "embeddings must be a"),
        (lambda tl, T: tl.batch_all_triplet_loss(T(np.full((4, 3), np.nan)), ok), "embeddings"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x), reduction="avg"), "reduction must"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x[:2])), "must have the same shape"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x), metric="cos"), "metric must"),
        (lambda tl, T: tl.modified_triplet_loss(T(np.ones((2, 3)))), "square"),
        (lambda tl, T: tl.modified_triplet_loss(T(np.ones((1, 1)))), "at least 2 x 2"),
        (lambda tl, T: tl.closest_negative(T(np.ones(3))), "scores must be a matrix"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1, 2, 1]), "same must hold 0"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1]), "same"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1, 1, 1], margin=-1), "margin"),
    ]


@pytest.mark.parametrize("case", range(len(_error_cases())))
def test_bad_input_raises_value_error_naming_the_argument(backend, case):
    tl = load(backend)
    call, match = _error_cases()[case]
    with pytest.raises(ValueError, match=match):
        call(tl, lambda v: to_backend(backend, v))


# ----------------------------------------------------------------- Koch's siamese head


def test_siamese_heads_compute_a_weighted_l1_logit_in_both_frameworks():
    rng = np.random.default_rng(15)
    e1, e2 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    weights, bias = rng.normal(size=4), 0.3
    want = np.abs(e1 - e2) @ weights + bias
    for name in available(FRAMEWORKS):
        module = load(name)
        if name == "torch":
            import torch

            head = module.SiameseHead(4).double()
            with torch.no_grad():
                head.linear.weight.copy_(torch.tensor(weights)[None])
                head.linear.bias.fill_(bias)
            got = to_numpy(head(torch.tensor(e1), torch.tensor(e2)))
            swapped = to_numpy(head(torch.tensor(e2), torch.tensor(e1)))
        else:
            head = module.SiameseHead(dtype="float64")
            head([e1, e2])  # builds the dense layer
            head.dense.set_weights([weights[:, None], np.array([bias])])
            got, swapped = to_numpy(head([e1, e2])), to_numpy(head([e2, e1]))
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(got, swapped)  # the same pair in either order


# ----------------------------------------------------------------- pytorch-metric-learning


def test_agrees_with_pytorch_metric_learning():
    """Batch-hard = PML's BatchHardMiner + TripletMarginLoss(MeanReducer), and batch-all =
    TripletMarginLoss over all triplets with PML's default AvgNonZeroReducer."""
    pml = pytest.importorskip("pytorch_metric_learning")
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
