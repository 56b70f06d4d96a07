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
# # 04 · Siamese losses: contrastive loss and Koch's verification head
#
# A siamese network runs two inputs through one network with shared weights and
# compares the two outputs. How it is trained depends on the loss. This notebook
# covers two of them: the contrastive loss of Hadsell, Chopra and LeCun (2006), which
# acts on the distance between the two embeddings, and the binary cross-entropy of
# Koch, Zemel and Salakhutdinov (2015), where a small head turns the pair into the
# probability that both inputs belong to the same class. On the way it shows a label
# convention that silently reverses the contrastive loss, and it trains Koch's head on
# pairs of handwritten digits in PyTorch and in Keras.

# %%
import math
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
from sklearn.datasets import load_digits

from tripletlab import device
from tripletlab import numpy as tl
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch
from tripletlab.data import seed_everything

SEED = 0  # tools/spread.py re-runs this notebook with other seeds
rng = seed_everything(SEED)
DEVICE = device.try_gpu()  # the PyTorch siamese network trains here
device.full_float32()  # float32 stays float32 on a GPU (no TF32)
print(device.describe())

# %% [markdown]
# ## The contrastive loss
#
# Take a pair of embeddings $x_1, x_2$, their Euclidean distance
# $D = \lVert x_1 - x_2 \rVert$, and a label $s$ that is $1$ when the two inputs are of
# the same class and $0$ when they are not. With a margin $m > 0$, the contrastive
# loss of the pair is
#
# $$L(x_1, x_2, s) = \tfrac{1}{2}\, s\, D^2
# + \tfrac{1}{2}\,(1 - s)\,\max(0,\, m - D)^2 .$$
#
# Only one of the two terms is active for a given pair. For a similar pair ($s = 1$)
# the loss is $\tfrac12 D^2$, which is zero only when the two embeddings coincide. For
# a dissimilar pair ($s = 0$) it is $\tfrac12 (m - D)^2$ while the pair is closer than
# the margin and zero once it is at least $m$ apart: pairs that are already far apart
# are left alone, and the loss spends its effort on dissimilar pairs that look alike.
# `tl.contrastive_loss` averages $L$ over the pairs of a batch (`reduction="mean"`).
#
# ## By hand, on four pairs
#
# Four pairs of 2-D points, chosen so that their distances are round numbers: two
# similar pairs and two dissimilar ones, each kind once closer than the margin $m = 1$
# and once further away.

# %%
margin = 1.0
pair_names = ["A", "B", "C", "D"]
x1 = np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 1.0], [-1.0, 0.0]])
x2 = np.array([[0.3, 0.4], [1.9, 3.2], [0.12, 1.16], [0.2, 1.6]])
same = np.array([1.0, 1.0, 0.0, 0.0])

print(f"margin m = {margin:g}")
by_hand = []
for name, p, q, s in zip(pair_names, x1, x2, same, strict=True):
    dist = math.sqrt(sum((pi - qi) ** 2 for pi, qi in zip(p, q, strict=True)))
    loss = 0.5 * s * dist**2 + 0.5 * (1 - s) * max(0.0, margin - dist) ** 2
    by_hand.append(loss)
    kind = "similar" if s == 1 else "dissimilar"
    print(f"pair {name}: {kind:<10}  D = {dist:.3f}   L = {loss:.4f}")
mean_by_hand = sum(by_hand) / len(by_hand)
print(f"mean over the four pairs:          L = {mean_by_hand:.4f}")

# %% [markdown]
# Pair B is a similar pair far apart, and it carries most of the loss; pair D is a
# dissimilar pair beyond the margin and costs nothing. The three backends give the same
# numbers, per pair (`reduction="none"`) and averaged:

# %%
per_pair = {
    "numpy": tl.contrastive_loss(x1, x2, same, margin=margin, reduction="none"),
    "torch": tl_torch.contrastive_loss(
        torch.tensor(x1), torch.tensor(x2), torch.tensor(same), margin=margin, reduction="none"
    ).numpy(),
    "tensorflow": tl_tf.contrastive_loss(
        tf.constant(x1), tf.constant(x2), tf.constant(same), margin=margin, reduction="none"
    ).numpy(),
}
for backend, losses in per_pair.items():
    print(f"{backend:<10}  per pair {np.round(losses, 4)}   mean {losses.mean():.4f}")
    assert np.allclose(losses, by_hand, rtol=1e-12, atol=1e-12)
