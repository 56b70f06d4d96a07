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
# # 01 · Cosine distance from squared L2 distance
#
# A triplet loss compares a distance $d(a, p)$ between an anchor and a positive with a
# distance $d(a, n)$ to a negative. The two distances people reach for are the squared
# Euclidean (L2) distance $\lVert a - p \rVert^2$ and the cosine distance
# $1 - \cos(a, p)$. They are closely related, and the relation has a factor of 2 that
# is easy to lose. This notebook derives it, checks it with numbers, shows what goes
# wrong without the 2, and turns it into a rule for converting a triplet margin.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import matplotlib.pyplot as plt
import numpy as np
import torch

# isort: split
import tensorflow as tf

from tripletlab import device, plot
from tripletlab import numpy as tl
from tripletlab.data import seed_everything

rng = seed_everything(0)
print(device.describe())

# %% [markdown]
# ## Two definitions
#
# For vectors $a, p \in \mathbb{R}^D$ with norms $\lVert a \rVert, \lVert p \rVert$:
#
# $$\cos(a, p) = \frac{a \cdot p}{\lVert a \rVert\,\lVert p \rVert} \in [-1, 1],
# \qquad d_{\cos}(a, p) = 1 - \cos(a, p) \in [0, 2].$$
#
# The cosine only sees the angle between $a$ and $p$; the L2 distance sees their
# lengths too.
#
# ## The derivation, one step at a time
#
# Expand the squared distance:
#
# $$\lVert a - p \rVert^2 = \lVert a \rVert^2 + \lVert p \rVert^2 - 2\, a \cdot p.$$
#
# Replace the dot product by the cosine, $a \cdot p = \lVert a \rVert \lVert p \rVert
# \cos(a, p)$:
#
# $$\lVert a - p \rVert^2 = \lVert a \rVert^2 + \lVert p \rVert^2
# - 2 \lVert a \rVert \lVert p \rVert \cos(a, p).$$
#
# Complete the square, $\lVert a \rVert^2 + \lVert p \rVert^2 = (\lVert a \rVert -
# \lVert p \rVert)^2 + 2 \lVert a \rVert \lVert p \rVert$:
#
# $$\lVert a - p \rVert^2 = (\lVert a \rVert - \lVert p \rVert)^2
# + 2 \lVert a \rVert \lVert p \rVert \bigl(1 - \cos(a, p)\bigr).$$
#
# So the identity is
#
# $$\boxed{\lVert a - p \rVert^2 - (\lVert a \rVert - \lVert p \rVert)^2
# = 2\,\lVert a \rVert\,\lVert p \rVert\,\bigl(1 - \cos(a, p)\bigr)}$$
#
# The squared distance is a length term, which is zero when the norms are equal, plus
# an angle term, which is the cosine distance scaled by $2 \lVert a \rVert
# \lVert p \rVert$.

# %% [markdown]
# ## Checking it on one pair, by hand
#
# Take $a = [1, 2, 3]$ and $p = [1, 2, 3.5]$ and compute each piece with plain sums.

# %%
a = np.array([1.0, 2.0, 3.0])
p = np.array([1.0, 2.0, 3.5])

squared_l2 = sum((ai - pi) ** 2 for ai, pi in zip(a, p, strict=True))
norm_a = sum(ai * ai for ai in a) ** 0.5
norm_p = sum(pi * pi for pi in p) ** 0.5
cos_ap = sum(ai * pi for ai, pi in zip(a, p, strict=True)) / (norm_a * norm_p)

lhs = squared_l2 - (norm_a - norm_p) ** 2
rhs = 2 * norm_a * norm_p * (1 - cos_ap)
print(f"||a - p||^2                   = {squared_l2:.6f}")
print(f"(||a|| - ||p||)^2             = {(norm_a - norm_p) ** 2:.6f}")
print(f"left side                     = {lhs:.6f}")
print(f"2 ||a|| ||p|| (1 - cos(a, p)) = {rhs:.6f}")
assert np.isclose(lhs, rhs, rtol=1e-12)

