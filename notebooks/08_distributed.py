# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Mining across workers
#
# With data-parallel training, each worker (a process, usually one per GPU) embeds its
# own share of the batch. If each worker mines triplets in its own share only, an anchor
# never meets the positives and negatives that landed on the other workers: the mining
# sees a batch $N$ times smaller than the one the optimizer steps on. This notebook
# gathers every worker's embeddings and labels before mining
# (`tripletlab.torch_distributed.CrossReplicaLoss` with `torch.distributed`;
# `tripletlab.tf_distributed.CrossReplicaLoss` with `tf.distribute`), measures what the
# global batch changes, and checks that the update is that of one process mining the
# whole batch, in both frameworks, with nothing to rescale.
#
# Everything runs on this machine's CPU: two processes joined by `torch.distributed`
# (the gloo backend, over loopback), and two logical CPU devices for TensorFlow's
# `MirroredStrategy`. The code is the same on several GPUs or machines.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import numpy as np
import torch

# isort: split
import tensorflow as tf

tf.get_logger().setLevel("ERROR")  # no INFO lines from MirroredStrategy

# Two logical CPU devices for MirroredStrategy: TensorFlow accepts this only before it
# initialises its runtime, hence here, before anything else uses TensorFlow.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

from tripletlab import device
from tripletlab import torch as tl_torch
from tripletlab.data import PKSampler, load_digits, seed_everything
from tripletlab.distributed_demo import compare, valid_triplets
from tripletlab.keras_losses import BatchAllTripletLoss as KerasBatchAll
from tripletlab.tf_distributed import CrossReplicaLoss

rng = seed_everything(0)
print(device.describe())
print("logical CPUs for TensorFlow:", len(tf.config.list_logical_devices("CPU")))

# %% [markdown]
# ## A global batch of two P x K batches
#
# Two workers, each with its own P x K batch of training digits (P = 4 classes, K = 4
# images, drawn by `PKSampler`), embedded by a fixed random linear map to 16 dimensions
# and L2-normalized. No training here: the point is what the mining sees. The two
# batches need not hold the same classes, so the global batch has more classes than
# either worker's, and more images of the classes they share.

# %%
P, K, WORLD = 4, 4, 2
digits = load_digits()
sampler = PKSampler(digits.y_train, P, K, seed=0)
rows = np.concatenate(sampler.batches(0)[:WORLD])
projection = rng.normal(size=(64, 16)).astype(np.float32)
x = digits.x_train[rows] @ projection
x = x / np.linalg.norm(x, axis=1, keepdims=True)
y = digits.y_train[rows]
half = len(y) // WORLD
for rank in range(WORLD):
    classes = np.unique(y[rank * half : (rank + 1) * half]).tolist()
    print(f"worker {rank}: {half} images, classes {classes}")
print(f"global batch: {len(y)} images, classes {np.unique(y).tolist()}")
assert len(y) == WORLD * P * K and len(np.unique(y)) > P

# %% [markdown]
# ## How many triplets each worker can mine
#
# In a batch where anchor $a$ has $n_a$ images of its class (itself included) out of
# $B$, the valid triplets number
#
# $$T = \sum_{a=1}^{B} (n_a - 1)\,(B - n_a),$$
#
# a positive other than the anchor times a negative. Each anchor of the global batch
# has every negative of both workers, and more positives when its class is on both, so
# $T$ grows faster than the batch: well over twice what the two workers have when each
# mines apart.

# %%
local_counts = [valid_triplets(y[r * half : (r + 1) * half]) for r in range(WORLD)]
global_count = valid_triplets(y)
print("valid triplets, each worker alone:", local_counts, "-> together", sum(local_counts))
print("valid triplets, global batch:", global_count)
print(f"ratio: {global_count / sum(local_counts):.4f}")
assert global_count > 2 * sum(local_counts)

# %% [markdown]
# ## Two processes
#
# `tripletlab.distributed_demo.compare` starts two processes with
# `torch.multiprocessing.spawn` (the function each runs must be importable, so it
# lives in the package, not in this notebook), joins them with
# `torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:<port>")`,
# and gives each its half of the global batch. Each computes the batch-all and the
# batch-hard losses (margin 0.2) twice: with its own rows only, and through
# `CrossReplicaLoss`, which all-gathers the embeddings and labels of both workers before
# mining:
#
# ```python
# loss_fn = CrossReplicaLoss(BatchAllTripletLoss(margin=0.2))
# loss = loss_fn(model(x_local), y_local)   # the loss of the global batch
# ```

# %%
ranks = compare(x, y, world=WORLD, margin=0.2)
print(
    f"{'':22s} {'labels':>6s} {'triplets':>8s} {'batch-all':>9s} {'fraction+':>9s} "
    f"{'batch-hard':>10s}"
)
for mode in ("local", "global"):
    for r in ranks:
        m = r[mode]
        print(
            f"rank {r['rank']}, {mode + ' mining':14s} {m['labels_seen']:6d} "
            f"{m['valid_triplets']:8d} {m['batch_all']:9.4f} {m['fraction_positive']:9.4f} "
            f"{m['batch_hard']:10.4f}"
        )
assert all(r["world_size"] == WORLD and r["rows"] == half for r in ranks)
assert [r["local"]["valid_triplets"] for r in ranks] == local_counts
assert all(r["global"]["valid_triplets"] == global_count for r in ranks)