assert np.isclose(tl.contrastive_loss(x1, x2, same, margin=margin), mean_by_hand, rtol=1e-12)
assert by_hand[1] > 0.5 * sum(by_hand) and by_hand[3] == 0.0  # B carries most, D nothing

# %% [markdown]
# ## The label-convention trap
#
# Hadsell, Chopra and LeCun write the loss with a label $Y$ that is $0$ for a
# **similar** pair and $1$ for a dissimilar one:
#
# $$L = (1 - Y)\,\tfrac12 D^2 + Y\,\tfrac12 \max(0,\, m - D)^2 .$$
#
# tripletlab's `same` is the other way round: $1$ for the same class, which is how a
# label reads when pairs are built from class ids (`same = label_1 == label_2`). The
# two conventions are related by $s = 1 - Y$. Passing the paper's $Y$ as `same`
# raises no error, since both are vectors of zeros and ones, but it swaps the two
# branches of the loss.
#
# What the swap does to training is visible in the gradient. Write each pair as
# $x_2 = x_1 + D\,u$ with $u$ a fixed unit vector, and let PyTorch's autograd
# differentiate the loss with respect to $D$. A gradient step moves $D$ against the
# sign of $\partial L / \partial D$: a positive derivative pulls the pair together, a
# negative one pushes it apart.

# %%
hadsell_y = 1.0 - same  # the paper's label: 0 for similar, 1 for dissimilar
print("same      =", same)
print("Hadsell Y =", hadsell_y)


def loss_and_distance_gradient(pair_labels):
    """Per-pair contrastive loss of the four pairs and its derivative with respect to D."""
    offset = torch.tensor(x2 - x1)
    dist = torch.linalg.vector_norm(offset, dim=1).detach().requires_grad_(True)
    unit = offset / dist.detach()[:, None]
    moved = torch.tensor(x1) + dist[:, None] * unit  # x2 again, as a function of D
    losses = tl_torch.contrastive_loss(
        torch.tensor(x1), moved, torch.tensor(pair_labels), margin=margin, reduction="none"
    )
    (grad,) = torch.autograd.grad(losses.sum(), dist)
    return losses.detach().numpy(), grad.numpy(), dist.detach().numpy()


def step_direction(g):
    return "together" if g > 0 else "apart" if g < 0 else "not at all"


loss_right, grad_right, dists = loss_and_distance_gradient(same)
loss_wrong, grad_wrong, _ = loss_and_distance_gradient(hadsell_y)
print()
print("pair  kind          D    dL/dD with same   dL/dD with Y   a step with Y moves the pair")
for k, name in enumerate(pair_names):
    kind = "similar" if same[k] == 1 else "dissimilar"
    print(
        f"{name:<4}  {kind:<10}  {dists[k]:.2f}   {grad_right[k]:+15.3f}   {grad_wrong[k]:+12.3f}"
        f"   {step_direction(grad_wrong[k])}"
    )
print()
print(f"mean loss with same = {loss_right.mean():.4f},  with same = Y: {loss_wrong.mean():.4f}")

# %% [markdown]
# With the correct labels every derivative points the right way: the similar pairs A
# and B have a positive derivative (pulled together), the close dissimilar pair C a
# negative one (pushed apart), and D, beyond the margin, none. With $Y$ passed as
# `same` the close similar pair A is pushed apart, both dissimilar pairs are pulled
# together, and the far similar pair B, the one that most needs to move, is ignored.
# The loss value gives no warning: it is a plausible number of the same size, and
# training drives it down just as readily, towards an embedding that is wrong.

# %%
similar, dissimilar = same == 1, same == 0
assert np.all(grad_right[similar] > 0) and grad_right[2] < 0 and grad_right[3] == 0
assert grad_wrong[0] < 0 and grad_wrong[1] == 0 and np.all(grad_wrong[dissimilar] > 0)
assert not np.isclose(loss_right.mean(), loss_wrong.mean())

# %% [markdown]
# The fix is one line: convert the paper's label before calling the loss.

# %%
fixed = tl.contrastive_loss(x1, x2, 1.0 - hadsell_y, margin=margin, reduction="none")
print("same = 1 - Y gives the per-pair losses", np.round(fixed, 4))
print("equal to the losses with same:", np.allclose(fixed, loss_right, rtol=1e-12))
assert np.allclose(fixed, loss_right, rtol=1e-12)

