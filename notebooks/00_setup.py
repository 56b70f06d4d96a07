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
# # 00 · Setting up the course
#
# This course teaches similarity learning by computing: every number in the text is
# produced by a cell, and the cell checks it. It is backed by a small Python package,
# `tripletlab`, with the same functions written three times:
#
# | backend | import | used for |
# |---|---|---|
# | NumPy | `from tripletlab import numpy as tl` | the readable reference, in float64 |
# | PyTorch | `from tripletlab import torch as tl` | training, with autograd |
# | TensorFlow | `from tripletlab import tensorflow as tl` | training, with Keras |
#
# This first notebook checks your installation: versions, the device, seeds, and the
# three backends agreeing on one number.

# %% [markdown]
# ## The first cell of every notebook
#
# TensorFlow prints start-up messages on stderr and, by default, lets oneDNN reorder
# floating-point sums. Both variables must be set *before* TensorFlow is imported, so
# every notebook starts with them. PyTorch is imported before TensorFlow (the order
# Keras' own tests use). `seed_everything` then seeds Python, NumPy, PyTorch and
# TensorFlow, and returns the NumPy generator the notebook draws from.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow: no start-up chatter
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # ... and the same sums on every run

import platform

import numpy as np
import torch

# isort: split
import keras
import tensorflow as tf

import tripletlab
from tripletlab import device
from tripletlab.data import seed_everything

rng = seed_everything(0)
print(device.describe())

# %% [markdown]
# The line above names the device each framework computes on: `cpu` here unless your
# machine has a GPU that PyTorch or TensorFlow can see. `tripletlab.device` picks the
# GPU when there is one: `try_gpu()` gives PyTorch's device, `tf_device()` gives
# TensorFlow's (and turns on memory growth, so TensorFlow does not reserve all GPU
# memory at start-up).

# %% [markdown]
# ## Versions
#
# The course is tested with the exact versions in `constraints.txt`; `make setup`
# installs them into `.venv`.

# %%
versions = {
    "python": platform.python_version(),
    "numpy": np.__version__,
    "torch": torch.__version__,
    "tensorflow": tf.__version__,
    "keras": keras.__version__,
    "tripletlab": tripletlab.__version__,
}
for name, version in versions.items():
    print(f"{name:<11} version {version}")
assert int(keras.__version__.split(".")[0]) >= 3, "the course expects Keras 3"

# %% [markdown]
# ## Where tensors live
#
# Create tensors on the chosen device and keep them there; the package never moves
# them.

# %%
torch_device = device.try_gpu()
x = torch.ones(2, 3, device=torch_device)
print("device:", x.device)
with tf.device(device.tf_device()):
    y = tf.ones((2, 3))
print("device:", y.device)

# %% [markdown]
# ## Seeds make runs repeat
#
# Seeding the same value twice must give the same draws from every generator.
# This is what lets `make test` compare each notebook's printed numbers with the
# committed ones.


# %%
def draws(seed):
    rng = seed_everything(seed)
    return {
        "numpy": rng.normal(size=3),
        "torch": torch.randn(3).numpy(),
        "tensorflow": tf.random.normal((3,)).numpy(),
    }


first, second, other = draws(0), draws(0), draws(1)
for name, values in first.items():
    assert np.array_equal(values, second[name]) and not np.array_equal(values, other[name])
    print(f"{name:<11} {np.array2string(values, precision=4)}")

# %% [markdown]
# ## One function, three backends
#
# The cosine similarity of $[1, 2, 3]$ and $[1, 2, 3.5]$ is $0.9974$ (notebook 02
# derives it). Each backend takes its own array type and returns the same number:

# %%
from tripletlab import numpy as tl_np
from tripletlab import tensorflow as tl_tf
from tripletlab import torch as tl_torch

a, b = [1.0, 2.0, 3.0], [1.0, 2.0, 3.5]
results = {
    "numpy": float(tl_np.cosine_similarity(np.array(a), np.array(b))),
    "torch": float(tl_torch.cosine_similarity(torch.tensor(a), torch.tensor(b))),
    "tensorflow": float(tl_tf.cosine_similarity(tf.constant(a), tf.constant(b))),
}
for name, value in results.items():
    print(f"{name:<11} {value:.4f}")
assert {round(v, 4) for v in results.values()} == {0.9974}

# %% [markdown]
# ## How to run the course
#
# From the top folder of the repository:
#
# | command | what it does |
# |---|---|
# | `make lab` | JupyterLab on the `notebooks/` folder, on 127.0.0.1 |
# | `make notes` | HTML pages in `build/notes/`, from the committed outputs (`EXECUTE=1`: re-run) |
# | `make test` | ruff, tests, pair check, nbval; 02, 04, 05, 07, 08, 09 again as other CPUs |
# | `make sync` | after editing a notebook's `.py` source: rebuilds and re-executes its `.ipynb` |
#
# Each notebook is a pair: `NN_topic.py` is the source you edit (plain Python with
# `# %%` cell markers, readable in a diff), `NN_topic.ipynb` is generated from it and
# committed with its outputs. `make test` fails if the two disagree, and re-runs every
# notebook to check that it still prints exactly what is committed.
#
# ## The course
#
# 1. **01 · Cosine distance from L2**: how squared L2 distance and cosine distance are
#    related (with the factor 2 that is easy to lose), and what it means for a margin.
# 2. **02 · Similarity matrices**: cosine similarity of two vectors, then of two
#    batches, by loops and by normalize-then-dot, in NumPy, PyTorch and TensorFlow.
