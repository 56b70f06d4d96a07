"""The ``tripletlab.tensorflow`` losses as ``keras.losses.Loss`` objects (Keras 3).

For ``model.compile(loss=...)`` and ``model.fit``: each class stores its
hyperparameters (validated when it is built) and calls the function of the same name in
``tripletlab.tensorflow`` in ``call``, so values, gradients and edge cases are those of
the functions (no second copy of any formula). Every class is registered with
``keras.saving.register_keras_serializable(package="tripletlab")`` and has
``get_config``: a ``.keras`` model compiled with one of them reloads with
``keras.models.load_model`` once this module is imported.

What Keras passes as ``(y_true, y_pred)``:

=============================  =============================  ===============================
class                          y_true                         y_pred
=============================  =============================  ===============================
``BatchAllTripletLoss``        class ids ``(B,)`` or          embeddings ``(B, D)``
``BatchHardTripletLoss``       ``(B, 1)``
``BatchSemiHardTripletLoss``
``SupervisedContrastiveLoss``
``TripletLoss``                ignored (Keras needs one:      ``(B, 3, D)``: anchor, positive,
                               zeros will do)                 negative stacked on axis 1
``ContrastiveLoss``            ``same`` ``(B,)`` or           ``(B, 2, D)``: the two sides
                               ``(B, 1)``, 1 for the same
                               class
``ModifiedTripletLoss``        ignored                        ``(B, 2, D)``: anchor and
                                                              positive; the scores are their
                                                              ``similarity_matrix``
``InfoNCELoss``                ignored, or class ids with     ``(B, 2, D)``: queries and keys
                               ``use_labels=True``            stacked on axis 1
=============================  =============================  ===============================

Keras converts ``y_true`` to the loss dtype (float32) before ``call``: the labels are
cast back to int32 and flattened, so class ids must be below ``2**24`` in magnitude to
survive the round trip. When a loss of class ids is called eagerly, ``y_true`` is checked
before that conversion, as the functions check their labels: integers, or floats with
whole values (what Keras passes), finite, below ``2**24`` in magnitude, shape ``(B,)``
or ``(B, 1)``; anything else is a ``ValueError`` naming ``y_true``. (Inside
``model.fit`` the loss runs in a graph, where the values are not known: nothing is
checked there.)

Reduction: the mining losses and ``SupervisedContrastiveLoss`` are one number per
batch (the mean over the valid anchors, pairs or triplets, as in the functions);
``sample_weight`` has no meaning for them and raises a ``ValueError``. ``TripletLoss``,
``ContrastiveLoss``, ``ModifiedTripletLoss`` and ``InfoNCELoss`` return one loss per
row and let Keras reduce them (with ``sample_weight`` when given): the Keras
``reduction`` defaults to the function's own (``"sum_over_batch_size"``, the mean, for
all but the modified triplet loss, whose default is ``"sum"``). An empty batch gives a
0 loss from every class, still connected to ``y_pred`` (Keras itself would return the
empty vector of per-row losses unreduced).

Mixed precision: the loss dtype stays float32 under a ``mixed_float16`` or
``mixed_bfloat16`` policy (Keras' default for losses), so float16 embeddings are cast
to float32 before the loss and the loss is float32, as Keras' ``LossScaleOptimizer``
expects. Everything works in ``tf.function`` and with ``jit_compile=True``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tripletlab import _checks
from tripletlab import tensorflow as tl

__all__ = [
    "BatchAllTripletLoss",
    "BatchHardTripletLoss",
    "BatchSemiHardTripletLoss",
    "TripletLoss",
    "ContrastiveLoss",
    "ModifiedTripletLoss",
    "InfoNCELoss",
    "SupervisedContrastiveLoss",
]

_register = keras.saving.register_keras_serializable(package="tripletlab")


_LARGEST_LABEL = 2**24  # float32 holds every integer below it exactly


def _labels(y_true) -> tf.Tensor:
    """Keras' float ``(B,)`` or ``(B, 1)`` labels as int32 ``(B,)``."""
    return tf.reshape(tf.cast(y_true, tf.int32), [-1])


