"""Loss objects: ``tripletlab.torch_losses`` (``torch.nn.Module``) and
``tripletlab.keras_losses`` (``keras.losses.Loss``) give the values and gradients of the
functions they wrap, validate at construction, and the Keras ones serialize, reload with
a saved model and train with ``model.fit``; Koch's ``SiameseHead`` in both frameworks."""

import numpy as np
import pytest
from backends import FRAMEWORKS, available, load, to_numpy

MINING = ("BatchAllTripletLoss", "BatchHardTripletLoss", "BatchSemiHardTripletLoss")


def batch(seed=20, classes=4, per_class=3, dim=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(classes * per_class, dim)).astype(np.float32)
    return x, np.repeat(np.arange(classes), per_class)


def mining_function(tl, name, kwargs):
    """The function a mining class wraps, as ``(embeddings, labels) -> loss``."""
    if name == "BatchAllTripletLoss":
        return lambda e, y: tl.batch_all_triplet_loss(e, y, **kwargs)[0]
    if name == "BatchHardTripletLoss":
        return lambda e, y: tl.batch_hard_triplet_loss(e, y, **kwargs)
    return lambda e, y: tl.batch_semihard_triplet_loss(e, y, **kwargs)


MINING_CASES = [
    ("BatchAllTripletLoss", {"margin": 0.5, "metric": "cosine"}),
    ("BatchHardTripletLoss", {"margin": 0.3, "metric": "sqeuclidean"}),
    ("BatchHardTripletLoss", {"metric": "l1", "soft": True}),
    ("BatchSemiHardTripletLoss", {"margin": 1.0}),
]


# ----------------------------------------------------------------- torch


def torch_value_and_grad(fn, x, *args):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    loss = fn(xt, *args)
    (grad,) = torch.autograd.grad(loss, xt)
    return to_numpy(loss), to_numpy(grad)


@pytest.mark.parametrize("name, kwargs", MINING_CASES)
def test_torch_mining_modules_equal_the_functions(name, kwargs):
    import torch

    tl = load("torch")
    from tripletlab import torch_losses

    x, labels = batch()
    y = torch.as_tensor(labels)
    got = torch_value_and_grad(getattr(torch_losses, name)(**kwargs), x, y)
    want = torch_value_and_grad(mining_function(tl, name, kwargs), x, y)
    assert got[0] > 0  # a loss that could disagree
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_torch_batch_all_keeps_the_fraction_for_logging():
    import torch

    tl = load("torch")
    from tripletlab.torch_losses import BatchAllTripletLoss

    loss_fn = BatchAllTripletLoss(margin=0.3)
    assert loss_fn.fraction_positive is None
    x, labels = batch()
    xt = torch.tensor(x, requires_grad=True)
    for scale in (1.0, 0.1):  # the attribute follows the latest batch
        loss_fn(xt * scale, torch.as_tensor(labels))
        _, want = tl.batch_all_triplet_loss(xt * scale, labels, margin=0.3)
        assert not loss_fn.fraction_positive.requires_grad
        assert loss_fn.fraction_positive.item() == pytest.approx(want.item(), abs=0)
    assert 0 < loss_fn.fraction_positive.item() < 1


def test_torch_pair_and_triplet_modules_equal_the_functions():
    import torch

    tl = load("torch")
    from tripletlab import torch_losses

    x, _ = batch(seed=21, classes=3, per_class=4)
    a, p, n = x[:4], torch.tensor(x[4:8]), torch.tensor(x[8:])
    same = torch.tensor([1.0, 0.0, 1.0, 0.0])
    scores = tl.similarity_matrix(torch.tensor(a), p).numpy()
    cases = [  # (module, function, first input (differentiated), other inputs)
        (
            torch_losses.TripletLoss(0.5, "euclidean", "none"),
            lambda *args: tl.triplet_loss(*args, 0.5, "euclidean", "none"),
            a,
            (p, n),
        ),
        (
            torch_losses.ContrastiveLoss(2.0, "sum"),
            lambda *args: tl.contrastive_loss(*args, 2.0, "sum"),
            a,
            (p, same),
        ),
        (
            torch_losses.ModifiedTripletLoss(0.3, "mean"),
            lambda s: tl.modified_triplet_loss(s, 0.3, "mean"),
            scores,
            (),
        ),
    ]
    for module, function, first, rest in cases:
        got = torch_value_and_grad(lambda f, m=module, r=rest: m(f, *r).sum(), first)
        want = torch_value_and_grad(lambda f, fn=function, r=rest: fn(f, *r).sum(), first)
        assert got[0] > 0, module
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_torch_modules_validate_at_construction():
    load("torch")
    from tripletlab import torch_losses

    with pytest.raises(ValueError, match="margin"):
        torch_losses.BatchHardTripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="metric"):
        torch_losses.BatchAllTripletLoss(metric="manhattan")
    with pytest.raises(ValueError, match="reduction"):
        torch_losses.TripletLoss(reduction="max")
    assert "soft=True" in repr(torch_losses.BatchHardTripletLoss(soft=True))


# ----------------------------------------------------------------- keras


def keras_labels(labels):
    """Labels as Keras hands them to a loss: float32, shape (B, 1)."""
    return labels.astype(np.float32)[:, None]


@pytest.mark.parametrize("name, kwargs", MINING_CASES)
def test_keras_mining_losses_equal_the_functions(name, kwargs):
    import tensorflow as tf

    tl = load("tensorflow")
    from tripletlab import keras_losses

    x, labels = batch()
    loss_fn = getattr(keras_losses, name)(**kwargs)
    xv = tf.Variable(x)
    with tf.GradientTape(persistent=True) as tape:
        got = loss_fn(keras_labels(labels), xv)
        want = mining_function(tl, name, kwargs)(xv, labels)
    assert float(got) > 0
    assert float(got) == float(want)
    np.testing.assert_array_equal(tape.gradient(got, xv), tape.gradient(want, xv))


