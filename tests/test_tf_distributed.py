"""Mining across replicas in TensorFlow: under ``tf.distribute.MirroredStrategy`` with 2
logical CPU devices, ``tripletlab.tf_distributed`` gives on each replica the loss of the
concatenated batch, and each replica's gradient is its slice of the single-device
gradient (``CrossReplicaLoss``: Keras' ``1 / N`` scaling) or ``N`` times it
(``gather_batch`` and a plain function).

Logical devices can only be configured before TensorFlow initialises, so the check runs
in a fresh interpreter (this file run as a script) that prints its results as JSON.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPLICAS = 2
ROWS = (8, 6)  # replicas may hold different numbers of rows
MARGIN = 0.3


def global_batch(seed=51, dim=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sum(ROWS), dim)).astype(np.float32)
    # every class on both replicas: the cross-replica negatives and positives matter
    return x, (np.arange(sum(ROWS)) % 3).astype(np.int32)


def local_rows(replica):
    start = sum(ROWS[:replica])
    return slice(start, start + ROWS[replica])


def functions():
    from tripletlab import tensorflow as tl

    return {
        "batch_all": lambda x, y: tl.batch_all_triplet_loss(x, y, MARGIN)[0],
        "batch_hard": lambda x, y: tl.batch_hard_triplet_loss(x, y, MARGIN, "sqeuclidean"),
        "batch_semihard": lambda x, y: tl.batch_semihard_triplet_loss(x, y, MARGIN),
    }


def loss_objects():
    from tripletlab import keras_losses as kl

    return {
        "batch_all": kl.BatchAllTripletLoss(MARGIN),
        "batch_hard": kl.BatchHardTripletLoss(MARGIN, "sqeuclidean"),
        "batch_semihard": kl.BatchSemiHardTripletLoss(MARGIN),
    }


def run_replicas():
    """In a fresh interpreter: per replica and loss, (loss, gradient) of CrossReplicaLoss
    and of gather_batch + the function; the single-device ones for comparison."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS
    )
    from tripletlab.tf_distributed import CrossReplicaLoss, gather_batch

    strategy = tf.distribute.MirroredStrategy([f"/CPU:{i}" for i in range(REPLICAS)])
    x, y = global_batch()
    xs = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[local_rows(ctx.replica_id_in_sync_group)])
    )
    ys = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(y[local_rows(ctx.replica_id_in_sync_group)])
    )
    out = {"replicas": strategy.num_replicas_in_sync}
    for name, function in functions().items():
        wrapped = CrossReplicaLoss(loss_objects()[name])

        @tf.function
        def step(x_local, y_local, wrapped=wrapped, function=function):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x_local)
                keras_loss = wrapped(y_local, x_local)
                plain_loss = function(*gather_batch(x_local, y_local))
            return (
                keras_loss,
                tape.gradient(keras_loss, x_local),
                plain_loss,
                tape.gradient(plain_loss, x_local),
            )

        results = strategy.run(step, args=(xs, ys))
        out[name] = [
            [np.asarray(v).tolist() for v in strategy.experimental_local_results(r)]
            for r in results
        ]
        # outside a strategy: the wrapped loss, unchanged
        out[name + "_outside"] = float(wrapped(y, x))
    print(json.dumps(out))


@pytest.fixture(scope="module")
def replicas():
    pytest.importorskip("tensorflow")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    done = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def single_device(name):
    import tensorflow as tf

    x, y = global_batch()
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = functions()[name](xt, y)
    return float(loss), tape.gradient(loss, xt).numpy()


@pytest.mark.parametrize("name", ["batch_all", "batch_hard", "batch_semihard"])
def test_each_replica_gets_the_loss_and_its_slice_of_the_gradient(replicas, name):
    n = replicas["replicas"]
    assert n == REPLICAS
    want, want_grad = single_device(name)
    assert want > 0 and np.abs(want_grad).max() > 0
    keras_losses, keras_grads, plain_losses, plain_grads = replicas[name]
    for replica in range(n):
        rows = local_rows(replica)
        # CrossReplicaLoss: L / N on every replica, gradients summing to those of L
        assert keras_losses[replica] == pytest.approx(want / n, rel=1e-6)
        np.testing.assert_allclose(keras_grads[replica], want_grad[rows], rtol=1e-5, atol=1e-7)
        # gather_batch + the function: L on every replica, N times the gradient
        assert plain_losses[replica] == pytest.approx(want, rel=1e-6)
        np.testing.assert_allclose(plain_grads[replica], n * want_grad[rows], rtol=1e-5, atol=1e-7)
    assert replicas[name + "_outside"] == pytest.approx(want, rel=1e-6)


def test_the_replicas_mined_the_global_batch(replicas):
    from tripletlab import tensorflow as tl

    x, y = global_batch()
    local = float(tl.batch_hard_triplet_loss(x[local_rows(0)], y[local_rows(0)], MARGIN))
    assert local != pytest.approx(replicas["batch_hard"][2][0])


def test_only_the_mining_losses_can_be_wrapped():
    pytest.importorskip("tensorflow")
    from tripletlab import keras_losses as kl
    from tripletlab.tf_distributed import CrossReplicaLoss

    with pytest.raises(ValueError, match="mining losses"):
        CrossReplicaLoss(kl.ContrastiveLoss())
    with pytest.raises(ValueError, match="sample_weight"):
        CrossReplicaLoss(kl.BatchHardTripletLoss())([0, 0, 1], np.ones((3, 2)), [1, 1, 1])


def test_cross_replica_loss_round_trips_through_its_config():
    pytest.importorskip("tensorflow")
    import keras

    from tripletlab import keras_losses as kl
    from tripletlab.tf_distributed import CrossReplicaLoss

    loss = CrossReplicaLoss(kl.BatchHardTripletLoss(0.4, "cosine", soft=True))
    copy = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(copy, CrossReplicaLoss) and copy.name == loss.name
    assert copy.loss.get_config() == loss.loss.get_config()


if __name__ == "__main__":
    run_replicas()
