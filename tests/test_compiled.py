"""Every loss under ``torch.compile`` and ``tf.function`` (also ``jit_compile=True``): the
same values and gradients as eager, batch sizes that change between calls, and the
loss objects compiled. Most torch tests use ``backend="aot_eager"`` (the full Dynamo and
AOTAutograd tracing without code generation, fast); one test runs inductor."""

import numpy as np
import pytest
from backends import load

LOSSES = (
    "batch_all",
    "batch_hard",
    "batch_hard_soft",
    "batch_semihard",
    "triplet",
    "contrastive",
    "modified",
)


def batch(size=12, dim=5, seed=30):
    rng = np.random.default_rng(seed + size)
    x = rng.normal(size=(size, dim)).astype(np.float32)
    return x, np.arange(size) % 4


def loss_of(tl, kind, metric="euclidean"):
    """``(embeddings, labels) -> scalar`` for every loss; the pair and triplet losses take
    their inputs from the rows of the batch (so every loss has the same signature)."""

    def fn(x, y):
        size = x.shape[0]
        if size is None:  # tf.function with an unknown batch size
            import tensorflow as tf

            size = tf.shape(x)[0]
        half, third = size // 2, size // 3
        if kind == "batch_all":
            return tl.batch_all_triplet_loss(x, y, 0.3, metric)[0]
        if kind == "batch_semihard":
            return tl.batch_semihard_triplet_loss(x, y, 0.3, metric)
        if kind.startswith("batch_hard"):
            return tl.batch_hard_triplet_loss(x, y, 0.3, metric, soft=kind.endswith("soft"))
        if kind == "triplet":
            return tl.triplet_loss(x[:third], x[third : 2 * third], x[2 * third :], 0.5, metric)
        if kind == "contrastive":
            same = y[:half] == y[half:]
            return tl.contrastive_loss(x[:half], x[half:], same, 2.0, "sum")
        return tl.modified_triplet_loss(tl.similarity_matrix(x[:half], x[half:]), 0.3)

    return fn


# ----------------------------------------------------------------- torch


def torch_run(fn, x, y):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    loss = fn(xt, torch.as_tensor(y))
    (grad,) = torch.autograd.grad(loss, xt)
    return loss.detach().numpy(), grad.numpy()


def assert_same(got, want, rtol=1e-6, atol=1e-7):
    assert np.all(np.isfinite(got[1]))
    np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind", LOSSES)
def test_torch_compile_matches_eager(kind):
    import torch

    tl = load("torch")
    torch._dynamo.reset()
    metric = "cosine" if kind in ("batch_all", "triplet") else "euclidean"
    fn = loss_of(tl, kind, metric)
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    for size in (12, 18):  # a second batch size: a recompile with a dynamic batch
        x, y = batch(size)
        want = torch_run(fn, x, y)
        assert want[0] > 0
        assert_same(torch_run(compiled, x, y), want)


def test_torch_compile_with_dynamic_shapes_and_a_zero_row():
    import torch

    tl = load("torch")
    torch._dynamo.reset()
    for kind in ("batch_all", "batch_semihard"):
        fn = loss_of(tl, kind, "l1")
        compiled = torch.compile(fn, backend="aot_eager", fullgraph=True, dynamic=True)
        for size in (8, 12, 20):
            x, y = batch(size)
            x[1] = 0.0
            x[2] = x[3]  # a duplicated row: distance 0 under the root, no NaN gradient
            assert_same(torch_run(compiled, x, y), torch_run(fn, x, y))


