"""tripletlab: similarity learning, taught by computing.

Three backends with the same names and signatures::

    from tripletlab import numpy as tl       # the readable float64 reference
    from tripletlab import torch as tl       # PyTorch, autograd-friendly
    from tripletlab import tensorflow as tl  # TensorFlow, tf.function-friendly

Importing ``tripletlab`` itself loads neither PyTorch nor TensorFlow; a backend is
imported only when you ask for it.
"""

__version__ = "0.1.0"

BACKENDS = ("numpy", "torch", "tensorflow")
"""Backend module names, in the order the course introduces them."""

PUBLIC_NAMES = (
    "l2_normalize",
    "cosine_similarity",
    "cosine_distance",
    "similarity_matrix",
    "pairwise_distances",
    "triplet_loss",
    "mean_negative",
    "closest_negative",
    "modified_triplet_loss",
    "contrastive_loss",
    "positive_mask",
    "negative_mask",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "batch_semihard_triplet_loss",
    "info_nce_loss",
    "supervised_contrastive_loss",
)
"""The names every backend exposes with identical signatures (see docs/contract.md)."""

FRAMEWORK_NAMES = ("SiameseHead",)
"""Trainable models, in the PyTorch and TensorFlow backends only."""
