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
# # 05 · Online triplet mining
#
# Building triplets by hand before training (offline mining) wastes most of them:
# after a few epochs nearly every triplet is easy and contributes nothing. Online
# mining builds the triplets *inside* each batch, from the embeddings just computed:
# a batch of $B$ embeddings with their labels holds up to $B^3$ triplets, and the
# loss chooses which of them to learn from. This notebook builds the masks that say
# which triplets are valid, sorts triplets into easy, semi-hard and hard, and compares
# four mining strategies on the same batch.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import matplotlib.pyplot as plt
import numpy as np
import torch

# isort: split
import tensorflow as tf

from tripletlab import device
from tripletlab import numpy as tl
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch
from tripletlab.data import seed_everything
from tripletlab.timing import best_time

rng = seed_everything(0)
print(device.describe())
device.full_float32()  # float32 stays float32 on a GPU (no TF32)

# %% [markdown]
# ## A small P x K batch
#
# Online mining needs batches in which every class appears several times. The usual
# recipe (Hermans, Beyer and Leibe, 2017) samples $P$ classes and $K$ examples of each.
# Here $P = 3$, $K = 3$, and the embeddings are 2-D points, so that we can look at
# them.

# %%
P, K = 3, 3
centres = np.array([[0.0, 0.0], [1.6, 0.0], [0.8, 1.4]])
labels = np.repeat(np.arange(P), K)
embeddings = centres[labels] + rng.normal(0.0, 0.7, size=(P * K, 2))
B = len(labels)
D = tl.pairwise_distances(embeddings)  # euclidean
print("labels:", labels.tolist())
print("embeddings:\n", embeddings.round(3))

# %% [markdown]
# ## Which triplets are valid
#
# A triplet $(a, p, n)$ is valid when $a \ne p$, $p$ has the label of $a$, and $n$ has
# another label. Two $B \times B$ masks say it per pair:
#
# - `positive_mask[a, p]`: $a \ne p$ and $\ell(a) = \ell(p)$;
# - `negative_mask[a, n]`: $\ell(a) \ne \ell(n)$.
#
# The $B \times B \times B$ mask of valid triplets is their outer combination,
# `positive_mask[a, p] and negative_mask[a, n]`. First by loops, then with the
# package's masks and broadcasting:

# %%
valid_loops = np.zeros((B, B, B), dtype=bool)
for a in range(B):
    for p in range(B):
        for n in range(B):
            valid_loops[a, p, n] = a != p and labels[a] == labels[p] and labels[n] != labels[a]
positive_mask, negative_mask = tl.positive_mask(labels), tl.negative_mask(labels)
valid = positive_mask[:, :, None] & negative_mask[:, None, :]
assert np.array_equal(valid, valid_loops)
n_valid = int(valid.sum())
print(f"valid triplets: {n_valid} of B^3 = {B**3}")
print(f"B (K - 1) (B - K) = {B * (K - 1) * (B - K)}")
assert n_valid == B * (K - 1) * (B - K)

# %% [markdown]
# Each anchor has $K - 1$ positives and $B - K$ negatives, hence
# $B (K - 1)(B - K)$ valid triplets: 108 of the 729 index triples here. The pictures:
# the two pair masks, and the triplet mask as one $(p, n)$ slice per anchor.

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, mask, title in zip(
    axes,
    (positive_mask, negative_mask),
    ("positive_mask[a, p]", "negative_mask[a, n]"),
    strict=True,
):
    ax.imshow(mask, cmap="Greens", vmin=0, vmax=1.3)
    ax.set(title=title, xlabel="column", ylabel="anchor a", xticks=range(B), yticks=range(B))
fig.tight_layout()
plt.show()

fig, axes = plt.subplots(1, B, figsize=(15, 2.2))
for a, ax in enumerate(axes):
    ax.imshow(valid[a], cmap="Greens", vmin=0, vmax=1.3)
    ax.set(title=f"anchor {a}", xticks=[], yticks=[])
axes[0].set(xlabel="negative n", ylabel="positive p")
fig.suptitle("valid[a, p, n]: one slice per anchor", y=1.05)
plt.show()