# %% [markdown]
# The package computes the cosine distance the same way (`tl.cosine_distance`); on
# 1,000 random pairs of different lengths the identity holds to rounding error:

# %%
A = rng.normal(size=(1000, 16)) * rng.uniform(0.1, 10, size=(1000, 1))
P = rng.normal(size=(1000, 16)) * rng.uniform(0.1, 10, size=(1000, 1))
norms_a, norms_p = np.linalg.norm(A, axis=1), np.linalg.norm(P, axis=1)
lhs_all = np.sum((A - P) ** 2, axis=1) - (norms_a - norms_p) ** 2
rhs_all = 2 * norms_a * norms_p * tl.cosine_distance(A, P)
relative_error = np.max(np.abs(lhs_all - rhs_all) / np.abs(rhs_all))
print(f"largest relative error over 1000 pairs: below 1e-10: {relative_error < 1e-10}")
assert relative_error < 1e-10

# %% [markdown]
# ## Without the factor 2 it is wrong
#
# A well-known forum answer on using cosine similarity in a triplet loss states the
# relation as
#
# $$\bigl[1 - \cos(a, p)\bigr]\,\lVert a \rVert\,\lVert p \rVert \overset{?}{=}
# \lVert a - p \rVert^2 - (\lVert a \rVert - \lVert p \rVert)^2 ,$$
#
# which drops the 2. On the pair above, the two sides of that form are:

# %%
without_two = (1 - cos_ap) * norm_a * norm_p
print(f"[1 - cos] ||a|| ||p||          = {without_two:.6f}")
print(f"||a - p||^2 - (||a|| - ||p||)^2 = {lhs:.6f}")
print(f"ratio                          = {lhs / without_two:.6f}")
assert not np.isclose(without_two, lhs)
assert np.isclose(lhs / without_two, 2.0, rtol=1e-12)

# %% [markdown]
# The right side is exactly twice the left, for this pair and for every pair (the
# ratio is $2$ by the derivation). The intuition the answer gives, that cosine distance
# and squared L2 distance agree when the norms are equal, survives, but only with the
# 2 in place.
#
# ## Unit vectors: $\lVert a - p \rVert^2 = 2\,(1 - \cos(a, p))$
#
# When $\lVert a \rVert = \lVert p \rVert = 1$ the length term vanishes and the
# identity becomes
#
# $$\lVert a - p \rVert^2 = 2\,\bigl(1 - \cos(a, p)\bigr) = 2\, d_{\cos}(a, p).$$
#
# Embedding networks often end with an L2 normalization, so this is the common case.
# For a whole batch: the squared-L2 distance matrix of normalized rows is twice their
# cosine distance matrix.

# %%
X = rng.normal(size=(8, 5))
U = tl.l2_normalize(X)
D_sq = tl.pairwise_distances(U, metric="sqeuclidean")
D_cos = tl.pairwise_distances(U, metric="cosine")
print("max |D_sq - 2 D_cos| below 1e-12:", np.max(np.abs(D_sq - 2 * D_cos)) < 1e-12)
assert np.allclose(D_sq, 2 * D_cos, atol=1e-12)
raw_holds = np.allclose(
    tl.pairwise_distances(X, metric="sqeuclidean"), 2 * tl.pairwise_distances(X, metric="cosine")
)
print("the same identity on the raw rows:", raw_holds)
assert not raw_holds

# %% [markdown]
# ## Converting a triplet margin
#
# The triplet loss with squared L2 distance and margin $m$ is
# $L_{2}(a, p, n) = \max\bigl(\lVert a - p \rVert^2 - \lVert a - n \rVert^2 + m,\ 0\bigr)$.
# For unit vectors, substitute the identity:
#
# $$L_{2} = \max\bigl(2\,d_{\cos}(a, p) - 2\,d_{\cos}(a, n) + m,\ 0\bigr)
# = 2\,\max\bigl(d_{\cos}(a, p) - d_{\cos}(a, n) + \tfrac{m}{2},\ 0\bigr)
# = 2\,L_{\cos}^{(m/2)}.$$
#
# So **a margin $m$ on squared L2 distance of unit vectors is the margin $m/2$ on
# cosine distance**: the two losses differ by a factor 2, and the same triplets are
# active (have a positive loss). With the unconverted margin $m$ on cosine distance
# the active triplets change.
#
# Check it on 20,000 random triplets of unit vectors in 16 dimensions, with $m = 0.4$:


