"""Data and determinism for the course.

``seed_everything`` seeds every random number generator the notebooks use, so that a
notebook executed twice prints the same numbers (nbval compares them). ``load_digits``
splits scikit-learn's digits by class (train 0-6, unseen test 7-9); ``PKSampler`` draws
P classes x K samples per batch for online mining. Nothing here imports PyTorch or
TensorFlow at module level.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from tripletlab import _checks


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python's ``random``, NumPy, and PyTorch / TensorFlow if they are imported.

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``, the generator the
    notebooks draw from. Frameworks that are not imported yet are left alone (and not
    imported): call this after your imports. ``seed`` is any integer scalar >= 0 (a
    Python or NumPy integer, or a 0-d integer array or tensor), as ``PKSampler`` takes.
    """
    seed = _checks.check_int("seed", seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this one is already hashed
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global state, still used by some libraries)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "keras" in sys.modules:  # Keras 3 keeps its own seed generator beside TensorFlow's
        sys.modules["keras"].utils.set_random_seed(seed)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- digits

TRAIN_CLASSES = (0, 1, 2, 3, 4, 5, 6)
"""Digit classes the models are trained on."""

TEST_CLASSES = (7, 8, 9)
"""Digit classes never seen in training: retrieval is measured on them (notebooks 04, 07)."""


class DigitsSplit(NamedTuple):
    """The digits split by class: ``x`` float32 (N, 64) in [0, 1], ``y`` int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits() -> DigitsSplit:
    """scikit-learn's bundled 8 x 8 digits (1,797 images, no download), split by class.

    Train: every image of the classes ``TRAIN_CLASSES`` (0-6, 1,264 images); test: every
    image of the unseen classes ``TEST_CLASSES`` (7, 8, 9; 533 images). The split is
    fixed (no randomness) and by class, not by image: a model is evaluated on digits it
    has never seen any example of. Pixels (0..16) are divided by 16, so ``x`` is
    float32 (N, 64) in [0, 1]; ``y`` keeps the digit as an int64 label. The order is
    scikit-learn's. scikit-learn is imported here, not when this module is.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    train = np.isin(y, TRAIN_CLASSES)
    test = np.isin(y, TEST_CLASSES)
    return DigitsSplit(x[train], y[train], x[test], y[test])


# --------------------------------------------------------------------------- P x K


def _draw_distinct(queue: list[int], n: int, refill) -> list[int]:
    """Take ``n`` distinct items from the front of ``queue``, refilling it with ``refill()``.

    ``queue`` is consumed in order; when it runs short, a fresh shuffled permutation is
    appended, and items of it already taken in this draw are skipped (they stay in the
    queue for the next draw). Every item is drawn once before any is drawn twice.
    """
    taken: list[int] = []
    while len(taken) < n:
        if not queue:
            queue.extend(refill())
        for i, item in enumerate(queue):
            if item not in taken:
                taken.append(queue.pop(i))
                break
        else:  # everything left in the queue is already taken: refill
            queue.extend(refill())
    return taken