# %% [markdown]
# ## Easy, semi-hard and hard
#
# With a margin $m$, a valid triplet is
#
# - **easy** when $d(a, n) \ge d(a, p) + m$: its loss is 0, nothing to learn;
# - **semi-hard** when $d(a, p) \le d(a, n) < d(a, p) + m$: the negative is farther
#   than the positive, but not by the margin;
# - **hard** when $d(a, n) < d(a, p)$: the negative is closer than the positive.
#
# Semi-hard and hard triplets are the *active* ones, with a positive loss. For the
# first (anchor, positive) pair that has negatives of all three kinds, the circles of
# radius $d(a, p)$ and $d(a, p) + m$ around the anchor separate them:

# %%
margin = 0.5
d_ap = D[:, :, None]  # (B, B, 1)
d_an = D[:, None, :]  # (B, 1, B)
hard = valid & (d_an < d_ap)
semihard = valid & (d_an >= d_ap) & (d_an < d_ap + margin)
easy = valid & (d_an >= d_ap + margin)
counts = {"easy": int(easy.sum()), "semi-hard": int(semihard.sum()), "hard": int(hard.sum())}
print("valid triplets by kind:", counts)
assert sum(counts.values()) == n_valid

has_all_kinds = easy.any(axis=2) & semihard.any(axis=2) & hard.any(axis=2)
anchor, positive = (int(i) for i in np.argwhere(has_all_kinds)[0])
print(f"anchor {anchor}, positive {positive}")
kinds = {
    "easy": easy[anchor, positive],
    "semi-hard": semihard[anchor, positive],
    "hard": hard[anchor, positive],
}
print("its negatives by kind:", {k: np.flatnonzero(v).tolist() for k, v in kinds.items()})

# %%
fig, ax = plt.subplots(figsize=(5.5, 5))
colours = ["tab:blue", "tab:orange", "tab:green"]
for c in range(P):
    ax.scatter(*embeddings[labels == c].T, s=40, color=colours[c], label=f"class {c}")
ax.scatter(*embeddings[anchor], s=220, facecolors="none", edgecolors="black", label="anchor")
ax.scatter(
    *embeddings[positive],
    s=220,
    marker="s",
    facecolors="none",
    edgecolors="black",
    label="positive",
)
for radius, style in ((D[anchor, positive], "-"), (D[anchor, positive] + margin, "--")):
    ax.add_patch(plt.Circle(embeddings[anchor], radius, fill=False, ls=style, color="grey"))
for kind, marker in (("hard", "x"), ("semi-hard", "+"), ("easy", "1")):
    points = embeddings[kinds[kind]]
    ax.scatter(*points.T, s=140, marker=marker, color="black", label=f"{kind} negatives")
ax.set(
    aspect="equal", title=f"negatives of (anchor {anchor}, positive {positive}), margin {margin}"
)
ax.legend(loc="upper left", fontsize=8, bbox_to_anchor=(1.0, 1.0))
plt.show()

# %% [markdown]
# ## Four ways to mine the same batch
#
# - **batch-all**: every valid triplet, averaged over the active ones only;
#   `fraction_positive` says how many of the valid triplets are active.
# - **batch-hard**: per anchor, the farthest positive and the closest negative.
# - **semi-hard**: per (anchor, positive) pair, the closest negative that is farther
#   than the positive (if there is none, the farthest negative).
# - **soft-margin batch-hard**: batch-hard with $\log(1 + e^{x})$ instead of
#   $\max(x + m, 0)$: no margin to tune, and a small gradient even for easy triplets.

# %%
loss_all, fraction = tl.batch_all_triplet_loss(embeddings, labels, margin)
losses = {
    "batch-all": float(loss_all),
    "batch-hard": float(tl.batch_hard_triplet_loss(embeddings, labels, margin)),
    "semi-hard": float(tl.batch_semihard_triplet_loss(embeddings, labels, margin)),
    "soft batch-hard": float(tl.batch_hard_triplet_loss(embeddings, labels, soft=True)),
}
for name, value in losses.items():
    print(f"{name:<16} {value:.4f}")
print(f"batch-all fraction_positive: {float(fraction):.4f}")