def _check_labels(y_true) -> None:
    """When executing eagerly, raise unless ``y_true`` holds class ids that survive Keras'
    conversion to float32: integers or whole floats, finite, ``|id| < 2**24``, shape
    ``(B,)`` or ``(B, 1)``. The functions' own label checks, as far as Keras lets them."""
    if not tf.executing_eagerly() or (tf.is_tensor(y_true) and not hasattr(y_true, "numpy")):
        return
    try:
        values = np.asarray(y_true.numpy() if tf.is_tensor(y_true) else y_true)
    except Exception as error:
        raise _checks.not_an_array_error("y_true", y_true, error) from None
    shape = values.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise ValueError(
            f"y_true must be the labels, a vector (B,) or (B, 1) of class ids; got shape "
            f"{_checks.shape_str(shape)}"
        )
    if values.dtype.kind not in "iuf":
        raise ValueError(f"y_true must hold integer class ids (labels); got dtype {values.dtype}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
        raise ValueError(
            "y_true must hold integer class ids (labels): whole numbers, finite; got "
            f"{values[~(np.isfinite(values) & (values == np.round(values)))][:3].tolist()}"
        )
    if values.size and np.abs(values.astype(np.float64)).max() >= _LARGEST_LABEL:
        raise ValueError(
            "y_true must hold class ids (labels) below 2**24 in magnitude: Keras passes them "
            "to the loss as float32, which would merge larger ones; got "
            f"{values.reshape(-1)[np.argmax(np.abs(values.reshape(-1)))]!r}"
        )


def _stacked(y_pred, parts: int) -> list[tf.Tensor]:
    """``(B, parts, D)`` -> ``parts`` tensors ``(B, D)``; a ValueError for another shape."""
    shape = tuple(y_pred.shape)
    if len(shape) != 3 or shape[1] != parts:
        raise ValueError(
            f"y_pred must have shape (B, {parts}, D) (the inputs stacked on axis 1); "
            f"got {_checks.shape_str(shape)}"
        )
    return tf.unstack(y_pred, num=parts, axis=1)


def _check_real(y_pred, what: str) -> None:
    """When executing eagerly, raise unless ``y_pred`` holds real numbers: Keras would
    drop the imaginary part of complex values with a warning, or fail on strings with a
    ``TypeError``."""
    if not tf.executing_eagerly():
        return
    if tf.is_tensor(y_pred) or isinstance(y_pred, np.ndarray):
        dtype = y_pred.dtype
    else:
        try:
            dtype = np.asarray(y_pred).dtype
        except Exception as error:
            raise _checks.not_an_array_error(f"y_pred ({what})", y_pred, error) from None
    if _checks.dtype_kind(dtype) not in "biuf":
        raise ValueError(f"y_pred ({what}) must hold real numbers; got dtype {dtype}")


class _Loss(keras.losses.Loss):
    """Hyperparameters named in ``_config`` go into ``get_config``; ``y_pred`` is checked
    eagerly for real numbers; an empty batch gives a connected 0."""

    _config: tuple[str, ...] = ()
    _y_pred: str = "embeddings"  # what y_pred holds, for the messages

    def __call__(self, y_true, y_pred, sample_weight=None):
        _check_real(y_pred, self._y_pred)
        loss = super().__call__(y_true, y_pred, sample_weight=sample_weight)
        if self.reduction not in (None, "none") and tuple(loss.shape) == (0,):
            loss = tf.reduce_sum(loss)  # Keras returns an empty batch's losses unreduced
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self._config})
        return config


