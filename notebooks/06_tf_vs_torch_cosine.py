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
# # 06 · Cosine losses in TensorFlow and PyTorch
#
# "Cosine similarity" in a framework can mean the similarity, minus the similarity,
# one minus it, or one minus a plain dot product; over the last axis or over axis 1;
# averaged over the batch or not; with an epsilon that decides what happens at a zero
# vector. The question that started this course (how to use cosine similarity in a
# triplet loss, in TensorFlow) comes from exactly this confusion. This notebook puts
# every cosine function of Keras, TensorFlow and PyTorch on the same inputs, measures
# what each returns and what gradient it gives, and shows how to get the same triplet
# loss, value and gradients, in both frameworks.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import numpy as np
import torch
import torch.nn.functional as F

# isort: split
import keras
import tensorflow as tf

from tripletlab import device
from tripletlab import numpy as tl
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch
from tripletlab.data import seed_everything

rng = seed_everything(0)
print(device.describe())


def print_table(header, rows, width=10):
    """Rows of numbers (or strings) under a header, numbers with 4 decimals."""
    cell = lambda v: f"{v:>{width}.4f}" if isinstance(v, float) else f"{v!s:>{width}}"  # noqa: E731
    print(f"{header[0]:<14}" + "".join(f"{h:>{width}}" for h in header[1:]))
    for row in rows:
        print(f"{row[0]:<14}" + "".join(cell(v) for v in row[1:]))


# %% [markdown]
# ## The inputs
#
# Pairs of vectors $(a, b)$, one pair per row: similar, identical, opposite,
# orthogonal, a zero vector, and the "similar" pair again, first scaled up (not unit
# norm) and then normalized to unit norm.

# %%
pairs = {
    "similar": ([1.0, 2.0, 3.0], [1.0, 2.0, 3.5]),
    "identical": ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
    "opposite": ([1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]),
    "orthogonal": ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
    "zero vector": ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),
    "scaled x3": ([3.0, 6.0, 9.0], [3.0, 6.0, 10.5]),
}
A = np.array([a for a, _ in pairs.values()])
B = np.array([b for _, b in pairs.values()])
unit = tl.l2_normalize(np.stack([A[0], B[0]]))
A = np.vstack([A, unit[:1]])
B = np.vstack([B, unit[1:]])
names = [*pairs, "unit norm"]
cos = tl.cosine_similarity(A, B)  # the reference: + cos, 0 at a zero vector
print_table(["pair", "cos(a, b)"], [[n, float(c)] for n, c in zip(names, cos, strict=True)])

# %% [markdown]
# ## Every function on the same pairs
#
# Each column is one function, called as its documentation shows, one value per pair
# (`reduction="none"` where a loss would otherwise average over the batch). The
# PyTorch embedding loss is shown for $y = +1$ (same) and for $y = -1$ (different,
# margin $0.5$).

# %%
At, Bt = torch.tensor(A), torch.tensor(B)
ones = torch.ones(len(A), dtype=torch.float64)


def keras_metric_per_row(a, b):
    values = []
    for row_a, row_b in zip(a, b, strict=True):
        metric = keras.metrics.CosineSimilarity()
        metric.update_state(row_a[None], row_b[None])
        values.append(float(metric.result()))
    return np.array(values)


columns = {
    "keras Loss": keras.losses.CosineSimilarity(reduction=None)(A, B).numpy(),
    "keras fn": keras.losses.cosine_similarity(A, B).numpy(),
    "keras metric": keras_metric_per_row(A, B),
    "tf.v1 dist": tf.compat.v1.losses.cosine_distance(A, B, axis=1, reduction="none")
    .numpy()
    .ravel(),
    "torch F": F.cosine_similarity(At, Bt).numpy(),
    "torch nn": torch.nn.CosineSimilarity()(At, Bt).numpy(),
    "CEL y=+1": torch.nn.CosineEmbeddingLoss(reduction="none")(At, Bt, ones).numpy(),
    "CEL y=-1": torch.nn.CosineEmbeddingLoss(0.5, reduction="none")(At, Bt, -ones).numpy(),
    "tl.np cos": tl.cosine_similarity(A, B),
    "tl.torch d": tl_torch.cosine_distance(At, Bt).numpy(),
    "tl.tf d": tl_tf.cosine_distance(A, B).numpy(),
}
print_table(
    ["pair", *columns],
    [[n, *(float(v[i]) for v in columns.values())] for i, n in enumerate(names)],
    width=13,
)

