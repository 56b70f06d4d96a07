"""Training an embedding with online mining: a PyTorch loop and a Keras ``fit``.

Both train on ``PKSampler`` batches (P classes x K samples) with Adam (a constant
learning rate, or one decayed to zero on a cosine over all the steps: ``SCHEDULES``) and
one of the losses in ``LOSSES``, and return a history of per-epoch lists
(``HISTORY_KEYS``):

- ``loss``: the mean of the epoch's batch losses;
- ``fraction_positive``: batch-all only, the mean over the epoch's batches of
  ``batch_all_triplet_loss``'s fraction of valid triplets with a positive loss; NaN
  for the other losses, and NaN in the Keras path (a Keras loss returns one scalar);
- ``precision_at_1``, ``r_precision``, ``map_at_r``: ``tripletlab.metrics`` of the
  embeddings of ``x_val`` / ``y_val`` after the epoch (euclidean distance).

``protocol_split`` is the split of the digits that notebooks 07 and 09 train and score
on, and ``embed_torch`` a trained PyTorch model's embeddings as a NumPy array.

PyTorch and TensorFlow are imported inside the functions: ``import tripletlab.training``
loads neither. Notebooks: 07_training, 09_softmax_losses (the supervised contrastive
loss).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tripletlab import _checks
from tripletlab.data import PKSampler, seed_everything
from tripletlab.metrics import retrieval_metrics

__all__ = [
    "LOSSES",
    "SCHEDULES",
    "HISTORY_KEYS",
    "torch_mlp",
    "keras_mlp",
    "torch_cnn",
    "keras_cnn",
    "train_torch",
    "train_keras",
    "embed_torch",
    "protocol_split",
]


class _Loss(NamedTuple):
    """One row of the loss table both training loops read: adding a loss is one row."""

    function: str  # the backend function (tripletlab.torch / tripletlab.tensorflow)
    keras_class: str | None  # its tripletlab.keras_losses class; None: a function of pairs
    options: tuple[tuple[str, object], ...] = ()  # fixed keyword arguments
    margin: float = 0.2  # the margin when margin=None (the function's default)
    on_pairs: bool = False  # takes (x1, x2, same) on every pair i < j of the batch
    metrics: tuple[str, ...] = ("euclidean", "sqeuclidean", "cosine")
    settings: tuple[str, ...] = ("margin", "metric")  # what it takes of the loop's settings


_LOSS_TABLE = {
    "batch_all": _Loss("batch_all_triplet_loss", "BatchAllTripletLoss"),
    "batch_hard": _Loss("batch_hard_triplet_loss", "BatchHardTripletLoss"),
    "batch_hard_soft": _Loss(
        "batch_hard_triplet_loss", "BatchHardTripletLoss", options=(("soft", True),)
    ),
    "batch_semihard": _Loss("batch_semihard_triplet_loss", "BatchSemiHardTripletLoss"),
    "contrastive": _Loss(
        "contrastive_loss",
        None,
        margin=1.0,
        on_pairs=True,
        metrics=("euclidean",),
        settings=("margin",),
    ),
    "supervised_contrastive": _Loss(
        "supervised_contrastive_loss", "SupervisedContrastiveLoss", settings=("temperature",)
    ),
}

LOSSES = tuple(_LOSS_TABLE)
"""Loss names: the three mining strategies, batch-hard with the soft margin, the
contrastive loss on every pair of the batch, and the supervised contrastive loss
(Khosla et al. 2020) on the whole batch, which takes a ``temperature`` and no margin."""

SCHEDULES = ("constant", "cosine")
"""Learning-rate schedules: ``constant`` keeps ``lr``; ``cosine`` decays it from ``lr``
to 0 over the ``epochs * len(sampler)`` steps, ``lr * (1 + cos(pi * step / steps)) / 2``
at step ``step = 0, 1, ...`` (``torch.optim.lr_scheduler.CosineAnnealingLR`` stepped
after each batch; ``keras.optimizers.schedules.CosineDecay``)."""

HISTORY_KEYS = ("loss", "fraction_positive", "precision_at_1", "r_precision", "map_at_r")
"""The keys of a training history, each a list with one float per epoch."""

DEFAULT_MARGINS = {name: loss.margin for name, loss in _LOSS_TABLE.items()}
"""``margin=None`` means each loss function's default margin: 0.2 for the triplet losses
and 1.0 for the contrastive loss; the soft margin has no margin."""


class _Config(NamedTuple):
    """What both loops make of their shared parameters: the table's row of the loss,
    the margin it gets (``margin=None`` resolved), the metric and the temperature."""

    loss: _Loss
    margin: float
    metric: str
    temperature: float


def _config(loss_name, epochs, lr, margin, schedule, metric, temperature) -> _Config:
    """Validate the parameters both loops share (``p``, ``k`` and ``seed``: ``PKSampler``)."""
    _checks.check_choice("loss_name", loss_name, LOSSES)
    _checks.check_choice("schedule", schedule, SCHEDULES)
    _checks.check_int("epochs", epochs, minimum=1)
    _checks.check_positive("lr", lr)  # kept as given: the optimizers' numbers unchanged
    loss = _LOSS_TABLE[loss_name]
    _checks.check_metric(metric, loss.metrics)
    margin = _checks.check_margin(loss.margin if margin is None else margin)
    return _Config(loss, margin, metric, _checks.check_temperature(temperature))


def _loss_arguments(config: _Config) -> dict:
    """The keyword arguments of the table's function (or Keras class) besides its data:
    the loop's settings it takes, then its fixed options."""
    settings = {name: getattr(config, name) for name in config.loss.settings}
    return settings | dict(config.loss.options)