# %% [markdown]
# ## The two branches, plotted
#
# To see each branch as a function of $D$, build pairs whose distances lie on a grid:
# $x_1 = 0$ and $x_2 = D\,u$ with $u = (0.6, 0.8)$, a unit vector. The loss of the
# grid with `same` all ones is the similar branch, with `same` all zeros the dissimilar
# branch; `reduction="none"` keeps one value per pair.

# %%
grid = np.linspace(0.0, 2.0, 201)
direction = np.array([0.6, 0.8])
origins, points = np.zeros((grid.size, 2)), grid[:, None] * direction
similar_branch = tl.contrastive_loss(
    origins, points, np.ones(grid.size), margin=margin, reduction="none"
)
dissimilar_branch = tl.contrastive_loss(
    origins, points, np.zeros(grid.size), margin=margin, reduction="none"
)
assert np.allclose(similar_branch, 0.5 * grid**2, rtol=1e-12, atol=1e-15)
assert np.allclose(dissimilar_branch, 0.5 * np.maximum(0.0, margin - grid) ** 2, atol=1e-15)
assert np.all(dissimilar_branch[grid > margin] == 0.0)
for d in (0.0, 0.5, 1.0, 2.0):
    k = int(np.argmin(np.abs(grid - d)))
    loss_s, loss_d = similar_branch[k], dissimilar_branch[k]
    print(f"D = {grid[k]:.1f}:  similar {loss_s:.3f}   dissimilar {loss_d:.3f}")
half = int(np.argmin(np.abs(grid - margin / 2)))
assert np.isclose(similar_branch[half], dissimilar_branch[half], rtol=1e-12)
assert margin == 1.0 and np.isclose(similar_branch[half], 0.125)  # (m/2)^2 / 2
assert grid[0] == 0.0 and dissimilar_branch.max() == dissimilar_branch[0] == 0.5  # m^2 / 2

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(grid, similar_branch, label="similar pair (same = 1): $D^2/2$")
ax.plot(grid, dissimilar_branch, label="dissimilar pair (same = 0): $\\max(0, m - D)^2/2$")
ax.axvline(margin, color="grey", ls="--", lw=1, label=f"margin m = {margin:g}")
ax.set(xlabel="distance D", ylabel="loss", title="the two branches of the contrastive loss")
ax.legend(loc="upper center")
fig.tight_layout()
plt.show()

# %% [markdown]
# The branches cross at $D = m/2$, where both are $0.125$ for $m = 1$. The similar
# branch keeps growing with $D$; the dissimilar branch is largest, $0.5$, for two
# identical embeddings and is exactly zero from the margin on. The margin is what
# keeps the loss from pushing every dissimilar pair apart without end.
#
# ## Koch's verification head
#
# Koch et al. treat one-shot recognition as verification: given two images, are they
# of the same class? Both images go through the same base network, giving embeddings
# $h_1, h_2$; the head computes a learned, weighted L1 distance and squashes it into
# a probability,
#
# $$p(\text{same}) = \sigma\Bigl(\sum_j \alpha_j\, \lvert h_{1,j} - h_{2,j} \rvert + b
# \Bigr),$$
#
# and the whole network is trained with binary cross-entropy on $s$ (the paper adds
# weight regularization, left out here). The head is `tl_torch.SiameseHead` in PyTorch
# and `tl_tf.SiameseHead` in Keras; both return the logit (the argument of $\sigma$),
# so the losses are the "with logits" versions, which apply $\sigma$ inside, stably.
#
# The point of verification is that it should work for classes never seen in training.
# The data are scikit-learn's bundled handwritten digits (8x8 images, no download).
# The network is trained on pairs of digits 0 to 6 only; the classes 7, 8 and 9 are
# held out, and the accuracy that matters is on pairs drawn from them. A quarter of
# the images of 0 to 6 are also kept out of training, to measure how well the network
# does on the classes it was trained on, with images it has not seen.

# %%
digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)  # (n, 64), pixels scaled to [0, 1]
labels = digits.target
data_rng = np.random.default_rng(SEED)

seen = data_rng.permutation(np.flatnonzero(labels <= 6))
n_fit = 3 * len(seen) // 4
fit_idx, new_idx = np.sort(seen[:n_fit]), np.sort(seen[n_fit:])
unseen_idx = np.flatnonzero(labels >= 7)
print("image shape:", digits.images.shape[1:], " classes:", np.unique(labels).tolist())
print("training images, classes", np.unique(labels[fit_idx]).tolist(), ":", len(fit_idx))
print("new images of the same classes:", len(new_idx))
print("held-out classes", np.unique(labels[unseen_idx]).tolist(), ":", len(unseen_idx))
assert set(labels[fit_idx]).isdisjoint(labels[unseen_idx])

