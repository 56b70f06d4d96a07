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
# # 02 · Similarity matrices
#
# Losses for similarity learning look up many similarities at once: every anchor
# against every candidate in a batch. This notebook computes the cosine similarity of
# two vectors, then the whole matrix of similarities between two batches, first with
# loops and then with one matrix product, in NumPy, PyTorch and TensorFlow.

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
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch
from tripletlab.data import seed_everything
from tripletlab.timing import best_time

rng = seed_everything(0)
print(device.describe())
device.full_float32()  # float32 stays float32 on a GPU (no TF32)

# %% [markdown]
# ## Two vectors
#
# $$s(v_1, v_2) = \cos(v_1, v_2) = \frac{v_1 \cdot v_2}{\lVert v_1 \rVert\,
# \lVert v_2 \rVert}$$
#
# Written directly from the formula:


# %%
def cosine_from_formula(v1, v2):
    """v1 . v2 / (|v1| |v2|) for two 1-D arrays, straight from the definition."""
    return np.dot(v1, v2) / (np.sqrt(np.dot(v1, v1)) * np.sqrt(np.dot(v2, v2)))


v1 = np.array([1.0, 2.0, 3.0])
examples = {
    "similar": np.array([1.0, 2.0, 3.5]),
    "identical": v1,
    "opposite": -v1,
    "dissimilar": np.array([0.0, -42.0, 1.0]),
}
for name, v2 in examples.items():
    by_formula = cosine_from_formula(v1, v2)
    by_package = tl.cosine_similarity(v1, v2)
    print(f"{name:<11} {by_formula:7.4f}   tl.cosine_similarity: {by_package:7.4f}")
    assert np.isclose(by_formula, by_package, atol=1e-12)

# %% [markdown]
# Similar vectors score close to $1$ ($0.9974$), a vector with itself exactly $1$, its
# opposite $-1$, and $[0, -42, 1]$, which points mostly the other way, $-0.5153$.
# The printed values are rounded to 4 places; the asserts compare to $10^{-12}$.

# %%
printed = {name: round(float(tl.cosine_similarity(v1, v2)), 4) for name, v2 in examples.items()}
assert printed == {"similar": 0.9974, "identical": 1.0, "opposite": -1.0, "dissimilar": -0.5153}

# %% [markdown]
# The formula divides by the norms, so it fails on a zero vector ($0/0$). The package
# defines the cosine with a zero vector as $0$ (as PyTorch does) and gives it a zero
# gradient:

# %%
zero = np.zeros(3)
with np.errstate(invalid="ignore"):
    print("formula:            ", cosine_from_formula(v1, zero))
print("tl.cosine_similarity:", tl.cosine_similarity(v1, zero))
assert tl.cosine_similarity(v1, zero) == 0.0

# %% [markdown]
# ## Two batches
#
# Stack vectors as rows: a batch $V_1$ of shape $(B, D)$ and a batch $V_2$ of shape
# $(M, D)$. The similarity matrix holds every pair,
# $S_{ij} = \cos(v_{1,i}, v_{2,j})$, shape $(B, M)$.
#
# Below, each row of $V_2$ is a noisy copy of the same row of $V_1$, so the pairs on
# the diagonal are the "duplicates" (the positives of a later notebook) and the other
# entries are unrelated pairs (the negatives).

# %%
V1 = np.array([[1.0, 2.0, 3.0], [9.0, 8.0, 7.0], [-1.0, -4.0, -2.0], [1.0, -7.0, 2.0]])
V2 = V1 + rng.normal(0.0, 2.0, size=V1.shape)
print("V1 =\n", V1)
print("V2 =\n", V2.round(4))

# %% [markdown]
# ### Option 1: nested loops
#
# One cosine per pair, $B \times M$ calls:

# %%
B, M = len(V1), len(V2)
S_loops = np.zeros((B, M))
for i in range(B):
    for j in range(M):
        S_loops[i, j] = cosine_from_formula(V1[i], V2[j])
print(S_loops.round(4))

