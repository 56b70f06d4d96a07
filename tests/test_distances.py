"""The distance core in every backend: values against the loop oracle, SPEC numbers,
edge cases, dtypes and errors. Gradients are in test_gradients.py."""

import numpy as np
import oracle
import pytest
from backends import dtype_name, load, to_backend, to_numpy
from cases import METRICS


def edge_batch(rng, batch=7, features=5):
    """Random rows plus the awkward ones: a duplicate, a zero row, a scaled copy."""
    x = rng.normal(size=(batch, features))
    x[3] = x[0]  # identical rows
    x[4] = 0.0  # zero row
    x[5] = 3.0 * x[1]  # same direction, other norm
    return x


# ----------------------------------------------------------------- values vs oracle


@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distances_match_loops(backend, metric):
    tl = load(backend)
    rng = np.random.default_rng(1)
    x, y = edge_batch(rng), rng.normal(size=(4, 5))
    for args, want in [
        ((x,), oracle.pairwise_distances(x, metric=metric)),
        ((x, y), oracle.pairwise_distances(x, y, metric=metric)),
    ]:
        got = tl.pairwise_distances(*(to_backend(backend, a) for a in args), metric=metric)
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-10)


def test_similarity_matrix_matches_loops(backend):
    tl = load(backend)
    rng = np.random.default_rng(2)
    x, y = edge_batch(rng), rng.normal(size=(3, 5))
    got = to_numpy(tl.similarity_matrix(to_backend(backend, x), to_backend(backend, y)))
    np.testing.assert_allclose(got, oracle.similarity_matrix(x, y), atol=1e-12)
    got = to_numpy(tl.similarity_matrix(to_backend(backend, x)))
    np.testing.assert_allclose(got, oracle.similarity_matrix(x), atol=1e-12)


def test_cosine_and_normalize_match_loops_with_broadcasting(backend):
    tl = load(backend)
    rng = np.random.default_rng(3)
    a, b = edge_batch(rng).reshape(7, 1, 5), rng.normal(size=(2, 5))  # (7, 1, 5) with (2, 5)
    got = to_numpy(tl.cosine_similarity(to_backend(backend, a), to_backend(backend, b)))
    assert got.shape == (7, 2)
    np.testing.assert_allclose(got, oracle.cosine_rows(a, b), atol=1e-12)
    dist = to_numpy(tl.cosine_distance(to_backend(backend, a), to_backend(backend, b)))
    np.testing.assert_allclose(dist, 1.0 - oracle.cosine_rows(a, b), atol=1e-12)
    unit = to_numpy(tl.l2_normalize(to_backend(backend, a)))
    np.testing.assert_allclose(unit, oracle.l2_normalize(a), atol=1e-12)


# ----------------------------------------------------------------- SPEC worked numbers


@pytest.mark.parametrize(
    ("b", "expected"),
    [([1, 2, 3.5], 0.9974), ([1, 2, 3], 1.0), ([-1, -2, -3], -1.0), ([0, -42, 1], -0.5153)],
)
def test_spec_cosine_numbers(backend, b, expected):
    tl = load(backend)
    a = to_backend(backend, [1.0, 2.0, 3.0])
    assert round(float(to_numpy(tl.cosine_similarity(a, to_backend(backend, b)))), 4) == expected


def test_l2_identity_with_the_factor_two(backend):
    """SPEC: |a-p|^2 - (|a| - |p|)^2 = 2 |a| |p| (1 - cos); unit vectors: |a-p|^2 = 2 (1 - cos)."""
    tl = load(backend)
    rng = np.random.default_rng(4)
    a, p = rng.normal(size=(50, 8)) * 3, rng.normal(size=(50, 8))
    lhs = np.sum((a - p) ** 2, 1) - (np.linalg.norm(a, axis=1) - np.linalg.norm(p, axis=1)) ** 2
    cos_dist = to_numpy(tl.cosine_distance(to_backend(backend, a), to_backend(backend, p)))
    rhs = 2 * np.linalg.norm(a, axis=1) * np.linalg.norm(p, axis=1) * cos_dist
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9)
    ua, up = (to_numpy(tl.l2_normalize(to_backend(backend, v))) for v in (a, p))
    np.testing.assert_allclose(np.sum((ua - up) ** 2, 1), 2 * cos_dist, rtol=1e-9)


# ----------------------------------------------------------------- edge cases


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identical_rows_are_at_distance_exactly_zero(backend, metric, dtype):
    tl = load(backend)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 128))
    x[10], x[50], x[63] = x[3], x[3], 0.0
    dist = to_numpy(tl.pairwise_distances(to_backend(backend, x, dtype), metric=metric))
    assert dist[3, 10] == dist[10, 50] == dist[50, 3] == 0.0
    assert np.all(np.diag(dist) == 0.0)
    assert np.all(dist[np.triu_indices(64, 1)][dist[np.triu_indices(64, 1)] == 0] == 0)
    off = ~np.eye(64, dtype=bool)
    off[[3, 10, 50, 3, 10, 50], [10, 50, 3, 50, 3, 10]] = False
    assert dist[off].min() > 0.1