class _BatchLoss(_Loss):
    """A loss of labelled embeddings that is one number per batch: no sample_weight."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"sample_weight is not supported by {type(self).__name__}: the loss is one "
                "number per batch; got a sample_weight"
            )
        _check_labels(y_true)
        return super().__call__(y_true, y_pred)


class _MiningLoss(_BatchLoss):
    _config = ("margin", "metric")
    _function = None

    def __init__(self, margin=0.2, metric="euclidean", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = _checks.check_margin(margin)
        self.metric = _checks.check_metric(metric)


@_register
class BatchAllTripletLoss(_MiningLoss):
    """``tripletlab.tensorflow.batch_all_triplet_loss``: ``y_true`` labels, ``y_pred``
    embeddings. Returns the loss only (a Keras loss is one tensor); call the function
    on the embeddings to log the fraction of positive triplets."""

    def __init__(self, margin=0.2, metric="euclidean", name="batch_all_triplet_loss", **kwargs):
        super().__init__(margin, metric, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return tl.batch_all_triplet_loss(y_pred, _labels(y_true), self.margin, self.metric)[0]


@_register
class BatchHardTripletLoss(_MiningLoss):
    """``tripletlab.tensorflow.batch_hard_triplet_loss``: ``y_true`` labels, ``y_pred``
    embeddings; ``soft=True`` for the soft margin."""

    _config = ("margin", "metric", "soft")

    def __init__(
        self, margin=0.2, metric="euclidean", soft=False, name="batch_hard_triplet_loss", **kwargs
    ):
        super().__init__(margin, metric, name=name, **kwargs)
        self.soft = _checks.check_bool("soft", soft)

    def call(self, y_true, y_pred):
        return tl.batch_hard_triplet_loss(
            y_pred, _labels(y_true), self.margin, self.metric, soft=self.soft
        )


@_register
class BatchSemiHardTripletLoss(_MiningLoss):
    """``tripletlab.tensorflow.batch_semihard_triplet_loss``: ``y_true`` labels, ``y_pred``
    embeddings."""

    def __init__(
        self, margin=0.2, metric="euclidean", name="batch_semihard_triplet_loss", **kwargs
    ):
        super().__init__(margin, metric, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return tl.batch_semihard_triplet_loss(y_pred, _labels(y_true), self.margin, self.metric)


@_register
class TripletLoss(_Loss):
    """``tripletlab.tensorflow.triplet_loss`` per row: ``y_pred`` is ``(B, 3, D)``
    (anchor, positive, negative), ``y_true`` is ignored."""

    _config = ("margin", "metric")
    _y_pred = "anchor, positive, negative stacked on axis 1"

    def __init__(self, margin=0.2, metric="sqeuclidean", name="triplet_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = _checks.check_margin(margin)
        self.metric = _checks.check_metric(metric)

    def call(self, y_true, y_pred):
        anchor, positive, negative = _stacked(y_pred, 3)
        return tl.triplet_loss(anchor, positive, negative, self.margin, self.metric, "none")


@_register
class ContrastiveLoss(_Loss):
    """``tripletlab.tensorflow.contrastive_loss`` per pair: ``y_true`` is ``same`` (1 for
    the same class), ``y_pred`` is ``(B, 2, D)``."""

    _config = ("margin",)
    _y_pred = "x1, x2 stacked on axis 1"

    def __init__(self, margin=1.0, name="contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = _checks.check_margin(margin)

    def call(self, y_true, y_pred):
        x1, x2 = _stacked(y_pred, 2)
        same = tf.reshape(y_true, [-1])
        return tl.contrastive_loss(x1, x2, same, self.margin, "none")


@_register
class ModifiedTripletLoss(_Loss):
    """``tripletlab.tensorflow.modified_triplet_loss`` per row of
    ``similarity_matrix(anchor, positive)``: ``y_pred`` is ``(B, 2, D)``, ``y_true`` is
    ignored; reduced by ``"sum"`` by default, as the function."""

    _config = ("margin",)
    _y_pred = "anchor, positive stacked on axis 1"

    def __init__(self, margin=0.25, name="modified_triplet_loss", reduction="sum", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.margin = _checks.check_margin(margin)

    def call(self, y_true, y_pred):
        anchor, positive = _stacked(y_pred, 2)
        scores = tl.similarity_matrix(anchor, positive)
        return tl.modified_triplet_loss(scores, self.margin, "none")


@_register
class InfoNCELoss(_Loss):
    """``tripletlab.tensorflow.info_nce_loss`` per pair: ``y_pred`` is ``(B, 2, D)``
    (queries, keys); ``y_true`` is ignored, or with ``use_labels=True`` holds class ids
    whose in-batch false negatives leave the denominators. Reduced by Keras (the mean by
    default, as the function)."""

    _config = ("temperature", "symmetric", "use_labels")
    _y_pred = "queries, keys stacked on axis 1"

    def __init__(
        self, temperature=0.05, symmetric=False, use_labels=False, name="info_nce_loss", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.temperature = _checks.check_temperature(temperature)
        self.symmetric = _checks.check_bool("symmetric", symmetric)
        self.use_labels = _checks.check_bool("use_labels", use_labels)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.use_labels:
            _check_labels(y_true)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        queries, keys = _stacked(y_pred, 2)
        labels = _labels(y_true) if self.use_labels else None
        return tl.info_nce_loss(queries, keys, self.temperature, self.symmetric, labels, "none")


@_register
class SupervisedContrastiveLoss(_BatchLoss):
    """``tripletlab.tensorflow.supervised_contrastive_loss``: ``y_true`` labels, ``y_pred``
    embeddings (NT-Xent when the labels are instance ids of two views each)."""

    _config = ("temperature",)

    def __init__(self, temperature=0.1, name="supervised_contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = _checks.check_temperature(temperature)

    def call(self, y_true, y_pred):
        return tl.supervised_contrastive_loss(y_pred, _labels(y_true), self.temperature)
