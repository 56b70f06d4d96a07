"""The softmax losses (issue 15): ``info_nce_loss`` and ``supervised_contrastive_loss``.

Oracles: plain Python loops over rows in float64 (written from the formulas, not from
``tripletlab.numpy``), pytorch-metric-learning's ``SupConLoss`` and ``NTXentLoss``, the
definition of sentence-transformers' ``MultipleNegativesRankingLoss`` (not installed: its
cross-entropy of ``scale * cos`` written out) and ``torch.nn.functional.cross_entropy``.
The three backends agree on values and gradients (hypothesis); the framework backends'
blocks of rows give the whole matrix's values and gradients; the cross-worker wrappers
give the loss of the global batch. The bad-input table (``test_bad_input.py``) holds the
errors and edge cases of every backend and loss object.

Run as a script, this file is the TensorFlow two-replica check (logical CPU devices can
only be set before TensorFlow starts, so it runs in a fresh interpreter).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from backends import ALL, available, dtype_name, load, to_backend, to_numpy, value_and_grads
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tripletlab.distributed_demo import free_port

# --------------------------------------------------------------------------- loop oracles


def _cos(a, b) -> float:
    """The cosine of two rows; 0 when either has norm <= 1e-8 (the package's rule)."""
    na = math.sqrt(sum(v * v for v in a))
    nb = math.sqrt(sum(v * v for v in b))
    if na <= 1e-8 or nb <= 1e-8:
        return 0.0
    return max(-1.0, min(1.0, sum(u * v for u, v in zip(a, b, strict=True)) / (na * nb)))


def _log_sum_exp(values) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def supcon_loop(x, labels, t) -> float:
    """Khosla et al. L_out: per anchor with a positive, the mean over its positives of
    ``-log(exp(s_ip) / sum_{a != i} exp(s_ia))``; the mean over those anchors, else 0."""
    total, anchors = 0.0, 0
    for i in range(len(x)):
        positives = [p for p in range(len(x)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        log_den = _log_sum_exp([_cos(x[i], x[a]) / t for a in range(len(x)) if a != i])
        total += sum(log_den - _cos(x[i], x[p]) / t for p in positives) / len(positives)
        anchors += 1
    return total / anchors if anchors else 0.0


def info_nce_loop(q, k, t, symmetric=False, labels=None) -> list[float]:
    """Per pair ``-log(exp(s_ii) / sum_j exp(s_ij))`` over the keys ``j`` that are the
    pair or of another label; symmetric: averaged with the same over the queries."""

    def one_way(q, k):
        out = []
        for i in range(len(q)):
            kept = [j for j in range(len(k)) if j == i or labels is None or labels[j] != labels[i]]
            out.append(_log_sum_exp([_cos(q[i], k[j]) / t for j in kept]) - _cos(q[i], k[i]) / t)
        return out

    forward = one_way(q, k)
    if not symmetric:
        return forward
    return [(a + b) / 2 for a, b in zip(forward, one_way(k, q), strict=True)]


def mnrl_loop(anchors, positives, scale) -> float:
    """sentence-transformers' ``MultipleNegativesRankingLoss`` by its definition: the
    cross-entropy of ``scale * cos(anchor_i, positive_j)`` over ``j`` with target ``i``,
    averaged over the batch (its ``similarity_fct`` is the cosine, ``scale`` 20)."""
    losses = []
    for i in range(len(anchors)):
        scores = [scale * _cos(anchors[i], positives[j]) for j in range(len(positives))]
        losses.append(_log_sum_exp(scores) - scores[i])
    return sum(losses) / len(losses)


def batch(seed, rows=10, features=4, classes=3, zero_rows=(), dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    x[list(zero_rows)] = 0.0
    return x.astype(dtype), rng.integers(0, classes, rows)


CASES = [
    {"seed": 0},
    {"seed": 1, "classes": 2},
    {"seed": 2, "zero_rows": (1, 4)},
    {"seed": 3, "rows": 3, "classes": 5},
    {"seed": 4, "rows": 12, "classes": 12},  # mostly no positive
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("t", [0.05, 0.1, 1.0])
def test_supervised_contrastive_loss_is_the_loop(case, t):
    x, labels = batch(**case)
    want = supcon_loop(x, labels, t)
    for name in available(ALL):
        got = load(name).supervised_contrastive_loss(to_backend(name, x), labels, t)
        assert float(to_numpy(got)) == pytest.approx(want, rel=1e-10, abs=1e-12), name


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("with_labels", [False, True])
def test_info_nce_loss_is_the_loop(case, symmetric, with_labels):
    q, labels = batch(**case)
    k, _ = batch(case["seed"] + 100, rows=len(q), features=q.shape[1])
    k[: len(q) // 2] += q[: len(q) // 2]  # some pairs close
    labels = labels if with_labels else None
    want = info_nce_loop(q, k, 0.1, symmetric, labels)
    for name in available(ALL):
        tl = load(name)
        qb, kb = to_backend(name, q), to_backend(name, k)
        got = tl.info_nce_loss(qb, kb, 0.1, symmetric, labels, "none")
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12, err_msg=name)
        mean = tl.info_nce_loss(qb, kb, 0.1, symmetric, labels)
        assert float(to_numpy(mean)) == pytest.approx(np.mean(want), rel=1e-10), name
        total = tl.info_nce_loss(qb, kb, 0.1, symmetric, labels, "sum")
        assert float(to_numpy(total)) == pytest.approx(np.sum(want), rel=1e-10), name


# --------------------------------------------------------------------------- peers


@pytest.mark.parametrize("scale", [20.0, 7.0])
def test_info_nce_is_multiple_negatives_ranking_loss_with_scale_one_over_t(scale):
    """sentence-transformers is not installed: its definition, as a loop."""
    q, _ = batch(5, rows=8)
    k, _ = batch(6, rows=8)
    want = mnrl_loop(q, k, scale)
    for name in available(ALL):
        got = load(name).info_nce_loss(to_backend(name, q), to_backend(name, k), 1 / scale)
        assert float(to_numpy(got)) == pytest.approx(want, rel=1e-10), name


def test_info_nce_is_the_fused_cross_entropy_of_the_cosine_matrix():
    """The plain formulation the benchmark measures: ``F.cross_entropy(S / t, arange)``."""
    torch = load("torch").torch
    F = torch.nn.functional
    tl = load("torch")
    q, _ = batch(7, rows=16, features=6)
    k, _ = batch(8, rows=16, features=6)
    qt = to_backend("torch", q).requires_grad_(True)
    kt = to_backend("torch", k).requires_grad_(True)
    fused = F.cross_entropy(F.normalize(qt) @ F.normalize(kt).T / 0.07, torch.arange(16))
    ours = tl.info_nce_loss(qt, kt, 0.07)
    assert ours.item() == pytest.approx(fused.item(), rel=1e-12)
    want = torch.autograd.grad(fused, (qt, kt))
    for g, w in zip(torch.autograd.grad(ours, (qt, kt)), want, strict=True):
        np.testing.assert_allclose(to_numpy(g), to_numpy(w), rtol=1e-9, atol=1e-12)


def _pml_value_and_grad(loss_fn, x, labels):
    torch = load("torch").torch
    xt = torch.tensor(x, requires_grad=True)
    loss = loss_fn(xt, torch.as_tensor(labels))
    return loss.item(), torch.autograd.grad(loss, xt)[0].numpy()


def _ours_value_and_grad(x, labels, t):
    torch = load("torch").torch
    xt = torch.tensor(x, requires_grad=True)
    loss = load("torch").supervised_contrastive_loss(xt, labels, t)
    return loss.item(), torch.autograd.grad(loss, xt)[0].numpy()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("t", [0.07, 0.5])
def test_supervised_contrastive_loss_is_pml_supconloss(seed, t):
    """pytorch-metric-learning's ``SupConLoss(temperature=t)`` (cosine similarity by
    default), in float64: values and gradients to 1e-6, on batches with at least one
    negative (PML returns 0 for a batch of one class, where L_out is not 0)."""
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, labels = batch(seed, rows=12, features=5, classes=3)
    want, want_grad = _pml_value_and_grad(losses.SupConLoss(temperature=t), x, labels)
    got, grad = _ours_value_and_grad(x, labels, t)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-6)


def test_a_batch_of_one_class_is_not_zero_unlike_pml():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, _ = batch(9, rows=5)
    labels = np.zeros(5, np.int64)
    assert _pml_value_and_grad(losses.SupConLoss(temperature=0.1), x, labels)[0] == 0.0
    assert _ours_value_and_grad(x, labels, 0.1)[0] == pytest.approx(supcon_loop(x, labels, 0.1))


def two_views(seed, instances=6, features=5):
    """``2N`` rows, the views of ``N`` instances (view 2 a noisy copy), ids twice."""
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(instances, features))
    second = first + 0.5 * rng.normal(size=(instances, features))
    return np.concatenate([first, second]), np.tile(np.arange(instances), 2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("t", [0.07, 0.5])
def test_nt_xent_is_two_views_and_pml_ntxentloss(seed, t):
    """NT-Xent (SimCLR) is the supervised contrastive loss with two views per instance and
    the instance ids as labels; PML's ``NTXentLoss(temperature=t)`` on those embeddings
    and labels gives the same value and gradient (float64, 1e-6).

    With more than two views per label PML's loss differs, in a documented way: it is a
    mean over positive *pairs* ``(a, p)`` of ``-log(exp(s_ap) / (exp(s_ap) + sum_n
    exp(s_an)))``, the sum over the anchor's negatives only, so the anchor's other
    positives are not in that pair's denominator, whereas L_out keeps every other row in
    it (checked below by writing PML's formula out as a loop)."""
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, ids = two_views(seed)
    want, want_grad = _pml_value_and_grad(losses.NTXentLoss(temperature=t), x, ids)
    got, grad = _ours_value_and_grad(x, ids, t)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-6)
    # the loop: one positive per anchor, the softmax over the 2N - 1 other views
    n = len(x) // 2
    nt_xent = []
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        others = [_cos(x[i], x[a]) / t for a in range(2 * n) if a != i]
        nt_xent.append(_log_sum_exp(others) - _cos(x[i], x[p]) / t)
    assert got == pytest.approx(np.mean(nt_xent), rel=1e-10)

    # three views per label: PML's pairs, each with its own denominator
    x3, labels3 = batch(seed, rows=12, classes=4)
    pairs = []
    for a in range(len(x3)):
        negatives = [m for m in range(len(x3)) if labels3[m] != labels3[a]]
        for p in range(len(x3)):
            if p != a and labels3[p] == labels3[a] and negatives:
                logits = [_cos(x3[a], x3[m]) / t for m in [p, *negatives]]
                pairs.append(_log_sum_exp(logits) - logits[0])
    pml3, _ = _pml_value_and_grad(losses.NTXentLoss(temperature=t), x3, labels3)
    assert pml3 == pytest.approx(np.mean(pairs), rel=1e-6)
    assert _ours_value_and_grad(x3, labels3, t)[0] != pytest.approx(pml3, rel=1e-3)


def test_info_nce_symmetric_on_two_views_is_not_nt_xent():
    """CLIP's symmetric InfoNCE puts only the other *view* in each denominator (N
    entries), NT-Xent every other row (2N - 1): they differ; NT-Xent is the supervised
    contrastive loss on the stacked views."""
    tl = load("numpy")
    x, ids = two_views(3)
    n = len(x) // 2
    clip = tl.info_nce_loss(x[:n], x[n:], 0.1, symmetric=True)
    assert float(clip) != pytest.approx(float(tl.supervised_contrastive_loss(x, ids, 0.1)))


# --------------------------------------------------------------------------- backends agree


@st.composite
def softmax_batches(draw, max_rows=9, max_features=5):
    """Rows of magnitude 1e-3..10 or 0, some duplicated or zeroed; labels of few classes."""
    rows = draw(st.integers(1, max_rows))
    features = draw(st.integers(1, max_features))
    magnitudes = st.floats(2**-10, 10, width=32)
    values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v))
    x = draw(arrays(np.float64, (rows, features), elements=values))
    y = draw(arrays(np.float64, (rows, features), elements=values))
    for _ in range(draw(st.integers(0, 2))):
        i, j = draw(st.integers(0, rows - 1)), draw(st.integers(0, rows - 1))
        x[i] = y[j] if draw(st.booleans()) else 0.0
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=rows, max_size=rows)))
    return x, y, labels