# %% [markdown]
# A pair is two images; half of the pairs are of the same class and half of
# different classes, drawn with a seeded generator.


# %%
def make_pairs(indices, n_pairs, gen):
    """``n_pairs`` balanced pairs of the images ``indices``: (first, second, same)."""
    classes = np.unique(labels[indices])
    by_class = {c: indices[labels[indices] == c] for c in classes}
    same = (np.arange(n_pairs) < n_pairs // 2).astype(np.float32)
    first, second = np.empty(n_pairs, dtype=int), np.empty(n_pairs, dtype=int)
    for k in range(n_pairs):
        if same[k]:
            c = gen.choice(classes)
            first[k], second[k] = gen.choice(by_class[c], size=2, replace=False)
        else:
            c1, c2 = gen.choice(classes, size=2, replace=False)
            first[k], second[k] = gen.choice(by_class[c1]), gen.choice(by_class[c2])
    order = gen.permutation(n_pairs)
    return images[first[order]], images[second[order]], same[order]


train_pairs = make_pairs(fit_idx, 2000, data_rng)
test_pairs = {
    "seen classes, new images": make_pairs(new_idx, 2000, data_rng),
    "held-out classes 7-9": make_pairs(unseen_idx, 2000, data_rng),
}
for name, (_, _, s) in {"training": train_pairs, **test_pairs}.items():
    print(f"{name:<25} {len(s)} pairs, fraction of same-class pairs {s.mean():.2f}")

# %% [markdown]
# ### PyTorch
#
# The base network is a small MLP, $64 \to 64 \to 32$, applied to both images of a
# pair; the head is `tl_torch.SiameseHead(32)`. Training is SGD with momentum, a few
# passes over the training pairs in the order `make_pairs` shuffled them. A pair counts
# as "same" when $\sigma(\text{logit}) > 0.5$, that is, when the logit is positive.
#
# The networks train on the device named at the top (the GPU when there is one). Their
# accuracies come out of float32 training, which rounds differently on another kind of
# CPU, with another number of threads, or on a GPU, and the third decimal moves with
# it. The cells that train therefore print their accuracies without the tests
# comparing the digits, and assert what the text concludes, with margins measured over
# 5 seeds and 4 kinds of CPU kernels (`tools/spread.py`; the results are in
# `benchmarks/spread/`).
#
# `train_torch` has a switch, `train_base`, used further down; for now it trains the
# whole network, base and head together, as Koch et al. do.

# %% tags=["nbval-ignore-output"]
epochs, batch_size, learning_rate = 4, 32, 0.02
a_train, b_train, same_train = train_pairs
print(f"{epochs} epochs over {len(same_train)} pairs, batches of {batch_size}")


def accuracy(logits, same):
    return float(np.mean((logits > 0) == (same == 1)))


def train_torch(train_base):
    """Train the siamese network (or only its head); return its logits on the test pairs."""
    seed_everything(SEED)
    base = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    head = tl_torch.SiameseHead(32)
    base, head = base.to(DEVICE), head.to(DEVICE)
    base.requires_grad_(train_base)
    parameters = [*head.parameters(), *(base.parameters() if train_base else [])]
    optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9)
    bce = torch.nn.BCEWithLogitsLoss()

    def pair_logits(a, b):
        return head(base(torch.from_numpy(a).to(DEVICE)), base(torch.from_numpy(b).to(DEVICE)))

    for _ in range(epochs):
        for start in range(0, len(same_train), batch_size):
            batch = slice(start, start + batch_size)
            targets = torch.from_numpy(same_train[batch]).to(DEVICE)
            loss = bce(pair_logits(a_train[batch], b_train[batch]), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return {name: pair_logits(a, b).cpu().numpy() for name, (a, b, _) in test_pairs.items()}


logits = {("PyTorch", "base and head"): train_torch(train_base=True)}
for name, (_, _, s) in test_pairs.items():
    print(
        f"PyTorch, {name:<25} accuracy {accuracy(logits['PyTorch', 'base and head'][name], s):.3f}"
    )
    assert accuracy(logits["PyTorch", "base and head"][name], s) > 0.5  # better than a coin

# %% [markdown]
# ### Keras
#
# The same design as a functional model: two inputs, one shared base, and
# `tl_tf.SiameseHead()` on the two embeddings. `fit` gets `shuffle=False`, so it sees
# the pairs in the same order as PyTorch did, and TensorFlow's deterministic ops are
# switched on. Each framework has its own default initialization, so the two
# accuracies are not expected to agree exactly.

# %% tags=["nbval-ignore-output"]
tf.config.experimental.enable_op_determinism()


def train_keras(train_base):
    """Train the siamese network (or only its head); return its logits on the test pairs."""
    seed_everything(SEED)
    with tf.device(device.tf_device()):
        base = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32)]
        )
        first, second = keras.Input((64,)), keras.Input((64,))
        model = keras.Model([first, second], tl_tf.SiameseHead()([base(first), base(second)]))
        base.trainable = train_base
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )
        model.fit(
            [a_train, b_train],
            same_train,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=False,
            verbose=0,
        )
        return {name: model([a, b]).numpy() for name, (a, b, _) in test_pairs.items()}