def test_keras_pair_and_triplet_losses_reduce_like_the_functions():
    import tensorflow as tf

    tl = load("tensorflow")
    from tripletlab import keras_losses

    x, _ = batch(seed=22, classes=3, per_class=4)
    a, p, n = x[:4], x[4:8], x[8:]
    same = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    ignored = np.zeros(4, np.float32)  # Keras needs a y_true; these losses do not read it
    triplet = keras_losses.TripletLoss(margin=0.5, metric="cosine")
    got = triplet(ignored, np.stack([a, p, n], axis=1))
    assert float(got) == pytest.approx(float(tl.triplet_loss(a, p, n, 0.5, "cosine")), rel=1e-6)
    weights = np.array([1.0, 0.0, 2.0, 0.5], np.float32)  # Keras applies sample_weight
    per_row = tl.triplet_loss(a, p, n, 0.5, "cosine", reduction="none")
    got = triplet(ignored, np.stack([a, p, n], axis=1), sample_weight=weights)
    assert float(got) == pytest.approx(float(tf.reduce_sum(per_row * weights)) / 4, rel=1e-6)
    contrastive = keras_losses.ContrastiveLoss(margin=2.0)
    got = contrastive(same[:, None], np.stack([a, p], axis=1))
    want = tl.contrastive_loss(a, p, same, 2.0)
    assert float(got) > 0 and float(got) == pytest.approx(float(want), rel=1e-6)
    modified = keras_losses.ModifiedTripletLoss(margin=0.3)
    got = modified(ignored, np.stack([a, p], axis=1))
    want = tl.modified_triplet_loss(tl.similarity_matrix(a, p), 0.3)
    assert float(got) > 0 and float(got) == pytest.approx(float(want), rel=1e-6)


def test_keras_losses_reject_what_they_cannot_use():
    load("tensorflow")
    from tripletlab import keras_losses

    x, labels = batch()
    with pytest.raises(ValueError, match="sample_weight"):
        keras_losses.BatchHardTripletLoss()(keras_labels(labels), x, sample_weight=np.ones(12))
    with pytest.raises(ValueError, match=r"y_pred must have shape \(B, 3, D\)"):
        keras_losses.TripletLoss()(np.zeros(12), x)
    with pytest.raises(ValueError, match="margin"):
        keras_losses.BatchSemiHardTripletLoss(margin=-1)
    with pytest.raises(ValueError, match="metric"):
        keras_losses.BatchAllTripletLoss(metric="dot")


def test_keras_losses_round_trip_through_their_config():
    import keras

    load("tensorflow")
    from tripletlab import keras_losses

    x, labels = batch()
    objects = [
        keras_losses.BatchAllTripletLoss(0.4, "sqeuclidean"),
        keras_losses.BatchHardTripletLoss(0.1, "cosine", soft=True, name="bh"),
        keras_losses.BatchSemiHardTripletLoss(0.7, "l1"),
    ]
    for loss_fn in objects:
        config = keras.losses.serialize(loss_fn)
        assert config["registered_name"].startswith("tripletlab>")
        again = keras.losses.deserialize(config)
        assert type(again) is type(loss_fn)
        assert again.get_config() == loss_fn.get_config()
        assert float(again(keras_labels(labels), x)) == float(loss_fn(keras_labels(labels), x))
    pairs = [keras_losses.TripletLoss(0.3), keras_losses.ModifiedTripletLoss(0.1)]
    for loss_fn in pairs + [keras_losses.ContrastiveLoss(0.5)]:
        again = type(loss_fn).from_config(loss_fn.get_config())
        assert again.get_config() == loss_fn.get_config()
    assert keras_losses.ModifiedTripletLoss().reduction == "sum"


@pytest.mark.parametrize("jit_compile", [False, True])
def test_keras_fit_then_save_and_reload(tmp_path, jit_compile):
    import keras

    tl = load("tensorflow")
    from tripletlab import keras_losses

    keras.utils.set_random_seed(0)
    x, labels = batch(seed=23, classes=4, per_class=6, dim=8)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    loss_fn = keras_losses.BatchHardTripletLoss(margin=0.5, metric="sqeuclidean")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss_fn, jit_compile=jit_compile)
    # one batch with every label: the fit loss is the function's loss of the batch
    before = float(tl.batch_hard_triplet_loss(model(x), labels, 0.5, "sqeuclidean"))
    history = model.fit(x, labels, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(before, rel=1e-5)
    assert history.history["loss"][-1] < before
    after = float(tl.batch_hard_triplet_loss(model(x), labels, 0.5, "sqeuclidean"))
    assert model.evaluate(x, labels, batch_size=len(x), verbose=0) == pytest.approx(after)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.loss, keras_losses.BatchHardTripletLoss)
    assert reloaded.loss.get_config() == loss_fn.get_config()
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert reloaded.evaluate(x, labels, batch_size=len(x), verbose=0) == pytest.approx(after)


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
            # the embedding size given as in PyTorch: built at once, kept in the config
            sized = module.SiameseHead(4, dtype="float64")
            assert len(sized.weights) == 2 and sized.get_config()["embedding_dim"] == 4
            sized.dense.set_weights([weights[:, None], np.array([bias])])
            np.testing.assert_array_equal(to_numpy(sized([e1, e2])), got)
            copy = module.SiameseHead.from_config(sized.get_config())
            assert copy.embedding_dim == 4 and len(copy.weights) == 2
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(got, swapped)  # the same pair in either order
