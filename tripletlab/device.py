"""Pick the GPU when there is one, for PyTorch and for TensorFlow.

Nothing here imports a framework at module level: each function imports the one it
is about, so ``import tripletlab.device`` stays cheap.
"""

from __future__ import annotations

import sys


def try_gpu(i: int = 0):
    """The ``torch.device`` of GPU ``i`` if PyTorch sees one, else ``torch.device('cpu')``.

    Put tensors and models there: ``x = torch.randn(8, 4, device=try_gpu())``.
    """
    import torch

    if torch.cuda.is_available() and i < torch.cuda.device_count():
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def tf_device(i: int = 0) -> str:
    """``'/GPU:i'`` if TensorFlow sees a GPU, else ``'/CPU:0'``; use as ``with tf.device(...)``.

    Turns on memory growth for every GPU first (TensorFlow otherwise reserves all GPU
    memory at start-up), which must happen before TensorFlow touches a GPU.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting can no longer change
            pass
    return f"/GPU:{i}" if i < len(gpus) else "/CPU:0"


def full_float32() -> None:
    """Turn off TF32 in every framework already imported: float32 stays float32 on a GPU.

    On NVIDIA GPUs since Ampere, TensorFlow computes float32 matrix products and
    convolutions in TF32 by default (a 10-bit mantissa, about 3 decimal digits), and
    PyTorch does so for convolutions (``torch.backends.cudnn.allow_tf32``). Distances
    then differ from a CPU's by about 1e-3, enough to change which triplets are mined.
    The notebooks call this after their imports; the tests' ``conftest.py`` does the
    same. Nothing changes on a CPU.
    """
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].config.experimental.enable_tensor_float_32_execution(False)


def describe() -> str:
    """One line naming the device of each framework that is already imported.

    >>> describe()  # doctest: +SKIP
    'device: torch cpu | tensorflow /CPU:0'
    """
    parts = []
    if "torch" in sys.modules:
        dev = try_gpu()
        name = f" ({sys.modules['torch'].cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        parts.append(f"torch {dev}{name}")
    if "tensorflow" in sys.modules:
        parts.append(f"tensorflow {tf_device()}")
    return "device: " + (" | ".join(parts) if parts else "numpy cpu")
