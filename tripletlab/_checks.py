"""Input validation shared by the three backends.

Pure Python on shapes (tuples whose entries are ints, or None for a dimension that is
unknown while TensorFlow traces a graph) and on names: no framework is imported here.
Every error is a ``ValueError`` that names the argument, says what was expected and
what was received (the wording follows einops: expected, got, allowed values).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

METRICS = ("euclidean", "sqeuclidean", "cosine", "l1")
"""Metrics of ``pairwise_distances``, in the order the course introduces them."""

COSINE_EPS = 1e-8
"""Rows whose L2 norm is at most this count as zero vectors in every cosine function."""

Shape = Sequence[int | None]


def shape_str(shape: Shape) -> str:
    """``(4, None)`` -> ``'(4, ?)'``: a shape as the error messages print it."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def check_rank(
    name: str,
    shape: Shape,
    *,
    rank: int | None = None,
    min_rank: int = 0,
    what: str | None = None,
) -> None:
    """Raise if ``shape`` has not exactly ``rank`` (or at least ``min_rank``) dimensions.

    ``what`` says what the argument is in the message (``"a vector (B,) of 0/1 pair
    labels"``); by default a matrix is one row per example and a vector one feature axis.
    """
    if rank is not None and len(shape) != rank:
        what = what or {1: "a vector (D,)", 2: "a matrix (B, D), one row per example"}.get(
            rank, f"a {rank}-D array"
        )
        raise ValueError(f"{name} must be {what}; got shape {shape_str(shape)}")
    if len(shape) < min_rank:
        raise ValueError(
            f"{name} must have at least {min_rank} dimension(s), features on the last axis; "
            f"got shape {shape_str(shape)}"
        )


def check_features(name: str, shape: Shape) -> None:
    """Raise if the feature (last) axis is empty: a 0-dimensional vector has no direction."""
    if shape[-1] == 0:
        raise ValueError(f"{name} must have at least one feature; got shape {shape_str(shape)}")


def check_same_features(a_name: str, a_shape: Shape, b_name: str, b_shape: Shape) -> None:
    """Raise if two arrays disagree on the feature (last) axis."""
    da, db = a_shape[-1], b_shape[-1]
    if da is not None and db is not None and da != db:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of features (last axis); "
            f"got {a_name} {shape_str(a_shape)} and {b_name} {shape_str(b_shape)}"
        )


def check_broadcast(a_name: str, a_shape: Shape, b_name: str, b_shape: Shape) -> None:
    """Raise if the leading (batch) axes of two arrays do not broadcast against each other."""
    check_same_features(a_name, a_shape, b_name, b_shape)
    for da, db in zip(reversed(a_shape[:-1]), reversed(b_shape[:-1]), strict=False):
        if da is None or db is None or da == db or da == 1 or db == 1:
            continue
        raise ValueError(
            f"{a_name} and {b_name} must broadcast over their leading axes; "
            f"got {a_name} {shape_str(a_shape)} and {b_name} {shape_str(b_shape)}"
        )


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of the strings ``allowed``, else raise naming them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_metric(metric: object, allowed: Sequence[str] = METRICS) -> str:
    """Return ``metric`` if it is one of ``allowed``, else raise naming the allowed values."""
    return check_choice("metric", metric, allowed)


def dtype_kind(dtype: object) -> str:
    """The NumPy kind letter (``b i u f c``, else ``O``) of a NumPy, PyTorch or TensorFlow
    dtype, read from its name: no framework is imported."""
    kind = getattr(dtype, "kind", None)  # NumPy
    if isinstance(kind, str) and len(kind) == 1:
        return kind
    name = str(getattr(dtype, "name", None) or dtype).removeprefix("torch.")
    for prefix, kind in (("bool", "b"), ("complex", "c"), ("uint", "u"), ("int", "i")):
        if name.startswith(prefix):
            return kind
    return "f" if name.startswith(("float", "bfloat", "half", "double")) else "O"


def _scalar(value: object, kinds: str):
    """``value`` as a Python number if it is a real scalar of one of the dtype ``kinds``,
    else None.

    A real scalar is a Python ``int`` or ``float`` (``bool`` only for kind ``b``), a NumPy
    scalar, or a 0-d array or tensor of NumPy, PyTorch or TensorFlow (read with
    ``float()``, ``int()`` or ``bool()``; eager tensors only).
    """
    if isinstance(value, bool):
        return value if "b" in kinds else None
    if isinstance(value, int | float):  # also torch.compile's symbolic numbers
        kind = "i" if isinstance(value, int) else "f"
        return value if kind in kinds else None
    if isinstance(value, numbers.Real) and not hasattr(value, "dtype"):
        kind = "i" if isinstance(value, numbers.Integral) else "f"
        return (int(value) if kind == "i" else float(value)) if kind in kinds else None
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    try:
        is_scalar = shape is not None and len(shape) == 0
    except TypeError:  # a TensorFlow shape of unknown rank
        return None
    kind = dtype_kind(dtype) if dtype is not None else "O"
    if not is_scalar or kind not in kinds:
        return None
    convert = {"b": bool, "i": int, "u": int, "f": float}[kind]
    try:
        return convert(value)
    except Exception:  # a symbolic (graph) tensor has no value yet
        return None