def _pairs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(i, j)`` of every pair ``i < j`` of a batch."""
    return np.triu_indices(batch, k=1)


def _empty_history() -> dict[str, list[float]]:
    return {key: [] for key in HISTORY_KEYS}


def torch_mlp(in_features: int = 64, hidden: int = 128, out_features: int = 32):
    """``Linear -> ReLU -> Linear``, output L2-normalized: a ``torch.nn.Module``.

    Build it after ``seed_everything`` for reproducible initial weights.
    """
    import torch

    from tripletlab import torch as tl

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(in_features, hidden),
                torch.nn.ReLU(),
                torch.nn.Linear(hidden, out_features),
            )

        def forward(self, x):
            return tl.l2_normalize(self.body(x))

    return MLP()


def keras_mlp(in_features: int = 64, hidden: int = 128, out_features: int = 32):
    """The same MLP as ``torch_mlp`` as a ``keras.Sequential`` (``UnitNormalization`` last).

    Keras initializes ``Dense`` with Glorot-uniform, PyTorch ``Linear`` with a scaled
    uniform: the two start from different (equally random) weights.
    """
    import keras

    return keras.Sequential(
        [
            keras.Input((in_features,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(out_features),
            keras.layers.UnitNormalization(),
        ]
    )


def _check_channels(channels) -> tuple[int, ...]:
    if (
        not isinstance(channels, tuple | list)
        or not channels
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels)
    ):
        raise ValueError(f"channels must be a non-empty sequence of ints >= 1; got {channels!r}")
    return tuple(channels)


def torch_cnn(channels: tuple[int, ...] = (64, 128), side: int = 8):
    """A small CNN on ``side x side`` images, output L2-normalized: a ``torch.nn.Module``.

    Input ``(N, side * side)`` (flattened rows, as ``load_digits`` gives them), reshaped to
    one channel; then ``Conv2d(3 x 3, padding 1)`` layers with ``channels[i]`` output
    channels, ReLU between them but not after the last; then the maximum over the
    ``side x side`` positions (global max pooling) and L2 normalization. Output
    ``(N, channels[-1])``. With no ReLU after the last convolution the embedding can take
    either sign, so a channel cannot die at zero for every image. Build it after
    ``seed_everything`` for reproducible initial weights.
    """
    import torch

    from tripletlab import torch as tl

    channels = _check_channels(channels)

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layers: list[torch.nn.Module] = []
            for i, (a, b) in enumerate(zip((1, *channels[:-1]), channels, strict=True)):
                if i:
                    layers.append(torch.nn.ReLU())
                layers.append(torch.nn.Conv2d(a, b, kernel_size=3, padding=1))
            self.body = torch.nn.Sequential(*layers)

        def forward(self, x):
            h = self.body(x.reshape(-1, 1, side, side))
            return tl.l2_normalize(h.amax(dim=(2, 3)))

    return CNN()


def keras_cnn(channels: tuple[int, ...] = (64, 128), side: int = 8):
    """The same CNN as ``torch_cnn`` as a ``keras.Sequential``: ``Reshape`` to
    ``(side, side, 1)``, ``Conv2D(3 x 3, padding="same")`` layers (ReLU on all but the
    last), ``GlobalMaxPooling2D``, ``UnitNormalization``.

    The weights are drawn as PyTorch draws a ``Conv2d``'s: kernel and bias uniform in
    ``+-1 / sqrt(fan_in)``, ``fan_in = 9 * in_channels`` (Keras' default, Glorot-uniform
    kernel and zero bias, trains this network to a worse embedding of the unseen digits
    in notebook 07). The same distribution, not the same numbers: the two frameworks
    draw different random weights.
    """
    import keras

    channels = _check_channels(channels)
    convs = []
    for i, (a, c) in enumerate(zip((1, *channels[:-1]), channels, strict=True)):
        bound = 1.0 / math.sqrt(9 * a)
        convs.append(
            keras.layers.Conv2D(
                c,
                3,
                padding="same",
                activation="relu" if i < len(channels) - 1 else None,
                kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
                bias_initializer=keras.initializers.RandomUniform(-bound, bound),
            )
        )
    return keras.Sequential(
        [
            keras.Input((side * side,)),
            keras.layers.Reshape((side, side, 1)),
            *convs,
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.UnitNormalization(),
        ]
    )


def _progress(iterable, progress: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not progress, leave=False)


def train_torch(
    model,
    loss_name: str,
    x_train,
    y_train,
    x_val,
    y_val,
    epochs: int,
    p: int,
    k: int,
    lr: float,
    seed: int,
    margin: float | None = None,
    progress: bool = True,
    schedule: str = "constant",
    metric: str = "euclidean",
    temperature: float = 0.1,
) -> dict[str, list[float]]:
    """Train ``model`` (a ``torch.nn.Module``, embeddings out) with Adam on P x K batches.

    Each epoch draws ``len(x_train) // (p * k)`` batches from ``PKSampler(y_train, p, k,
    seed)``; each batch's loss is the ``tripletlab.torch`` loss named ``loss_name``:
    ``batch_all`` (``batch_all_triplet_loss``, whose fraction is recorded),
    ``batch_hard``, ``batch_hard_soft`` (``soft=True``), ``batch_semihard``, or
    ``contrastive`` (``contrastive_loss`` on all ``B (B - 1) / 2`` pairs ``i < j`` of the
    batch, ``same`` from the labels), or ``supervised_contrastive``
    (``supervised_contrastive_loss`` with ``temperature``, default 0.1; it has no margin
    and compares cosine similarities). ``margin=None``: the loss function's default.
    ``metric``: the distance the three mining losses use (``"euclidean"``,
    ``"sqeuclidean"`` or ``"cosine"``; the contrastive loss is euclidean only, the
    supervised contrastive loss ignores it).
    ``schedule``: the learning rate's, one of ``SCHEDULES``. ``seed_everything(seed)`` is
    called first; ``model`` stays on its device (the data are moved to it). ``progress``
    shows a ``tqdm.auto`` bar over the epochs (a widget in a notebook, text on stderr
    elsewhere). Returns the history described in the module
    docstring; ``model`` is left in eval mode.
    """
    import torch

    from tripletlab import torch as tl

    config = _config(loss_name, epochs, lr, margin, schedule, metric, temperature)
    sampler = PKSampler(np.asarray(y_train), p, k, seed=seed)  # validates p, k, seed
    seed_everything(seed)
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(y_train), device=device)
    xv = torch.as_tensor(np.asarray(x_val), dtype=torch.float32, device=device)
    first, second = (torch.as_tensor(i, device=device) for i in _pairs(p * k))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = None
    if schedule == "cosine":
        steps = epochs * len(sampler)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    function = getattr(tl, config.loss.function)
    arguments = _loss_arguments(config)

    def batch_loss(emb, labels):
        if config.loss.on_pairs:
            same = labels[first] == labels[second]
            return function(emb[first], emb[second], same, **arguments), None
        value = function(emb, labels, **arguments)
        return value if isinstance(value, tuple) else (value, None)  # batch-all: a fraction

    history = _empty_history()
    for _ in _progress(range(epochs), progress, epochs, f"{loss_name} (torch)"):
        model.train()
        losses, fractions = [], []
        for batch in sampler:
            index = torch.as_tensor(batch, device=device)
            loss, fraction = batch_loss(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.item())
            fractions.append(math.nan if fraction is None else fraction.item())
        model.eval()
        with torch.no_grad():
            embeddings = model(xv).cpu().numpy()
        history["loss"].append(float(np.mean(losses)))
        history["fraction_positive"].append(float(np.mean(fractions)))
        for key, value in retrieval_metrics(embeddings, np.asarray(y_val)).items():
            history[key].append(value)
    return history


def _keras_loss(config: _Config, batch: int):
    """The Keras loss of the table's row: its ``tripletlab.keras_losses`` class for the
    mining losses, and for a loss of pairs (contrastive) its ``tripletlab.tensorflow``
    function on every pair ``i < j`` of the batch (``same`` from the labels)."""
    import tensorflow as tf

    from tripletlab import keras_losses
    from tripletlab import tensorflow as tl

    arguments = _loss_arguments(config)
    if not config.loss.on_pairs:
        return getattr(keras_losses, config.loss.keras_class)(**arguments)
    function = getattr(tl, config.loss.function)
    first, second = (tf.constant(i, tf.int32) for i in _pairs(batch))

    def on_pairs(y_true, y_pred):
        labels = keras_losses._labels(y_true)
        same = tf.cast(tf.gather(labels, first) == tf.gather(labels, second), y_pred.dtype)
        x1, x2 = tf.gather(y_pred, first), tf.gather(y_pred, second)
        return function(x1, x2, same, **arguments)

    return on_pairs


def train_keras(
    model,
    loss_name: str,
    x_train,
    y_train,
    x_val,
    y_val,
    epochs: int,
    p: int,
    k: int,
    lr: float,
    seed: int,
    margin: float | None = None,
    progress: bool = True,
    schedule: str = "constant",
    metric: str = "euclidean",
    temperature: float = 0.1,
) -> dict[str, list[float]]:
    """``train_torch`` for a Keras model: ``compile`` with a ``tripletlab.tensorflow``
    loss and Adam, then ``model.fit`` on the P x K batches.

    The batches are ``PKSampler(y_train, p, k, seed).tf_dataset(x_train, y_train)``
    (a new epoch of batches per pass), fitted with ``shuffle=False`` (the batches are
    already drawn) and ``jit_compile=False``; ``seed_everything(seed)`` and
    ``keras.utils.set_random_seed(seed)`` are called first. A callback computes the
    retrieval metrics of ``x_val`` after each epoch. ``loss`` is Keras' epoch mean of
    the batch losses; ``fraction_positive`` is NaN (see the module docstring).
    ``schedule="cosine"`` uses ``keras.optimizers.schedules.CosineDecay`` over the
    ``epochs * len(sampler)`` steps, the same learning rates as ``train_torch``'s.
    ``progress`` shows a ``tqdm.auto`` bar over the epochs; ``metric`` and
    ``temperature`` as in ``train_torch``.
    """
    import keras

    config = _config(loss_name, epochs, lr, margin, schedule, metric, temperature)
    sampler = PKSampler(np.asarray(y_train), p, k, seed=seed)
    seed_everything(seed)
    keras.utils.set_random_seed(seed)
    x_val, y_val = np.asarray(x_val, dtype=np.float32), np.asarray(y_val)
    dataset = sampler.tf_dataset(np.asarray(x_train, np.float32), np.asarray(y_train))
    history = _empty_history()
    bar = _progress(None, progress, epochs, f"{loss_name} (keras)")

    class Metrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            embeddings = np.asarray(self.model(x_val, training=False))
            history["loss"].append(float(logs["loss"]))
            history["fraction_positive"].append(math.nan)
            for key, value in retrieval_metrics(embeddings, y_val).items():
                history[key].append(value)
            bar.update(1)

    rate = lr
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * len(sampler))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rate),
        loss=_keras_loss(config, p * k),
        jit_compile=False,
    )
    try:
        model.fit(dataset, epochs=epochs, shuffle=False, verbose=0, callbacks=[Metrics()])
    finally:
        bar.close()
    return history


def embed_torch(model, x) -> np.ndarray:
    """``model``'s embeddings of the rows of ``x`` as a float32 NumPy array, in eval mode
    and without gradients; ``x`` goes to the model's device as float32."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
        return model(x).cpu().numpy()


