"""The torch backend's mining paths: the whole (B, B) matrix or blocks of anchor rows,
m comparisons or a binary search per negative. Every path gives the loop oracle's
values and the same gradients as the default one; the choice is never visible."""

import numpy as np
import oracle
import pytest
from backends import load, to_backend, to_numpy
from cases import METRICS, MINING, layouts, mining_call, mining_oracle

import tripletlab._blocks as blocks
import tripletlab._torch_mining as engine

# (module, name) -> value: the block sizes are shared by both engines; the CPU's cache
# blocks and FEW_POSITIVES are the torch engine's own
WHOLE, ENTRIES, CACHE, FEW = (
    (blocks, "WHOLE_MATRIX_ROWS"),
    (blocks, "BLOCK_ENTRIES"),
    (blocks, "CACHE_BLOCK_ENTRIES"),
    (engine, "FEW_POSITIVES"),
)
PATHS = {
    "whole matrix, binary search": {FEW: 0},
    "cache-sized blocks (the CPU default above 1024 rows)": {CACHE: 40},
    "blocks of one row": {WHOLE: 0, ENTRIES: 1},
    "blocks of a few rows": {WHOLE: 0, ENTRIES: 40},
    "blocks, binary search": {WHOLE: 0, ENTRIES: 40, FEW: 0},
}


@pytest.fixture
def tl():
    return load("torch")


def use_path(monkeypatch, tl, path):
    for (module, name), value in PATHS[path].items():
        assert hasattr(module, name), name
        monkeypatch.setattr(module, name, value)


def loss_and_grad(tl, kind, x, labels, metric, margin=0.3):
    import torch

    xt = to_backend("torch", x).requires_grad_(True)
    loss = mining_call(tl, kind, xt, labels, margin, metric)
    (grad,) = torch.autograd.grad(loss, xt)
    return float(to_numpy(loss)), to_numpy(grad)


@pytest.mark.parametrize("layout", layouts())
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("path", PATHS)
def test_every_path_gives_the_loops_values_and_the_default_gradient(
    tl, monkeypatch, path, metric, layout
):
    x, labels = layouts()[layout]
    default = {kind: loss_and_grad(tl, kind, x, labels, metric) for kind in MINING}
    use_path(monkeypatch, tl, path)
    for kind in MINING:
        value, grad = loss_and_grad(tl, kind, x, labels, metric)
        want = mining_oracle(kind, x, labels, 0.3, metric)
        assert value == pytest.approx(want, rel=1e-10, abs=1e-12), kind
        assert np.isfinite(grad).all(), kind
        np.testing.assert_allclose(grad, default[kind][1], rtol=1e-9, atol=1e-12, err_msg=kind)
    _, fraction = tl.batch_all_triplet_loss(to_backend("torch", x), labels, 0.3, metric)
    assert float(to_numpy(fraction)) == pytest.approx(oracle.batch_all(x, labels, 0.3, metric)[1])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("margin", [0.0, 0.3, 5.0])
@pytest.mark.parametrize("classes", ["small classes", "one class of 30"])
def test_every_path_counts_like_the_cube_on_a_batch_full_of_ties(
    tl, monkeypatch, path, margin, classes
):
    """B = 96, every point four times on average; classes of about 4 rows, or one of 30
    (more positives than ``FEW_POSITIVES``): batch-all and semi-hard against NumPy."""
    rng = np.random.default_rng(18)
    points = rng.normal(size=(24, 6))
    x = points[rng.integers(0, 24, size=96)]
    labels = rng.integers(0, 24, size=96)
    if classes == "one class of 30":
        labels[:30] = 99
    reference = load("numpy")
    use_path(monkeypatch, tl, path)
    xt = to_backend("torch", x)
    got = tl.batch_all_triplet_loss(xt, labels, margin)
    for g, w in zip(got, reference.batch_all_triplet_loss(x, labels, margin), strict=True):
        assert float(to_numpy(g)) == pytest.approx(float(w), rel=1e-10)
    semihard = tl.batch_semihard_triplet_loss(xt, labels, margin)
    want = reference.batch_semihard_triplet_loss(x, labels, margin)
    assert float(to_numpy(semihard)) == pytest.approx(float(want), rel=1e-10)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_passes_gradcheck(tl, monkeypatch, path):
    import torch

    use_path(monkeypatch, tl, path)
    rng = np.random.default_rng(19)
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    for kind in MINING:
        for metric in METRICS:
            x = to_backend("torch", rng.normal(size=(8, 4))).requires_grad_(True)
            fn = lambda z, k=kind, m=metric: mining_call(tl, k, z, labels, 0.3, m)  # noqa: E731
            assert torch.autograd.gradcheck(fn, [x], eps=1e-6, atol=1e-6), (kind, metric)


def test_a_cpu_batch_past_the_cache_size_goes_in_blocks_of_at_most_that_many_distances(
    tl, monkeypatch
):
    """On a CPU the engine takes blocks of at most ``CACHE_BLOCK_ENTRIES`` distances
    (speed: its eager passes stay in the cache) even below ``WHOLE_MATRIX_ROWS``; up to
    that many distances it keeps the whole matrix."""
    import torch

    x, labels = (to_backend("torch", a) for a in layouts()["balanced P x K"])
    batch = x.shape[0]
    monkeypatch.setattr(blocks, "CACHE_BLOCK_ENTRIES", batch * batch)
    assert engine.Anchors(x, labels, "euclidean").whole
    monkeypatch.setattr(blocks, "CACHE_BLOCK_ENTRIES", 40)
    anchors = engine.Anchors(x, labels, "euclidean")
    sizes = [rows.stop - rows.start for rows in anchors.blocks]
    assert not anchors.whole and max(sizes) * batch <= 40
    assert torch.equal(
        torch.cat([torch.arange(batch)[rows] for rows in anchors.blocks]), torch.arange(batch)
    )


@pytest.mark.parametrize("path", ["blocks of a few rows"])
def test_blocks_without_autograd_give_the_same_values(tl, monkeypatch, path):
    """No gradient wanted (``torch.no_grad``, or inputs that do not require one): the
    blocks skip the gradient and still give every value."""
    import torch

    x, labels = layouts()["balanced P x K"]
    want = {kind: mining_oracle(kind, x, labels, 0.3, "euclidean") for kind in MINING}
    use_path(monkeypatch, tl, path)
    xt = to_backend("torch", x)
    for kind in MINING:
        plain = mining_call(tl, kind, xt, labels, 0.3)
        with torch.no_grad():
            inside = mining_call(tl, kind, xt.clone().requires_grad_(True), labels, 0.3)
        assert not plain.requires_grad and not inside.requires_grad
        assert float(plain) == pytest.approx(want[kind], rel=1e-10)
        assert float(inside) == pytest.approx(want[kind], rel=1e-10)


@pytest.mark.parametrize("path", [None, *PATHS])
def test_every_path_runs_under_deterministic_algorithms(tl, monkeypatch, path):
    """``torch.use_deterministic_algorithms(True)`` refuses a float ``cumsum`` on CUDA:
    the counts of batch-all are int64. Values equal the default run's (on the GPU when
    there is one, where the refusal would show)."""
    import torch

    if path is not None:
        use_path(monkeypatch, tl, path)
    x, labels = layouts()["imbalanced"]
    want = {kind: loss_and_grad(tl, kind, x, labels, "euclidean") for kind in MINING}
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for kind in MINING:
            got = loss_and_grad(tl, kind, x, labels, "euclidean")
            assert got[0] == want[kind][0], kind
            np.testing.assert_array_equal(got[1], want[kind][1])
    finally:
        torch.use_deterministic_algorithms(previous)