def check_number(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real scalar ``>= minimum`` (``>`` if
    ``strict``); a Python or NumPy number, or a 0-d array or tensor (see ``_scalar``)."""
    number = _scalar(value, "iuf")
    if number is None:
        raise ValueError(
            f"{name} must be a real number {_bound(minimum, strict)} (a Python or NumPy "
            f"scalar, or a 0-d array or tensor); got {value!r}"
        )
    # comparisons, not math.isfinite: torch.compile(dynamic=True) traces a float argument
    # as a symbolic float, which math.isfinite cannot take (NaN fails both comparisons);
    # for the same reason the message is only formatted when it is raised
    if not ((minimum < number if strict else minimum <= number) and number < math.inf):
        raise ValueError(
            f"{name} must be a finite number {_bound(minimum, strict)}; got {value!r}"
        )
    return float(number)


def _bound(minimum: float, strict: bool) -> str:
    return f"> {minimum:g}" if strict else f">= {minimum:g}"


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (used for ``eps``)."""
    return check_number(name, value, strict=True)


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    """Return ``value`` as an int if it is an integer scalar ``>= minimum``: a Python or
    NumPy integer or a 0-d integer array or tensor; not a bool, not a float."""
    number = _scalar(value, "iu")
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(number)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` as a bool if it is one (Python, NumPy, or a 0-d boolean array or
    tensor); anything else, ``"no"`` or ``1`` included, is an error, not a truth value."""
    flag = _scalar(value, "b")
    if flag is None:
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(flag)


def not_an_array_error(name: str, value: object, error: Exception) -> ValueError:
    """The error for an input that cannot be read as an array at all (a ragged list, an
    object whose ``__array__`` fails, strings where a framework wants numbers)."""
    return ValueError(
        f"{name} must be an array of real numbers; got {type(value).__name__} that cannot "
        f"be converted ({type(error).__name__}: {str(error)[:80]})"
    )


def overflow_error(names: str, dtype: object) -> ValueError:
    """The error for a loss that is not finite because a distance overflows ``dtype``."""
    return ValueError(
        f"{names}: the loss is not finite in {dtype} because a distance between the rows "
        "overflows that dtype; scale the inputs down (or use float64)"
    )


def not_finite_error(name: str) -> ValueError:
    """The error every backend raises for NaN or inf in an input (eager execution only)."""
    return ValueError(f"{name} must be finite; it contains NaN or inf")


def check_dtype_kind(name: str, kind: str, dtype: object) -> None:
    """Raise unless ``kind`` is a NumPy dtype kind of real numbers: ``b``, ``i``, ``u``, ``f``."""
    if kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {dtype}")


REDUCTIONS = ("none", "mean", "sum")
"""Reductions of the per-example losses: keep them, average them, add them up."""


def check_reduction(reduction: object) -> str:
    """Return ``reduction`` if it is one of ``none``, ``mean``, ``sum``, else raise."""
    return check_choice("reduction", reduction, REDUCTIONS)


def check_margin(margin: object) -> float:
    """Return ``margin`` as a float if it is a finite real number >= 0, else raise."""
    return check_number("margin", margin)


def check_temperature(temperature: object) -> float:
    """Return ``temperature`` as a float if it is a finite real number > 0, else raise."""
    return check_number("temperature", temperature, strict=True)


def check_temperature_in(temperature: float, tiny: float, dtype: object) -> None:
    """Raise unless ``temperature`` is at least ``tiny``, the smallest normal number of
    the dtype the loss is computed in (below it, the temperature rounds to 0 there)."""
    if temperature < tiny:
        raise ValueError(
            f"temperature must be at least {tiny:g}, the smallest normal number of {dtype} "
            f"(the dtype the loss is computed in); got {temperature!r}"
        )


def temperature_overflow_error(dtype: object) -> ValueError:
    """The error for a softmax loss that is not finite in ``dtype``: its logits, cosines
    divided by the temperature, reach ``2 / temperature``."""
    return ValueError(
        f"temperature: the loss is not finite in {dtype} because the logits (cosines / "
        "temperature) overflow that dtype; use a larger temperature (or float64)"
    )


def check_same_shape(names: Sequence[str], shapes: Sequence[Shape]) -> None:
    """Raise unless all arrays have the same shape (anchor, positive, negative rows)."""
    known = [tuple(s) for s in shapes]
    if any(len(s) != len(known[0]) for s in known) or any(
        a is not None and b is not None and a != b
        for s in known
        for a, b in zip(s, known[0], strict=True)
    ):
        got = ", ".join(f"{n} {shape_str(s)}" for n, s in zip(names, known, strict=True))
        raise ValueError(f"{', '.join(names)} must have the same shape; got {got}")


def check_labels(name: str, shape: Shape, kind: str, dtype: object, batch: int | None) -> None:
    """Raise unless ``name`` is a vector of integer class labels, one per embedding row."""
    if len(shape) != 1:
        raise ValueError(
            f"{name} must be a vector (B,) of class ids; got shape {shape_str(shape)}"
        )
    if kind not in "iu" and not (shape[0] == 0 and kind == "f"):  # [] is float to NumPy
        raise ValueError(f"{name} must hold integer class ids; got dtype {dtype}")
    if shape[0] is not None and batch is not None and shape[0] != batch:
        raise ValueError(
            f"{name} must have one entry per embedding row: expected length {batch}, "
            f"got {shape[0]}"
        )


def check_square(name: str, shape: Shape) -> None:
    """Raise unless ``shape`` is ``(B, B)`` with ``B != 1``: each row needs a negative
    (``B = 0`` has no row)."""
    rows, cols = shape
    if rows is not None and cols is not None and rows != cols:
        raise ValueError(f"{name} must be a square (B, B) matrix; got shape {shape_str(shape)}")
    if rows == 1:
        raise ValueError(
            f"{name} must be at least 2 x 2: each row needs a negative; got {shape_str(shape)}"
        )


SAME_VECTOR = "a vector (B,) of pair labels, 1 for the same class and 0 for different ones"
"""How the messages describe ``same``, the pair labels of the contrastive loss."""


def not_binary_error(name: str) -> ValueError:
    """The error for pair labels that are not all 0 or 1."""
    return ValueError(f"{name} must hold 0 (different class) or 1 (same class) only")
