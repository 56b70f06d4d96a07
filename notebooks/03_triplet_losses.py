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
# # 03 · Triplet losses
#
# A triplet loss takes an anchor, a positive (something that should be close to the
# anchor) and a negative (something that should be far from it), and is zero once the
# positive is closer than the negative by a margin. This notebook computes the
# original triplet loss with two distances, then the *modified* triplet loss, which
# works on a whole similarity matrix at once and adds two negatives per anchor: the
# mean negative and the closest negative. Every step is done by hand on a small
# matrix first and then checked against the package, in all three backends.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

# isort: split
import tensorflow as tf

from tripletlab import device, plot
from tripletlab import numpy as tl
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch
from tripletlab.data import seed_everything

rng = seed_everything(0)
print(device.describe())

# %% [markdown]
# ## The triplet loss
#
# For an anchor $a$, a positive $p$ and a negative $n$, with a distance $d$ and a
# margin $m \ge 0$:
#
# $$L(a, p, n) = \max\bigl(d(a, p) - d(a, n) + m,\ 0\bigr).$$
#
# The loss is zero when the negative is farther from the anchor than the positive by
# at least $m$ (an *easy* triplet); otherwise it is positive and its gradient pulls
# $p$ towards $a$ and pushes $n$ away (an *active* triplet). This hinge form is
# FaceNet's (Schroff, Kalenichenko and Philbin, 2015). The triplet network of Hoffer
# and Ailon (2015), which one of this course's sources credits with the triplet loss,
# trained differently: a softmax over the two distances, pushing
# $e^{d(a,p)} / (e^{d(a,p)} + e^{d(a,n)})$ towards 0.
#
# `tl.triplet_loss` takes three batches of rows, one triplet per row. Below, 8 random
# triplets of unit vectors, first with the squared L2 distance and margin $m = 0.4$,
# then with the cosine distance and the margin converted as in notebook 01, $m/2$.
# The hand computation comes first.

# %%
n_triplets, dim, margin = 8, 8, 0.4
anchors, positives, negatives = (
    tl.l2_normalize(rng.normal(size=(n_triplets, dim))) for _ in range(3)
)

d_ap_sq = np.sum((anchors - positives) ** 2, axis=1)
d_an_sq = np.sum((anchors - negatives) ** 2, axis=1)
by_hand_sq = np.maximum(d_ap_sq - d_an_sq + margin, 0.0)
d_ap_cos = 1.0 - np.sum(anchors * positives, axis=1)  # unit rows: cos is the dot product
d_an_cos = 1.0 - np.sum(anchors * negatives, axis=1)
by_hand_cos = np.maximum(d_ap_cos - d_an_cos + margin / 2, 0.0)

loss_sq = tl.triplet_loss(
    anchors, positives, negatives, margin=margin, metric="sqeuclidean", reduction="none"
)
loss_cos = tl.triplet_loss(
    anchors, positives, negatives, margin=margin / 2, metric="cosine", reduction="none"
)
assert np.allclose(loss_sq, by_hand_sq, atol=1e-12)
assert np.allclose(loss_cos, by_hand_cos, atol=1e-12)

print(" i   d_ap^2  d_an^2  L_sq(m)   d_ap_cos d_an_cos L_cos(m/2)  L_sq / L_cos")
for i in range(n_triplets):
    ratio = f"{loss_sq[i] / loss_cos[i]:.6f}" if loss_cos[i] > 0 else "   (both 0)"
    print(
        f"{i:2d}  {d_ap_sq[i]:6.4f}  {d_an_sq[i]:6.4f}  {loss_sq[i]:6.4f}    "
        f"{d_ap_cos[i]:6.4f}   {d_an_cos[i]:6.4f}   {loss_cos[i]:6.4f}      {ratio}"
    )

# %% [markdown]
# Where the loss is positive the ratio is exactly 2, and the zeros fall on the same
# triplets: a margin $m$ on squared L2 distance of unit vectors is the margin $m/2$
# on cosine distance, and $L_{\mathrm{sq}} = 2\,L_{\cos}^{(m/2)}$ triplet by triplet.