def _supcon(tl, t, labels):
    return lambda x: tl.supervised_contrastive_loss(x, labels, t)


def _nce(tl, t, labels, symmetric):
    return lambda q, k: tl.info_nce_loss(q, k, t, symmetric, labels, "none")


@given(
    data=softmax_batches(),
    t=st.sampled_from([0.05, 0.3, 2.0]),
    symmetric=st.booleans(),
    with_labels=st.booleans(),
)
def test_backends_agree_on_values_and_gradients(data, t, symmetric, with_labels):
    """numpy, torch and TensorFlow values; torch and TensorFlow gradients (of a random
    weighting of the per-pair losses), in float64, zero rows and duplicates included."""
    x, y, labels = data
    nce_labels = labels if with_labels else None
    reference = load("numpy")
    want_supcon = float(reference.supervised_contrastive_loss(x, labels, t))
    want_nce = reference.info_nce_loss(x, y, t, symmetric, nce_labels, "none")
    # weights of both signs: the framework backends fold positive ones into the softmax
    weights = np.random.default_rng(len(x)).uniform(-1.0, 2.0, len(x))
    grads = {}
    for name in available(("torch", "tensorflow")):
        tl = load(name)
        value, (g_sup,) = value_and_grads(name, _supcon(tl, t, labels), [x])
        assert float(value) == pytest.approx(want_supcon, rel=1e-9, abs=1e-12), name
        value, g_nce = value_and_grads(name, _nce(tl, t, nce_labels, symmetric), [x, y], weights)
        np.testing.assert_allclose(value, want_nce, rtol=1e-9, atol=1e-12, err_msg=name)
        assert all(np.isfinite(g).all() for g in (g_sup, *g_nce)), name
        grads[name] = (g_sup, *g_nce)
    if len(grads) == 2:
        for g_torch, g_tf in zip(grads["torch"], grads["tensorflow"], strict=True):
            np.testing.assert_allclose(g_torch, g_tf, rtol=1e-9, atol=1e-12)