def test_zero_rows(backend):
    tl = load(backend)
    x = to_backend(backend, [[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(to_numpy(tl.l2_normalize(x)), [[0, 0], [0.6, 0.8], [0, 0]])
    np.testing.assert_array_equal(to_numpy(tl.cosine_similarity(x, x)), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(to_numpy(tl.cosine_distance(x, x)), [1.0, 0.0, 1.0])
    s = to_numpy(tl.similarity_matrix(x))
    np.testing.assert_allclose(s, [[0, 0, 0], [0, 1, 0], [0, 0, 0]], atol=1e-15)
    d = to_numpy(tl.pairwise_distances(x, metric="cosine"))
    np.testing.assert_allclose(d, [[0, 1, 0], [1, 0, 1], [0, 1, 0]], atol=1e-15)


def test_single_row(backend):
    tl = load(backend)
    x = to_backend(backend, [[1.0, -2.0, 0.5]])
    for metric in METRICS:
        assert to_numpy(tl.pairwise_distances(x, metric=metric)).tolist() == [[0.0]]
    np.testing.assert_allclose(to_numpy(tl.similarity_matrix(x)), [[1.0]], atol=1e-15)


@pytest.mark.parametrize("scale", [1e-30, 1e-15, 1e15, 1e30])
def test_very_large_and_small_norms_float32(backend, scale):
    """Squares would overflow or underflow float32; values must still be right and finite."""
    tl = load(backend)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 3)) * scale
    xt = to_backend(backend, x, "float32")
    for metric in ("euclidean", "cosine", "l1"):
        got = to_numpy(tl.pairwise_distances(xt, metric=metric)).astype(np.float64)
        want = oracle.pairwise_distances(x.astype(np.float32), metric=metric)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * (metric == "cosine"))
    unit = to_numpy(tl.l2_normalize(xt))  # rows below eps = 1e-12 are zero rows by contract
    np.testing.assert_allclose(unit, oracle.l2_normalize(x.astype(np.float32)), atol=1e-6)
    assert (np.linalg.norm(unit, axis=1) > 0.5).all() == (scale > 1e-12)
    cos = to_numpy(tl.cosine_similarity(xt[:-1], xt[1:]))
    np.testing.assert_allclose(cos, oracle.cosine_rows(x[:-1], x[1:]), atol=1e-6)


def test_cosine_eps_sets_what_counts_as_zero(backend):
    tl = load(backend)
    a, b = to_backend(backend, [[1e-6, 0.0]]), to_backend(backend, [[1.0, 0.0]])
    assert float(to_numpy(tl.cosine_similarity(a, b))[0]) == pytest.approx(1.0)
    assert float(to_numpy(tl.cosine_similarity(a, b, eps=1e-5))[0]) == 0.0


# ----------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_dtype_is_kept(backend, dtype):
    tl = load(backend)
    x = to_backend(backend, np.random.default_rng(7).normal(size=(4, 3)), dtype)
    outputs = [
        tl.l2_normalize(x),
        tl.cosine_similarity(x, x),
        tl.cosine_distance(x, x),
        tl.similarity_matrix(x),
        *(tl.pairwise_distances(x, metric=m) for m in METRICS),
    ]
    assert {dtype_name(o) for o in outputs} == {dtype}


def test_half_precision_is_computed_in_float32(backend):
    """float16 inputs give the float32 result rounded once (not float16 arithmetic)."""
    tl = load(backend)
    x16 = np.random.default_rng(8).normal(size=(6, 40)).astype(np.float16) * 30
    got = to_numpy(tl.pairwise_distances(to_backend(backend, x16, "float16")))
    want = oracle.pairwise_distances(x16.astype(np.float64)).astype(np.float16)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-3)


def test_lists_and_integers_are_accepted(backend):
    tl = load(backend)
    got = tl.cosine_similarity(to_backend(backend, [1, 2, 3], "int64"), [1.0, 2.0, 3.5])
    assert round(float(to_numpy(got)), 4) == 0.9974
    assert dtype_name(got) == ("float64" if backend == "numpy" else "float32")


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda tl, T: tl.pairwise_distances(T(np.ones(3))), "x must be a matrix"),
        (lambda tl, T: tl.pairwise_distances(T(np.ones((2, 3))), T(np.ones(3))), "y must be"),
        (lambda tl, T: tl.pairwise_distances(T(np.ones((2, 3))), T(np.ones((2, 4)))), "same"),
        (lambda tl, T: tl.pairwise_distances(T(np.ones((2, 3))), metric="cos"), "metric must"),
        (lambda tl, T: tl.pairwise_distances(T(np.ones((2, 0)))), "at least one feature"),
        (lambda tl, T: tl.similarity_matrix(T(np.ones((2, 2, 3)))), "x must be a matrix"),
        (lambda tl, T: tl.cosine_similarity(T(np.ones((2, 3))), T(np.ones((3, 3)))), "broadcast"),
        (lambda tl, T: tl.cosine_similarity(T(np.ones(3)), T(np.ones(4))), "same number"),
        (lambda tl, T: tl.cosine_similarity(T(np.float64(1.0)), T(np.ones(1))), "a must have"),
        (lambda tl, T: tl.cosine_similarity(T(np.ones(3)), T(np.ones(3)), eps=0.0), "eps"),
        (lambda tl, T: tl.l2_normalize(T(np.ones(3)), eps=-1.0), "eps must be"),
        (lambda tl, T: tl.l2_normalize(T(np.array([1.0, np.nan]))), "x must be finite"),
        (lambda tl, T: tl.cosine_similarity(T(np.ones(2)), T(np.array([np.inf, 1]))), "b must"),
        (lambda tl, T: tl.pairwise_distances(T(np.ones((2, 2))), T(np.full((1, 2), np.nan))), "y"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(backend, call, match):
    tl = load(backend)
    with pytest.raises(ValueError, match=match):
        call(tl, lambda x: to_backend(backend, x))


def test_non_numeric_input_is_rejected(backend):
    tl = load(backend)
    with pytest.raises(ValueError, match="x must hold real numbers"):
        tl.l2_normalize(np.array(["a", "b"]) if backend != "torch" else np.ones(2, complex))