logits["Keras", "base and head"] = train_keras(train_base=True)
for name, (_, _, s) in test_pairs.items():
    print(
        f"Keras,   {name:<25} accuracy {accuracy(logits['Keras', 'base and head'][name], s):.3f}"
    )
    assert accuracy(logits["Keras", "base and head"][name], s) > 0.5  # better than a coin

# %% [markdown]
# ### Seen classes and held-out classes
#
# A classifier that guesses "same" or "different" at random is right half the time.
# On $n$ test pairs its accuracy has standard deviation $\sqrt{0.25 / n}$; the table
# says how many of those standard deviations each accuracy is above $0.5$. Its last
# column is the fraction of different-class pairs that the network calls "same".

# %%
seen_set, held_out = test_pairs  # the names of the two sets of test pairs
n_test = len(test_pairs[held_out][2])
chance_sd = math.sqrt(0.25 / n_test)
print(f"coin flip on {n_test} pairs: accuracy 0.5, standard deviation {chance_sd:.3f}")
acc, false_same = {}, {}


def report(runs):
    print()
    print(
        "framework  trained        test pairs                accuracy    above chance"
        "  different called same"
    )
    for run in runs:
        for name, (_, _, s) in test_pairs.items():
            acc[run, name] = accuracy(logits[run][name], s)
            false_same[run, name] = float(np.mean(logits[run][name][s == 0] > 0))
            z = (acc[run, name] - 0.5) / chance_sd
            print(
                f"{run[0]:<9}  {run[1]:<13}  {name:<24}  {acc[run, name]:8.3f}  {z:11.0f} sd"
                f"  {false_same[run, name]:22.3f}"
            )


# %% tags=["nbval-ignore-output"]
full = [("PyTorch", "base and head"), ("Keras", "base and head")]
report(full)
for run in full:
    assert acc[run, seen_set] > acc[run, held_out] + 0.2
    assert false_same[run, held_out] > 2 * false_same[run, seen_set]
    # half the pairs are different ones: those called "same" are most of the held-out errors
    assert 0.5 * false_same[run, held_out] > 0.5 * (1 - acc[run, held_out])

# %% [markdown]
# On new images of the seven classes it was trained on, the network decides "same or
# different" correctly for most pairs, in both frameworks. On the three held-out
# classes it does much worse, and the errors are mostly of one kind: pairs of different
# held-out digits called "same".
#
# ### Training the head only
#
# A likely reason is that the base network has learned features that tell the seven
# training digits apart, and little else: digits of other classes are mapped onto
# those features, where different digits can end up close together. One way to test
# this is to leave the base at its random initial weights, which come from the same
# seed as before, and train only the head, with the same data and optimizer.

# %% tags=["nbval-ignore-output"]
logits["PyTorch", "head only"] = train_torch(train_base=False)
logits["Keras", "head only"] = train_keras(train_base=False)
head_only = [("PyTorch", "head only"), ("Keras", "head only")]
report(full + head_only)
for full_run, run in zip(full, head_only, strict=True):
    unseen = acc[run, held_out]
    assert unseen > 0.55 and (unseen - 0.5) / chance_sd > 4, run  # clearly above chance
    assert unseen > acc[full_run, held_out]  # better than the full training ...
    assert acc[run, seen_set] < acc[full_run, seen_set]  # ... and worse on the seen classes