@given(data=softmax_batches(), t=st.sampled_from([0.05, 0.5]))
def test_float32_agrees_with_float64(data, t):
    x, y, labels = data
    x, y = (v.astype(np.float32).astype(np.float64) for v in (x, y))
    reference = load("numpy")
    want_supcon = float(reference.supervised_contrastive_loss(x, labels, t))
    want_nce = float(reference.info_nce_loss(x, y, t, labels=labels))
    for name in available(ALL):
        tl = load(name)
        xb, yb = to_backend(name, x, "float32"), to_backend(name, y, "float32")
        got = tl.supervised_contrastive_loss(xb, labels, t)
        assert dtype_name(got) == "float32", name
        # logits up to 1 / t: float32 rounding of the cosines is amplified by 1 / t
        tol = {"rel": 1e-5, "abs": 1e-5 / t}
        assert float(to_numpy(got)) == pytest.approx(want_supcon, **tol), name
        got = tl.info_nce_loss(xb, yb, t, labels=labels)
        assert float(to_numpy(got)) == pytest.approx(want_nce, **tol), name


@pytest.mark.parametrize("blocks", ["whole matrix", "blocks of one row", "blocks of a few rows"])
@pytest.mark.parametrize("t", [0.3, 0.01])  # 0.01: each row shifted by its largest logit
def test_torch_gradcheck_in_float64(blocks, t, monkeypatch):
    torch = load("torch").torch
    tl = load("torch")
    _use_blocks(monkeypatch, tl, blocks)
    x, labels = batch(11, rows=9, features=4)
    y, _ = batch(12, rows=9, features=4)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.tensor(y, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: tl.supervised_contrastive_loss(a, labels, t), xt)
    for symmetric in (False, True):
        for nce_labels in (None, labels):

            def fn(a, b, symmetric=symmetric, nce_labels=nce_labels):
                return tl.info_nce_loss(a, b, t, symmetric, nce_labels, "none")

            assert torch.autograd.gradcheck(fn, (xt, yt))