# %% [markdown]
# ### Option 2: normalize, then one matrix product
#
# Scale every row to unit length, $u_i = v_i / \lVert v_i \rVert$. Then
# $\cos(v_{1,i}, v_{2,j}) = u_{1,i} \cdot u_{2,j}$, and all the dot products at once
# are one matrix product:
#
# $$S = U_1\, U_2^{\top}, \qquad (B, D) \times (D, M) \to (B, M).$$

# %%
U1, U2 = tl.l2_normalize(V1), tl.l2_normalize(V2)
S_matmul = U1 @ U2.T
print(S_matmul.round(4))
print("loops == normalize-then-dot:", np.allclose(S_loops, S_matmul, atol=1e-12))
assert np.allclose(S_loops, S_matmul, atol=1e-12)

# %% [markdown]
# `tl.similarity_matrix(V1, V2)` is this computation (plus the zero-row rule and a clip
# to $[-1, 1]$ against rounding). Each row's largest similarity should be on the
# diagonal, with its own noisy copy:

# %%
S = tl.similarity_matrix(V1, V2)
assert np.allclose(S, S_loops, atol=1e-12)
best_match = S.argmax(axis=1)
print("column of each row's largest similarity:", best_match.tolist())
own_copy = best_match == np.arange(B)
print("rows whose best match is their own copy:", int(own_copy.sum()), "of", B)
assert not own_copy.all()

# %% [markdown]
# With this noise level the copy is not always the best match: noise of standard
# deviation 2 is large next to short rows like $[1, 2, 3]$ or $[-1, -4, -2]$, and a
# noisy copy can end up closer in angle to another row. This is exactly the situation
# a triplet loss has to deal with, and the modified triplet loss of notebook 03 works
# on a matrix like this one.
#
# The heatmap shows the same matrix; the diagonal holds the duplicates.

# %%
labels = [f"v{k + 1}" for k in range(B)]
ax = plot.heatmap(
    S,
    title="cos(V1_i, V2_j)",
    row_labels=[f"V1 {x}" for x in labels],
    col_labels=[f"V2 {x}" for x in labels],
)
ax.figure.tight_layout()
plt.show()

# %% [markdown]
# ## The same matrix in PyTorch and TensorFlow
#
# The framework backends take tensors and keep them on their device. In float64 they
# agree with NumPy to within $10^{-12}$; in float32 to within $10^{-6}$.

# %%
V1_torch = torch.tensor(V1, device=device.try_gpu())
V2_torch = torch.tensor(V2, device=device.try_gpu())
with tf.device(device.tf_device()):
    V1_tf, V2_tf = tf.constant(V1), tf.constant(V2)

for dtype in ("float64", "float32"):
    S_torch = tl_torch.similarity_matrix(
        V1_torch.to(getattr(torch, dtype)), V2_torch.to(getattr(torch, dtype))
    )
    S_tf = tl_tf.similarity_matrix(tf.cast(V1_tf, dtype), tf.cast(V2_tf, dtype))
    err_torch = np.abs(S_torch.cpu().numpy() - S).max()
    err_tf = np.abs(S_tf.numpy() - S).max()
    bound = 1e-12 if dtype == "float64" else 1e-6
    print(
        f"{dtype}: torch and TensorFlow within {bound:g} of NumPy:", max(err_torch, err_tf) < bound
    )
    assert max(err_torch, err_tf) < bound

# %% [markdown]
# ## One batch against itself
#
# With one argument, `similarity_matrix(X)` compares a batch with itself: the diagonal
# is $1$ (each row with itself) and the matrix is symmetric.

# %%
X = rng.normal(size=(6, 4))
S_self = tl.similarity_matrix(X)
print(S_self.round(3))
assert np.allclose(np.diag(S_self), 1.0) and np.allclose(S_self, S_self.T)

# %% [markdown]
# ## From similarities to distances
#
# `pairwise_distances` turns the same batch into distance matrices. The cosine metric
# is $1 - S$; the others measure lengths as well as angles (notebook 01).