# %% [markdown]
# With global mining both workers see all the labels and mine the same triplets, so
# they report the same loss and fraction of positive triplets; with local mining each
# reports its own. The hardest negative of an anchor can only get closer when there are
# more negatives to choose from, so the batch-hard loss of the global batch is at least
# the mean of the local ones, and here clearly above it:

# %%
mean_local = {k: np.mean([r["local"][k] for r in ranks]) for k in ("batch_all", "batch_hard")}
glob = ranks[0]["global"]
for k in ("batch_all", "batch_hard"):
    print(f"{k}: mean of the local losses {mean_local[k]:.4f}, global {glob[k]:.4f}")
assert glob["batch_hard"] > mean_local["batch_hard"]
for k in ("batch_all", "fraction_positive", "batch_hard"):
    assert ranks[1]["global"][k] == ranks[0]["global"][k]

# %% [markdown]
# ## The same numbers and the same update as one process
#
# `CrossReplicaLoss` keeps the other workers' rows constant and this worker's rows
# differentiable, and scales its gradient by the number of workers $N$. With $L$ the
# loss of the global batch $x$ on one process and $x_r$ the rows of worker $r$, each
# worker's loss is $L$ and
#
# $$\frac{\partial L_r}{\partial x_r} = N \left.\frac{\partial L}{\partial x}\right|_{x_r},
# \qquad \frac{1}{N} \sum_r \frac{\partial L_r}{\partial \theta} =
# \frac{\partial L}{\partial \theta}.$$
#
# `DistributedDataParallel` *averages* the parameter gradients over the $N$ workers, so
# its update is exactly the single-process one on the global batch: nothing to
# multiply. Each worker above also ran one backward pass through a linear layer (the
# $16 \times 16$ identity) wrapped in `DistributedDataParallel`; with embeddings
# $e = x W^\top$ the one-process weight gradient is
# $\partial L / \partial W = (\partial L / \partial e)^\top x$.

# %%
xt = torch.tensor(x, requires_grad=True)
single, fraction = tl_torch.batch_all_triplet_loss(xt, torch.as_tensor(y), 0.2)
(single_grad,) = torch.autograd.grad(single, xt)
print(f"one process, global batch: batch-all {single.item():.4f}, fraction+ {fraction.item():.4f}")
single_update = (single_grad.T @ xt.detach()).numpy()
for r in ranks:
    gap = np.abs(r["global"]["weight_grad"] - single_update).max()
    print(f"rank {r['rank']}: DDP weight gradient = the one-process one (to 1e-6):", gap < 1e-6)
    assert gap < 1e-6
    assert r["global"]["batch_all"] == np.float32(single.item())
    assert r["global"]["fraction_positive"] == np.float32(fraction.item())

# %% [markdown]
# ## TensorFlow: `MirroredStrategy`
#
# In TensorFlow the replicas of a `tf.distribute` strategy gather with
# `tf.distribute.get_replica_context().all_gather`, whose gradient is differentiable:
# it sums what every replica's loss sends back to a row. The optimizer *sums* the
# replicas' gradients (where `DistributedDataParallel` averages), so
# `tripletlab.tf_distributed.CrossReplicaLoss` returns $L / N$ on each replica, the
# `tf.distribute` convention:
#
# $$\frac{\partial}{\partial x_r} \sum_{s=1}^{N} \frac{L}{N} =
# \left.\frac{\partial L}{\partial x}\right|_{x_r},$$
#
# so the summed gradients are those of one device on the global batch: the same
# update as in PyTorch, again with nothing to rescale. The two logical CPUs configured
# in the first cell serve as the two replicas.

# %%
strategy = tf.distribute.MirroredStrategy(["/CPU:0", "/CPU:1"])
loss_fn = CrossReplicaLoss(KerasBatchAll(0.2))


def halves(values):
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(values[ctx.replica_id_in_sync_group * half :][:half])
    )


@tf.function
def replica_step(x_local, y_local):
    with tf.GradientTape() as tape:
        tape.watch(x_local)
        loss = loss_fn(y_local, x_local)
    return loss, tape.gradient(loss, x_local)


losses, grads = strategy.run(replica_step, args=(halves(x), halves(y)))
losses = [float(v) for v in strategy.experimental_local_results(losses)]
grads = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads)])
print("replicas:", strategy.num_replicas_in_sync)
print("loss on each replica (L / N):", [f"{v:.4f}" for v in losses])
print(f"their sum: {sum(losses):.4f}")
same_grad = bool(np.abs(grads - single_grad.numpy()).max() < 1e-6)
print("replica gradients = the one-process gradient (to 1e-6):", same_grad)
assert strategy.num_replicas_in_sync == WORLD and same_grad
assert np.allclose(losses, single.item() / WORLD, rtol=1e-5)

# %% [markdown]
# ## What it costs
#
# Gathering is one `all_gather` of a $B \times D$ matrix and of $B$ labels per step,
# and the mining works on an $NB \times NB$ distance matrix instead of $B \times B$ on
# each worker: the same work as one process mining the global batch, done on every
# worker. `tools/bench_distributed.py` times it against one process mining the same
# global batch.
#
# In a training loop, wrap the loss and train as usual:
#
# ```python
# model = torch.nn.parallel.DistributedDataParallel(model)
# loss_fn = CrossReplicaLoss(BatchHardTripletLoss(margin=0.2))
# loss = loss_fn(model(x_local), y_local)   # the single-process update, as it is
# ```
#
# ```python
# with strategy.scope():
#     model.compile(optimizer="adam", loss=CrossReplicaLoss(BatchHardTripletLoss(0.2)))
# ```