BLOCKS = {
    "whole matrix": None,
    "blocks of one row": {"WHOLE_MATRIX_ROWS": 0, "BLOCK_ENTRIES": 1},
    "blocks of a few rows": {"WHOLE_MATRIX_ROWS": 0, "BLOCK_ENTRIES": 40},
}


def _use_blocks(monkeypatch, tl, blocks):
    from tripletlab import _blocks

    for name, value in (BLOCKS[blocks] or {}).items():
        assert hasattr(_blocks, name), name
        monkeypatch.setattr(_blocks, name, value)


@pytest.mark.parametrize("name", ["torch", "tensorflow"])
@pytest.mark.parametrize("blocks", ["blocks of one row", "blocks of a few rows"])
@pytest.mark.parametrize("t", [0.1, 0.01])
def test_blocks_give_the_whole_matrix_values_and_gradients(name, blocks, t, monkeypatch):
    tl = load(name)
    x, labels = batch(13, rows=11, features=3, zero_rows=(2,))
    y, _ = batch(14, rows=11, features=3)
    weights = np.random.default_rng(0).uniform(-1.0, 2.0, len(x))

    def run():
        out = {"supcon": value_and_grads(name, _supcon(tl, t, labels), [x])}
        for symmetric in (False, True):
            fn = _nce(tl, t, labels, symmetric)
            out[f"nce {symmetric}"] = value_and_grads(name, fn, [x, y], weights)
        return out

    whole = run()
    _use_blocks(monkeypatch, tl, blocks)
    assert len(tl._row_blocks(len(x))) > 1
    for key, (value, grads) in run().items():
        np.testing.assert_allclose(value, whole[key][0], rtol=1e-12, atol=1e-14, err_msg=key)
        for g, w in zip(grads, whole[key][1], strict=True):
            atol = 1e-13 * (1.0 + np.abs(w).max())  # sums of a different order
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=atol, err_msg=key)