def protocol_split(seed: int = 0, validation_classes=(4, 5, 6)) -> dict[str, np.ndarray]:
    """The digits split of notebook 07's protocol, as a dict of arrays.

    From ``load_digits()``: ``x_test, y_test`` are the unseen classes 7-9. The training
    classes 0-6 are split by a permutation drawn from ``np.random.default_rng(seed)``
    (the generator ``seed_everything(seed)`` returns): the first three quarters are
    ``x_fit, y_fit`` (the training images), the rest ``x_seen, y_seen`` (new images of
    the training classes). ``x_fit`` is split again by class for choosing the settings:
    ``x_val, y_val`` hold ``validation_classes``, ``x_dev, y_dev`` the other training
    classes. Each set keeps the order of ``load_digits``.
    """
    from tripletlab.data import load_digits

    seed = _checks.check_int("seed", seed)
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.y_train))
    n_fit = 3 * len(order) // 4
    fit, seen = np.sort(order[:n_fit]), np.sort(order[n_fit:])
    split = {
        "x_fit": digits.x_train[fit],
        "y_fit": digits.y_train[fit],
        "x_seen": digits.x_train[seen],
        "y_seen": digits.y_train[seen],
        "x_test": digits.x_test,
        "y_test": digits.y_test,
    }
    in_val = np.isin(split["y_fit"], validation_classes)
    split |= {
        "x_dev": split["x_fit"][~in_val],
        "y_dev": split["y_fit"][~in_val],
        "x_val": split["x_fit"][in_val],
        "y_val": split["y_fit"][in_val],
    }
    return split
