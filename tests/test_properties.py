"""Property tests (hypothesis): the three backends agree on values and gradients for
random batches, including zero rows, duplicated rows and scaled copies."""

import numpy as np
import pytest
from backends import ALL, FRAMEWORKS, available, load, to_backend, to_numpy, value_and_grads
from cases import METRICS, MINING, mining_call
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

FLOAT32 = {"rtol": 2e-5, "atol": 2e-5}


@st.composite
def batches(draw, max_rows=8, max_features=6):
    """A (B, D) float64 batch; some rows are then zeroed, duplicated or rescaled."""
    rows = draw(st.integers(1, max_rows))
    features = draw(st.integers(1, max_features))
    # Entries are 0 or of magnitude 1e-3..10: a batch spanning 1e19 (say 8 and 7e-19) is
    # beyond what float32 resolves, and there the frameworks' subnormal flushing differs.
    magnitudes = st.floats(2**-10, 10, width=32)
    values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v))
    x = draw(arrays(np.float64, (rows, features), elements=values))
    for _ in range(draw(st.integers(0, 3))):
        i, j = draw(st.integers(0, rows - 1)), draw(st.integers(0, rows - 1))
        op = draw(st.sampled_from(["zero", "duplicate", "scale"]))
        if op == "zero":
            x[i] = 0.0
        elif op == "duplicate":
            x[i] = x[j]
        else:
            x[i] = x[j] * draw(st.sampled_from([0.5, 2.0, -1.0, 1e3]))
    return x


def rounded(x):
    """Round through float32 so that the float32 runs see exactly the same numbers."""
    return x.astype(np.float32).astype(np.float64)


@given(x=batches(), metric=st.sampled_from(METRICS))
def test_pairwise_distances_agree_across_backends(x, metric):
    x = rounded(x)
    want = to_numpy(load("numpy").pairwise_distances(x, metric=metric))
    for name in available(ALL):
        tl = load(name)
        got64 = to_numpy(tl.pairwise_distances(to_backend(name, x), metric=metric))
        np.testing.assert_allclose(got64, want, rtol=1e-9, atol=1e-9, err_msg=name)
        got32 = to_numpy(tl.pairwise_distances(to_backend(name, x, "float32"), metric=metric))
        scale = 1.0 + np.abs(x).max() ** (2 if metric == "sqeuclidean" else 1)
        atol = 2e-5 * scale
        if metric == "euclidean":
            # the Gram form |x|^2 + |y|^2 - 2 x.y loses about eps32 * |x|^2 to cancellation;
            # the square root turns that into sqrt(eps32) * |x| for nearly equal rows
            # (a hypothesis example: rows [-3, 2^-10] and [-3, 0] come out 0 apart)
            atol += np.sqrt(8 * np.finfo(np.float32).eps) * np.abs(x).max()
        np.testing.assert_allclose(got32, want, rtol=2e-5, atol=atol, err_msg=name)


@given(x=batches(), y=batches())
def test_similarities_agree_across_backends(x, y):
    x, y = rounded(x), rounded(y[:, : x.shape[1]] if y.shape[1] >= x.shape[1] else x[::-1])
    reference = load("numpy")
    want_matrix = reference.similarity_matrix(x, y)
    rows = min(len(x), len(y))
    want_rows = reference.cosine_similarity(x[:rows], y[:rows])
    for name in available(ALL):
        tl = load(name)
        for dtype, tol in (("float64", {"atol": 1e-12}), ("float32", FLOAT32)):
            xb, yb = to_backend(name, x, dtype), to_backend(name, y, dtype)
            np.testing.assert_allclose(to_numpy(tl.similarity_matrix(xb, yb)), want_matrix, **tol)
            got = to_numpy(tl.cosine_similarity(xb[:rows], yb[:rows]))
            np.testing.assert_allclose(got, want_rows, **tol)
            assert np.all(np.abs(got) <= 1.0)


@given(x=batches(), metric=st.sampled_from(METRICS), seed=st.integers(0, 2**16))
def test_gradients_agree_between_torch_and_tensorflow(x, metric, seed):
    """Including zero rows and duplicates: both frameworks pick the same subgradient."""
    if available(FRAMEWORKS) != FRAMEWORKS:
        pytest.skip("compares torch with TensorFlow; one is skipped")
    x = rounded(x)
    weights = np.random.default_rng(seed).normal(size=(len(x), len(x)))
    results = {}
    for name in available(FRAMEWORKS):
        tl = load(name)
        for dtype in ("float64", "float32"):
            fn = lambda z, tl=tl: tl.pairwise_distances(z, metric=metric)  # noqa: E731
            results[name, dtype] = value_and_grads(name, fn, [x], weights, dtype)
    for dtype, tol in (("float64", {"rtol": 1e-8, "atol": 1e-8}), ("float32", None)):
        (v_torch, (g_torch,)), (v_tf, (g_tf,)) = (
            results["torch", dtype],
            results["tensorflow", dtype],
        )
        assert np.isfinite(g_torch).all() and np.isfinite(g_tf).all()
        if tol is None:  # float32: gradients of near-ties may legitimately flip; compare loosely
            scale = np.abs(weights).sum() * (1 + np.abs(x).max())
            tol = {"rtol": 1e-3, "atol": 1e-3 * scale}
        np.testing.assert_allclose(v_torch, v_tf, **tol)
        np.testing.assert_allclose(g_torch, g_tf, **tol)


