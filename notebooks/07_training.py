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
# # 07 · Training an embedding, measured on unseen classes
#
# The losses of notebooks 03 to 05, now used for what they are for: training a network
# whose embedding ranks images of the same class first, measured on classes the
# network has never seen. The data are scikit-learn's 8 x 8 digits split by class
# (`tripletlab.data.load_digits`): the network trains on the digits 0 to 6 and is
# evaluated on 7, 8 and 9. The batches are P classes x K images
# (`tripletlab.data.PKSampler`), and retrieval is scored with the three metrics of
# Musgrave, Belongie and Lim (2020), `tripletlab.metrics`:
#
# - **P@1**: the fraction of queries whose nearest other image has their class;
# - **R-precision**: with $R$ the number of other images of the query's class, the
#   fraction of its $R$ nearest neighbours that have its class;
# - **MAP@R**: $\frac{1}{R}\sum_{i \le R} P(i)\,[\text{neighbour } i \text{ is relevant}]$,
#   which also rewards putting the relevant neighbours *first* among the $R$.
#
# Every query is ranked against all the other images (itself excluded), by euclidean
# distance, ties broken by index.
#
# Two kinds of output. The data split, the batches and the raw-pixel baseline are
# exact: they print the same on every machine, and the tests compare them digit for
# digit. Everything a network computes is float32 arithmetic whose rounding depends on
# the hardware: which vector instructions the CPU has (oneDNN and PyTorch choose their
# kernels by CPU), how many threads split a sum, or a GPU. After a few hundred training
# steps those roundings move the third decimal of every trained score. So the cells
# that train print their numbers for you to read, and the tests do not compare them;
# what the text concludes from them is asserted in the cell, with margins measured
# over 5 seeds and 3 sets of CPU kernels (`tools/spread.py`, results in
# `benchmarks/spread/`). PyTorch and TensorFlow run on one thread each: the networks
# are too small to gain from more.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on a GPU

import matplotlib.pyplot as plt
import numpy as np
import torch

# isort: split
import keras
import tensorflow as tf
from sklearn.decomposition import PCA

from tripletlab import device
from tripletlab.data import PKSampler, load_digits, seed_everything
from tripletlab.metrics import retrieval_metrics
from tripletlab.training import keras_cnn, torch_cnn, torch_mlp, train_keras, train_torch

torch.set_num_threads(1)  # one thread each: see the note above
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
torch.use_deterministic_algorithms(True)
device.full_float32()  # float32 stays float32 on a GPU (no TF32)
SEED = 0  # tools/spread.py re-runs this notebook with other seeds
rng = seed_everything(SEED)
DEVICE = device.try_gpu()  # PyTorch's networks train here; Keras picks its own device
print(device.describe())
print("TensorFlow", tf.__version__.split(".")[0], "/ Keras", keras.__version__.split(".")[0])

# %% [markdown]
# ## The data: split by class
#
# Classes 0 to 6 train, 7 to 9 test. A quarter of the images of 0 to 6 are also held
# out (a fixed random choice), to see how the network does on the classes it trained
# on, with images it has not seen. Notebook 04 splits the classes the same way.

# %%
digits = load_digits()
order = rng.permutation(len(digits.y_train))
n_fit = 3 * len(order) // 4
fit, seen_new = np.sort(order[:n_fit]), np.sort(order[n_fit:])
x_fit, y_fit = digits.x_train[fit], digits.y_train[fit]
x_seen, y_seen = digits.x_train[seen_new], digits.y_train[seen_new]
x_test, y_test = digits.x_test, digits.y_test
print("training:", x_fit.shape, "classes", np.unique(y_fit).tolist())
print("seen classes, new images:", x_seen.shape)
print("unseen classes:", x_test.shape, "classes", np.unique(y_test).tolist())
assert set(y_fit.tolist()).isdisjoint(y_test.tolist())

# %% [markdown]
# ## P x K batches
#
# Each batch holds P = 7 classes x K = 8 images; an epoch has `len(x_fit) // 56`
# batches and cycles through shuffled class orders, so every class appears.