# %%
same_active = np.array_equal(loss_sq > 0, loss_cos > 0)
largest_gap = np.max(np.abs(loss_sq - 2 * loss_cos))
print(f"active triplets: {int(np.sum(loss_sq > 0))} of {n_triplets}, the same set: {same_active}")
print("max |L_sq - 2 L_cos(m/2)| below 1e-12:", largest_gap < 1e-12)
assert same_active and 0 < np.sum(loss_sq > 0) < n_triplets
assert largest_gap < 1e-12

# %% [markdown]
# ### Reductions
#
# `reduction="none"` returns one loss per triplet; `"mean"` (the default) and `"sum"`
# reduce them to one number. The mean counts the easy triplets too, so it shrinks as
# more triplets become easy.

# %%
for reduction in ("none", "mean", "sum"):
    value = tl.triplet_loss(anchors, positives, negatives, margin=margin, reduction=reduction)
    print(f"reduction={reduction!r:<7}", np.array2string(np.asarray(value), precision=4))
assert np.isclose(
    tl.triplet_loss(anchors, positives, negatives, margin=margin), loss_sq.mean(), atol=1e-12
)
assert np.isclose(
    tl.triplet_loss(anchors, positives, negatives, margin=margin, reduction="sum"),
    loss_sq.sum(),
    atol=1e-12,
)

# %% [markdown]
# ## The modified triplet loss
#
# The modified loss works on similarities rather than distances, so the signs swap:
# with $s$ the cosine similarity and margin $\alpha$, the original triplet loss reads
#
# $$\mathcal{L}_{\mathrm{original}} = \max\bigl(s(A, N) - s(A, P) + \alpha,\ 0\bigr).$$
#
# Take a batch of $B$ anchors $A_i$ and their positives $P_i$ (for example, pairs of
# duplicate questions), and the similarity matrix $S_{ij} = s(A_i, P_j)$ of
# notebook 02. The diagonal $S_{ii}$ holds the positives; every off-diagonal entry
# $S_{ij}$, $j \ne i$, is a negative for anchor $i$, for free. Instead of one negative
# per anchor, the modified loss uses two summaries of the row's negatives:
#
# - $\mathit{mean\_neg}$: the mean of the $B - 1$ off-diagonal entries of the row;
# - $\mathit{closest\_neg}$: the largest off-diagonal entry that is still
#   $\le s(A, P)$, the hardest negative the positive already beats.
#
# $$\begin{aligned}
# \mathcal{L}_1 &= \max\bigl(\mathit{mean\_neg} - s(A, P) + \alpha,\ 0\bigr)\\
# \mathcal{L}_2 &= \max\bigl(\mathit{closest\_neg} - s(A, P) + \alpha,\ 0\bigr)\\
# \mathcal{L}_{\mathrm{full}} &= \mathcal{L}_1 + \mathcal{L}_2
# \end{aligned}$$
#
# and the cost of the batch is the sum of $\mathcal{L}_{\mathrm{full}}$ over the rows.
# The mean negative is a smooth signal from the whole row. The closest negative is
# *not* the most similar negative of the row: negatives that already score above the
# positive are left out, so it is the most similar negative the positive still beats,
# the semi-hard negative of notebook 05 written in similarities (there: the closest
# negative *farther* than the positive). The negatives above the positive, the ones
# that most need pushing away, reach the loss only through the mean.
#
# ### Step by step on a 4 x 4 matrix
#
# A hand-made matrix of similarity scores, and its diagonal, the positives:

# %%
scores = np.array(
    [
        [0.9, -0.8, 0.3, -0.5],
        [-0.4, 0.5, 0.1, -0.1],
        [0.3, 0.1, -0.4, -0.8],
        [-0.5, -0.2, -0.7, 0.5],
    ]
)
batch = len(scores)
alpha = 0.25
s_ap = np.diag(scores)
print("scores =\n", scores)
print("s(A, P) =", s_ap)

# %% [markdown]
# The negatives are everything off the diagonal. Their mean per row divides by
# $B - 1$, since the diagonal is not a negative:

