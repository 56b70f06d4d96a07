"""Tiny training runs: the PyTorch loop and the Keras fit return finite, reproducible
histories with the documented keys."""

import math

import numpy as np
import pytest
from backends import SKIPPED

from tripletlab.data import load_digits, seed_everything
from tripletlab.training import HISTORY_KEYS, LOSSES


@pytest.fixture(scope="module")
def small():
    """200 training images, 90 unseen-class images."""
    d = load_digits()
    return d.x_train[:200], d.y_train[:200], d.x_test[:90], d.y_test[:90]


def check_history(history, epochs, fraction_expected):
    assert tuple(history) == HISTORY_KEYS
    for key, values in history.items():
        assert len(values) == epochs and all(isinstance(v, float) for v in values), key
        if key != "fraction_positive":
            assert all(math.isfinite(v) for v in values), key
    for key in ("precision_at_1", "r_precision", "map_at_r"):
        assert all(0.0 <= v <= 1.0 for v in history[key])
    fractions = history["fraction_positive"]
    if fraction_expected:
        assert all(0.0 <= v <= 1.0 for v in fractions)
    else:
        assert all(math.isnan(v) for v in fractions)


def run_torch(small, loss_name):
    from tripletlab.training import torch_mlp, train_torch

    seed_everything(1)
    model = torch_mlp(hidden=16, out_features=8)
    return train_torch(
        model, loss_name, *small, epochs=2, p=4, k=4, lr=1e-3, seed=1, progress=False
    )


@pytest.mark.parametrize("loss_name", LOSSES)
def test_torch_loop_history_is_finite_and_deterministic(small, loss_name):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    first = run_torch(small, loss_name)
    check_history(first, 2, fraction_expected=loss_name == "batch_all")
    second = run_torch(small, loss_name)
    np.testing.assert_array_equal(np.array(list(first.values())), np.array(list(second.values())))


def run_keras(small, loss_name):
    from tripletlab.training import keras_mlp, train_keras

    seed_everything(1)
    import keras

    keras.utils.set_random_seed(1)
    model = keras_mlp(hidden=16, out_features=8)
    return train_keras(
        model, loss_name, *small, epochs=2, p=4, k=4, lr=1e-3, seed=1, progress=False
    )


@pytest.mark.parametrize("loss_name", ["batch_hard", "contrastive", "supervised_contrastive"])
def test_keras_fit_history_is_finite_and_deterministic(small, loss_name):
    if "tensorflow" in SKIPPED:
        pytest.skip("tensorflow skipped")
    first = run_keras(small, loss_name)
    check_history(first, 2, fraction_expected=False)
    second = run_keras(small, loss_name)
    np.testing.assert_array_equal(np.array(list(first.values())), np.array(list(second.values())))


def test_training_learns_on_the_training_classes(small):
    """The loss falls and retrieval on the training images improves (in-sample)."""
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    from tripletlab.training import torch_mlp, train_torch

    x, y = small[0], small[1]
    seed_everything(0)
    model = torch_mlp()
    history = train_torch(model, "batch_hard", x, y, x, y, 5, 4, 4, 1e-3, 0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert history["map_at_r"][-1] > history["map_at_r"][0]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"loss_name": "triplet"}, "loss_name"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0}, "lr"),
        ({"schedule": "step"}, "schedule"),
        ({"metric": "l1"}, "metric"),
        ({"loss_name": "contrastive", "metric": "cosine"}, "metric"),
        ({"loss_name": "supervised_contrastive", "temperature": 0.0}, "temperature"),
    ],
)
def test_bad_arguments_raise_naming_them(small, kwargs, name):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    from tripletlab.training import torch_mlp, train_torch

    args = {"loss_name": "batch_hard", "epochs": 1, "lr": 1e-3} | kwargs
    with pytest.raises(ValueError, match=f"^{name}"):
        train_torch(
            torch_mlp(),
            x_train=small[0],
            y_train=small[1],
            x_val=small[2],
            y_val=small[3],
            p=4,
            k=4,
            seed=0,
            progress=False,
            **args,
        )


# --------------------------------------------------------------------------- the CNN