# %%
P, K = 7, 8
sampler = PKSampler(y_fit, P, K, seed=SEED)
first = sampler.batches(0)[0]
classes, counts = np.unique(y_fit[first], return_counts=True)
print("batches per epoch:", len(sampler))
print("first batch: classes", classes.tolist(), "x", counts.tolist())
assert len(classes) == P and (counts == K).all()

# %% [markdown]
# ## Baselines
#
# Before training anything: the raw pixels (64-D), and the two networks of this
# notebook with random weights. The network trained below is a small CNN
# (`tripletlab.training.torch_cnn`, `keras_cnn`): two 3 x 3 convolutions (64 then 128
# channels, ReLU in between, none after the second), the maximum of each channel over
# the 8 x 8 positions, and an L2-normalized 128-D output. The MLP is
# $64 \to 128 \to 32$ (ReLU in between), L2-normalized (`torch_mlp`, `keras_mlp`); the
# next sections say why the CNN, not the MLP, is the one trained with every loss. The
# raw pixels are also scored with the cosine distance, the distance the networks'
# normalized outputs amount to.


# %%
def embed_torch(model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(x, device=DEVICE)).cpu().numpy()


def scores(x_unseen, x_seen_new):
    """MAP@R etc. on the unseen classes, and MAP@R on new images of the seen classes."""
    row = retrieval_metrics(x_unseen, y_test)
    row["seen_map_at_r"] = retrieval_metrics(x_seen_new, y_seen)["map_at_r"]
    return row


def show(results):
    print(f"{'':28s} {'P@1':>6s} {'R-prec':>7s} {'MAP@R':>6s} | {'seen MAP@R':>10s}")
    for name, r in results.items():
        print(
            f"{name:28s} {r['precision_at_1']:6.3f} {r['r_precision']:7.3f} "
            f"{r['map_at_r']:6.3f} | {r['seen_map_at_r']:10.3f}"
        )


results = {"raw pixels": scores(x_test, x_seen)}
raw_cosine = retrieval_metrics(x_test, y_test, metric="cosine")["map_at_r"]
show(results)
raw = results["raw pixels"]
print(f"raw pixels, cosine distance: MAP@R {raw_cosine:.3f} on the unseen classes")
assert raw["precision_at_1"] > 0.98 and raw["r_precision"] < raw["precision_at_1"] - 0.2
assert raw_cosine < raw["map_at_r"]

# %% [markdown]
# The same scores for the two networks with their random initial weights (from this
# cell on, the printed scores depend on the hardware; see the introduction).

# %% tags=["nbval-ignore-output"]
random_nets = {}
for name, build in (("random CNN", torch_cnn), ("random MLP", torch_mlp)):
    seed_everything(SEED)
    random_nets[name] = build().to(DEVICE)
    results[name] = scores(*(embed_torch(random_nets[name], x) for x in (x_test, x_seen)))
random_test = embed_torch(random_nets["random CNN"], x_test)
show(results)
random_row = results["random CNN"]
assert results["random MLP"]["map_at_r"] < raw["map_at_r"]
assert abs(random_row["map_at_r"] - raw["map_at_r"]) < 0.15

# %% [markdown]
# Raw pixels are a strong baseline on these digits: almost every image's nearest
# neighbour is of its class (P@1 near 0.99), although far fewer of its $R$ nearest
# neighbours are (R-precision well below P@1). The cosine distance ranks them a little
# worse than the euclidean one, so the euclidean raw pixels are the pixel baseline to
# beat. The random MLP ranks worse than the pixels (by 0.04 to 0.13 MAP@R over five
# seeds). The random CNN, untrained, lands close to the pixels: its architecture alone
# (the same small filters at every position, then the maximum over positions)
# tolerates strokes that sit a pixel off. Over five seeds its MAP@R ranged from 0.52 to
# 0.64, against the pixels' 0.62: above them with some random weights, below with
# others. So a trained CNN has to beat the random CNN of the same seed, not only the
# pixels, to show that the loss taught it something.

# %% [markdown]
# ## Training with each loss, in PyTorch
#
# The same CNN, the same seed, the same batches, five losses: batch-all, batch-hard,
# semi-hard, soft-margin batch-hard (margin 0.2 for the three with a margin), and the
# contrastive loss on every pair of each batch (margin 1.0). Adam, 15 epochs, the
# learning rate starting at 1e-3 and decayed to 0 on a cosine over the 240 steps
# (`schedule="cosine"`). `train_torch` records, after each epoch, the loss and the
# three metrics on the unseen classes (only recorded: nothing is chosen on them). The
# progress bars are turned off here (`progress=False`): they would add output that
# changes from run to run.