# %%
is_negative = ~np.eye(batch, dtype=bool)
s_an = np.where(is_negative, scores, 0.0)
print("s(A, N), the diagonal zeroed =\n", s_an)
mean_neg = s_an.sum(axis=1) / (batch - 1)
print("mean_neg =", mean_neg.round(6))
assert np.allclose(mean_neg, [-1 / 3, -2 / 15, -2 / 15, -7 / 15], atol=1e-12)
assert np.allclose(tl.mean_negative(scores), mean_neg, atol=1e-12)  # the package's helper

# %% [markdown]
# That is $[-1/3, -2/15, -2/15, -7/15]$. For the closest negative, a negative is a
# candidate only if it is not above the row's positive; the closest negative is the
# largest candidate:

# %%
candidate = is_negative & (scores <= s_ap[:, None])
print("candidate =\n", candidate.astype(int))
closest_neg = np.array([scores[i][candidate[i]].max() for i in range(batch)])
closest_col = np.array([np.flatnonzero(scores[i] == closest_neg[i])[0] for i in range(batch)])
print("closest_neg =", closest_neg, " in columns", closest_col.tolist())
assert np.allclose(closest_neg, [0.3, 0.1, -0.8, -0.2], atol=1e-12)
assert np.allclose(tl.closest_negative(scores), closest_neg, atol=1e-12)
assert all(candidate[i, j] for i, j in enumerate(closest_col))
assert candidate[2].tolist() == [False, False, False, True]  # 0.3, 0.1 are above -0.4

# %% [markdown]
# The closest negatives are $[0.3, 0.1, -0.8, -0.2]$. In row 2 (counting from 0) the
# positive is $-0.4$ and the negatives $0.3$ and $0.1$ are *above* it: they are
# excluded, and the closest negative is $-0.8$. The picture: the scores on the left;
# on the right what each entry is for its row, with the chosen closest negative
# outlined in both panels.


# %% [markdown]
# One detail decides ties. The source this loss is taken from says "smaller than" the
# positive in its text and writes `<=` in its code. The two differ only when a negative
# scores exactly as high as the positive: with `<=` it is the closest negative and
# $\mathcal{L}_2 = \alpha$, with `<` it is left out and a lower negative is taken. The
# package follows the code, `<=`:

# %%
tie = np.array([[0.5, 0.5, -0.2], [0.1, 0.6, 0.0], [0.3, -0.1, 0.4]])
with_tie = tl.closest_negative(tie)
strictly_below = [
    float(max(v for j, v in enumerate(row) if j != i and v < row[i])) for i, row in enumerate(tie)
]
print("closest_negative, <= (the package):", with_tie.tolist())
print("strictly smaller than the positive: ", strictly_below)
assert with_tie.tolist() == [0.5, 0.1, 0.3] and strictly_below == [-0.2, 0.1, 0.3]
# %%
role = np.where(candidate, 2, 1)  # 1: a negative above s(A, P), 2: a candidate
role[np.arange(batch), closest_col] = 3  # the closest negative
np.fill_diagonal(role, 0)  # the positive
role_names = ["positive", "above s_ap", "candidate", "closest"]

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
plot.heatmap(scores, ax=axes[0], title="scores S[i, j] = s(A_i, P_j)")
axes[1].imshow(role, cmap=ListedColormap(["#b2b2b2", "#f4f4f4", "#a6d96a", "#1a9641"]))
for (i, j), r in np.ndenumerate(role):
    axes[1].text(j, i, role_names[r], ha="center", va="center", fontsize=8)
axes[1].set(
    xticks=range(batch),
    yticks=range(batch),
    title="the mask: candidates are off-diagonal and <= s_ap",
)
for ax in axes:
    ax.set(xlabel="positive j", ylabel="anchor i")
    for i, j in enumerate(closest_col):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, edgecolor="black"))
fig.tight_layout()
plt.show()

# %% [markdown]
# Now the two terms and their sum, with $\alpha = 0.25$:

# %%
loss_1 = np.maximum(mean_neg - s_ap + alpha, 0.0)
loss_2 = np.maximum(closest_neg - s_ap + alpha, 0.0)
loss_full = loss_1 + loss_2
cost = loss_full.sum()
print("row   s_ap   mean_neg  closest_neg     L1        L2      L_full")
for i in range(batch):
    print(
        f"{i:3d}  {s_ap[i]:5.2f}  {mean_neg[i]:9.6f}  {closest_neg[i]:9.2f}  "
        f"{loss_1[i]:8.6f}  {loss_2[i]:8.6f}  {loss_full[i]:8.6f}"
    )