# %% [markdown]
# Read down the columns against $\cos(a, b)$ from the first table:

# %%
checks = {
    "keras Loss = -cos": np.allclose(columns["keras Loss"], -cos, atol=1e-6),
    "keras fn = -cos": np.allclose(columns["keras fn"], -cos, atol=1e-6),
    "keras metric = +cos": np.allclose(columns["keras metric"], cos, atol=1e-6),
    "tf.v1 dist = 1 - a.b": np.allclose(columns["tf.v1 dist"], 1 - np.sum(A * B, 1), atol=1e-6),
    "tf.v1 dist = 1 - cos": np.allclose(columns["tf.v1 dist"], 1 - cos, atol=1e-6),
    "torch F = torch nn = +cos": np.allclose(columns["torch F"], cos)
    and np.allclose(columns["torch nn"], cos),
    "CEL y=+1 = 1 - cos": np.allclose(columns["CEL y=+1"], 1 - cos),
    "CEL y=-1 = max(0, cos - 0.5)": np.allclose(columns["CEL y=-1"], np.maximum(cos - 0.5, 0)),
    "tl cosine_distance = 1 - cos": np.allclose(columns["tl.torch d"], 1 - cos)
    and np.allclose(columns["tl.tf d"], 1 - cos),
}
for claim, holds in checks.items():
    print(f"{claim:<32} {holds}")
assert list(checks.values()) == [True, True, True, True, False, True, True, True, True]
v1_far = dict(zip(names, columns["tf.v1 dist"], strict=True))
print(
    f"tf.v1 dist on 'similar': {v1_far['similar']:.1f}, on 'scaled x3': {v1_far['scaled x3']:.1f}"
)
assert v1_far["similar"] == -14.5 and v1_far["scaled x3"] < -100

# %% [markdown]
# The differences, measured:
#
# - **Sign.** Keras' `CosineSimilarity` *loss* and `cosine_similarity` *function*
#   return $-\cos$ (a loss to minimise); Keras' *metric* of the same name returns
#   $+\cos$; PyTorch's `cosine_similarity` returns $+\cos$.
# - **A distance that is not a cosine distance.** `tf.compat.v1.losses.cosine_distance`
#   is $1 - a \cdot b$, with no division by the norms: $-14.5$ on the "similar" pair
#   and below $-100$ on its scaled copy. It equals $1 - \cos$ only on the unit-norm
#   row, which is why it must be fed normalized vectors.
# - **Embedding loss.** `CosineEmbeddingLoss` is $1 - \cos$ for $y = +1$ and
#   $\max(0, \cos - \text{margin})$ for $y = -1$.
# - **Zero vector.** Every function returns a finite value there, but not the same
#   one: $0$ for the similarities ($-0$ for Keras), $1$ for the distances.
#
# ## Axes and reductions
#
# PyTorch's cosine functions reduce over `dim=1` by default; Keras over `axis=-1`.
# For a batch of rows (2-D) that is the same axis; for sequences, shape
# $(B, T, D)$, it is not:

# %%
x = rng.normal(size=(2, 5, 4))
y = x + rng.normal(scale=0.1, size=x.shape)
torch_shape = tuple(F.cosine_similarity(torch.tensor(x), torch.tensor(y)).shape)
keras_shape = tuple(keras.losses.cosine_similarity(x, y).shape)
print("input (B, T, D) =", x.shape)
print("torch F.cosine_similarity, default dim=1:", torch_shape, "(reduces T)")
print("keras cosine_similarity, default axis=-1:", keras_shape, "(reduces D)")
same_as_keras = F.cosine_similarity(torch.tensor(x), torch.tensor(y), dim=-1).numpy()
minus_keras = -keras.losses.cosine_similarity(x, y).numpy()
print("torch with dim=-1 equals -keras:", np.allclose(same_as_keras, minus_keras, atol=1e-6))
assert torch_shape == (2, 4) and keras_shape == (2, 5)

# %% [markdown]
# The reductions over a batch, compared with the per-row values above:

# %%
reductions = {
    "keras CosineSimilarity()": (
        float(keras.losses.CosineSimilarity()(A, B)),
        "mean",
        float(np.mean(columns["keras Loss"])),
    ),
    "tf.v1 cosine_distance": (
        float(tf.compat.v1.losses.cosine_distance(A, B, axis=1)),
        "mean",
        float(np.mean(columns["tf.v1 dist"])),
    ),
    "torch CosineEmbeddingLoss()": (
        float(torch.nn.CosineEmbeddingLoss()(At, Bt, ones)),
        "mean",
        float(np.mean(columns["CEL y=+1"])),
    ),
}
for name, (value, kind, expected) in reductions.items():
    print(f"{name:<28} {value:9.4f}  = the {kind} of the rows ({expected:.4f})")
    assert np.isclose(value, expected, atol=1e-6)

# %% [markdown]
# ## Gradients at a zero vector
#
# The cosine is not differentiable at a zero vector, and each framework handles it
# differently. The cosine written the direct way, with `tf.norm` (as the forum
# answer that started this course writes it), gives NaN: the gradient of
# $\lVert a \rVert$ at $0$ is $0/0$. PyTorch clamps the norm at $\epsilon = 10^{-8}$;
# Keras 3 computes $a / \lVert a \rVert$ as $a \cdot \min(1 / \lVert a \rVert,
# 1/\epsilon)$ with $\epsilon$ = `keras.backend.epsilon()` $= 10^{-7}$ (not the
# $10^{-12}$ on the squared norm of `tf.math.l2_normalize` and Keras 2). Both keep the
# gradient finite, and exactly $\pm \hat b / \epsilon$ at $a = 0$, with $\hat b$ the
# other vector normalized: of the order of one over that epsilon.
# tripletlab treats a row with norm at most $10^{-8}$ as a zero vector with a zero
# gradient:

# %%
zero, b = np.zeros((1, 3)), np.array([[1.0, 2.0, 3.0]])


def tf_grad(fn):
    v = tf.Variable(zero)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(fn(v, tf.constant(b)))
    return tape.gradient(out, v).numpy()


def torch_grad(fn):
    v = torch.tensor(zero, requires_grad=True)
    fn(v, torch.tensor(b)).sum().backward()
    return v.grad.numpy()


gradients = {
    "tf.norm formula": tf_grad(
        lambda u, w: tf.reduce_sum(u * w, -1) / tf.norm(u, axis=-1) / tf.norm(w, axis=-1)
    ),
    "keras cosine_similarity": tf_grad(keras.losses.cosine_similarity),
    "tf.v1 cosine_distance": tf_grad(
        lambda u, w: tf.compat.v1.losses.cosine_distance(u, w, axis=1)
    ),
    "torch F.cosine_similarity": torch_grad(F.cosine_similarity),
    "tripletlab.tensorflow": tf_grad(tl_tf.cosine_similarity),
    "tripletlab.torch": torch_grad(tl_torch.cosine_similarity),
}
for name, grad in gradients.items():
    size = "NaN" if np.isnan(grad).any() else f"{np.abs(grad).max():.0e}"
    print(f"{name:<26} largest |gradient| at the zero vector: {size}")