# %%
EPOCHS, LR, SCHEDULE = 15, 1e-3, "cosine"
FIT = dict(
    epochs=EPOCHS,
    p=P,
    k=K,
    lr=LR,
    seed=SEED,
    progress=False,
    schedule=SCHEDULE,
)
print("training steps:", EPOCHS * len(sampler))
assert EPOCHS * len(sampler) == 240
LOSS_NAMES = ("batch_all", "batch_hard", "batch_semihard", "batch_hard_soft", "contrastive")

# %% tags=["nbval-ignore-output"]
histories, models = {}, {}
for name in LOSS_NAMES:
    seed_everything(SEED)
    model = torch_cnn().to(DEVICE)
    histories[name] = train_torch(model, name, x_fit, y_fit, x_test, y_test, **FIT)
    models[name] = model
    results[f"{name} (torch)"] = scores(embed_torch(model, x_test), embed_torch(model, x_seen))
    assert results[f"{name} (torch)"]["map_at_r"] == histories[name]["map_at_r"][-1]
show(results)

# %% [markdown]
# ## Choosing the best loss, and the MLP
#
# The loss to carry on with is chosen on the classes the network trained on: the one
# whose network ranks the *new images of 0 to 6* best (highest seen MAP@R). Choosing
# on 7, 8 and 9 would make their score a tuned number rather than a measurement.
#
# With that loss and the same recipe, the MLP of the baselines is trained too. It is
# the network one would try first, and it does not carry over to new digits: it ranks
# the new images of 0 to 6 almost perfectly and the unseen digits worse than the raw
# pixels. Seven classes are too few for a fully connected layer, which sees each of
# the 64 pixels as a separate input, to learn features that serve other digits. A
# convolution applies the same small stroke detectors at every position, and the
# maximum over positions keeps whether a stroke is present, not exactly where: features
# that describe any digit.
#
# The choice itself is weak evidence: the five losses' seen MAP@R values lie within
# 0.01 to 0.02 of each other, and which one comes first changes with the seed (over
# five seeds: the soft-margin batch-hard loss four times, semi-hard once). What the
# notebook shows is the protocol, not a winner.

# %% tags=["nbval-ignore-output"]
best = max(LOSS_NAMES, key=lambda name: results[f"{name} (torch)"]["seen_map_at_r"])
print("best loss on new images of the seen classes:", best)
seed_everything(SEED)
mlp = torch_mlp().to(DEVICE)
histories[f"{best} (torch MLP)"] = train_torch(mlp, best, x_fit, y_fit, x_test, y_test, **FIT)
results[f"{best} (torch MLP)"] = scores(embed_torch(mlp, x_test), embed_torch(mlp, x_seen))
show(results)
mlp_row = results[f"{best} (torch MLP)"]
assert mlp_row["seen_map_at_r"] > 0.95 and mlp_row["map_at_r"] < raw["map_at_r"]

# %% [markdown]
# ## The best loss in Keras
#
# The chosen loss is trained again in Keras on the CNN (`keras_cnn`), with
# `tripletlab.tensorflow`'s version of the loss, `model.fit` on the same P x K batches
# (`shuffle=False`), the same cosine schedule (`CosineDecay`), and a callback computing
# the metrics after each epoch. `keras_cnn` draws its initial weights from PyTorch's
# distribution, not from the same random numbers, so the results are close, not
# equal.

# %% tags=["nbval-ignore-output"]
seed_everything(SEED)
keras_model = keras_cnn()
histories[f"{best} (keras)"] = train_keras(keras_model, best, x_fit, y_fit, x_test, y_test, **FIT)
keras_test = np.asarray(keras_model(x_test))
results[f"{best} (keras)"] = scores(keras_test, np.asarray(keras_model(x_seen)))
show(results)
keras_row, torch_row = results[f"{best} (keras)"], results[f"{best} (torch)"]
assert abs(keras_row["seen_map_at_r"] - torch_row["seen_map_at_r"]) < 0.02
assert keras_row["map_at_r"] > random_row["map_at_r"]