# %%
def triplet_hinge(d_ap, d_an, margin):
    """max(d_ap - d_an + margin, 0), one entry per triplet."""
    return np.maximum(d_ap - d_an + margin, 0.0)


n_triplets, margin = 20_000, 0.4
anchors, positives, negatives = (
    tl.l2_normalize(rng.normal(size=(n_triplets, 16))) for _ in range(3)
)
loss_sq = triplet_hinge(
    np.sum((anchors - positives) ** 2, axis=1),
    np.sum((anchors - negatives) ** 2, axis=1),
    margin,
)
d_ap, d_an = tl.cosine_distance(anchors, positives), tl.cosine_distance(anchors, negatives)
loss_cos_half = triplet_hinge(d_ap, d_an, margin / 2)
loss_cos_same = triplet_hinge(d_ap, d_an, margin)

active_sq, active_half, active_same = loss_sq > 0, loss_cos_half > 0, loss_cos_same > 0
print(f"active triplets, squared L2, margin {margin}:      {active_sq.sum()}")
print(f"active triplets, cosine, margin {margin / 2} (m/2):   {active_half.sum()}")
print(f"active triplets, cosine, margin {margin} (unconverted): {active_same.sum()}")
print("same active set with m/2:", np.array_equal(active_sq, active_half))
factor_two = np.max(np.abs(loss_sq - 2 * loss_cos_half)) < 1e-12
print("max |L_sq - 2 L_cos(m/2)| below 1e-12:", factor_two)
assert np.array_equal(active_sq, active_half)
assert factor_two
assert active_same.sum() > active_sq.sum()

# %% [markdown]
# With the converted margin the active sets are identical and the losses differ by
# exactly the factor 2. Keeping $m$ unchanged makes the cosine loss stricter: more
# triplets are active, because a margin $m$ in cosine units is a margin $2m$ in
# squared-L2 units.
#
# This holds for the *squared* L2 distance only. The mining losses of notebook 05
# default to the euclidean distance itself (`metric="euclidean"`), as PyTorch's
# `TripletMarginLoss` and pytorch-metric-learning do, while `triplet_loss` defaults to
# the squared one, as FaceNet writes its loss: the same margin 0.2 means different
# things in the two. With $d = \sqrt{2\,d_{\cos}}$, the condition
# $d_{ap} - d_{an} + m > 0$ is not a constant shift of the cosine distances, so no
# cosine margin selects the same triplets, even on unit vectors. Euclidean margin 0.2,
# against every cosine margin from 0 to 1 in steps of 0.001:

# %%
euclidean_margin = 0.2
d_ap_l2 = np.linalg.norm(anchors - positives, axis=1)
d_an_l2 = np.linalg.norm(anchors - negatives, axis=1)
active_l2 = triplet_hinge(d_ap_l2, d_an_l2, euclidean_margin) > 0
cosine_margins = np.arange(1001) / 1000
disagreements = np.array(
    [np.sum(active_l2 != (triplet_hinge(d_ap, d_an, m) > 0)) for m in cosine_margins]
)
best = int(disagreements.argmin())
print(f"active triplets, euclidean, margin {euclidean_margin}: {active_l2.sum()}")
print(
    f"best constant cosine margin {cosine_margins[best]:.3f}: "
    f"{disagreements[best]} of {n_triplets} triplets still disagree"
)
assert disagreements.min() > 0

# %% [markdown]
# For vectors that are *not* normalized no margin converts: the length term
# $(\lVert a \rVert - \lVert p \rVert)^2$ enters the squared L2 loss and not the
# cosine loss. Scale each vector above by a random length and count again, at $m/2$
# and then at every cosine margin from 0 to 2 (the whole range of the cosine
# distance):

