"""Dtypes: the mining losses keep their input dtype in every backend, and mixed
precision: float16/bfloat16 embeddings (explicit, under ``torch.autocast``, or
from a Keras ``mixed_float16``/``mixed_bfloat16`` model) are computed in float32 and the
loss comes back in the input dtype (float32 for a Keras loss, as Keras expects); every
result is compared with the float32 computation on the same numbers."""

import cases
import numpy as np
import pytest
from backends import load, to_backend, to_numpy

MINING = ("BatchAllTripletLoss", "BatchHardTripletLoss", "BatchSemiHardTripletLoss")


def batch(size=16, dim=6, seed=40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, dim)).astype(np.float32)
    x[3] = x[0]  # identical rows (same class): distance exactly 0, also under autocast
    return x, np.arange(size) % 4


# ----------------------------------------------------------------- torch


def torch_cases():
    """``(name, fn(x) -> loss)`` for every loss object, on rows of one batch."""
    import torch

    from tripletlab import torch_losses as tll

    _, labels = batch()
    y = torch.as_tensor(labels)
    same = y[:8] == y[8:]
    return {
        "batch_all": lambda x: tll.BatchAllTripletLoss(0.3)(x, y),
        "batch_hard": lambda x: tll.BatchHardTripletLoss(0.3, "sqeuclidean")(x, y),
        "batch_hard_soft": lambda x: tll.BatchHardTripletLoss(soft=True)(x, y),
        "batch_semihard": lambda x: tll.BatchSemiHardTripletLoss(0.3, "cosine")(x, y),
        "triplet": lambda x: tll.TripletLoss(0.5)(x[:5], x[5:10], x[10:15]),
        "contrastive": lambda x: tll.ContrastiveLoss(2.0)(x[:8], x[8:], same),
        "modified": lambda x: tll.ModifiedTripletLoss(0.3)(x[:6]),  # any square matrix
    }


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_half_inputs_compute_in_float32_and_keep_their_dtype(dtype):
    import torch

    load("torch")
    half = getattr(torch, dtype)
    x, _ = batch()
    x_half = torch.tensor(x).to(half)
    for name, fn in torch_cases().items():
        xh = x_half.clone().requires_grad_(True)
        x32 = x_half.float().requires_grad_(True)  # the same numbers, in float32
        loss, want = fn(xh), fn(x32)
        assert loss.dtype == half, name
        assert want.item() > 0, name
        assert loss.item() == want.to(half).item(), name  # float32, then rounded once
        (grad,) = torch.autograd.grad(loss, xh)
        (grad32,) = torch.autograd.grad(want, x32)
        assert grad.dtype == half, name
        np.testing.assert_allclose(grad.float(), grad32.to(half).float(), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_autocast_gives_the_float32_loss(dtype):
    """Under autocast, float32 embeddings give exactly the float32 loss and gradient
    (autocast would otherwise run the distance matrix product in half precision), and
    the half embeddings of an autocast layer give the float32 loss of those numbers."""
    import torch

    tl = load("torch")
    half = getattr(torch, dtype)
    x, _ = batch()
    for name, fn in torch_cases().items():
        eager = torch.tensor(x, requires_grad=True)
        want = fn(eager)
        (want_grad,) = torch.autograd.grad(want, eager)
        inside = torch.tensor(x, requires_grad=True)
        with torch.autocast("cpu", dtype=half):
            got = fn(inside)
        (grad,) = torch.autograd.grad(got, inside)
        assert got.dtype == torch.float32, name
        assert got.item() == want.item(), name
        np.testing.assert_array_equal(grad, want_grad)
    with torch.autocast("cpu", dtype=half):
        dist = tl.pairwise_distances(torch.tensor(x))
        assert dist[0, 3].item() == 0.0 and dist.dtype == torch.float32
        torch.manual_seed(0)
        layer = torch.nn.Linear(6, 6)
        embeddings = layer(torch.tensor(x))
        assert embeddings.dtype == half
        got = fn(embeddings)
    assert got.dtype == half
    assert got.item() == fn(embeddings.detach().float()).to(half).item()


# ----------------------------------------------------------------- tensorflow / keras


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_tf_half_inputs_compute_in_float32_and_keep_their_dtype(dtype):
    import tensorflow as tf

    tl = load("tensorflow")
    from tripletlab import keras_losses

    half = getattr(tf, dtype)
    x, labels = batch()
    xh = tf.cast(x, half)
    x32 = tf.cast(xh, tf.float32)  # the same numbers, in float32
    for name in MINING:
        fn = {
            "BatchAllTripletLoss": lambda e: tl.batch_all_triplet_loss(e, labels, 0.3)[0],
            "BatchHardTripletLoss": lambda e: tl.batch_hard_triplet_loss(e, labels, 0.3),
            "BatchSemiHardTripletLoss": lambda e: tl.batch_semihard_triplet_loss(e, labels, 0.3),
        }[name]
        got, want = fn(xh), fn(x32)
        assert got.dtype == half and float(want) > 0, name
        assert float(got) == float(tf.cast(want, half)), name
        # a Keras loss casts y_pred to its own dtype (float32): the float32 loss itself
        keras_loss = getattr(keras_losses, name)(margin=0.3)(labels.astype(np.float32), xh)
        assert keras_loss.dtype == tf.float32
        assert float(keras_loss) == float(want), name


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_keras_mixed_precision_fit(policy):
    import keras
    import tensorflow as tf

    tl = load("tensorflow")
    from tripletlab import keras_losses

    x, labels = batch(size=24, dim=8)
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)])
        loss_fn = keras_losses.BatchSemiHardTripletLoss(margin=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss_fn, jit_compile=False)
        embeddings = model(x)
        assert embeddings.dtype == tf.as_dtype(policy.split("_")[1])
        want = float(tl.batch_semihard_triplet_loss(tf.cast(embeddings, tf.float32), labels, 0.5))
        history = model.fit(x, labels, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
        after = tl.batch_semihard_triplet_loss(tf.cast(model(x), tf.float32), labels, 0.5)
        evaluated = model.evaluate(x, labels, batch_size=len(x), verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert want > 0
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-6)
    assert np.all(np.isfinite(history.history["loss"]))
    assert float(after) != want  # the weights moved
    assert evaluated == pytest.approx(float(after), rel=1e-6)


# ----------------------------------------------------------------- every backend


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_mining_keeps_the_input_dtype(backend, dtype):
    tl = load(backend)
    x, labels = cases.layouts()["balanced P x K"]
    xb = to_backend(backend, x, dtype)
    outputs = [cases.mining_call(tl, kind, xb, labels) for kind in cases.MINING]
    outputs += [tl.batch_all_triplet_loss(xb, labels)[1], tl.triplet_loss(xb, xb, xb)]
    for out in outputs:
        assert str(getattr(out.dtype, "name", out.dtype)).replace("torch.", "") == dtype
    want = [
        cases.mining_oracle(kind, x.astype(dtype).astype(np.float64), labels)
        for kind in cases.MINING
    ]
    got = [float(to_numpy(o)) for o in outputs[: len(cases.MINING)]]
    np.testing.assert_allclose(got, want, rtol=2e-3 if dtype == "float16" else 1e-5)