def test_torch_compile_fullgraph_gives_the_eager_values_and_gradients():
    torch = load("torch").torch
    tl = load("torch")
    x, labels = batch(25, rows=12, features=4)
    y, _ = batch(26, rows=12, features=4)

    def both(a, b):
        supcon = tl.supervised_contrastive_loss(a, labels, 0.1)
        return supcon + tl.info_nce_loss(a, b, 0.05, True, labels)

    compiled = torch.compile(both, fullgraph=True)
    got = value_and_grads("torch", compiled, [x, y], dtype="float32")
    want = value_and_grads("torch", both, [x, y], dtype="float32")
    assert float(got[0]) == pytest.approx(float(want[0]), rel=1e-5)
    for g, w in zip(got[1], want[1], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_tensorflow_jit_compile_gives_the_eager_values_and_gradients():
    tf = load("tensorflow").tf
    tl = load("tensorflow")
    x, labels = batch(27, rows=12, features=4)
    y, _ = batch(28, rows=12, features=4)

    def both(a, b):
        supcon = tl.supervised_contrastive_loss(a, labels, 0.1)
        return supcon + tl.info_nce_loss(a, b, 0.05, True, labels)

    got = value_and_grads("tensorflow", tf.function(both, jit_compile=True), [x, y])
    want = value_and_grads("tensorflow", both, [x, y])
    assert float(got[0]) == pytest.approx(float(want[0]), rel=1e-10)
    for g, w in zip(got[1], want[1], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("name", ["torch", "tensorflow"])
def test_no_anchor_with_a_positive_is_a_connected_zero(name):
    tl = load(name)
    x, _ = batch(15, rows=5)
    value, (grad,) = value_and_grads(name, _supcon(tl, 0.1, np.arange(5)), [x])
    assert float(value) == 0.0
    assert grad.shape == x.shape and np.all(grad == 0.0)


@pytest.mark.parametrize("name", ["torch", "tensorflow"])
def test_zero_rows_have_cosine_zero_and_a_zero_gradient(name):
    """A zero row is at cosine 0 from everything: a finite loss, and its own gradient is 0
    (as ``cosine_similarity`` gives at the zero vector); the others' are finite."""
    tl = load(name)
    x, labels = batch(16, rows=6, zero_rows=(0, 3))
    labels[[0, 3]] = 7  # the two zero rows: positives of each other
    value, (grad,) = value_and_grads(name, _supcon(tl, 0.1, labels), [x])
    assert float(value) == pytest.approx(supcon_loop(x, labels, 0.1), rel=1e-10)
    assert np.isfinite(grad).all() and np.all(grad[[0, 3]] == 0.0)
    value, grads = value_and_grads(name, _nce(tl, 0.1, None, True), [x, x[::-1].copy()])
    assert np.isfinite(value).all() and all(np.isfinite(g).all() for g in grads)
    assert np.all(grads[0][[0, 3]] == 0.0)


@pytest.mark.parametrize("name", ["torch", "tensorflow"])
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(name, half):
    """float16/bfloat16 rows: the float32 loss of the same numbers, rounded to the half
    dtype, and the result in that dtype (as the package's other losses)."""
    tl = load(name)
    x, labels = batch(17, rows=8)
    y, _ = batch(18, rows=8)
    xh, yh = to_backend(name, x, half), to_backend(name, y, half)
    x32 = to_numpy(to_backend(name, to_numpy(_float(name, xh)), "float32"))
    y32 = to_numpy(to_backend(name, to_numpy(_float(name, yh)), "float32"))
    for got, want in (
        (
            tl.supervised_contrastive_loss(xh, labels, 0.1),
            tl.supervised_contrastive_loss(to_backend(name, x32, "float32"), labels, 0.1),
        ),
        (
            tl.info_nce_loss(xh, yh, 0.05, True, labels),
            tl.info_nce_loss(
                to_backend(name, x32, "float32"),
                to_backend(name, y32, "float32"),
                0.05,
                True,
                labels,
            ),
        ),
    ):
        assert dtype_name(got) == half
        rounded = to_numpy(_float(name, to_backend(name, to_numpy(want), half)))
        assert float(to_numpy(_float(name, got))) == float(rounded)


def _float(name, x):
    """A half tensor as float32 (NumPy has no bfloat16)."""
    if name == "torch":
        return x.float()
    import tensorflow as tf

    return tf.cast(x, tf.float32)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), "0.1", None, True])