hinge = np.maximum(d_ap - d_an + margin, 0.0)[valid]
assert np.isclose(losses["batch-all"], hinge[hinge > 0].mean())
assert np.isclose(float(fraction), (counts["semi-hard"] + counts["hard"]) / n_valid)

# %% [markdown]
# The last two lines check batch-all by hand: the mean of the positive hinges over
# the valid triplets, and `fraction_positive` = (semi-hard + hard) / valid.
#
# In this batch batch-hard is the largest of the three margin losses: it keeps only
# the worst triplet of each anchor. That is not a rule. Batch-hard averages over
# *every* anchor, those whose worst triplet is already easy counting 0, while
# batch-all averages only over the triplets with a positive loss. Seven points on a
# line, where one image of class 0 sits among the 1s, turn the order around:

# %%
margin_losses = {k: v for k, v in losses.items() if k != "soft batch-hard"}
assert max(margin_losses, key=margin_losses.get) == "batch-hard"
x_line = np.array([[0.0], [0.1], [3.0], [3.1], [6.0], [6.1], [2.9]])
y_line = np.array([0, 0, 1, 1, 2, 2, 0])
all_line, fraction_line = tl.batch_all_triplet_loss(x_line, y_line, margin)
hard_line = tl.batch_hard_triplet_loss(x_line, y_line, margin)
print(f"batch-all {float(all_line):.2f} (over {float(fraction_line):.0%} of the valid triplets)")
print(f"batch-hard {float(hard_line):.2f} (over all 7 anchors)")
assert all_line > hard_line

# %% [markdown]
# The misplaced point makes a few triplets very hard, and batch-all's mean is over
# those few; batch-hard spreads the same violations over seven anchors, most of which
# have nothing left to fix.
#
# The PyTorch and TensorFlow backends give the same numbers, and their gradients
# agree:

# %%
x_torch = torch.tensor(embeddings, device=device.try_gpu(), requires_grad=True)
x_tf = tf.Variable(embeddings)
for name, torch_fn, tf_fn in [
    ("batch-all", tl_torch.batch_all_triplet_loss, tl_tf.batch_all_triplet_loss),
    ("batch-hard", tl_torch.batch_hard_triplet_loss, tl_tf.batch_hard_triplet_loss),
    ("semi-hard", tl_torch.batch_semihard_triplet_loss, tl_tf.batch_semihard_triplet_loss),
]:
    value_torch = torch_fn(x_torch, torch.tensor(labels), margin)
    value_torch = value_torch[0] if isinstance(value_torch, tuple) else value_torch
    (grad_torch,) = torch.autograd.grad(value_torch, x_torch)
    with tf.GradientTape() as tape:
        value_tf = tf_fn(x_tf, labels, margin)
        value_tf = value_tf[0] if isinstance(value_tf, tuple) else value_tf
    grad_tf = tape.gradient(value_tf, x_tf).numpy()
    agree = np.isclose(float(value_torch.detach()), losses[name]) and np.isclose(
        float(value_tf), losses[name]
    )
    grads_agree = np.allclose(grad_torch.cpu().numpy(), grad_tf, atol=1e-12)
    print(f"{name:<11} values agree: {agree}, gradients agree: {grads_agree}")
    assert agree and grads_agree

# %% [markdown]
# ## Why batch-all averages over the active triplets only
#
# Training makes classes compact and separated, and more and more triplets become
# easy. Averaged over *all* valid triplets, the loss then shrinks because of the
# zeros, not because the remaining hard triplets got easier, and the gradient fades
# with it. Simulate training by shrinking the spread of each class:

# %%
print("spread   fraction_positive   mean over all valid   mean over active (batch-all)")
history = []
for spread in (0.8, 0.6, 0.45, 0.35):
    points = centres[labels] + np.random.default_rng(1).normal(0.0, spread, size=(B, 2))
    active_mean, frac = (float(v) for v in tl.batch_all_triplet_loss(points, labels, margin))
    distances = tl.pairwise_distances(points)
    all_hinges = np.maximum(distances[:, :, None] - distances[:, None, :] + margin, 0)[valid]
    history.append((spread, frac, all_hinges.mean(), active_mean))
    print(f"{spread:5.2f}    {frac:17.4f}   {all_hinges.mean():19.4f}   {active_mean:26.4f}")
    assert np.isclose(all_hinges.mean(), active_mean * frac)  # mean over all = mean active x f
