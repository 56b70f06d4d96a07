"""Mining over the batches of all replicas of a ``tf.distribute`` strategy.

The TensorFlow counterpart of ``tripletlab.torch_distributed``, with the same names and
the same convention: **the update equals that of one device on the global batch**, with
nothing for the user to scale. Inside
``strategy.run`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``, ...), each
replica gathers every replica's embeddings and labels
(``tf.distribute.get_replica_context().all_gather``) before mining, so every anchor sees
every positive and negative of the global batch, and each replica's loss *value* is
that of the single-device loss on the concatenated batch (in replica order).

Gradients and scaling. ``all_gather`` is differentiable in TensorFlow: its gradient
sums, over the replicas, what each replica's loss sends to a row, and hands each
replica the rows it contributed. If every replica's loss is the concatenated-batch loss
``L`` divided by the number of replicas ``N`` (the ``tf.distribute`` convention, as in
``tf.nn.compute_average_loss``; ``CrossReplicaLoss`` divides), the gradient with respect
to a replica's embeddings is exactly its slice of ``dL/dx`` on one device, and the
parameter gradients, which the optimizer sums over the replicas, are exactly the
single-device ones: the same update as one device on the global batch. Without the
division by ``N`` (``gather_batch`` followed by a plain function) every gradient is
``N`` times the single-device one. (In PyTorch, ``DistributedDataParallel`` *averages*:
``tripletlab.torch_distributed.CrossReplicaLoss`` returns ``L`` with ``N`` times its
slice of the gradient instead: the same update.)

``gather_batch`` is the building block; ``CrossReplicaLoss`` wraps one of the mining
losses of ``tripletlab.keras_losses`` for ``model.compile`` or a custom loop. Outside a
strategy (or with one replica) both are the plain loss. Replicas may hold different
numbers of rows. Importing this module loads TensorFlow and Keras.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tripletlab import keras_losses

__all__ = ["gather_batch", "CrossReplicaLoss"]


def gather_batch(embeddings, labels) -> tuple[tf.Tensor, tf.Tensor]:
    """Every replica's embeddings and labels, concatenated in replica order.

    Call it in replica context (inside ``strategy.run``). The embeddings are gathered
    with the differentiable ``all_gather``: see the module docstring for what the
    gradient is. In cross-replica context, outside any strategy, or with one replica,
    returns the inputs unchanged (the labels as a tensor).
    """
    embeddings = tf.convert_to_tensor(embeddings)
    labels = tf.convert_to_tensor(labels)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return embeddings, labels
    # two calls: the labels (integers) have no gradient to route back
    return context.all_gather(embeddings, axis=0), context.all_gather(labels, axis=0)


@keras.saving.register_keras_serializable(package="tripletlab")
class CrossReplicaLoss(keras.losses.Loss):
    """A mining loss of ``tripletlab.keras_losses`` computed on the global batch.

    The mining losses and ``SupervisedContrastiveLoss`` (losses of labelled embeddings
    that are one number per batch) can be wrapped.

    ``CrossReplicaLoss(BatchHardTripletLoss(0.2))``: ``y_true`` labels, ``y_pred``
    embeddings, as the wrapped loss. Under a ``tf.distribute`` strategy, each replica
    returns ``L / N`` (``L`` the wrapped loss on the concatenated batch, ``N`` the number
    of replicas: the scaling Keras applies to the losses it reduces itself, and which it
    undoes for the logged loss), so the summed gradients are those of ``L`` on one
    device. Outside a strategy it is the wrapped loss.
    """

    _wrappable = (
        keras_losses.BatchAllTripletLoss,
        keras_losses.BatchHardTripletLoss,
        keras_losses.BatchSemiHardTripletLoss,
        keras_losses.SupervisedContrastiveLoss,
    )

    def __init__(self, loss, name=None, **kwargs):
        if isinstance(loss, dict):  # from get_config
            loss = keras.saving.deserialize_keras_object(loss)
        if not isinstance(loss, self._wrappable):
            names = ", ".join(c.__name__ for c in self._wrappable)
            raise ValueError(
                "loss must be one of the mining losses of tripletlab.keras_losses or its "
                f"SupervisedContrastiveLoss ({names}); "
                f"got {type(loss).__name__}"
            )
        super().__init__(name=name or f"cross_replica_{loss.name}", **kwargs)
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight is not supported by CrossReplicaLoss: a mining loss is one "
                "number per batch; got a sample_weight"
            )
        keras_losses._check_labels(y_true)
        return super().__call__(y_true, y_pred)

    def call(self, y_true, y_pred):
        y_pred, labels = gather_batch(y_pred, keras_losses._labels(y_true))
        loss = self.loss.call(labels, y_pred)
        # Keras scales only the losses it reduces itself; a scalar is left as it is
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def get_config(self) -> dict:
        config = super().get_config()
        config["loss"] = keras.saving.serialize_keras_object(self.loss)
        return config