def test_torch_loss_modules_compile_and_keep_the_fraction():
    import torch

    tl = load("torch")
    from tripletlab import torch_losses

    torch._dynamo.reset()
    module = torch_losses.BatchAllTripletLoss(margin=0.3)
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    x, y = batch()
    got = torch_run(compiled, x, y)
    assert_same(
        got, torch_run(lambda e, labels: tl.batch_all_triplet_loss(e, labels, 0.3)[0], x, y)
    )
    want_fraction = tl.batch_all_triplet_loss(torch.tensor(x), y, 0.3)[1]
    assert module.fraction_positive.item() == pytest.approx(want_fraction.item())
    assert 0 < module.fraction_positive.item() < 1
    hard = torch_losses.BatchHardTripletLoss(0.3, "sqeuclidean", soft=True)
    want = torch_run(hard, x, y)
    assert_same(torch_run(torch.compile(hard, backend="aot_eager", fullgraph=True), x, y), want)


def test_torch_compile_inductor_matches_eager():
    """One run through inductor's generated C++ (the default backend), on the loss with
    the most machinery: sorts, binary searches and a weighted sum."""
    import torch

    tl = load("torch")
    torch._dynamo.reset()
    fn = loss_of(tl, "batch_semihard")
    compiled = torch.compile(fn, fullgraph=True)
    x, y = batch()
    assert_same(torch_run(compiled, x, y), torch_run(fn, x, y), rtol=1e-5, atol=1e-6)


def test_torch_compiled_losses_skip_only_the_value_checks():
    """Shape and argument errors still raise while tracing; the NaN check needs a concrete
    value and runs only eagerly."""
    import torch

    tl = load("torch")
    torch._dynamo.reset()
    x, y = batch()
    with pytest.raises(ValueError, match="finite"):
        tl.batch_hard_triplet_loss(torch.tensor(x).fill_(torch.nan), y)
    compiled = torch.compile(tl.batch_hard_triplet_loss, backend="aot_eager", fullgraph=True)
    with pytest.raises(Exception, match="labels"):
        compiled(torch.tensor(x), torch.as_tensor(y[:-1]))


# ----------------------------------------------------------------- tensorflow


def tf_run(fn, x, y):
    import tensorflow as tf

    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = fn(xv, tf.constant(y))
    return loss.numpy(), tape.gradient(loss, xv).numpy()


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("kind", LOSSES)
def test_tf_function_matches_eager(kind, jit_compile):
    import tensorflow as tf

    tl = load("tensorflow")
    metric = "l1" if kind in ("batch_all", "triplet") else "sqeuclidean"
    fn = loss_of(tl, kind, metric)

    # an unknown batch size, as in Keras' fit
    @tf.function(
        jit_compile=jit_compile,
        input_signature=[tf.TensorSpec([None, 5], tf.float32), tf.TensorSpec([None], tf.int64)],
    )
    def value_and_grad(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = fn(x, y)
        return loss, tape.gradient(loss, x)

    for size in (12, 18):
        x, y = batch(size)
        want = tf_run(fn, x, y)
        assert want[0] > 0
        got = value_and_grad(tf.constant(x), tf.constant(y))
        assert_same([g.numpy() for g in got], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["BatchAllTripletLoss", "BatchSemiHardTripletLoss"])
def test_keras_losses_under_xla(name):
    import tensorflow as tf

    load("tensorflow")
    from tripletlab import keras_losses

    loss_fn = getattr(keras_losses, name)(margin=0.3)
    x, y = batch()
    labels = y.astype(np.float32)[:, None]
    compiled = tf.function(lambda x: loss_fn(labels, x), jit_compile=True)
    assert_same(
        tf_run(lambda e, _: compiled(e), x, y), tf_run(lambda e, _: loss_fn(labels, e), x, y)
    )


def test_tf_function_skips_only_the_value_checks():
    import tensorflow as tf

    tl = load("tensorflow")
    x, y = batch()
    bad = np.full_like(x, np.nan)
    with pytest.raises(ValueError, match="finite"):
        tl.batch_hard_triplet_loss(bad, y)
    traced = tf.function(tl.batch_hard_triplet_loss)
    assert np.isnan(float(traced(tf.constant(bad), tf.constant(y))))  # no check in a graph
    with pytest.raises(ValueError, match="labels"):
        traced(tf.constant(x), tf.constant(y[:-1]))
