"""The TensorFlow backend's mining paths: the kernel run as it is or compiled by XLA, the
whole (B, B) matrix or blocks of anchor rows, comparisons or sorting, eagerly, in
``tf.function`` and under ``jit_compile=True``. Every path gives the loop oracle's
values and the default path's gradients; the choice is never visible."""

import numpy as np
import oracle
import pytest
from backends import load, to_backend, to_numpy
from cases import METRICS, MINING, layouts, mining_call, mining_oracle

import tripletlab._blocks as blocks

# (module, name) -> value: the block sizes are shared by both engines, COMPILE_ROWS and
# MANY_POSITIVES are the TensorFlow engine's own (a name: imported with TensorFlow)
WHOLE, ENTRIES = (blocks, "WHOLE_MATRIX_ROWS"), (blocks, "BLOCK_ENTRIES")
COMPILE, MANY = ("_tf_mining", "COMPILE_ROWS"), ("_tf_mining", "MANY_POSITIVES")
PATHS = {
    "compiled": {COMPILE: 0},
    "sorting": {MANY: 0},
    "blocks of one row": {WHOLE: 0, ENTRIES: 1},
    "compiled blocks of a few rows": {WHOLE: 0, ENTRIES: 40, COMPILE: 0},
    "compiled blocks, sorting": {WHOLE: 0, ENTRIES: 40, COMPILE: 0, MANY: 0},
}
# the compiled paths compile a kernel per shape and loss (seconds each): fewer cases, one
# with twins (identical rows, distance exactly 0 in every block), the closed-form L2
# gradient and the autodiff one
COMPILED_LAYOUT, COMPILED_METRICS = "duplicated embeddings", ("euclidean", "cosine")


@pytest.fixture
def tl():
    return load("tensorflow")


def use_path(monkeypatch, path):
    from tripletlab import _tf_mining  # imports TensorFlow

    monkeypatch.setattr(_tf_mining, "_KERNELS", {})  # traced again, with the patched sizes
    for (module, name), value in PATHS[path].items():
        module = _tf_mining if module == "_tf_mining" else module
        assert hasattr(module, name), name
        monkeypatch.setattr(module, name, value)


def loss_and_grad(tl, kind, x, labels, metric, margin=0.3):
    import tensorflow as tf

    xv = tf.Variable(to_backend("tensorflow", x))
    with tf.GradientTape() as tape:
        loss = mining_call(tl, kind, xv, labels, margin, metric)
    return float(to_numpy(loss)), to_numpy(tape.gradient(loss, xv))


def cases():
    for path in PATHS:
        for layout in layouts():
            for metric in METRICS:
                few = layout == COMPILED_LAYOUT and metric in COMPILED_METRICS
                if "compiled" not in path or few:
                    yield path, layout, metric


@pytest.mark.parametrize(("path", "layout", "metric"), list(cases()))
def test_every_path_gives_the_loops_values_and_the_default_gradient(
    tl, monkeypatch, path, layout, metric
):
    x, labels = layouts()[layout]
    default = {kind: loss_and_grad(tl, kind, x, labels, metric) for kind in MINING}
    use_path(monkeypatch, path)
    for kind in MINING:
        value, grad = loss_and_grad(tl, kind, x, labels, metric)
        want = mining_oracle(kind, x, labels, 0.3, metric)
        assert value == pytest.approx(want, rel=1e-10, abs=1e-12), kind
        assert np.isfinite(grad).all(), kind
        np.testing.assert_allclose(grad, default[kind][1], rtol=1e-9, atol=1e-12, err_msg=kind)
    _, fraction = tl.batch_all_triplet_loss(to_backend("tensorflow", x), labels, 0.3, metric)
    assert float(to_numpy(fraction)) == pytest.approx(oracle.batch_all(x, labels, 0.3, metric)[1])