def test_temperature_must_be_a_finite_positive_number(name, temperature):
    tl = load(name)
    x, labels = batch(19, rows=4)
    xb = to_backend(name, x)
    with pytest.raises(ValueError, match="temperature"):
        tl.supervised_contrastive_loss(xb, labels, temperature)
    with pytest.raises(ValueError, match="temperature"):
        tl.info_nce_loss(xb, xb, temperature)


def test_tiny_temperatures_stay_finite_or_raise():
    """Logits up to ``1 / t``: each softmax has its largest cosine subtracted before the
    division, so a tiny temperature gives a large finite loss in float64, and a loss
    beyond the dtype is a ValueError naming the temperature, never inf or NaN."""
    x, labels = batch(20, rows=6)
    for name in available(ALL):
        tl = load(name)
        got = float(to_numpy(tl.supervised_contrastive_loss(to_backend(name, x), labels, 1e-6)))
        assert got == pytest.approx(supcon_loop(x, labels, 1e-6), rel=1e-9), name
        with pytest.raises(ValueError, match="temperature"):
            tl.supervised_contrastive_loss(to_backend(name, x, "float16"), labels, 1e-6)


# --------------------------------------------------------------------------- loss objects


def test_torch_loss_objects_call_the_functions():
    torch = load("torch").torch
    tl = load("torch")
    from tripletlab import torch_losses as tll

    x, labels = batch(21, rows=8)
    y, _ = batch(22, rows=8)
    xt, yt = torch.tensor(x), torch.tensor(y)
    module = tll.InfoNCELoss(0.1, symmetric=True, reduction="sum")
    assert module(xt, yt, labels).item() == tl.info_nce_loss(xt, yt, 0.1, True, labels, "sum")
    assert module(xt, yt).item() == tl.info_nce_loss(xt, yt, 0.1, True, None, "sum").item()
    module = tll.SupervisedContrastiveLoss(0.2)
    assert module(xt, labels).item() == tl.supervised_contrastive_loss(xt, labels, 0.2).item()
    assert "temperature=0.2" in repr(module)
    with pytest.raises(ValueError, match="temperature"):
        tll.SupervisedContrastiveLoss(0.0)
    with pytest.raises(ValueError, match="symmetric"):
        tll.InfoNCELoss(symmetric="yes")