print(f"cost = {cost:.6f}, to 3 places {cost:.3f}")
assert np.allclose(loss_full, [0, 0, 0.516667, 0], atol=1e-6)
assert np.isclose(loss_1[2], -2 / 15 + 0.4 + alpha, atol=1e-12) and loss_2[2] == 0
assert np.isclose(cost, 0.516667, atol=1e-6) and f"{cost:.3f}" == "0.517"

# %% [markdown]
# Only row 2 costs anything: its positive $-0.4$ is below its mean negative
# $-2/15$, so $\mathcal{L}_1 = -2/15 + 0.4 + 0.25 = 0.516667$. Its closest
# negative, $-0.8$, is more than the margin below the positive, so $\mathcal{L}_2 = 0$.
# The cost is $0.516667$, or $0.517$ to three places.
#
# `tl.mean_negative(scores)` and `tl.closest_negative(scores)` compute the two summaries
# (the cells above check them), and `tl.modified_triplet_loss(scores)` does all of
# this; `reduction="none"` gives the per-row $\mathcal{L}_{\mathrm{full}}$ and the
# default, `"sum"`, the cost. The PyTorch and TensorFlow backends take their own
# tensors (here on the GPU when there is one) and agree:

# %%
scores_torch = torch.tensor(scores, device=device.try_gpu())
with tf.device(device.tf_device()):
    scores_tf = tf.constant(scores)
backends = {
    "numpy": lambda **kw: tl.modified_triplet_loss(scores, margin=alpha, **kw),
    "torch": lambda **kw: (
        tl_torch.modified_triplet_loss(scores_torch, margin=alpha, **kw).cpu().numpy()
    ),
    "tensorflow": lambda **kw: tl_tf.modified_triplet_loss(scores_tf, margin=alpha, **kw).numpy(),
}
for name, loss_fn in backends.items():
    per_row, total = loss_fn(reduction="none"), loss_fn()
    print(f"{name:<11} per row {np.array2string(per_row, precision=6)}   sum {total:.6f}")
    assert np.allclose(per_row, loss_full, atol=1e-12)
    assert np.isclose(total, cost, atol=1e-12)

# %% [markdown]
# ## A row with no closest negative
#
# If every negative of a row scores above its positive, the row has no candidate and
# no closest negative. The source this loss comes from masks the excluded entries
# with $-2$ (below any cosine), so $\mathit{closest\_neg} = -2$ and
# $\mathcal{L}_2 = \max(-2 - s(A, P) + \alpha, 0) = 0$. `tripletlab` defines the term
# as $0$ outright: such a row contributes its $\mathcal{L}_1$ only.
#
# A 3 x 3 example in which row 0 has no candidate, written as a loop over the rows so
# that every term can be read off:


# %%
def modified_loss_by_rows(scores, margin):
    """(s_ap, mean_neg, closest_neg or None, L1, L2) for each row, by a loop."""
    rows = []
    for i, row in enumerate(scores):
        negatives = [s for j, s in enumerate(row) if j != i]
        below = [s for s in negatives if s <= row[i]]
        mean_neg = sum(negatives) / len(negatives)
        closest_neg = max(below) if below else None
        loss_1 = max(mean_neg - row[i] + margin, 0.0)
        loss_2 = max(closest_neg - row[i] + margin, 0.0) if below else 0.0
        rows.append((row[i], mean_neg, closest_neg, loss_1, loss_2))
    return rows


edge = np.array([[0.2, 0.6, 0.7], [0.5, 0.9, 0.4], [0.6, 0.3, 0.8]])
edge_rows = modified_loss_by_rows(edge, alpha)
print("row  s_ap  mean_neg  closest_neg     L1      L2")
for i, (ap, mean, closest, l1, l2) in enumerate(edge_rows):
    closest_text = "    none" if closest is None else f"{closest:8.2f}"
    print(f"{i:3d}  {ap:4.2f}  {mean:8.4f}  {closest_text}     {l1:6.4f}  {l2:6.4f}")