assert history[-1][2] < history[0][2] / 10

# %% [markdown]
# The mean over all valid triplets is the batch-all loss times `fraction_positive`
# (the assert checks it on every row), so it falls at least as fast as the fraction of
# active triplets, and by the last row it is under a tenth of the first. Batch-all
# keeps the average over the triplets that still have something to teach, and reports
# `fraction_positive` beside it: that fraction, not the loss, is the number to watch
# during training.
#
# ## The hardest positive must have the anchor's label
#
# A quick description of batch-hard reads "for the hardest positive, take the largest
# distance in each row of the distance matrix". Without the positive mask, the
# largest distance of a row is usually to another class, and the "hardest positive"
# is then a negative:

# %%
row_max = D.argmax(axis=1)  # the shortcut: the farthest example of the row
masked = np.where(positive_mask, D, 0.0)  # distances >= 0, so 0 never wins
hardest_positive = masked.argmax(axis=1)
wrong = labels[row_max] != labels
print("farthest example of each row:  ", row_max.tolist())
print("hardest positive (masked):     ", hardest_positive.tolist())
print(f"anchors where the shortcut picks another class: {int(wrong.sum())} of {B}")
assert np.all(labels[hardest_positive] == labels)
assert wrong.any()

shortcut_gap = D.max(axis=1) - np.where(negative_mask, D, np.inf).min(axis=1)
shortcut_loss = np.maximum(shortcut_gap + margin, 0).mean()
print(f"batch-hard loss with the shortcut: {shortcut_loss:.4f}")
print(f"batch-hard loss, correct:          {losses['batch-hard']:.4f}")
assert not np.isclose(shortcut_loss, losses["batch-hard"])

# %% [markdown]
# The shortcut overstates the loss and, worse, its gradient pulls each anchor towards
# a member of another class.
#
# The same description goes on: for the hardest negative, "add infinity to the
# diagonal" and take the smallest distance of each row. That removes the anchor
# itself, not its positives, so the nearest other example is often of the anchor's
# own class, a positive that the loss would then push away:

# %%
nearest_other = np.where(np.eye(B, dtype=bool), np.inf, D).argmin(axis=1)
hardest_negative = np.where(negative_mask, D, np.inf).argmin(axis=1)
same_class = labels[nearest_other] == labels
print("nearest other example of each row:", nearest_other.tolist())
print("hardest negative (masked):        ", hardest_negative.tolist())
print(f"anchors whose 'hardest negative' has their own class: {int(same_class.sum())} of {B}")
assert np.all(labels[hardest_negative] != labels)
assert same_class.any()

# %% [markdown]
# The package takes the maximum over the anchor's positives only, and the minimum over
# its negatives only: both masks, always.

# %% [markdown]
# ## Cost as the batch grows: counting instead of enumerating
#
# The NumPy backend builds the $B \times B \times B$ cube of triplets, as above: easy
# to read and to check, but its memory grows as $B^3$. The PyTorch and TensorFlow
# backends never keep a cube. Batch-hard needs only the $B \times B$ distance matrix.
# Batch-all needs only *counts*: the sum of the active hinges is
#
# $$\sum_{\text{active}} \bigl(d_{ap} - d_{an} + m\bigr)
# = \sum_{a, p} c_{ap}\, d_{ap} - \sum_{a, n} c_{an}\, d_{an} + m N,$$
#
# where $c_{ap}$ is the number of active triplets of the pair $(a, p)$ (the negatives
# of $a$ closer than the threshold $t_{ap} = d_{ap} + m$), $c_{an}$ the number of
# active triplets of $(a, n)$ (the positives of $a$ whose threshold is above
# $d_{an}$), and $N$ the number of active triplets. One weighted sum of the distance
# matrix then gives the loss, and its gradient is exactly the cube's: each distance
# appears with the weight $c_{ap}$ or $-c_{an}$.
#
# The counts cost little because an anchor has few positives: $K - 1$ in a P x K
# batch. Sort the anchor's $K - 1$ thresholds; put every negative in the *bucket*
# $b_n = \#\{p : t_{ap} \le d_{an}\}$. Then $c_{an} = (K - 1) - b_n$, and $c_{ap}$ for
# the $j$-th smallest threshold is the number of negatives in the buckets $0 \dots j$, a
# cumulative sum over $K$ buckets. That is $O(B^2 \log K)$ work (or $B^2 K$ plain
# comparisons, faster for small $K$), never $B^3$. (The TensorFlow backend sorts
# each anchor's negatives instead: $O(B^2 \log B)$.) On the anchor of the batch above
# with the most active triplets:

# %%
a = int(np.argmax((valid & (D[:, :, None] - D[:, None, :] + margin > 0)).sum(axis=(1, 2))))
positives = np.flatnonzero(positive_mask[a])
negatives = np.flatnonzero(negative_mask[a])
thresholds = np.sort(D[a, positives] + margin)
bucket = np.array([np.sum(thresholds <= D[a, n]) for n in negatives])
c_an = len(thresholds) - bucket
c_ap_sorted = np.cumsum(np.bincount(bucket, minlength=len(thresholds) + 1))[:-1]
print("anchor", a, " thresholds t_ap (sorted):", thresholds.round(3).tolist())
print("negatives:", negatives.tolist())
print("d_an:     ", D[a, negatives].round(3).tolist())
print("bucket:   ", bucket.tolist(), "  c_an = K - 1 - bucket:", c_an.tolist())
print("c_ap, one per sorted threshold:", c_ap_sorted.tolist())
hinges = D[a, positives][:, None] - D[a, negatives][None, :] + margin  # this anchor's triplets
assert np.array_equal(np.sort((hinges > 0).sum(axis=1)), np.sort(c_ap_sorted))
assert np.array_equal((hinges > 0).sum(axis=0), c_an)
assert c_an.sum() == c_ap_sorted.sum() == (hinges > 0).sum()
print(f"active triplets of anchor {a}: {c_an.sum()} (c_an and c_ap both count them)")

# %% [markdown]
# Both counts come out of the same comparisons, so they always agree, and they match
# the anchor's slice of the cube. Semi-hard mining uses the same buckets (of the
# positive distances, not the thresholds): the negatives farther than the $j$-th
# closest positive are those of the buckets after $j$, so the nearest negative of each
# bucket and a running minimum over the buckets give every pair its semi-hard negative.
#
# Memory: one float64 cube against one float32 distance matrix. The PyTorch backend goes
# further and works on blocks of anchor rows, computing each block's gradient at once:
# above a few thousand rows (`WHOLE_MATRIX_ROWS` in `tripletlab._blocks`) so that its
# memory grows as $B$, not $B^2$, and on a CPU already above about a million distances
# (`CACHE_BLOCK_ENTRIES`), so that the dozen passes over a block find it in the cache.

# %%
print("     B   cube, float64   B x B, float32")
for size in (64, 256, 1024, 4096):
    print(f"{size:6d}  {size**3 * 8 / 2**20:11.1f} MiB  {size**2 * 4 / 2**20:11.3f} MiB")

# %% [markdown]
# The time of one forward and backward pass (the NumPy cube forward only) on this
# machine, D = 128, 8 examples per class. Times vary from machine to machine and run
# to run: the tests do not compare this cell's output, and nothing in the text
# depends on its exact numbers. What the cell does assert holds everywhere: where both
# run, the float32 PyTorch batch-all and the float64 NumPy cube give the same loss.


# %% tags=["nbval-ignore-output"]
def forward_backward(loss_fn, x, y):
    def run():
        x.grad = None
        value = loss_fn(x, y)
        (value[0] if isinstance(value, tuple) else value).backward()

    return run