# %% [markdown]
# ## What the table says
#
# On new images of 0 to 6 every trained CNN, with each of the five losses and in both
# frameworks, ranks far better than the raw pixels (right column): its seen MAP@R was
# at least 0.30 higher in each of the 15 measured runs (5 seeds x 3 sets of CPU
# kernels). On the unseen digits 7, 8 and 9 the gain is smaller, and one run of one
# network is not enough to see it:
#
# - averaged over the five losses, the trained CNNs rank the unseen digits better than
#   the raw pixels, by 0.02 to 0.09 MAP@R over the 15 runs, and better than the random
#   CNN of the same seed, by 0.06 to 0.16: the training taught the network something
#   its architecture alone did not have;
# - a single network can end below the pixels: in each run, four to six of the six
#   trained networks were above them;
# - within one run the losses differ by 0.02 to 0.08 MAP@R, as much as one loss differs
#   from seed to seed, so this table does not rank the losses.
#
# P@1 cannot rise much: the raw pixels already have it near 0.99. The gain is in the
# rest of each query's $R$ nearest neighbours, which is what MAP@R and R-precision
# measure and P@1 does not.
# The MLP shows the trap Musgrave et al. warn about: a network can score almost
# perfectly on the classes it trained on and still lose to plain pixels on classes it
# has not seen, so a metric-learning result means something only on held-out classes
# and against a plain baseline.
#
# A caveat on the numbers: the CNN, its width, the learning rate, the schedule and the
# 15 epochs were picked in exploratory runs, outside this notebook, that did look at
# the MAP@R of 7, 8 and 9 (after dozens of MLP settings had failed to beat the raw
# pixels: longer training, wider and deeper MLPs, dropout, weight decay, batch norm,
# shifted and rotated images, residual MLPs started at the identity). The table is
# therefore somewhat optimistic; a clean protocol would make those choices on classes
# held out from 0 to 6. Nothing in this notebook is chosen on 7 to 9. The cell below
# checks the statements on this run's numbers, with room for the spread measured.

# %% tags=["nbval-ignore-output"]
trained = {name: r for name, r in results.items() if name.endswith(("(torch)", "(keras)"))}
per_loss = [results[f"{name} (torch)"] for name in LOSS_NAMES]
mean_map = np.mean([r["map_at_r"] for r in per_loss])
mean_rprec = np.mean([r["r_precision"] for r in per_loss])
above_raw = sum(r["map_at_r"] > raw["map_at_r"] for r in trained.values())
for name, r in trained.items():
    assert r["seen_map_at_r"] > raw["seen_map_at_r"] + 0.2, name
assert mean_map > raw["map_at_r"] and mean_rprec > raw["r_precision"]
assert mean_map > random_row["map_at_r"] + 0.03
assert above_raw >= len(trained) // 2
gain_seen = min(r["seen_map_at_r"] for r in trained.values()) - raw["seen_map_at_r"]
loss_mlp = raw["map_at_r"] - mlp_row["map_at_r"]
print(f"seen classes, new images: every trained CNN gains at least {gain_seen:.2f} MAP@R")
print(f"unseen classes, mean of the five losses: MAP@R {mean_map - raw['map_at_r']:+.2f}")
print(f"    over the raw pixels, {mean_map - random_row['map_at_r']:+.2f} over the random CNN")
print(f"unseen classes: {above_raw} of the {len(trained)} trained CNNs above the raw pixels")
print(f"unseen classes: the trained MLP is {loss_mlp:.2f} MAP@R below the raw pixels")

# %% [markdown]
# ## Training curves
#
# Loss (left) and MAP@R on the unseen classes (right) after each epoch; the dashed line
# is the raw pixels. Every loss ends lower than after the first epoch (batch-all's
# need not fall at every epoch: it averages over the triplets still active). With the
# four triplet losses (in both frameworks) the unseen-class MAP@R is above the raw
# pixels' after the first epoch already, and then moves up and down by 0.01 to 0.1
# rather than climbing: most of what carries over to 7, 8 and 9 is learned in the first
# epoch, and the epoch where training happens to stop decides much of the table above.
# The contrastive loss starts lower and climbs. The MLP stays below the raw pixels at
# every epoch.