class PKSampler:
    """Batches of ``p`` classes x ``k`` samples (Hermans, Beyer and Leibe, 2017).

    Yields lists of ``p * k`` integer indices into ``labels``: ``k`` indices of each of
    ``p`` distinct classes, grouped by class. Use it as a PyTorch ``DataLoader``'s
    ``batch_sampler``, iterate it directly, or get a ``tf.data.Dataset`` of the batches
    with ``tf_dataset(x, y)``.

    - An epoch has ``len(labels) // (p * k)`` batches (``len(sampler)``).
    - Classes are taken in turn from a cycle of shuffled class orders, so every class
      appears in an epoch as soon as ``len(sampler) * p >= number of classes``, and no
      class appears twice before every class has appeared once.
    - Within a class, samples are taken in turn from a cycle of shuffled orders: no
      duplicate in a batch, and every sample is used before any is used twice. A class
      with fewer than ``k`` samples gives all of them plus ``k - n`` drawn with
      replacement (the only case of replacement).
    - Deterministic given ``seed``: epoch ``e`` is drawn from
      ``numpy.random.default_rng([seed, e])``. ``iter(sampler)`` gives epoch 0, then 1,
      2, ... on later calls (as a DataLoader does once per epoch); ``set_epoch(e)``
      chooses the next one, and ``batches(e)`` returns epoch ``e`` without moving on.

    Raises ``ValueError`` naming the argument: ``labels`` not a non-empty 1-D integer
    vector, ``p`` or ``k`` not a positive int, ``p`` larger than the number of classes,
    ``seed`` (or an epoch) not an int >= 0, fewer than ``p * k`` samples (an empty
    epoch). Integers may be Python or NumPy scalars, or 0-d integer arrays or tensors.
    Notebook: 07_training.
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0):
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) == 0:
            raise ValueError(
                "labels must be a non-empty vector (N,) of integer class ids; got shape "
                f"{labels.shape} and dtype {labels.dtype}"
            )
        p, k = _checks.check_int("p", p, minimum=1), _checks.check_int("k", k, minimum=1)
        seed = _checks.check_int("seed", seed)
        self.classes = np.unique(labels)
        if p > len(self.classes):
            raise ValueError(
                f"p must be at most the number of classes ({len(self.classes)}); got {p}"
            )
        if len(labels) < p * k:
            raise ValueError(
                f"p * k = {p * k} must be at most the number of samples ({len(labels)}): "
                "an epoch would have no batch"
            )
        self.labels, self.p, self.k, self.seed = labels, p, k, seed
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in self.classes}
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels) // (self.p * self.k)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter(sampler)`` gives: an integer scalar >= 0."""
        self.epoch = _checks.check_int("epoch", epoch)

    def batches(self, epoch: int = 0) -> list[list[int]]:
        """Every batch of epoch ``epoch``: ``len(self)`` lists of ``p * k`` indices."""
        rng = np.random.default_rng([self.seed, _checks.check_int("epoch", epoch)])
        class_ids = [int(c) for c in self.classes]
        class_queue: list[int] = []
        sample_queues: dict[int, list[int]] = {c: [] for c in class_ids}
        out = []
        for _ in range(len(self)):
            batch: list[int] = []
            for c in _draw_distinct(class_queue, self.p, lambda: rng.permutation(class_ids)):
                members = self.by_class[c]
                if len(members) < self.k:  # too few: all of them, the rest with replacement
                    extra = rng.choice(members, self.k - len(members), replace=True)
                    chosen = [*rng.permutation(members), *extra]
                else:
                    queue = sample_queues[c]
                    chosen = _draw_distinct(queue, self.k, lambda m=members: rng.permutation(m))
                batch.extend(int(i) for i in chosen)
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return iter(self.batches(epoch))

    def tf_dataset(self, x, y):
        """A ``tf.data.Dataset`` of ``(x[batch], y[batch])``, one element per batch.

        Each pass over the dataset (Keras ``fit`` makes one per epoch) is the sampler's
        next epoch; its cardinality is ``len(sampler)``. Element shapes
        ``(p * k, *x.shape[1:])`` and ``(p * k,)``, dtypes those of ``x`` and ``y``.
        Imports TensorFlow when called.
        """
        import tensorflow as tf

        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(self.labels) or len(y) != len(self.labels):
            raise ValueError(
                f"x and y must have one row per label ({len(self.labels)}); "
                f"got {len(x)} and {len(y)}"
            )

        def generate():
            for batch in self:
                yield x[batch], y[batch]

        size = self.p * self.k
        dataset = tf.data.Dataset.from_generator(
            generate,
            output_signature=(
                tf.TensorSpec((size, *x.shape[1:]), tf.as_dtype(x.dtype)),
                tf.TensorSpec((size,), tf.as_dtype(y.dtype)),
            ),
        )
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self)))