sizes = (64, 128, 256, 512, 1024)
methods = {
    "numpy cube, batch-all": None,
    "torch batch-all": tl_torch.batch_all_triplet_loss,
    "torch batch-hard": tl_torch.batch_hard_triplet_loss,
    "torch semi-hard": tl_torch.batch_semihard_triplet_loss,
}
timings = {name: [] for name in methods}
for size in sizes:
    y = np.arange(size) // 8
    x_np = np.random.default_rng(2).normal(size=(size, 128))
    x = torch.tensor(x_np, dtype=torch.float32, device=device.try_gpu(), requires_grad=True)
    y_torch = torch.tensor(y, device=x.device)
    for name, fn in methods.items():
        if fn is None:
            cube = lambda x_np=x_np, y=y: tl.batch_all_triplet_loss(x_np, y)  # noqa: E731
            seconds = best_time(cube, repeats=1, warmup=0) if size <= 256 else np.nan
        else:
            seconds = best_time(forward_backward(fn, x, y_torch), repeats=2)
        timings[name].append(seconds)
    if size <= 256:  # the same loss, from the cube in float64 and by counting in float32
        cube_loss = tl.batch_all_triplet_loss(x_np, y)[0]
        counted_loss = tl_torch.batch_all_triplet_loss(x, y_torch)[0].item()
        assert np.isclose(counted_loss, cube_loss, rtol=1e-3), (size, counted_loss, cube_loss)
print("     B" + "".join(f"{name:>24}" for name in methods))
for i, size in enumerate(sizes):
    print(f"{size:6d}" + "".join(f"{timings[name][i] * 1e3:21.1f} ms" for name in methods))
fig, ax = plt.subplots(figsize=(6, 4))
for name, values in timings.items():
    ax.loglog(sizes, values, marker="o", label=name)
ax.set(xlabel="batch size B", ylabel="seconds", title="online mining, D = 128")
ax.legend(fontsize=8)
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# The cube stops at $B = 256$ here: its float64 hinge tensor has $B^3$ entries, 128 MiB
# there and 8 GiB at $B = 1024$ (computed below), and its work grows with them. Without
# the cube, the work of all three grows as $B^2$ (the distance matrix, and the buckets
# of the $K - 1$ positives); the matrix product that computes the distances, $B^2 D$,
# is a large part of each. The timings above show how that plays out on this machine
# (at small $B$, fixed costs hide the growth).

# %%
for size in (256, 1024):
    print(f"B = {size}: the B^3 float64 hinge tensor takes {size**3 * 8 / 2**20:,.0f} MiB")
assert 256**3 * 8 == 128 * 2**20 and 1024**3 * 8 == 8 * 2**30

# %% [markdown]
# ## At scale: `make bench`
#
# `make bench` times the same losses from $B = 256$ to $B = 16384$ (D = 128, 8
# examples per class, forward + backward, each measurement in a fresh process),
# against pytorch-metric-learning (PML) and against one $B \times B$ Gram matrix
# product, and checks that tripletlab's losses equal PML's where both compute the same
# quantity. PML's batch-all is timed in the two ways it is used: `TripletMarginLoss`
# alone (over all triplets), and `TripletMarginMiner("all")` before it ("PML miner").
# TensorFlow runs inside a `tf.function`, as Keras runs it; its first call at a new
# shape compiles its XLA kernels, timed apart. The latest results are committed in
# `benchmarks/` (and installed with the package: `tripletlab.resources` finds them in
# both places); this cell reads them and times nothing, so its numbers are those of the
# machine named in the file.

# %%
from tripletlab import resources

bench_rows = resources.read_csv("results.csv")
print(resources.read_text("machine.txt").strip())
timed = {(r["method"], int(r["B"])): r for r in bench_rows if r["seconds"]}
shown = ("gram matmul", "tl.torch batch-all", "tl.tf batch-all", "PML batch-all")
shown += ("PML miner batch-all", "tl.torch batch-hard", "tl.tf batch-hard", "PML batch-hard")
shown += ("tl.torch semi-hard", "tl.tf semi-hard", "PML semi-hard*", "cube batch-all")
sizes_bench = sorted({size for _, size in timed})
print(f"{'ms':>22}" + "".join(f"{size:>9d}" for size in sizes_bench))
for method in shown:
    cells = [timed.get((method, size)) for size in sizes_bench]
    text = "".join(f"{float(r['seconds']) * 1e3:9.1f}" if r else f"{'-':>9}" for r in cells)
    print(f"{method:>22}" + text)
