"""Gradients of the distance core and of every loss: float64 gradcheck, torch vs
TensorFlow vs central differences of the NumPy backend, and finite (or zero) gradients on
every edge case of the contract (docs/contract.md) and every awkward label layout."""

import numpy as np
import pytest
from backends import (
    FRAMEWORKS,
    available,
    load,
    numerical_grads,
    to_backend,
    to_numpy,
    value_and_grads,
)
from cases import METRICS, MINING, layouts, mining_call

# name -> (function of the backend module, number of inputs, keyword arguments)
CASES = {
    "l2_normalize": (lambda tl: tl.l2_normalize, 1),
    "cosine_similarity": (lambda tl: tl.cosine_similarity, 2),
    "cosine_distance": (lambda tl: tl.cosine_distance, 2),
    "similarity_matrix": (lambda tl: tl.similarity_matrix, 1),
    "similarity_matrix_xy": (lambda tl: tl.similarity_matrix, 2),
    **{
        f"pairwise_{m}": (lambda tl, m=m: lambda *a: tl.pairwise_distances(*a, metric=m), 1)
        for m in METRICS
    },
    **{
        f"pairwise_{m}_xy": (lambda tl, m=m: lambda *a: tl.pairwise_distances(*a, metric=m), 2)
        for m in METRICS
    },
}


def generic_inputs(count, rng, rows=5, features=4):
    """Random rows, well away from every non-differentiable point (ties, zero rows)."""
    return [rng.normal(size=(rows, features)) for _ in range(count)]


# ----------------------------------------------------------------- the losses

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


def loss_inputs(count, seed=14):
    """Random (6, 6) inputs (square, for the score matrix): no ties, no hinge at exactly 0."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(6, 6)) for _ in range(count)]


def case_inputs(case: str, rng_seed: int):
    """``(function of a backend module, inputs, weights)`` of a gradient case: random rows
    for the distance core (``rng_seed``), square (6, 6) inputs for the losses."""
    if case in LOSS_CASES:
        make, count = LOSS_CASES[case]
        return make, loss_inputs(count), np.ones(())
    make, count = CASES[case]
    rng = np.random.default_rng(rng_seed)
    inputs = generic_inputs(count, rng)
    return make, inputs, rng.normal(size=np.shape(make(load("numpy"))(*inputs)))


@pytest.mark.parametrize("case", [*CASES, *LOSS_CASES])
def test_torch_gradcheck_float64(case):
    import torch

    tl = load("torch")
    make, inputs, _ = case_inputs(case, 0)
    inputs = [to_backend("torch", x).requires_grad_(True) for x in inputs]
    assert torch.autograd.gradcheck(make(tl), inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", [*CASES, *LOSS_CASES])
def test_torch_tensorflow_and_numerical_gradients_agree(case):
    make, inputs, weights = case_inputs(case, 1)
    reference = make(load("numpy"))
    expected = numerical_grads(reference, inputs, weights)
    for name in available(FRAMEWORKS):
        value, grads = value_and_grads(name, make(load(name)), inputs, weights)
        np.testing.assert_allclose(value, reference(*inputs), rtol=1e-10, atol=1e-12, err_msg=name)
        for got, want in zip(grads, expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)


def edge_layouts():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4))
    duplicated = x.copy()
    duplicated[1] = duplicated[0]
    zero_rows = x.copy()
    zero_rows[[2, 4]] = 0.0
    return {
        "identical rows": duplicated,
        "zero rows": zero_rows,
        "all zero": np.zeros((3, 4)),
        "single row": x[:1],
        "huge norms": x * 1e30,
        "tiny norms": x * 1e-30,
    }


@pytest.mark.parametrize("layout", edge_layouts())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_no_nan_or_inf_in_values_or_gradients_on_edge_cases(name, dtype, layout):
    x = edge_layouts()[layout]
    tl = load(name)
    for case, (make, count) in CASES.items():
        if case.startswith("pairwise_sqeuclidean") and layout == "huge norms":
            continue  # the value itself (1e60) does not exist in float32
        value, grads = value_and_grads(name, make(tl), [x] * count, dtype=dtype)
        assert np.isfinite(value).all(), (case, layout)
        for grad in grads:
            assert np.isfinite(grad).all(), (case, layout)


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_zero_row_gets_a_zero_gradient_not_one_over_eps(name):
    """torch.nn.functional.cosine_similarity gives ~1e8 here; the package gives 0."""
    tl = load(name)
    a, b = np.zeros((1, 3)), np.array([[1.0, 2.0, 3.0]])
    for fn in (tl.cosine_similarity, tl.cosine_distance):
        _, (grad_a, grad_b) = value_and_grads(name, fn, [a, b], dtype="float32")
        assert np.all(grad_a == 0) and np.all(grad_b == 0)
    _, (grad,) = value_and_grads(name, tl.l2_normalize, [a], dtype="float32")
    assert np.all(grad == 0)


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_gradient_at_identical_rows_is_zero_for_their_distance(name):
    """d(x0, x1) with x0 == x1 is not differentiable; the subgradient chosen is 0."""
    tl = load(name)
    x = np.random.default_rng(3).normal(size=(4, 3))
    x[1] = x[0]
    weights = np.zeros((4, 4))
    weights[0, 1] = 1.0
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        fn = lambda z, m=metric: tl.pairwise_distances(z, metric=m)  # noqa: E731
        _, (grad,) = value_and_grads(name, fn, [x], weights, dtype="float32")
        np.testing.assert_allclose(grad, 0.0, atol=1e-6, err_msg=metric)


# ----------------------------------------------------------------- mining on awkward layouts


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