# %% [markdown]
# Row 0: positive $0.2$, negatives $0.6$ and $0.7$, both above it. Its loss is
# $\mathcal{L}_1 = 0.65 - 0.2 + 0.25 = 0.7$ and nothing else. The seed's $-2$ mask
# gives the same zero second term at this margin, and the package agrees in every
# backend:

# %%
masked = np.where(~np.eye(3, dtype=bool) & (edge <= np.diag(edge)[:, None]), edge, -2.0)
seed_loss_2 = np.maximum(masked.max(axis=1) - np.diag(edge) + alpha, 0.0)
print("closest_neg with the -2 mask:", masked.max(axis=1), " L2:", seed_loss_2)
expected = np.array([l1 + l2 for *_, l1, l2 in edge_rows])
print("L1 + L2 by the loop:        ", expected.round(4))
assert edge_rows[0][2] is None and edge_rows[0][4] == 0.0 and np.isclose(edge_rows[0][1], 0.65)
assert np.isclose(expected[0], edge_rows[0][3]) and np.isclose(expected[0], 0.7, atol=1e-12)
assert seed_loss_2[0] == 0.0
for name, per_row in {
    "numpy": tl.modified_triplet_loss(edge, margin=alpha, reduction="none"),
    "torch": tl_torch.modified_triplet_loss(torch.tensor(edge), margin=alpha, reduction="none")
    .cpu()
    .numpy(),
    "tensorflow": tl_tf.modified_triplet_loss(
        tf.constant(edge), margin=alpha, reduction="none"
    ).numpy(),
}.items():
    print(f"{name:<11} per row {np.array2string(per_row, precision=4)}")
    assert np.allclose(per_row, expected, atol=1e-12)

# %% [markdown]
# The two rules differ only for margins above 1. With $\alpha = 1.5$ and a row whose
# positive is $-0.8$ and whose only negative is $-0.5$, the $-2$ mask gives
# $\mathcal{L}_2 = -2 + 0.8 + 1.5 = 0.3$, a loss from a negative that does not exist;
# the package keeps it at 0.

# %%
big_margin = 1.5
low = np.array([[-0.8, -0.5], [0.1, 0.6]])
seed_l2 = max(-2.0 - low[0, 0] + big_margin, 0.0)
(_, mean0, closest0, l1_0, l2_0), _ = modified_loss_by_rows(low, big_margin)
package_row_0 = tl.modified_triplet_loss(low, margin=big_margin, reduction="none")[0]
print(f"L2 with the -2 mask: {seed_l2:.4f};  tripletlab: L1 = {l1_0:.4f}, L2 = {l2_0:.4f}")
print(f"tl.modified_triplet_loss, row 0: {package_row_0:.4f}")
assert closest0 is None and np.isclose(seed_l2, 0.3, atol=1e-12)
assert np.isclose(package_row_0, l1_0, atol=1e-12) and np.isclose(l1_0, 1.8, atol=1e-12)

# %% [markdown]
# ## On a batch of embeddings
#
# The same loss on real vectors, set up as in notebook 02: a batch $V_1$ of 8
# random 16-dimensional rows, and $V_2 = V_1 + \text{noise}$, so that row $i$ of
# $V_2$ is the duplicate of row $i$ of $V_1$. `tl.similarity_matrix(V1, V2)` puts
# the duplicates on the diagonal, which is what the loss expects.

# %%
B, D = 8, 16
V1 = rng.normal(size=(B, D))
noise = rng.normal(size=(B, D))
S = tl.similarity_matrix(V1, V1 + 2.0 * noise)
per_row = tl.modified_triplet_loss(S, reduction="none")
by_loop = np.array([l1 + l2 for *_, l1, l2 in modified_loss_by_rows(S, 0.25)])
print("per row:", np.array2string(per_row, precision=4))
print(f"cost:    {tl.modified_triplet_loss(S):.4f}")
print("the loop over rows agrees:", np.allclose(per_row, by_loop, atol=1e-12))
assert np.allclose(per_row, by_loop, atol=1e-12)
assert np.isclose(tl.modified_triplet_loss(S), per_row.sum(), atol=1e-12)
ax = plot.heatmap(S, title="S = similarity_matrix(V1, V1 + 2.0 * noise)")
ax.set(xlabel="V2 row j", ylabel="V1 row i")
ax.figure.tight_layout()
plt.show()

