"""Each framework's cosine and triplet conventions, pinned as assertions.

Notebook 06 shows these side by side; these tests make `make test` fail if a framework
upgrade changes one of them (the sign of a loss, a default axis, eps handling, a
reduction, the gradient at a zero vector).
"""

import numpy as np
import pytest
from backends import load, numerical_grads, value_and_grads
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

A = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
B = np.array(
    [[1.0, 2.0, 3.5], [1.0, 2.0, 3.0], [-1.0, -2.0, -3.0], [0.0, 1.0, 0.0], [1.0, 2.0, 3.0]]
)
COS = np.array([0.99740865, 1.0, -1.0, 0.0, 0.0])  # similar, identical, opposite, orthogonal, zero


@pytest.fixture(scope="module")
def tf():
    return load("tensorflow").tf


@pytest.fixture(scope="module")
def torch():
    return load("torch").torch


# ----------------------------------------------------------------- TensorFlow / Keras


def test_keras_cosine_losses_are_minus_the_cosine(tf):
    import keras

    assert tf.keras.losses.CosineSimilarity is keras.losses.CosineSimilarity  # Keras 3
    per_row = keras.losses.cosine_similarity(A, B).numpy()  # axis=-1 by default
    np.testing.assert_allclose(per_row, -COS, atol=1e-6)
    loss = keras.losses.CosineSimilarity()(A, B).numpy()  # mean over the batch
    assert loss == pytest.approx(-COS.mean(), abs=1e-6)
    metric = keras.metrics.CosineSimilarity()
    metric.update_state(A, B)
    assert metric.result().numpy() == pytest.approx(COS.mean(), abs=1e-6)  # the metric is +cos


def test_tf_v1_cosine_distance_is_one_minus_the_dot_product(tf):
    per_row = tf.compat.v1.losses.cosine_distance(A, B, axis=1, reduction="none").numpy()[:, 0]
    np.testing.assert_allclose(per_row, 1.0 - np.sum(A * B, axis=1), atol=1e-6)
    assert per_row[0] == pytest.approx(-14.5)  # not 1 - cos: far outside [0, 2]
    assert not np.allclose(per_row, 1.0 - COS, atol=0.1)
    unit_a, unit_b = (
        v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for v in (A, B)
    )
    unit = tf.compat.v1.losses.cosine_distance(unit_a, unit_b, axis=1, reduction="none")
    np.testing.assert_allclose(unit.numpy()[:, 0], 1.0 - COS, atol=1e-6)  # only on unit rows


def test_tf_norm_has_a_nan_gradient_at_zero_and_the_package_does_not(tf):
    v = tf.Variable([0.0, 0.0, 0.0])
    with tf.GradientTape() as tape:
        norm = tf.norm(v)
    assert np.isnan(tape.gradient(norm, v).numpy()).all()
    tl = load("tensorflow")
    w = tf.Variable(np.zeros((1, 3)))
    with tf.GradientTape() as tape:
        cos = tl.cosine_similarity(w, B[:1])
    assert np.all(tape.gradient(cos, w).numpy() == 0.0)


# ----------------------------------------------------------------- PyTorch


def test_torch_cosine_similarity_is_plus_the_cosine_on_dim_1(torch):
    F = torch.nn.functional
    np.testing.assert_allclose(
        F.cosine_similarity(torch.tensor(A), torch.tensor(B)), COS, atol=1e-6
    )
    module = torch.nn.CosineSimilarity()  # dim=1 too
    np.testing.assert_allclose(module(torch.tensor(A), torch.tensor(B)), COS, atol=1e-6)
    # dim=1 is the feature axis only for 2-D input: a (D,) pair needs dim=0 or dim=-1
    with pytest.raises(IndexError):
        F.cosine_similarity(torch.tensor(A[0]), torch.tensor(B[0]))


def test_torch_cosine_gradient_at_a_zero_vector_is_of_order_one_over_eps(torch):
    x = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cosine_similarity(x, torch.tensor(B[:1])).sum().backward()
    assert 1e6 < x.grad.abs().max().item() < 1e9  # 1/eps with eps = 1e-8
    tl = load("torch")
    y = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    tl.cosine_similarity(y, torch.tensor(B[:1])).sum().backward()
    assert torch.all(y.grad == 0)


def test_cosine_embedding_loss_branches(torch):
    a, b = torch.tensor(A), torch.tensor(B)
    same = torch.nn.CosineEmbeddingLoss(reduction="none")(a, b, torch.ones(len(A)))
    np.testing.assert_allclose(same, 1.0 - COS, atol=1e-6)  # y = +1: 1 - cos
    margin = 0.5
    loss = torch.nn.CosineEmbeddingLoss(margin=margin, reduction="none")
    different = loss(a, b, -torch.ones(len(A)))
    np.testing.assert_allclose(different, np.maximum(0.0, COS - margin), atol=1e-6)  # y = -1
    mean = torch.nn.CosineEmbeddingLoss()(a, b, torch.ones(len(A)))  # default: mean, margin 0
    assert mean.item() == pytest.approx((1.0 - COS).mean(), abs=1e-6)