# %% [markdown]
# With the base left random, both frameworks verify pairs of the held-out digits
# clearly better than chance, and better than the fully trained networks; on the seen
# classes they do worse. Training the base on seven classes made it better at those
# seven and worse at the others. Koch et al. trained on hundreds of character classes,
# enough for the base network to learn features that carry over to new classes. With
# the seven digit classes here, a learned weighted L1 distance on random features
# transferred better than one on trained features.
#
# ## Designing a siamese system
#
# Every siamese (or triplet) system makes three choices. The table lists the options
# and where the course computes them.
#
# | design axis | option | where in the course |
# |---|---|---|
# | base network | an MLP shared by both branches | 04 (here); trained end to end: 07 |
# | distance | L2 (Euclidean) | 01 `01_cosine_from_l2`; matrices: 02 `02_similarity_matrices` |
# | | L1 | 02 `02_similarity_matrices`, `pairwise_distances(metric="l1")` |
# | | weighted L1 | 04 (here): Koch's head, `SiameseHead` |
# | | cosine | 01 `01_cosine_from_l2`; matrices: 02 `02_similarity_matrices` |
# | loss | contrastive | 04 (here): `contrastive_loss` |
# | | triplet | 03 `03_triplet_losses`; mined within the batch: 05 `05_online_mining` |
# | | cross-entropy | 04 (here): `SiameseHead` with binary cross-entropy |
#
# Notebook 07, later in the course, trains an embedding end to end.
#
# ## Summary
#
# - The contrastive loss is $\tfrac12 s D^2 + \tfrac12 (1 - s) \max(0, m - D)^2$ with
#   $D$ the Euclidean distance: similar pairs are pulled together, dissimilar pairs
#   pushed apart until they are $m$ apart. The hand computation and the three backends
#   agree.
# - tripletlab's `same` is $1$ for the same class; Hadsell et al.'s $Y$ is $0$ for
#   similar pairs. Passing $Y$ as `same` reverses the gradients without any error.
#   Use `same = 1 - Y`.
# - Koch's head is a learned, weighted L1 distance followed by a sigmoid, trained with
#   binary cross-entropy. Trained with its base on digits 0 to 6, it verifies new
#   images of those digits well and pairs of the held-out digits 7 to 9 much worse.
#   With the base left random, the held-out pairs come out clearly above chance and
#   better than with a trained base: trained on seven classes, the base did not learn
#   features that carry over to new ones.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`. Exercises 1 and 3 use the pair below, a
# pair of **different** classes, with the margin $m = 1$.

# %%
from tripletlab.exercises import check

x1_ex, x2_ex = np.array([1.0, 1.0]), np.array([1.36, 1.48])
print("x1 =", x1_ex, " x2 =", x2_ex, " same = 0, margin = 1")

# %% [markdown]
# **Exercise 1 (by hand).** Compute the contrastive loss of this pair with plain
# arithmetic (no `tl.contrastive_loss`) and assign it to `pair_loss_ex`.

# %% tags=["solution"]
dist_ex = math.sqrt(sum((u - v) ** 2 for u, v in zip(x1_ex, x2_ex, strict=True)))
pair_loss_ex = 0.5 * max(0.0, 1.0 - dist_ex) ** 2

# %%
check("04.pair_loss", pair_loss_ex)

# %% [markdown]
# **Exercise 2 (derive).** For a dissimilar pair the loss is
# $\tfrac12 \max(0, m - D)^2$. Derive its derivative with respect to the distance $D$
# and evaluate it at $D = 0.6$, $m = 1$; assign it to `grad_ex`. What does its sign
# tell the optimizer to do with $D$?

# %% tags=["solution"]
# for D < m: d/dD [ (m - D)^2 / 2 ] = (m - D) * (-1); negative, so a step down the
# gradient increases D: the pair is pushed apart
grad_ex = -(1.0 - 0.6)

# %%
check("04.gradient", grad_ex)

# %% [markdown]
# **Exercise 3 (predict, then check).** Someone passes the paper's label of the pair
# above, $Y = 1$, as `same`. Predict the loss the package then reports, check your
# prediction with `tl.contrastive_loss`, and assign it to `swapped_loss_ex`.

# %% tags=["solution"]
swapped_loss_ex = float(tl.contrastive_loss(x1_ex[None], x2_ex[None], np.array([1.0])))

# %%
check("04.swapped", swapped_loss_ex)