assert np.isnan(gradients["tf.norm formula"]).all()
unit_b = b / np.linalg.norm(b)
keras_eps = keras.backend.epsilon()
assert keras_eps == 1e-7
assert np.allclose(gradients["keras cosine_similarity"], -unit_b / keras_eps, rtol=1e-9)
assert np.allclose(gradients["torch F.cosine_similarity"], unit_b / 1e-8, rtol=1e-9)
assert np.array_equal(gradients["tf.v1 cosine_distance"], -b)  # d(1 - a.b)/da = -b
assert not np.any(gradients["tripletlab.tensorflow"]) and not np.any(gradients["tripletlab.torch"])

# %% [markdown]
# A single NaN gradient turns every weight into NaN at the next optimizer step; a
# gradient of $10^{7}$ (Keras) or $10^{8}$ (PyTorch) throws them far away. Zero
# vectors are rare in trained embeddings but common at initialisation, after a ReLU,
# and in padding.
#
# ## Triplet losses
#
# PyTorch has two triplet losses: `TripletMarginLoss` (euclidean distance, with an
# `eps` of $10^{-6}$ added inside the norm, and an optional `swap` that uses the
# closer of $d(a, n)$ and $d(p, n)$) and `TripletMarginWithDistanceLoss` (any
# distance function). Keras 3 has no triplet loss built in (its metric-learning loss
# is `keras.losses.Circle`, which works on the similarities of all pairs). On a random
# batch:

# %%
assert hasattr(keras.losses, "Circle") and not [n for n in dir(keras.losses) if "riplet" in n]
a, p, n = (rng.normal(size=(16, 8)) for _ in range(3))
ta, tp, tn = (torch.tensor(v) for v in (a, p, n))
margin = 0.5
cosine_distance = lambda u, v: 1.0 - F.cosine_similarity(u, v)  # noqa: E731
triplet = {
    "torch TripletMarginLoss": torch.nn.TripletMarginLoss(margin)(ta, tp, tn).item(),
    "torch ... swap=True": torch.nn.TripletMarginLoss(margin, swap=True)(ta, tp, tn).item(),
    "tl euclidean (torch)": tl_torch.triplet_loss(ta, tp, tn, margin, "euclidean").item(),
    "tl euclidean (tf)": float(tl_tf.triplet_loss(a, p, n, margin, "euclidean")),
    "torch WithDistance(cos)": torch.nn.TripletMarginWithDistanceLoss(
        distance_function=cosine_distance, margin=margin
    )(ta, tp, tn).item(),
    "tl cosine (torch)": tl_torch.triplet_loss(ta, tp, tn, margin, "cosine").item(),
    "tl cosine (tf)": float(tl_tf.triplet_loss(a, p, n, margin, "cosine")),
    "tl cosine (numpy)": float(tl.triplet_loss(a, p, n, margin, "cosine")),
}
for name, value in triplet.items():
    print(f"{name:<25} {value:.6f}")
assert abs(triplet["torch TripletMarginLoss"] - triplet["tl euclidean (torch)"]) < 1e-5
assert triplet["torch ... swap=True"] >= triplet["torch TripletMarginLoss"]
assert abs(triplet["torch WithDistance(cos)"] - triplet["tl cosine (numpy)"]) < 1e-12

# %% [markdown]
# `TripletMarginLoss` and tripletlab's euclidean triplet loss differ only by the `eps`
# inside PyTorch's norm (less than $10^{-5}$ here); `swap=True` can only raise the
# loss, since it takes the closer negative distance. With a cosine distance,
# `TripletMarginWithDistanceLoss` gives tripletlab's cosine triplet loss.
#
# ## The same cosine triplet loss, value and gradients, in both frameworks
#
# In PyTorch: `TripletMarginWithDistanceLoss` with $1 - $ `cosine_similarity`. In
# TensorFlow there is no built-in, and the pieces invite mistakes: Keras'
# `cosine_similarity` is $-\cos$, so the cosine distance is $1 +$ it. Written out,
# and compared with `tripletlab.torch` and `tripletlab.tensorflow` on the batch above:


# %%
def torch_builtin(a, p, n):
    loss = torch.nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance, margin=margin)
    return loss(a, p, n)


def tf_builtin(a, p, n):
    d_ap = 1.0 + keras.losses.cosine_similarity(a, p)  # keras: -cos
    d_an = 1.0 + keras.losses.cosine_similarity(a, n)
    return tf.reduce_mean(tf.nn.relu(d_ap - d_an + margin))


def torch_value_and_grads(fn):
    xs = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
    value = fn(*xs)
    return value.item(), [g.numpy() for g in torch.autograd.grad(value, xs)]


def tf_value_and_grads(fn):
    xs = [tf.Variable(v) for v in (a, p, n)]
    with tf.GradientTape() as tape:
        value = fn(*xs)
    return float(value), [g.numpy() for g in tape.gradient(value, xs)]


results = {
    "tripletlab.torch": torch_value_and_grads(
        lambda *x: tl_torch.triplet_loss(*x, margin, metric="cosine")
    ),
    "tripletlab.tensorflow": tf_value_and_grads(
        lambda *x: tl_tf.triplet_loss(*x, margin, metric="cosine")
    ),
    "torch built-in": torch_value_and_grads(torch_builtin),
    "tensorflow built-in": tf_value_and_grads(tf_builtin),
}
reference_value, reference_grads = results["tripletlab.torch"]
differences = {}
for name, (value, grads) in results.items():
    value_diff = abs(value - reference_value)
    grad_diff = max(np.abs(g - r).max() for g, r in zip(grads, reference_grads, strict=True))
    differences[name] = (value_diff, grad_diff)
    print(
        f"{name:<22} loss {value:.10f}   |value diff| < 1e-9: {value_diff < 1e-9}"
        f"   |gradient diff| < 1e-6: {grad_diff < 1e-6}"
    )
assert all(v < 1e-9 and g < 1e-6 for v, g in differences.values())

# %% [markdown]
# All four agree, in float64, to the bounds printed. The exact differences are
# rounding noise and depend on the machine's math libraries, so the next cell prints
# them for the curious, and the tests do not compare its output:

# %% tags=["nbval-ignore-output"]
for name, (value_diff, grad_diff) in differences.items():
    print(f"{name:<22} max |value diff| {value_diff:.1e}   max |gradient diff| {grad_diff:.1e}")
    assert value_diff < 1e-9 and grad_diff < 1e-6, name  # the bounds the text states

# %% [markdown]
# Keras 3 caps the inverse norm at $10^{7}$ and PyTorch clamps the norms at $10^{-8}$;
# away from zero vectors neither changes anything that training can notice.
#
# ## Which should I use
#
# A summary derived from the measurements above: for each cosine function, what it
# returns, whether it needs unit-norm inputs to mean what its name says, and the size
# of its gradient at a zero vector (the tf.v1 distance has a small one there only
# because it never divides by the norms).


# %%
def describe(values):
    """Which formula a column computes, found by comparing it with cos on the pairs."""
    for formula, expected in (
        ("+cos", cos),
        ("-cos", -cos),
        ("1 - cos", 1 - cos),
        ("1 - a.b", 1 - np.sum(A * B, 1)),
    ):
        if np.allclose(values, expected, atol=1e-6):
            return formula
    return "other"


summary = {
    "keras cosine_similarity": (describe(columns["keras fn"]), "keras cosine_similarity"),
    "keras metric": (describe(columns["keras metric"]), None),
    "tf.v1 cosine_distance": (describe(columns["tf.v1 dist"]), "tf.v1 cosine_distance"),
    "torch cosine_similarity": (describe(columns["torch F"]), "torch F.cosine_similarity"),
    "tl cosine_distance": (describe(columns["tl.torch d"]), "tripletlab.torch"),
}
gradient_size = {k: np.abs(v).max() for k, v in gradients.items()}
print(f"{'function':<24} {'returns':>8} {'needs unit norm':>16} {'zero-vector gradient':>22}")
for name, (formula, gradient_key) in summary.items():
    needs_unit = formula == "1 - a.b"
    if gradient_key is None:
        grad = "(a metric)"
    else:
        grad = "0" if gradient_size[gradient_key] == 0 else f"~{gradient_size[gradient_key]:.0e}"
    print(f"{name:<24} {formula:>8} {needs_unit!s:>16} {grad:>22}")