# %% [markdown]
# With less noise the duplicates move towards similarity 1, so fewer rows violate the
# margin. The unrelated pairs stay near 0 *on average*, but not one by one: each
# $V_1 + \text{noise}$ row turns as the noise shrinks, and its similarity to the other
# rows moves with it. The same $V_1$ and the same noise direction, scaled down; the last
# two columns are the mean of the off-diagonal scores and the largest distance any of
# them has moved from where it was at noise 4:

# %%
noise_levels = [4.0, 3.0, 2.0, 1.5, 1.0, 0.5]
costs, active_rows, off_means, off_moves = [], [], [], []
off_diagonal = ~np.eye(B, dtype=bool)
print("noise    cost   rows with a loss   off-diagonal mean   largest move")
for level in noise_levels:
    S_level = tl.similarity_matrix(V1, V1 + level * noise)
    row_losses = tl.modified_triplet_loss(S_level, 0.25, "none")
    costs.append(float(row_losses.sum()))
    active_rows.append(int(np.sum(row_losses > 0)))
    if level == noise_levels[0]:
        off_start = S_level[off_diagonal]
    off_means.append(float(S_level[off_diagonal].mean()))
    off_moves.append(float(np.abs(S_level[off_diagonal] - off_start).max()))
    print(
        f"{level:5.2f}  {costs[-1]:.4f}  {active_rows[-1]:3d} of {B}"
        f"  {off_means[-1]:17.3f}  {off_moves[-1]:13.2f}"
    )
assert all(a > b for a, b in zip(costs, costs[1:], strict=False) if a > 0)
assert costs[0] > 0 and costs[-1] == 0.0
assert max(abs(m) for m in off_means) < 0.02 and off_moves[-1] > 0.5

# %% [markdown]
# The cost falls with the noise and, at the smallest noise level, is exactly zero:
# every duplicate beats both its mean negative and its closest negative by the margin.
#
# ## The losses as functions of $s(A, P)$ and $s(A, N)$
#
# For one anchor with one negative, each loss is a function of two numbers in
# $[-1, 1]$. Left: the original triplet loss on similarities,
# $\max(s(A, N) - s(A, P) + \alpha, 0)$, which is zero below the line
# $s(A, N) = s(A, P) - \alpha$ and grows without a cap above it. Right: the
# closest-negative term $\mathcal{L}_2$ of the modified loss. The negative counts
# only when $s(A, N) \le s(A, P)$; above the diagonal it is not a candidate and the
# term is 0. So $\mathcal{L}_2$ lives in the thin band between the two lines and
# never exceeds $\alpha$. Negatives above the positive are the job of $\mathcal{L}_1$,
# through the mean.

# %%
grid = np.linspace(-1.0, 1.0, 201)
s_ap_grid, s_an_grid = np.meshgrid(grid, grid)  # x: s(A, P), y: s(A, N)
original = np.maximum(s_an_grid - s_ap_grid + alpha, 0.0)
closest_term = np.where(s_an_grid <= s_ap_grid, original, 0.0)
print(f"largest original loss on the grid: {original.max():.4f} (= 2 + alpha)")
print(f"largest closest-negative term:     {closest_term.max():.4f} (= alpha)")
assert np.isclose(original.max(), 2 + alpha) and np.isclose(closest_term.max(), alpha)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
panels = [
    (original, "original: max(s_an - s_ap + alpha, 0)"),
    (closest_term, "modified, closest-negative term L2"),
]
for ax, (values, title) in zip(axes, panels, strict=True):
    image = ax.pcolormesh(s_ap_grid, s_an_grid, values, cmap="magma", shading="auto")
    fig.colorbar(image, ax=ax, label="loss")
    ax.plot(grid, grid - alpha, "c--", lw=1.5, label="s_an = s_ap - alpha (margin)")
    ax.plot(grid, grid, ":", color="limegreen", lw=2, label="s_an = s_ap")
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="s(A, P)", title=title)
    ax.legend(loc="lower right", fontsize=8)