# %%
D_cos = tl.pairwise_distances(X, metric="cosine")
print("cosine distances == 1 - S:", np.allclose(D_cos, 1.0 - S_self, atol=1e-12))
assert np.allclose(D_cos, 1.0 - S_self, atol=1e-12)
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for ax, metric in zip(axes, ("euclidean", "sqeuclidean", "cosine", "l1"), strict=True):
    D = tl.pairwise_distances(X, metric=metric)
    plot.heatmap(D, ax=ax, title=metric, vmin=0.0, vmax=D.max(), cmap="viridis", fmt="{:.1f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Why vectorize: loops against one matrix product
#
# The loop makes $B^2$ Python-level calls; the matrix product makes one call that runs
# in compiled code. Timings depend on the machine, so this cell's output is not
# compared by the tests (it is tagged `nbval-ignore-output`), and no statement in the
# text depends on its exact numbers; the cell asserts what does not depend on the
# machine: the two ways give the same matrix.


# %% tags=["nbval-ignore-output"]
sizes = [8, 16, 32, 64, 128]
seconds = {"nested loops": [], "normalize-then-dot": []}
for size in sizes:
    batch = rng.normal(size=(size, 64))
    seconds["nested loops"].append(
        best_time(lambda b=batch: [[cosine_from_formula(u, v) for v in b] for u in b], repeats=3)
    )
    seconds["normalize-then-dot"].append(
        best_time(lambda b=batch: tl.similarity_matrix(b), repeats=3)
    )
loops = np.array([[cosine_from_formula(u, v) for v in batch] for u in batch])
assert np.allclose(loops, tl.similarity_matrix(batch), rtol=0, atol=1e-12)
ratio = seconds["nested loops"][-1] / seconds["normalize-then-dot"][-1]
print(f"at B = {sizes[-1]} the loops take {ratio:.0f} times as long")
ax = plot.timings(sizes, seconds)
ax.set_title("similarity matrix of a (B, 64) batch with itself")
plt.show()

# %% [markdown]
# ## Summary
#
# - $\cos(v_1, v_2) = v_1 \cdot v_2 / (\lVert v_1 \rVert \lVert v_2 \rVert)$; the
#   package defines it as $0$ for a zero vector.
# - A similarity matrix is normalize-then-dot, $S = U_1 U_2^\top$: one matrix
#   product instead of $B \times M$ loop iterations, and the same numbers.
# - The three backends agree: to $10^{-12}$ in float64, to $10^{-6}$ in float32.
#
# Next, notebook 03 builds triplet losses on top of these matrices.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`.

# %%
from tripletlab.exercises import check

# %% [markdown]
# **Exercise 1 (implement).** Write `similarity(x, y)` for NumPy arrays `x` of shape
# $(B, D)$ and `y` of shape $(M, D)$ that returns the $(B, M)$ matrix of cosine
# similarities by normalize-then-dot, without `tl.similarity_matrix` (the check calls
# it on batches of its own, with no zero rows).


# %% tags=["solution"]
def similarity(x, y):
    """S[i, j] = cos(x_i, y_j): scale each row to unit length, then one matrix product."""
    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit_y = y / np.linalg.norm(y, axis=1, keepdims=True)
    return unit_x @ unit_y.T


# %%
check("02.similarity_matrix", similarity)

# %% [markdown]
# **Exercise 2 (find the bug).** This version divides by the norm of each whole batch
# instead of each row's:
#
# ```python
# def similarity_bug(x, y):
#     return x @ y.T / (np.linalg.norm(x) * np.linalg.norm(y))
# ```
#
# For `v = np.array([[3.0, 4.0], [0.0, 2.0]])`, work out by hand what
# `similarity_bug(v, v)[0, 1]` returns, and what the cosine similarity of the two rows
# is. Assign the pair `(buggy, correct)` to `row_norm_bug_ex`.

# %% tags=["solution"]
dot_ex = 3.0 * 0.0 + 4.0 * 2.0  # row 0 . row 1
batch_norm_ex = np.sqrt(3.0**2 + 4.0**2 + 0.0**2 + 2.0**2)  # one norm for the whole batch
row_norms_ex = (np.sqrt(3.0**2 + 4.0**2), np.sqrt(0.0**2 + 2.0**2))  # 5 and 2
row_norm_bug_ex = (dot_ex / batch_norm_ex**2, dot_ex / (row_norms_ex[0] * row_norms_ex[1]))

# %%
check("02.row_norm_bug", row_norm_bug_ex)