assert [f for f, _ in summary.values()] == ["-cos", "+cos", "1 - a.b", "+cos", "1 - cos"]

# %% [markdown]
# - For a **triplet loss with cosine distance**, use $1 - \cos$: in PyTorch,
#   `TripletMarginWithDistanceLoss` with `1 - F.cosine_similarity(a, b)`; in
#   TensorFlow, `1 + keras.losses.cosine_similarity(a, b)` (Keras' function is
#   $-\cos$); in either, `tripletlab`'s `triplet_loss(..., metric="cosine")`, which is
#   the same in both frameworks and has a zero gradient at zero vectors.
# - Do not use `tf.compat.v1.losses.cosine_distance` on raw embeddings: it is
#   $1 - a \cdot b$. Normalize first (`l2_normalize`), or use one of the above.
# - When reporting cosine similarity as a metric in Keras, `keras.metrics.CosineSimilarity`
#   is $+\cos$, while the loss of the same name is $-\cos$.
# - In PyTorch, pass `dim=-1` to `cosine_similarity` whenever the input has more than
#   two axes.
# - For unit-norm embeddings, a margin $m$ on squared L2 distance is a margin $m/2$ on
#   cosine distance (notebook 01).

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it, printing `pass`
# or `not yet` with a hint. In the learner copy (`make learner`) the answer cells hold
# a placeholder, `... # your code here`.

# %%
from tripletlab.exercises import check

# %% [markdown]
# **Exercise 1.** For two batches of rows `a` and `b` (2-D, not normalized), which of
# these give $1 - \cos$ per row? Assign the set of letters to `one_minus_cos_ex`, for
# example `{"A", "C"}`.
#
# - A: `keras.losses.cosine_similarity(a, b)`
# - B: `1 + keras.losses.cosine_similarity(a, b)`
# - C: `tf.compat.v1.losses.cosine_distance(a, b, axis=1, reduction="none")`
# - D: `1 - F.cosine_similarity(a, b)` (PyTorch)
# - E: `torch.nn.CosineEmbeddingLoss(reduction="none")(a, b, torch.ones(len(a)))`

# %% tags=["solution"]
one_minus_cos_ex = {"B", "D", "E"}  # A is -cos; C is 1 - a.b, 1 - cos only for unit rows

# %%
check("06.one_minus_cos", one_minus_cos_ex)

# %% [markdown]
# **Exercise 2 (find the bug).** To make pairs of embeddings similar, a colleague
# trains with `loss = -keras.losses.cosine_similarity(y_true, y_pred)`: "the
# similarity should go up, so I minimise its negative". Towards which cosine between
# `y_pred` and `y_true` does training drive each pair, $+1$ or $-1$? Check the sign of
# that loss on the "similar" pair $a = [1, 2, 3]$, $b = [1, 2, 3.5]$ first, then assign
# the cosine's limit ($+1$ or $-1$) to `negated_target_ex`.

# %% tags=["solution"]
negated_ex = float(-keras.losses.cosine_similarity([1.0, 2.0, 3.0], [1.0, 2.0, 3.5]))
print(f"-keras.losses.cosine_similarity on the similar pair: {negated_ex:+.4f} (= +cos)")
# Keras' function is already -cos; its negative is +cos, and minimising +cos drives the
# cosine down: the colleague pushes every pair apart
negated_target_ex = -1

# %%
check("06.negated_loss", negated_target_ex)