axes[0].set_ylabel("s(A, N)")
axes[1].text(-0.9, 0.8, "not a candidate: L2 = 0", color="white", fontsize=9)
axes[1].text(0.05, -0.45, "easy: L2 = 0", color="white", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# The package draws the same boundaries. On a $2 \times 2$ score matrix row 0 has
# exactly one negative, so its mean negative is that negative: the row's loss is the
# original loss plus $\mathcal{L}_2$. On a coarser grid:

# %%
coarse = grid[::10]
max_error = 0.0
for ap in coarse:
    for an in coarse:
        row_0 = tl.modified_triplet_loss([[ap, an], [0.0, 1.0]], alpha, "none")[0]
        picture = max(an - ap + alpha, 0.0) * (2.0 if an <= ap else 1.0)
        max_error = max(max_error, abs(row_0 - picture))
print(f"{len(coarse) ** 2} points, package against the pictures within 1e-12:", max_error < 1e-12)
assert max_error < 1e-12

# %% [markdown]
# ## Summary
#
# - The triplet loss $\max(d(a, p) - d(a, n) + m, 0)$ is zero for easy triplets. For
#   unit vectors, squared L2 with margin $m$ equals twice cosine distance with margin
#   $m/2$, triplet by triplet, with the same active triplets.
# - The modified triplet loss reads a $B \times B$ similarity matrix: positives on the
#   diagonal, negatives off it. Per row it adds $\mathcal{L}_1$ (mean negative) and
#   $\mathcal{L}_2$ (closest negative: the largest negative $\le s(A, P)$); on the
#   worked matrix the cost is $0.516667$, all from row 2's $\mathcal{L}_1$.
# - A row with no negative below its positive has no closest negative; `tripletlab`
#   sets its $\mathcal{L}_2$ to 0 for every margin, where a $-2$ mask works only for
#   margins up to 1.
# - $\mathcal{L}_2$ is at most $\alpha$; negatives that beat the positive are handled
#   by $\mathcal{L}_1$ through the mean.
# - The NumPy, PyTorch and TensorFlow backends give the same numbers.
#
# Next, notebook 04 turns to losses on pairs: the contrastive loss and siamese networks.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`. The three exercises use one new matrix of
# scores, `scores_ex` below: positives on the diagonal, negatives off it.

# %%
from tripletlab.exercises import SCORES_03, check

scores_ex = SCORES_03.copy()  # the matrix the checks of these exercises use
print("scores_ex =\n", scores_ex)

# %% [markdown]
# **Exercise 1.** Compute $\mathit{mean\_neg}$ of each row of `scores_ex`, by hand or
# with NumPy but without `tl.mean_negative`, and assign the three values to
# `mean_neg_ex`.

# %% tags=["solution"]
off_diagonal = ~np.eye(3, dtype=bool)
mean_neg_ex = np.where(off_diagonal, scores_ex, 0.0).sum(axis=1) / (3 - 1)

# %%
check("03.mean_neg", mean_neg_ex)

# %% [markdown]
# **Exercise 2.** Compute $\mathit{closest\_neg}$ of each row, without
# `tl.closest_negative`; for a row with no candidate write `-np.inf`, as the package
# does. Assign the three values to `closest_neg_ex`.

# %% tags=["solution"]
candidate_ex = off_diagonal & (scores_ex <= np.diag(scores_ex)[:, None])
closest_neg_ex = np.where(candidate_ex, scores_ex, -np.inf).max(axis=1)

# %%
check("03.closest_neg", closest_neg_ex)

# %% [markdown]
# **Exercise 3.** With $\alpha = 0.25$, what is the modified triplet loss
# $\mathcal{L}_1 + \mathcal{L}_2$ of row 1 (counting from 0)? Assign it to
# `row_loss_ex`.

# %% tags=["solution"]
s_ap_ex = scores_ex[1, 1]
l1_ex = max(mean_neg_ex[1] - s_ap_ex + 0.25, 0.0)
l2_ex = max(closest_neg_ex[1] - s_ap_ex + 0.25, 0.0)
row_loss_ex = l1_ex + l2_ex

# %%
check("03.row_loss", row_loss_ex)