def test_keras_loss_objects_call_the_functions_and_round_trip():
    tf = load("tensorflow").tf
    tl = load("tensorflow")
    import keras

    from tripletlab import keras_losses as kl

    x, labels = batch(23, rows=8)
    y, _ = batch(24, rows=8)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    stacked = np.stack([x32, y32], axis=1)
    loss = kl.InfoNCELoss(0.1, symmetric=True)
    want = tl.info_nce_loss(x32, y32, 0.1, True)
    assert float(loss(np.zeros(8), stacked)) == pytest.approx(float(want), rel=1e-6)
    loss = kl.InfoNCELoss(0.1, use_labels=True, reduction="sum")
    want = tl.info_nce_loss(x32, y32, 0.1, labels=labels, reduction="sum")
    assert float(loss(labels, stacked)) == pytest.approx(float(want), rel=1e-6)
    weights = np.linspace(0.5, 2.0, 8)
    per_pair = tl.info_nce_loss(x32, y32, 0.1, reduction="none").numpy()
    weighted = kl.InfoNCELoss(0.1)(np.zeros(8), stacked, sample_weight=weights)
    assert float(weighted) == pytest.approx(np.mean(weights * per_pair), rel=1e-6)
    supcon = kl.SupervisedContrastiveLoss(0.2)
    want = tl.supervised_contrastive_loss(x32, labels, 0.2)
    assert float(supcon(labels.astype(np.float32), x32)) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ValueError, match="sample_weight"):
        supcon(labels, x32, sample_weight=weights)
    with pytest.raises(ValueError, match=r"\(B, 2, D\)"):
        kl.InfoNCELoss()(np.zeros(8), x32)
    for original in (kl.InfoNCELoss(0.2, True, True, name="nce"), supcon):
        copy = keras.losses.deserialize(keras.losses.serialize(original))
        assert type(copy) is type(original) and copy.get_config() == original.get_config()
    # trains: fit on a model whose output is the stacked pair
    inputs = keras.Input((2, 4))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer="sgd", loss=kl.InfoNCELoss(0.5))
    history = model.fit(stacked, np.zeros(8), epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert tf.is_tensor(model(stacked))


# --------------------------------------------------------------------------- across workers

WORLD = 2
ROWS = (8, 6)  # rows per worker / replica: uneven on purpose
T = 0.2


def global_batch():
    rng = np.random.default_rng(60)
    x = rng.normal(size=(sum(ROWS), 5)).astype(np.float32)
    return x, (np.arange(sum(ROWS)) % 3).astype(np.int32)  # every class on both


def local_rows(rank):
    return slice(sum(ROWS[:rank]), sum(ROWS[: rank + 1]))


def torch_worker(rank, port, out):
    import torch
    import torch.distributed as dist

    from tripletlab.torch_distributed import CrossReplicaLoss
    from tripletlab.torch_losses import SupervisedContrastiveLoss

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        x, y = global_batch()
        xt = torch.tensor(x[local_rows(rank)], requires_grad=True)
        loss = CrossReplicaLoss(SupervisedContrastiveLoss(T))(
            xt, torch.as_tensor(y[local_rows(rank)])
        )
        (grad,) = torch.autograd.grad(loss, xt)
        torch.save((loss.item(), grad.numpy()), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_cross_worker_supervised_contrastive_loss_is_the_global_batch_loss(tmp_path):
    """``CrossReplicaLoss(SupervisedContrastiveLoss(t))`` over 2 processes (gloo): each
    worker gets the loss of the concatenated batch and N times its slice of the
    single-process gradient, so that DDP's average is the single-process update (the
    convention of ``tripletlab.torch_distributed``)."""
    torch = load("torch").torch
    tl = load("torch")
    import torch.multiprocessing as mp

    mp.spawn(torch_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    x, y = global_batch()
    xt = torch.tensor(x, requires_grad=True)
    want = tl.supervised_contrastive_loss(xt, y, T)
    (want_grad,) = torch.autograd.grad(want, xt)
    for rank in range(WORLD):
        loss, grad = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert loss == pytest.approx(want.item(), rel=1e-6)
        want_slice = WORLD * want_grad[local_rows(rank)].numpy()
        np.testing.assert_allclose(grad, want_slice, rtol=1e-5, atol=1e-7)
    local = tl.supervised_contrastive_loss(torch.tensor(x[local_rows(0)]), y[local_rows(0)], T)
    assert local.item() != pytest.approx(want.item())


def tf_replicas():
    """In a fresh interpreter: per replica, the loss and gradient of
    ``CrossReplicaLoss(SupervisedContrastiveLoss(t))`` under a 2-CPU MirroredStrategy."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * WORLD
    )
    from tripletlab.keras_losses import SupervisedContrastiveLoss
    from tripletlab.tf_distributed import CrossReplicaLoss

    strategy = tf.distribute.MirroredStrategy([f"/CPU:{i}" for i in range(WORLD)])
    x, y = global_batch()
    xs = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[local_rows(ctx.replica_id_in_sync_group)])
    )
    ys = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(y[local_rows(ctx.replica_id_in_sync_group)])
    )
    wrapped = CrossReplicaLoss(SupervisedContrastiveLoss(T))

    @tf.function
    def step(x_local, y_local):
        with tf.GradientTape() as tape:
            tape.watch(x_local)
            loss = wrapped(y_local, x_local)
        return loss, tape.gradient(loss, x_local)

    losses, grads = strategy.run(step, args=(xs, ys))
    out = {
        "replicas": strategy.num_replicas_in_sync,
        "losses": [float(v) for v in strategy.experimental_local_results(losses)],
        "grads": [np.asarray(v).tolist() for v in strategy.experimental_local_results(grads)],
    }
    print(json.dumps(out))


def test_cross_replica_supervised_contrastive_loss_is_the_global_batch_loss():
    """``CrossReplicaLoss(SupervisedContrastiveLoss(t))`` under a 2-replica
    MirroredStrategy: each replica returns ``L / 2`` (the ``tf.distribute`` convention)
    and its slice of the single-device gradient of ``L`` on the global batch."""
    tf = load("tensorflow").tf
    tl = load("tensorflow")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    done = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, env=env, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    replicas = json.loads(done.stdout.strip().splitlines()[-1])
    assert replicas["replicas"] == WORLD
    x, y = global_batch()
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        want = tl.supervised_contrastive_loss(xt, y, T)
    want_grad = tape.gradient(want, xt).numpy()
    for rank in range(WORLD):
        assert replicas["losses"][rank] == pytest.approx(float(want) / WORLD, rel=1e-6)
        np.testing.assert_allclose(
            replicas["grads"][rank], want_grad[local_rows(rank)], rtol=1e-5, atol=1e-7
        )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    tf_replicas()