assert all(r["agrees_with_PML"] == "True" for r in bench_rows if r["agrees_with_PML"])
for size in (2048, 4096):
    for kind in ("batch-all", "batch-hard", "semi-hard"):
        row = timed[(f"tl.torch {kind}", size)]
        pml = f"{1 / float(row['x_PML']):.1f}x faster than PML" if row["x_PML"] else "PML skipped"
        print(f"B = {size}, {kind:10s}: {float(row['x_matmul']):4.1f} x one matmul, {pml}")
peak = max(float(timed[(f"tl.torch {k}", 16384)]["peak_mib"]) for k in ("batch-all", "semi-hard"))
print(f"B = 16384: batch-all and semi-hard peak at {peak / 1024:.2f} GiB")
for size in (2048, 4096):
    speedup = {
        k: 1 / float(timed[(f"tl.torch {k}", size)]["x_PML"])
        for k in ("batch-all", "semi-hard", "batch-hard")
    }
    assert speedup["batch-all"] > 5 and speedup["semi-hard"] > 5 and speedup["batch-hard"] > 2
    assert all(float(timed[(f"tl.torch {k}", size)]["x_matmul"]) < 10 for k in speedup)
assert peak < 1024 and ("PML batch-all", 8192) not in timed
kinds = ("batch-all", "batch-hard", "semi-hard")
for size in (2048, 4096):
    tf_ratio = {k: float(timed[(f"tl.tf {k}", size)]["x_torch"]) for k in kinds}
    print(f"B = {size}, TensorFlow / PyTorch:", ", ".join(f"{k} {tf_ratio[k]:.2f}" for k in kinds))
    assert max(tf_ratio.values()) < 1.5
    miner = 1 / float(timed[("tl.torch batch-all", size)]["x_PML_miner"])
    print(f"B = {size}, batch-all: {miner:.0f}x faster than PML's miner + loss")
    assert miner > 5
tf_peak = max(float(timed[(f"tl.tf {k}", 16384)]["peak_mib"]) for k in kinds)
first_call = float(timed[("tl.tf batch-all", 2048)]["first_s"])
print(f"B = 16384: TensorFlow peaks at {tf_peak / 1024:.2f} GiB")
print(f"B = 2048: TensorFlow's first batch-all call (tracing, XLA compile) {first_call:.1f} s")
assert tf_peak < 4096
print(f"valid triplets at B = 2048, K = 8: {2048 * 7 * (2048 - 8):,}")
fig, ax = plt.subplots(figsize=(7, 4.5))
for method in shown:
    points = sorted((size, float(r["seconds"])) for (m, size), r in timed.items() if m == method)
    ax.loglog(*zip(*points, strict=True), marker="o", label=method)
ax.set(xlabel="batch size B", ylabel="seconds (forward + backward)", title="make bench")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# In these results, batch-all and semi-hard are more than five times faster than PML's
# triplet paths at $B = 2048$ and $4096$ (PML materialises every triplet,
# $B (K - 1)(B - K)$ of them: 29 million at $B = 2048$), batch-hard is more than twice
# as fast as PML's `BatchHardMiner`, and each of the three costs less than ten Gram
# matrix products: the distance matrix and a few passes over it. PML's all-triplet
# path is skipped from $B = 8192$ on (its triplets' indices alone would take more than
# 10 GiB, computed below); with its row blocks, tripletlab runs $B = 16384$ in under
# 1 GiB in PyTorch and under 4 GiB in TensorFlow (whose runtime alone takes about
# 0.6 GiB). TensorFlow's losses take less than 1.5 times PyTorch's time (the ratios
# are printed above): it counts the same way, in compiled kernels. PML's miner, which
# first builds every triplet, is more than five times slower than tripletlab's
# batch-all. These ratios move with the CPU and the machine's load (the file names the
# machine); the thresholds above are far enough below them to hold on the machines
# this project has measured.

# %%
n_triplets = 8192 * 7 * (8192 - 8)  # B (K - 1)(B - K) at B = 8192, K = 8
index_gib = n_triplets * 3 * 8 / 2**30  # (anchor, positive, negative) as int64
print(f"B = 8192: {n_triplets:,} triplets, {index_gib:.1f} GiB of int64 indices")
assert index_gib > 10