def test_triplet_margin_loss_adds_eps_and_swap_takes_the_closer_negative(torch):
    rng = np.random.default_rng(0)
    a, p, n = (torch.tensor(rng.normal(size=(6, 4))) for _ in range(3))
    d = lambda u, v: torch.linalg.vector_norm(u - v + 1e-6, dim=1)  # noqa: E731
    plain = torch.nn.TripletMarginLoss(margin=1.0, reduction="none")(a, p, n)
    np.testing.assert_allclose(plain, torch.relu(d(a, p) - d(a, n) + 1.0), atol=1e-12)
    swapped = torch.nn.TripletMarginLoss(margin=1.0, swap=True, reduction="none")(a, p, n)
    closer = torch.minimum(d(a, n), d(p, n))
    np.testing.assert_allclose(swapped, torch.relu(d(a, p) - closer + 1.0), atol=1e-12)
    tl = load("torch")
    ours = tl.triplet_loss(a, p, n, margin=1.0, metric="euclidean", reduction="none")
    np.testing.assert_allclose(ours, plain, atol=1e-5)  # only the eps inside the norm differs
    assert (ours - plain).abs().max().item() > 1e-9


def test_triplet_margin_with_distance_loss_refuses_a_zero_margin(torch):
    with pytest.raises(ValueError, match="margin"):
        torch.nn.TripletMarginWithDistanceLoss(margin=0.0)
    tl = load("torch")  # tripletlab accepts margin 0 (a hinge at d_ap = d_an)
    x = torch.ones(2, 3)
    assert tl.triplet_loss(x, x, x, margin=0.0).item() == 0.0


# ----------------------------------------------------------------- the same triplet loss


def cosine_triplet_builtins(a, p, n, margin):
    """Each framework's own way to write max(cos_dist(a, p) - cos_dist(a, n) + m, 0)."""
    import keras
    import torch

    loss = torch.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda u, v: 1.0 - torch.nn.functional.cosine_similarity(u, v),
        margin=margin,
    )
    ta, tp, tn = (torch.tensor(v, requires_grad=True) for v in (a, p, n))
    torch_value = loss(ta, tp, tn)
    torch_grads = torch.autograd.grad(torch_value, (ta, tp, tn))
    import tensorflow as tf

    va, vp, vn = (tf.Variable(v) for v in (a, p, n))
    with tf.GradientTape() as tape:
        # keras' cosine_similarity is -cos, so 1 + it is the cosine distance
        d_ap = 1.0 + keras.losses.cosine_similarity(va, vp)
        d_an = 1.0 + keras.losses.cosine_similarity(va, vn)
        tf_value = tf.reduce_mean(tf.nn.relu(d_ap - d_an + margin))
    tf_grads = tape.gradient(tf_value, [va, vp, vn])
    return (
        (torch_value.item(), [g.numpy() for g in torch_grads]),
        (float(tf_value), [g.numpy() for g in tf_grads]),
    )


@given(
    x=arrays(np.float64, (3, 5, 4), elements=st.floats(0.1, 2.0) | st.floats(-2.0, -0.1)),
    margin=st.sampled_from([0.05, 0.1, 0.5]),  # torch refuses margin 0 here (pinned below)
)
def test_cosine_triplet_loss_agrees_with_both_frameworks_builtins(x, margin):
    """Value and gradients, float64, against the NumPy oracle (values) and each other."""
    a, p, n = x
    oracle = lambda *v: load("numpy").triplet_loss(*v, margin, metric="cosine")  # noqa: E731
    want = float(oracle(a, p, n))
    numerical = numerical_grads(oracle, [a, p, n], np.ones(()))
    results = {}
    for name in ("torch", "tensorflow"):
        tl = load(name)
        fn = lambda *v, tl=tl: tl.triplet_loss(*v, margin=margin, metric="cosine")  # noqa: E731
        value, grads = value_and_grads(name, fn, [a, p, n])
        assert float(value) == pytest.approx(want, abs=1e-12)
        value32, grads32 = value_and_grads(name, fn, [a, p, n], dtype="float32")
        assert float(value32) == pytest.approx(want, abs=1e-5)
        for g64, g32, g_num in zip(grads, grads32, numerical, strict=True):
            np.testing.assert_allclose(g64, g_num, atol=1e-6)
            np.testing.assert_allclose(g32, g64, atol=1e-4)
        results[name] = grads
    (torch_value, torch_grads), (tf_value, tf_grads) = cosine_triplet_builtins(a, p, n, margin)
    assert torch_value == pytest.approx(want, abs=1e-12)
    assert tf_value == pytest.approx(want, abs=1e-9)  # keras normalizes with an epsilon
    for ours_t, ours_f, theirs_t, theirs_f in zip(
        results["torch"], results["tensorflow"], torch_grads, tf_grads, strict=True
    ):
        np.testing.assert_allclose(ours_t, ours_f, atol=1e-12)
        np.testing.assert_allclose(ours_t, theirs_t, atol=1e-9)
        np.testing.assert_allclose(ours_t, theirs_f, atol=1e-6)