@given(x=batches())
def test_l2_normalize_gives_unit_or_zero_rows(x):
    for name in available(ALL):
        unit = to_numpy(load(name).l2_normalize(to_backend(name, x)))
        norms = np.linalg.norm(unit, axis=1)
        zero = np.linalg.norm(x, axis=1) <= 1e-12
        np.testing.assert_allclose(norms[~zero], 1.0, rtol=1e-12)
        assert np.all(unit[zero] == 0.0)


@pytest.mark.parametrize("metric", METRICS)
@given(x=batches(max_rows=6))
def test_distances_are_symmetric_nonnegative_with_zero_diagonal(metric, x):
    for name in available(ALL):
        d = to_numpy(load(name).pairwise_distances(to_backend(name, x, "float32"), metric=metric))
        assert np.all(d >= 0) and np.all(np.diag(d) == 0)
        np.testing.assert_allclose(d, d.T, rtol=1e-6, atol=1e-6 * (1 + np.abs(d).max()))


# ----------------------------------------------------------------- losses and mining


@st.composite
def labelled_batches(draw):
    x = draw(batches(max_rows=10))
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=len(x), max_size=len(x))))
    return rounded(x), labels


def decides(kind, x, labels, margin, metric, tolerance):
    """False when a valid triplet sits within ``tolerance`` (relative) of a decision
    boundary (batch-all: is the hinge > 0? semi-hard: is d_an > d_ap?). There one
    rounding error flips the decision, and a flipped batch-all count changes the mean
    by a whole triplet's share: the backends may then legitimately disagree."""
    if kind not in ("batch_all", "batch_semihard"):
        return True  # max and min are continuous: no decision to flip
    reference = load("numpy")
    dist = reference.pairwise_distances(x, metric=metric)
    valid = reference.positive_mask(labels)[:, :, None] & reference.negative_mask(labels)[:, None]
    gap = dist[:, :, None] - dist[:, None, :] + (margin if kind == "batch_all" else 0.0)
    scale = 1.0 + np.abs(dist).max()
    return not np.any(valid & (np.abs(gap) < tolerance * scale))


@given(
    batch=labelled_batches(),
    kind=st.sampled_from(MINING),
    metric=st.sampled_from(METRICS),
    margin=st.sampled_from([0.0, 0.2, 1.0]),
)
def test_mining_losses_agree_across_backends(batch, kind, metric, margin):
    """float64 to 1e-9 and float32 to 1e-4, wherever the precision decides the same
    triplets (see ``decides``; exact ties are tested in test_values.py)."""
    x, labels = batch
    want = float(mining_call(load("numpy"), kind, x, labels, margin, metric))
    scale = 1.0 + np.abs(x).max() ** (2 if metric == "sqeuclidean" else 1)
    float64_decides = decides(kind, x, labels, margin, metric, 1e-12)
    float32_decides = decides(kind, x, labels, margin, metric, 1e-5)
    for name in available(ALL):
        tl = load(name)
        got64 = float(to_numpy(mining_call(tl, kind, to_backend(name, x), labels, margin, metric)))
        assert np.isfinite(got64)
        if float64_decides:
            assert got64 == pytest.approx(want, rel=1e-9, abs=1e-9), name
        got32 = float(
            to_numpy(mining_call(tl, kind, to_backend(name, x, "float32"), labels, margin, metric))
        )
        assert np.isfinite(got32)
        if float32_decides:
            assert got32 == pytest.approx(want, rel=1e-4, abs=1e-4 * scale), name


@given(batch=labelled_batches(), kind=st.sampled_from(MINING), metric=st.sampled_from(METRICS))
def test_mining_gradients_agree_between_torch_and_tensorflow(batch, kind, metric):
    """float64, with ties and duplicates: both frameworks pick the same examples."""
    if available(FRAMEWORKS) != FRAMEWORKS:
        pytest.skip("compares torch with TensorFlow; one is skipped")
    x, labels = batch
    # a rounding-level tie: each framework may pick its side (assume: counted, not passed)
    assume(decides(kind, x, labels, 0.2, metric, 1e-12))
    grads = {}
    for name in FRAMEWORKS:
        tl = load(name)
        fn = lambda z, tl=tl: mining_call(tl, kind, z, labels, 0.2, metric)  # noqa: E731
        value, (grads[name],) = value_and_grads(name, fn, [x])
        assert np.isfinite(value) and np.isfinite(grads[name]).all()
    np.testing.assert_allclose(grads["torch"], grads["tensorflow"], rtol=1e-7, atol=1e-7)