# %%
lengths = rng.uniform(0.5, 2.0, size=(3, n_triplets, 1))
A_raw, P_raw, N_raw = anchors * lengths[0], positives * lengths[1], negatives * lengths[2]
loss_sq_raw = triplet_hinge(
    np.sum((A_raw - P_raw) ** 2, axis=1), np.sum((A_raw - N_raw) ** 2, axis=1), margin
)
active_sq_raw = loss_sq_raw > 0
disagree = np.sum(active_sq_raw != active_half)  # cosine ignores lengths: active_half again
print(f"triplets where squared L2 and cosine (m/2) disagree: {disagree} of {n_triplets}")
assert disagree > 0
# not only m/2: every cosine margin from 0 to 2 disagrees with the squared L2 loss somewhere
cosine_margins = np.linspace(0.0, 2.0, 201)
fewest = min(
    np.sum(active_sq_raw != (triplet_hinge(d_ap, d_an, m_cos) > 0)) for m_cos in cosine_margins
)
print(f"fewest disagreements over 201 cosine margins from 0 to 2: {fewest}")
assert fewest > 0

# %% [markdown]
# ## TensorFlow's `cosine_distance` assumes unit vectors
#
# The same forum answer recommends TensorFlow's cosine distance in place of
# $\lVert \cdot \rVert^2$, under the name `tf.losses.cosineDistance`. That is the
# TensorFlow.js spelling; TensorFlow for Python has no such function (checked below),
# and its cosine distance lives on as `tf.compat.v1.losses.cosine_distance`. It computes
# $1 - \sum_k a_k p_k$: it never divides by the norms, so it is a cosine distance only
# when both inputs already have unit norm. On the raw pair above:

# %%
assert not hasattr(tf.losses, "cosineDistance") and not hasattr(tf.losses, "cosine_distance")
a_tf, p_tf = tf.constant(a), tf.constant(p)
tf_raw = float(tf.compat.v1.losses.cosine_distance(a_tf, p_tf, axis=0))
tf_unit = float(
    tf.compat.v1.losses.cosine_distance(
        tf.math.l2_normalize(a_tf), tf.math.l2_normalize(p_tf), axis=0
    )
)
print(f"tf.compat.v1.losses.cosine_distance on raw vectors:  {tf_raw:.4f}")
print(f"tf.compat.v1.losses.cosine_distance on unit vectors: {tf_unit:.4f}")
print(f"1 - cos(a, p):                                       {1 - cos_ap:.4f}")
assert tf_raw == 1 - a @ p == -14.5 and not 0.0 <= tf_raw <= 2.0
assert np.isclose(tf_unit, 1 - cos_ap, atol=1e-6)

# %% [markdown]
# $1 - a \cdot p = 1 - 15.5 = -14.5$ is not a distance: a loss built on it rewards
# making vectors longer. Normalize first, or use `tripletlab.tensorflow.cosine_distance`,
# which divides by the norms (and gives a finite gradient at a zero vector). Notebook 06
# compares every cosine function of both frameworks side by side.
#
# The same computation in PyTorch and TensorFlow, through the package, gives the same
# cosine distance as the hand computation:

# %%
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch

by_backend = {
    "numpy": float(tl.cosine_distance(a, p)),
    "torch": float(tl_torch.cosine_distance(torch.tensor(a), torch.tensor(p))),
    "tensorflow": float(tl_tf.cosine_distance(tf.constant(a), tf.constant(p))),
}
for name, value in by_backend.items():
    print(f"{name:<11} 1 - cos(a, p) = {value:.6f}")
    assert np.isclose(value, 1 - cos_ap, atol=1e-12)

# %% [markdown]
# ## A picture: L2 against cosine distance
#
# Each point is one random pair. For unit vectors (left) every pair lies on the line
# $\lVert a - p \rVert^2 = 2\,d_{\cos}$. Give the same directions random lengths
# (right) and the cosine distances stay where they were while the squared distances
# move off the line: the L2 distance also measures the lengths.