# %% tags=["nbval-ignore-output"]
for name, history in histories.items():
    curve = history["map_at_r"]
    assert history["loss"][-1] < history["loss"][0], name
    if "MLP" in name:
        assert max(curve) < raw["map_at_r"], name
    elif name.startswith("contrastive"):
        assert curve[-1] > curve[0], name
    else:
        assert curve[0] > raw["map_at_r"], name
        assert max(curve[2:]) - min(curve[2:]) > 0.01, name
    print(
        f"{name:28s} MAP@R epoch 1 {curve[0]:.2f}, epochs 3-{EPOCHS} "
        f"{min(curve[2:]):.2f} to {max(curve[2:]):.2f}, last {curve[-1]:.2f}"
    )
fig, axes = plt.subplots(1, 2, figsize=(12.5, 3.8))
epochs = np.arange(1, EPOCHS + 1)
for name, history in histories.items():
    axes[0].plot(epochs, history["loss"], marker="o", ms=3, label=name)
    axes[1].plot(epochs, history["map_at_r"], marker="o", ms=3, label=name)
axes[1].axhline(raw["map_at_r"], color="black", ls="--", label="raw pixels")
axes[0].set(xlabel="epoch", ylabel="training loss (each loss in its own units)", yscale="log")
axes[1].set(xlabel="epoch", ylabel="MAP@R, unseen classes 7-9")
axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The unseen classes before and after training
#
# A 2-D PCA (scikit-learn) of the test embeddings of the random CNN and of the chosen
# trained PyTorch CNN, coloured by class.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
pairs = (("random CNN", random_test), (f"{best} (torch), trained", None))
for ax, (title, emb) in zip(axes, pairs, strict=True):
    emb = embed_torch(models[best], x_test) if emb is None else emb
    xy = PCA(n_components=2, random_state=0).fit_transform(emb)
    for c in np.unique(y_test):
        ax.scatter(*xy[y_test == c].T, s=8, label=f"digit {c}")
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`. All three score the same five 1-D points by
# hand, with the conventions above (the query is not its own neighbour; euclidean
# distance).

# %%
from tripletlab.exercises import check

points_ex = np.array([0.0, 0.2, 1.0, 1.4, 0.75])
classes_ex = np.array([0, 0, 1, 1, 0])
print("points:", points_ex.tolist(), " classes:", classes_ex.tolist())

# %% [markdown]
# **Exercise 1.** Rank the other four points of each query by distance and compute
# P@1 by hand (without `tripletlab.metrics`). Assign it to `p_at_1_ex`.

# %% tags=["solution"]
rankings_ex = []  # per query: 1 where the i-th nearest other point shares its class
for q, point in enumerate(points_ex):
    others = [j for j in range(len(points_ex)) if j != q]
    others.sort(key=lambda j: abs(points_ex[j] - point))
    rankings_ex.append([int(classes_ex[j] == classes_ex[q]) for j in others])
p_at_1_ex = sum(rel[0] for rel in rankings_ex) / len(rankings_ex)

# %%
check("07.p_at_1", p_at_1_ex)

# %% [markdown]
# **Exercise 2.** Compute the R-precision, with $R$ the number of other points of the
# query's class. Assign it to `r_precision_ex`.

# %% tags=["solution"]
r_ex = [int(np.sum(classes_ex == c)) - 1 for c in classes_ex]
r_precision_ex = np.mean([sum(rel[:r]) / r for rel, r in zip(rankings_ex, r_ex, strict=True)])

# %%
check("07.r_precision", r_precision_ex)

# %% [markdown]
# **Exercise 3.** Compute MAP@R. Predict first: is it above, equal to or below the
# R-precision? Assign it to `map_at_r_ex`.

# %% tags=["solution"]
map_at_r_ex = np.mean(
    [
        sum(rel[i] * sum(rel[: i + 1]) / (i + 1) for i in range(r)) / r
        for rel, r in zip(rankings_ex, r_ex, strict=True)
    ]
)

# %%
check("07.map_at_r", map_at_r_ex)