def test_torch_cnn_embeds_to_unit_rows_of_the_last_width(small):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    import torch

    from tripletlab.training import torch_cnn

    seed_everything(0)
    model = torch_cnn(channels=(4, 6))
    with torch.no_grad():
        out = model(torch.as_tensor(small[0][:5])).numpy()
    assert out.shape == (5, 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    # no ReLU after the last convolution: the embedding takes both signs
    assert (out < 0).any() and (out > 0).any()
    assert sum(p.numel() for p in model.parameters()) == (9 * 1 + 1) * 4 + (9 * 4 + 1) * 6


def test_keras_cnn_matches_the_torch_cnn_shapes_and_init_distribution(small):
    if "tensorflow" in SKIPPED:
        pytest.skip("tensorflow skipped")
    import keras

    from tripletlab.training import keras_cnn

    keras.utils.set_random_seed(0)
    model = keras_cnn(channels=(4, 6))
    out = np.asarray(model(small[0][:5]))
    assert out.shape == (5, 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert model.count_params() == (9 * 1 + 1) * 4 + (9 * 4 + 1) * 6
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for conv, fan_in in zip(convs, (9 * 1, 9 * 4), strict=True):
        kernel, bias = (np.asarray(w) for w in conv.weights)
        bound = 1 / np.sqrt(fan_in)
        # PyTorch's Conv2d distribution: uniform in +-1/sqrt(fan_in), biases included
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(kernel).max() > 0.8 * bound and (bias != 0).all()


@pytest.mark.parametrize("channels", [(), (4, 0), (4, 2.0), 4])
def test_bad_channels_raise_naming_them(channels):
    from tripletlab.training import torch_cnn

    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    with pytest.raises(ValueError, match="^channels"):
        torch_cnn(channels=channels)


def test_cosine_schedule_changes_training_and_is_reproducible(small):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    from tripletlab.training import torch_cnn, train_torch

    def run(schedule):
        seed_everything(2)
        model = torch_cnn(channels=(4, 8))
        args = dict(epochs=2, p=4, k=4, lr=1e-2, seed=2, progress=False)
        return train_torch(model, "batch_hard", *small, **args, schedule=schedule)

    cosine, constant = run("cosine"), run("constant")
    check_history(cosine, 2, fraction_expected=False)
    assert cosine["loss"] != constant["loss"]  # the decayed steps differ
    np.testing.assert_array_equal(
        np.array(list(cosine.values())), np.array(list(run("cosine").values()))
    )


def test_keras_cosine_schedule_is_reproducible(small):
    if "tensorflow" in SKIPPED:
        pytest.skip("tensorflow skipped")
    from tripletlab.training import keras_cnn, train_keras

    def run():
        seed_everything(2)
        import keras

        keras.utils.set_random_seed(2)
        model = keras_cnn(channels=(4, 8))
        args = dict(epochs=2, p=4, k=4, lr=1e-2, seed=2, progress=False)
        return train_keras(model, "batch_semihard", *small, **args, schedule="cosine")

    first = run()
    check_history(first, 2, fraction_expected=False)
    np.testing.assert_array_equal(np.array(list(first.values())), np.array(list(run().values())))


def test_metric_reaches_the_loss(small):
    """On unit rows the cosine distance is half the squared euclidean one, so batch-all
    with ``metric="cosine"`` and margin m is half the ``sqeuclidean`` loss at margin 2m;
    Adam ignores the factor, so the first epoch's mean losses keep the ratio 1/2."""
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    from tripletlab.training import torch_mlp, train_torch

    losses = {}
    for metric, margin in (("cosine", 0.1), ("sqeuclidean", 0.2)):
        seed_everything(0)
        model = torch_mlp()
        history = train_torch(
            model, "batch_all", *small, 1, 4, 4, 1e-3, 0, margin, False, metric=metric
        )
        losses[metric] = history["loss"][0]
    assert losses["cosine"] == pytest.approx(losses["sqeuclidean"] / 2, rel=1e-3)


# --------------------------------------------------------------------------- the protocol


def test_protocol_split_is_notebook_07s_split():
    """Written out as notebook 07 first did it, inline: the same arrays."""
    from tripletlab.training import protocol_split

    digits = load_digits()
    order = seed_everything(3).permutation(len(digits.y_train))
    n_fit = 3 * len(order) // 4
    fit, seen = np.sort(order[:n_fit]), np.sort(order[n_fit:])
    split = protocol_split(3)
    np.testing.assert_array_equal(split["x_fit"], digits.x_train[fit])
    np.testing.assert_array_equal(split["y_seen"], digits.y_train[seen])
    np.testing.assert_array_equal(split["x_test"], digits.x_test)
    assert sorted(set(split["y_val"].tolist())) == [4, 5, 6]
    assert sorted(set(split["y_dev"].tolist())) == [0, 1, 2, 3]
    assert len(split["y_dev"]) + len(split["y_val"]) == len(split["y_fit"]) == n_fit
    assert len(split["y_fit"]) + len(split["y_seen"]) == len(digits.y_train)
    assert not np.array_equal(protocol_split(4)["y_fit"], split["y_fit"])


def test_embed_torch_is_the_model_without_gradients(small):
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    import torch

    from tripletlab.training import embed_torch, torch_mlp

    seed_everything(0)
    model = torch_mlp(hidden=16, out_features=8)
    out = embed_torch(model, small[0][:5].astype(np.float64))
    assert out.dtype == np.float32 and out.shape == (5, 8) and not model.training
    with torch.no_grad():
        expected = model(torch.as_tensor(small[0][:5], dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(out, expected)


def test_the_temperature_reaches_the_supervised_contrastive_loss(small):
    """The first batch's loss, recomputed from the model's initial embeddings, is the
    epoch's only batch loss; it changes with ``temperature`` as the loss function does."""
    if "torch" in SKIPPED:
        pytest.skip("torch skipped")
    import torch

    from tripletlab import torch as tl
    from tripletlab.data import PKSampler
    from tripletlab.training import torch_mlp, train_torch

    x, y = small[0][:16], np.repeat(np.arange(4), 4)  # one batch of 4 x 4 per epoch
    losses = {}
    for temperature in (0.1, 0.5):
        seed_everything(2)
        model = torch_mlp(hidden=16, out_features=8)
        batch = PKSampler(y, 4, 4, seed=2).batches(0)[0]
        with torch.no_grad():
            emb = model(torch.as_tensor(x[batch], dtype=torch.float32))
            expected = tl.supervised_contrastive_loss(emb, torch.as_tensor(y[batch]), temperature)
        history = train_torch(
            model,
            "supervised_contrastive",
            x,
            y,
            x,
            y,
            epochs=1,
            p=4,
            k=4,
            lr=1e-3,
            seed=2,
            progress=False,
            temperature=temperature,
        )
        assert history["loss"][0] == pytest.approx(expected.item(), rel=1e-6)
        losses[temperature] = history["loss"][0]
    assert losses[0.1] != pytest.approx(losses[0.5], rel=1e-3)