# %%
unit_a = tl.l2_normalize(rng.normal(size=(400, 8)))
unit_p = tl.l2_normalize(rng.normal(size=(400, 8)))
pairs_a = unit_a * rng.uniform(0.5, 1.5, size=(400, 1))  # same directions, random lengths
pairs_p = unit_p * rng.uniform(0.5, 1.5, size=(400, 1))

fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
plot.distance_scatter(
    tl.cosine_distance(unit_a, unit_p),
    np.sum((unit_a - unit_p) ** 2, axis=1),
    ax=axes[0],
    xlabel="cosine distance 1 - cos(a, p)",
    ylabel="squared L2 distance",
    title="unit vectors",
    curve=lambda c: 2 * c,
)
plot.distance_scatter(
    tl.cosine_distance(pairs_a, pairs_p),
    np.sum((pairs_a - pairs_p) ** 2, axis=1),
    ax=axes[1],
    xlabel="cosine distance 1 - cos(a, p)",
    ylabel="squared L2 distance",
    title="the same directions, lengths in [0.5, 1.5]",
    curve=lambda c: 2 * c,
)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - $\lVert a - p \rVert^2 - (\lVert a \rVert - \lVert p \rVert)^2 =
#   2\,\lVert a \rVert\,\lVert p \rVert\,(1 - \cos(a, p))$, with the factor 2.
# - For unit vectors, $\lVert a - p \rVert^2 = 2\,(1 - \cos(a, p))$: squared L2 and
#   cosine distance rank pairs identically.
# - A triplet margin $m$ on squared L2 of unit vectors is the margin $m/2$ on cosine
#   distance; the losses then differ by exactly a factor 2 and select the same
#   triplets.
# - `tf.compat.v1.losses.cosine_distance` is $1 - a \cdot p$: a cosine distance only
#   for unit-norm inputs.
#
# Next, notebook 02 computes cosine similarities for whole batches at once.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`.

# %%
from tripletlab.exercises import check

# %% [markdown]
# **Exercise 1 (convert).** A triplet loss on squared L2 distance of unit embeddings
# uses the margin $0.3$. Which margin on cosine distance selects the same triplets?
# Assign it to `cosine_margin`.

# %% tags=["solution"]
# for unit vectors ||a - p||^2 = 2 (1 - cos): every squared distance is twice the cosine one
cosine_margin = 0.3 / 2

# %%
check("01.margin", cosine_margin)

# %% [markdown]
# **Exercise 2 (predict, then check).** Three unit vectors have $\cos(a, p) = 0.9$ and
# $\cos(a, n) = 0.6$. Is the triplet active (loss $> 0$) with the margin $0.4$ on
# squared L2 distance? And with the same margin $0.4$ on cosine distance? Predict
# first, then compute both losses and assign `active = (active_sq, active_cos)`.

# %% tags=["solution"]
cos_ap_ex, cos_an_ex, margin_ex = 0.9, 0.6, 0.4
loss_sq_ex = max(2 * (1 - cos_ap_ex) - 2 * (1 - cos_an_ex) + margin_ex, 0.0)
loss_cos_ex = max((1 - cos_ap_ex) - (1 - cos_an_ex) + margin_ex, 0.0)
print(f"squared L2: {loss_sq_ex:.2f}, cosine: {loss_cos_ex:.2f}")
active = (loss_sq_ex > 0, loss_cos_ex > 0)

# %%
check("01.active", active)

# %% [markdown]
# **Exercise 3 (derive).** The mining losses of notebook 05 use the euclidean distance,
# not its square. Two unit vectors have $\cos(a, p) = 0.6$ and $\cos(a, n) = 0.7$.
# Derive the euclidean distance of unit vectors from the identity, then compute the
# hinge $d(a, p) - d(a, n) + 0.2$ (before the $\max$). Assign it to `euclidean_hinge`.

# %% tags=["solution"]
d_ap_ex = np.sqrt(2 * (1 - 0.6))  # ||a - p|| = sqrt(2 (1 - cos)) for unit vectors
d_an_ex = np.sqrt(2 * (1 - 0.7))
euclidean_hinge = d_ap_ex - d_an_ex + 0.2

# %%
check("01.euclidean_hinge", euclidean_hinge)