# %% [markdown]
# ## Summary
#
# - Valid triplets: `positive_mask[a, p] and negative_mask[a, n]`;
#   $B (K-1)(B-K)$ of them in a P x K batch.
# - Easy triplets ($d_{an} \ge d_{ap} + m$) have zero loss; semi-hard and hard ones
#   are active.
# - Batch-all averages over the active triplets and reports `fraction_positive`;
#   averaging over all valid triplets shrinks the loss by exactly that fraction.
# - Batch-hard takes the hardest positive *among the positives*; semi-hard takes, per
#   pair, the closest negative beyond the positive; soft batch-hard replaces the
#   hinge by a softplus.
# - Batch-all needs counts, not triplets: putting each negative in a bucket among the
#   anchor's $K - 1$ sorted thresholds gives every $c_{an}$ and $c_{ap}$ in
#   $O(B^2 \log K)$, and the loss is one weighted sum of the distances.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`.

# %%
from tripletlab.exercises import LABELS_05, X_05, check

# %% [markdown]
# **Exercise 1 (formula).** How many valid triplets does a batch of $P = 4$ classes
# with $K = 3$ examples each hold? Use the formula, then assign the count to
# `n_valid_ex`.

# %% tags=["solution"]
batch_ex, k_ex = 4 * 3, 3
n_valid_ex = batch_ex * (k_ex - 1) * (batch_ex - k_ex)

# %%
check("05.n_valid", n_valid_ex)

# %% [markdown]
# Exercises 2 to 4 use six 1-D embeddings and their labels; anchor 0 sits at $0$, so
# its distances are the embeddings themselves.

# %%
x_ex, labels_ex = X_05.copy(), LABELS_05.copy()  # the batch the checks use
d0_ex = tl.pairwise_distances(x_ex)[0]
print("distances from anchor 0:", d0_ex.round(2).tolist(), " labels:", labels_ex.tolist())

# %% [markdown]
# **Exercise 2 (find the bug).** The shortcut of the section "The hardest positive
# must have the anchor's label" takes the largest distance of each row as the hardest
# positive. For these six points, which anchors does it give a point of *another*
# label? Assign the list of their indices to `shortcut_wrong_ex`.

# %% tags=["solution"]
d_ex = tl.pairwise_distances(x_ex)
farthest_ex = d_ex.argmax(axis=1)  # the shortcut (the diagonal is 0, never the largest)
shortcut_wrong_ex = np.flatnonzero(labels_ex[farthest_ex] != labels_ex).tolist()

# %%
check("05.shortcut_anchors", shortcut_wrong_ex)

# %% [markdown]
# **Exercise 3.** What is anchor 0's batch-hard loss with the margin $0.2$? Assign it
# to `anchor_loss_ex`.

# %% tags=["solution"]
hardest_positive_ex = np.where(tl.positive_mask(labels_ex)[0], d0_ex, -np.inf).max()
hardest_negative_ex = np.where(tl.negative_mask(labels_ex)[0], d0_ex, np.inf).min()
anchor_loss_ex = max(hardest_positive_ex - hardest_negative_ex + 0.2, 0.0)

# %%
check("05.anchor_loss", anchor_loss_ex)

# %% [markdown]
# **Exercise 4 (implement).** Write `batch_hard(distances, labels, margin)`: from a
# $(B, B)$ distance matrix, the batch-hard loss (the mean over the $B$ anchors), using
# `tl.positive_mask` and `tl.negative_mask` and not `tl.batch_hard_triplet_loss`. The
# check runs it on these six points and on two random batches.


# %% tags=["solution"]
def batch_hard(distances, labels, margin):
    """mean_a max(max_{p in P(a)} d[a, p] - min_{n in N(a)} d[a, n] + margin, 0)."""
    hardest_p = np.where(tl.positive_mask(labels), distances, -np.inf).max(axis=1)
    hardest_n = np.where(tl.negative_mask(labels), distances, np.inf).min(axis=1)
    return float(np.maximum(hardest_p - hardest_n + margin, 0.0).mean())


# %%
check("05.batch_hard", batch_hard)