@pytest.mark.parametrize("path", [None, "compiled", "sorting", "blocks of one row"])
@pytest.mark.parametrize("classes", ["small classes", "one class of 30"])
def test_every_path_counts_like_the_cube_on_a_batch_full_of_ties(tl, monkeypatch, path, classes):
    """B = 96, every point four times on average; classes of about 4 rows, or one of 30:
    batch-all and semi-hard against NumPy, for three margins."""
    rng = np.random.default_rng(18)
    points = rng.normal(size=(24, 6))
    x = points[rng.integers(0, 24, size=96)]
    labels = rng.integers(0, 24, size=96)
    if classes == "one class of 30":
        labels[:30] = 99
    reference = load("numpy")
    if path is not None:
        use_path(monkeypatch, path)
    xt = to_backend("tensorflow", x)
    for margin in (0.0, 0.3, 5.0):
        got = tl.batch_all_triplet_loss(xt, labels, margin)
        for g, w in zip(got, reference.batch_all_triplet_loss(x, labels, margin), strict=True):
            assert float(to_numpy(g)) == pytest.approx(float(w), rel=1e-10)
        semihard = tl.batch_semihard_triplet_loss(xt, labels, margin)
        want = reference.batch_semihard_triplet_loss(x, labels, margin)
        assert float(to_numpy(semihard)) == pytest.approx(float(want), rel=1e-10)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("jit_compile", [None, False, True])
def test_eager_function_and_xla_give_the_oracle(tl, monkeypatch, jit_compile, compiled):
    """Each mining loss eagerly (None), in a ``tf.function`` with an unknown batch size,
    and under ``jit_compile=True`` (where the member width is the batch size and
    batch-all and semi-hard sort), with the kernel run as it is or compiled: the loop
    oracle's value and the same gradient."""
    import tensorflow as tf

    if compiled:
        use_path(monkeypatch, "compiled")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(14, 5))
    labels = np.array([0] * 5 + [1] * 3 + [2] * 4 + [3] * 2)
    for kind in MINING:
        want_value = mining_oracle(kind, x, labels, 0.3, "euclidean")
        _, want_grad = loss_and_grad(load("tensorflow"), kind, x, labels, "euclidean")

        def value_and_grad(x, y, kind=kind):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = mining_call(tl, kind, x, y, 0.3, "euclidean")
            return loss, tape.gradient(loss, x)

        if jit_compile is not None:
            signature = [tf.TensorSpec([None, 5], tf.float64), tf.TensorSpec([None], tf.int64)]
            value_and_grad = tf.function(
                value_and_grad, jit_compile=jit_compile, input_signature=signature
            )
        value, grad = value_and_grad(tf.constant(x), tf.constant(labels))
        assert float(value) == pytest.approx(want_value, rel=1e-10), kind
        np.testing.assert_allclose(grad.numpy(), want_grad, rtol=1e-9, atol=1e-12, err_msg=kind)


def test_the_gradient_is_computed_only_where_a_tape_records(tl, monkeypatch):
    """Without a tape the value alone is computed; a gradient asked for later (through a
    ``tf.function`` traced without one) is computed in backward, and is the same."""
    import tensorflow as tf

    from tripletlab import _tf_mining

    x, labels = layouts()["imbalanced"]
    calls = []
    block_terms = _tf_mining.block_terms
    monkeypatch.setattr(
        _tf_mining,
        "block_terms",
        lambda *a, **k: calls.append(k["with_grad"]) or block_terms(*a, **k),
    )
    tl.batch_all_triplet_loss(to_backend("tensorflow", x), labels)
    assert calls == [False]
    xt = to_backend("tensorflow", x)
    traced = tf.function(lambda e: tl.batch_all_triplet_loss(e, labels, 0.3)[0])
    traced(xt)  # traced without a tape
    assert calls == [False, False]
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = traced(xt)
    grad = tape.gradient(loss, xt)
    assert calls[-1] is True  # in backward
    want = loss_and_grad(tl, "batch_all", x, labels, "euclidean")
    assert float(loss) == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(to_numpy(grad), want[1], rtol=1e-12)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_by_merging_counts_as_tf_searchsorted_under_xla(side):
    """Under XLA the engine counts by one merged sort (``tf.searchsorted`` there would
    compare all pairs); ties, repeats and infinities count as ``tf.searchsorted`` does."""
    import tensorflow as tf

    from tripletlab import _tf_mining

    rng = np.random.default_rng(3)
    merged = tf.function(lambda a, b: _tf_mining.searchsorted(a, b, side), jit_compile=True)
    for rows, n, k in [(1, 1, 1), (3, 7, 5), (4, 12, 2), (2, 3, 11)]:
        seq = rng.integers(-3, 4, size=(rows, n)).astype(np.float32)
        seq[rng.random(seq.shape) < 0.2] = -np.inf
        seq.sort(axis=1)
        values = rng.integers(-4, 5, size=(rows, k)).astype(np.float32)
        values[rng.random(values.shape) < 0.2] = np.inf
        want = tf.searchsorted(seq, values, side=side, out_type=tf.int32).numpy()
        np.testing.assert_array_equal(merged(seq, values).numpy(), want)
