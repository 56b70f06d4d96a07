"""Bad and edge-case input as one table: every row is one input given to one public
function or loss object, and states the one outcome that every backend which has that
function (``numpy``, ``torch``, ``tensorflow``) or loss object (``torch_losses``,
``keras_losses``) must give:

- ``Raises("labels")``: a ``ValueError`` whose message names the argument;
- ``Value(expected)``: a defined value (the numbers, the shape, optionally the dtype, and
  with ``grad="zeros"`` a gradient of zeros with the input's shape: a 0 still connected
  to the inputs).

A row fails if a backend raises another exception type, returns a NaN anywhere, or
gives another value. Where one family must differ by design (Keras hands its losses
float32 labels, so whole-number float labels are fine there), the row says so with an
override for that backend. Adding a decision is adding one line to ``ROWS``.

``observe`` and ``judge`` also run outside pytest: ``python tests/test_bad_input.py``
prints the table's size and each row's outcome, for comparing two versions.
"""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from backends import SKIPPED, TORCH_DEVICE, load, to_backend

from tripletlab import exercises

FUNCTION_BACKENDS = ("numpy", "torch", "tensorflow")
OBJECT_BACKENDS = ("torch_losses", "keras_losses")
BACKENDS = FUNCTION_BACKENDS + OBJECT_BACKENDS


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class A:
    """An array input, given to each backend as its own array type in ``dtype``."""

    value: Any
    dtype: str = "float64"


@dataclass(frozen=True)
class S:
    """A 0-d array or tensor of the backend (a hyperparameter given as a tensor)."""

    value: Any
    dtype: str = "float64"


def convert(backend: str, v, *, watch: list | None = None):
    """``v`` as ``backend`` takes it; ``A`` inputs appended to ``watch`` for a gradient."""
    if not isinstance(v, A | S):
        return v
    array = np.asarray(v.value, dtype=v.dtype)
    if backend == "numpy":
        return array
    if backend in ("torch", "torch_losses"):
        import torch

        out = torch.as_tensor(array)
        out = out.to(TORCH_DEVICE) if TORCH_DEVICE is not None else out
        if watch is not None and isinstance(v, A) and out.is_floating_point():
            out.requires_grad_(True)
            watch.append(out)
        return out
    import tensorflow as tf

    out = tf.constant(array)
    if watch is not None and isinstance(v, A) and out.dtype.is_floating:
        watch.append(out)
    return out


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Raises:
    """A ValueError whose message names ``name`` (a word of it), and matches ``match``."""

    name: str
    match: str | None = None


@dataclass(frozen=True)
class Value:
    """The value ``expected`` (a number, an array, or a tuple of them; ``SKIP`` entries
    are not compared), never NaN; ``dtype`` of every output where given (not for Keras,
    whose losses are float32 by policy); ``grad="zeros"``: connected, with zero gradient."""

    expected: Any
    dtype: str | None = None
    grad: str | None = None
    rtol: float = 1e-5
    atol: float = 1e-7


SKIP = object()


@dataclass(frozen=True)
class Row:
    """One input to the function ``fn`` (its NumPy reference name, or ``metrics.*`` /
    ``data.*`` for the NumPy-only modules), and the outcome every backend must give."""

    case: str
    fn: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    expect: Raises | Value = None
    overrides: dict = field(default_factory=dict)  # backend -> outcome
    only: tuple | None = None  # the backends the row applies to, if not all

    @property
    def id(self) -> str:
        return f"{self.fn}: {self.case}"


# --------------------------------------------------------------------------- calling


class NotApplicable(Exception):
    """The backend has no counterpart of the row's function."""


def _bind(fn: str, args, kwargs) -> dict:
    """The row's arguments by parameter name, defaults filled in (NumPy's signature)."""
    from tripletlab import numpy as tn

    bound = inspect.signature(getattr(tn, fn)).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _torch_object(fn: str, a: dict):
    """``(module, forward arguments)`` of ``tripletlab.torch_losses`` for a function call."""
    from tripletlab import torch_losses as tll

    mining = {"margin": a.get("margin"), "metric": a.get("metric")}
    if fn == "batch_all_triplet_loss":
        return tll.BatchAllTripletLoss(**mining), (a["embeddings"], a["labels"])
    if fn == "batch_hard_triplet_loss":
        module = tll.BatchHardTripletLoss(**mining, soft=a["soft"])
        return module, (a["embeddings"], a["labels"])
    if fn == "batch_semihard_triplet_loss":
        return tll.BatchSemiHardTripletLoss(**mining), (a["embeddings"], a["labels"])
    if fn == "triplet_loss":
        module = tll.TripletLoss(a["margin"], a["metric"], a["reduction"])
        return module, (a["anchor"], a["positive"], a["negative"])
    if fn == "contrastive_loss":
        return tll.ContrastiveLoss(a["margin"], a["reduction"]), (a["x1"], a["x2"], a["same"])
    if fn == "modified_triplet_loss":
        return tll.ModifiedTripletLoss(a["margin"], a["reduction"]), (a["scores"],)
    if fn == "info_nce_loss":
        module = tll.InfoNCELoss(a["temperature"], a["symmetric"], a["reduction"])
        return module, (a["queries"], a["keys"], a["labels"])
    if fn == "supervised_contrastive_loss":
        module = tll.SupervisedContrastiveLoss(a["temperature"])
        return module, (a["embeddings"], a["labels"])
    raise NotApplicable(fn)


_KERAS_REDUCTIONS = {"none": "none", "mean": "sum_over_batch_size", "sum": "sum"}


def _stack(parts):
    import tensorflow as tf

    try:
        return tf.stack(parts, axis=1)
    except Exception as error:  # shapes or dtypes Keras' (B, k, D) input cannot hold
        raise NotApplicable(f"cannot stack: {error}") from None


def _keras_object(fn: str, a: dict):
    """``(loss, y_true, y_pred)`` of ``tripletlab.keras_losses`` for a function call."""
    from tripletlab import keras_losses as kl

    mining = {"margin": a.get("margin"), "metric": a.get("metric")}
    if fn == "batch_all_triplet_loss":
        return kl.BatchAllTripletLoss(**mining), a["labels"], a["embeddings"]
    if fn == "batch_hard_triplet_loss":
        return kl.BatchHardTripletLoss(**mining, soft=a["soft"]), a["labels"], a["embeddings"]
    if fn == "batch_semihard_triplet_loss":
        return kl.BatchSemiHardTripletLoss(**mining), a["labels"], a["embeddings"]
    if fn == "triplet_loss":
        loss = kl.TripletLoss(
            a["margin"], a["metric"], reduction=_KERAS_REDUCTIONS.get(a["reduction"], "?")
        )
        y_pred = _stack([a["anchor"], a["positive"], a["negative"]])
        return loss, np.zeros(y_pred.shape[0], np.float32), y_pred
    if fn == "contrastive_loss":
        loss = kl.ContrastiveLoss(a["margin"], reduction=_KERAS_REDUCTIONS.get(a["reduction"]))
        return loss, a["same"], _stack([a["x1"], a["x2"]])
    if fn == "info_nce_loss":
        use_labels = a["labels"] is not None
        loss = kl.InfoNCELoss(
            a["temperature"],
            a["symmetric"],
            use_labels,
            reduction=_KERAS_REDUCTIONS.get(a["reduction"], "?"),
        )
        y_pred = _stack([a["queries"], a["keys"]])
        y_true = a["labels"] if use_labels else np.zeros(y_pred.shape[0], np.float32)
        return loss, y_true, y_pred
    if fn == "supervised_contrastive_loss":
        loss = kl.SupervisedContrastiveLoss(a["temperature"])
        return loss, a["labels"], a["embeddings"]
    raise NotApplicable(fn)


def call(row: Row, backend: str, args: tuple, kwargs: dict):
    """The row's call in ``backend`` on converted inputs: its outputs (a tuple for
    batch-all; Keras' batch-all gives its loss only, and ``SKIP`` for the fraction)."""
    import importlib

    if "." in row.fn:  # metrics.* and data.*, NumPy only; "Class:method" on a new object
        module_name, name = row.fn.split(".")
        module = importlib.import_module(f"tripletlab.{module_name}")
        if ":" in name:
            cls, method = name.split(":")
            return getattr(getattr(module, cls)(*args), method)(**kwargs)
        return getattr(module, name)(*args, **kwargs)
    if backend in FUNCTION_BACKENDS:
        return getattr(importlib.import_module(f"tripletlab.{backend}"), row.fn)(*args, **kwargs)
    bound = _bind(row.fn, args, kwargs)
    if backend == "torch_losses":
        module, inputs = _torch_object(row.fn, bound)
        loss = module(*inputs)
        return (loss, module.fraction_positive) if row.fn == MINING[0] else loss
    loss_fn, y_true, y_pred = _keras_object(row.fn, bound)
    loss = loss_fn(y_true, y_pred)
    return (loss, SKIP) if row.fn == MINING[0] else loss


def applies(row: Row, backend: str) -> bool:
    """Whether the row has a counterpart in ``backend`` (the table's size counts these)."""
    if row.only is not None:
        return backend in row.only
    if "." in row.fn:
        return backend == "numpy"
    if backend in FUNCTION_BACKENDS:
        return True
    if backend == "keras_losses" and row.fn == "modified_triplet_loss":
        return False  # Keras' version takes (B, 2, D) inputs, not a score matrix
    return row.fn in (
        "batch_all_triplet_loss",
        "batch_hard_triplet_loss",
        "batch_semihard_triplet_loss",
        "triplet_loss",
        "contrastive_loss",
        "modified_triplet_loss",
        "info_nce_loss",
        "supervised_contrastive_loss",
    )


def _numpy(x):
    if x is SKIP or x is None:
        return x
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def _dtype(x) -> str:
    dtype = getattr(x, "dtype", None)
    return getattr(dtype, "name", None) or str(dtype).replace("torch.", "")


def observe(row: Row, backend: str):
    """``("raises", exception, None)`` or ``("value", outputs, gradients)``; gradients
    (of the sum of the first output with respect to the float array inputs) where the
    row's expected value asks for them."""
    outcome = row.overrides.get(backend, row.expect)
    want_grad = isinstance(outcome, Value) and bool(outcome.grad) and backend != "numpy"
    watch: list = []
    try:
        args = tuple(convert(backend, v, watch=watch if want_grad else None) for v in row.args)
        kwargs = {k: convert(backend, v) for k, v in row.kwargs.items()}
        if not want_grad:
            return "value", call(row, backend, args, kwargs), None
        if backend in ("tensorflow", "keras_losses"):
            import tensorflow as tf

            with tf.GradientTape(persistent=True) as tape:
                for t in watch:
                    tape.watch(t)
                out = call(row, backend, args, kwargs)
                first = out[0] if isinstance(out, tuple) else out
                total = tf.reduce_sum(first)
            return "value", out, [tape.gradient(total, t) for t in watch]
        import torch

        out = call(row, backend, args, kwargs)
        first = out[0] if isinstance(out, tuple) else out
        return "value", out, torch.autograd.grad(first.sum(), watch, allow_unused=True)
    except NotApplicable:
        raise
    except Exception as error:
        return "raises", error, None


def judge(row: Row, backend: str, observed) -> str | None:
    """None if ``observed`` is the row's outcome in ``backend``, else what is wrong."""
    outcome = row.overrides.get(backend, row.expect)
    kind, out, grads = observed
    if isinstance(outcome, Raises):
        if kind != "raises":
            return f"expected a ValueError naming {outcome.name}, got a value: {_short(out)}"
        if type(out) is not ValueError:
            return f"expected a ValueError, got {type(out).__name__}: {_short(out)}"
        message = str(out)
        if not re.search(rf"(?<![\w]){re.escape(outcome.name)}(?![\w])", message):
            return f"the ValueError does not name {outcome.name}: {message}"
        if outcome.match and not re.search(outcome.match, message):
            return f"the ValueError does not match {outcome.match!r}: {message}"
        return None
    if kind == "raises":
        return f"expected a value, got {type(out).__name__}: {_short(out)}"
    outputs = out if isinstance(out, tuple) else (out,)
    expected = outcome.expected if isinstance(outcome.expected, tuple) else (outcome.expected,)
    if len(outputs) != len(expected):
        return f"expected {len(expected)} outputs, got {len(outputs)}"
    for got, want in zip(outputs, expected, strict=True):
        if got is SKIP or want is SKIP:
            continue
        if outcome.dtype and backend != "keras_losses" and _dtype(got) != outcome.dtype:
            return f"expected dtype {outcome.dtype}, got {_dtype(got)}"
        values = _numpy(got).astype(np.float64) if _numpy(got).dtype != bool else _numpy(got)
        if values.dtype != bool and np.isnan(values).any():
            return f"NaN in the result: {values}"
        want = np.asarray(want)
        if values.shape != want.shape:
            return f"expected shape {want.shape}, got {values.shape}: {values}"
        if not np.allclose(values, want, rtol=outcome.rtol, atol=outcome.atol):
            return f"expected {want}, got {values}"
    if outcome.grad and backend != "numpy":
        if not grads or any(g is None for g in grads):
            return "the result is not connected to the inputs (no gradient)"
        for g in grads:
            g = _numpy(g)
            if not np.isfinite(g).all() or (outcome.grad == "zeros" and np.any(g != 0)):
                return f"expected a gradient of zeros, got {g}"
    return None


def _short(x) -> str:
    return str(x).splitlines()[0][:120] if str(x) else type(x).__name__


# --------------------------------------------------------------------------- the table

NOT_KERAS = ("numpy", "torch", "tensorflow", "torch_losses")
E4 = [[0.0], [1.0], [3.0], [4.0]]  # hand-checkable: two classes on a line
L4 = [0, 0, 1, 1]
M = 1.5  # with this margin, on E4 and L4:
ALL_E4 = (0.5, 0.25)  # batch-all: triplets (1, 0, 2) and (2, 3, 1) active, hinge 0.5
HARD_E4 = 0.25  # batch-hard: anchors 1 and 2 at 0.5, anchors 0 and 3 at 0
SEMI_E4 = 0.25  # semi-hard: pairs (1, 0) and (2, 3) at 0.5
SOFT_E4 = float(np.mean(np.log1p(np.exp([-2.0, -1.0, -1.0, -2.0]))))  # gaps 1-3, 1-2, ...
MINING = ("batch_all_triplet_loss", "batch_hard_triplet_loss", "batch_semihard_triplet_loss")
E4_VALUES = dict(zip(MINING, (ALL_E4, HARD_E4, SEMI_E4), strict=True))

BIG = [[2e38, 0.0], [2e38, 1e37], [0.0, 2e38]]  # float32 rows of norm near the largest float
BIG_LOSS = 1.3991157e38  # labels [0, 1, 0]: both triplets active, mean of their hinges
X05 = exercises.X_05.tolist()  # the course's example
L05 = exercises.LABELS_05.tolist()


def mining(case, embeddings, labels, expect, *, per_fn=None, keras=None, **kwargs):
    """One row per mining function, with the same input and outcome: ``expect``, or with
    ``per_fn`` (a function's expected value) ``Value(per_fn[fn], **expect)``. ``keras``:
    Keras' outcome where it differs by design, or ``"E4"`` for E4's values."""
    rows = []
    for fn in MINING:
        outcome = Value(per_fn[fn], **expect) if per_fn is not None else expect
        overrides = {}
        if keras is not None:
            overrides["keras_losses"] = Value(E4_VALUES[fn]) if keras == "E4" else keras
        rows.append(Row(case, fn, (embeddings, labels), dict(kwargs), outcome, overrides))
    return rows


def on_e4(case, labels=L4, keras=None, **kwargs):
    """The mining rows of a variation of E4 that must give E4's values."""
    kwargs = {"margin": M} | kwargs
    return mining(case, A(E4), labels, {}, per_fn=E4_VALUES, keras=keras, **kwargs)


def on_e4_raises(case, name, embeddings=A(E4), labels=L4, keras=None, **kwargs):
    """The mining rows of a variation of E4 that must raise naming ``name``."""
    kwargs = {"margin": M} | kwargs
    return mining(case, embeddings, labels, Raises(name), keras=keras, **kwargs)


EMPTY = A(np.zeros((0, 3)))
NO_LABELS = np.zeros(0, np.int64)
TRIPLET = (A([[0.0, 0.0]]), A([[1.0, 0.0]]), A([[0.0, 2.0]]))  # d_ap 1, d_an 4 (sqeuclidean)
PAIR = (A([[0.0, 0.0], [1.0, 0.0]]), A([[3.0, 4.0], [1.0, 0.5]]))  # D = 5 and 0.5
SCORES = A([[0.9, -0.8, 0.3, -0.5], [-0.4, 0.5, 0.1, -0.1], [0.3, 0.1, -0.4, -0.8],
            [-0.5, -0.2, -0.7, 0.5]])  # fmt: skip

TWO_CLASSES = A([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # labels L4
SUPCON_T1 = float(np.log(np.e + 2.0) - 1.0)  # t = 1: each anchor's others at cos 1, 0, 0
PAIRS = (A([[1.0, 0.0], [0.0, 1.0]]), A([[1.0, 0.0], [0.0, 1.0]]))  # cos 1 with the pair
NCE_T1 = float(np.log(np.e + 1.0) - 1.0)  # t = 1: the pair at cos 1, the other key at 0
SUPCON, NCE = "supervised_contrastive_loss", "info_nce_loss"


def softmax_rows() -> list[Row]:
    """The rows of ``supervised_contrastive_loss`` and ``info_nce_loss``: the errors of
    the other losses for bad embeddings and labels, the temperature, the edge cases."""
    one = {"temperature": 1.0}
    rows = [
        Row("two classes, t = 1", SUPCON, (TWO_CLASSES, L4), one, Value(SUPCON_T1)),
        Row("orthogonal pairs, t = 1", NCE, PAIRS, one, Value(NCE_T1)),
        Row("orthogonal pairs, symmetric", NCE, PAIRS, one | {"symmetric": True}, Value(NCE_T1)),
        Row(
            "orthogonal pairs, one label: no negative left",
            NCE,
            PAIRS,
            one | {"labels": [3, 3]},
            Value(0.0),
        ),
        Row("per pair", NCE, PAIRS, one | {"reduction": "none"}, Value([NCE_T1, NCE_T1])),
        Row("sum", NCE, PAIRS, one | {"reduction": "sum"}, Value(2 * NCE_T1)),
        Row(
            "embeddings of rank 1",
            SUPCON,
            (A([0.0, 1.0, 3.0, 4.0]), L4),
            expect=Raises("embeddings"),
        ),
        Row(
            "embeddings with no feature",
            SUPCON,
            (A(np.zeros((4, 0))), L4),
            expect=Raises("embeddings"),
        ),
        Row("labels of another length", SUPCON, (TWO_CLASSES, [0, 0, 1]), expect=Raises("labels")),
        Row(
            "labels 0.3, 0.3, 1.3, 1.3",
            SUPCON,
            (TWO_CLASSES, [0.3, 0.3, 1.3, 1.3]),
            expect=Raises("labels"),
        ),
        Row(
            "labels as strings",
            SUPCON,
            (TWO_CLASSES, ["a", "a", "b", "b"]),
            expect=Raises("labels"),
        ),
        Row(
            "complex embeddings",
            SUPCON,
            (A(np.ones((4, 2)) + 0j, "complex128"), L4),
            expect=Raises("embeddings"),
        ),
        Row(
            "NaN in the embeddings",
            SUPCON,
            (A([[0.0, 1.0], [np.nan, 0.0]]), [0, 0]),
            expect=Raises("embeddings"),
        ),
        Row(
            "uint64 labels, above 2**63",
            SUPCON,
            (TWO_CLASSES, np.array(L4, np.uint64) + np.uint64(2**63)),
            one,
            Value(SUPCON_T1),
            overrides={"keras_losses": Raises("labels", match=r"2\*\*24")},
        ),
        Row(
            "keys with fewer rows",
            NCE,
            (A(np.ones((4, 3))), A(np.ones((3, 3)))),
            expect=Raises("keys"),
            only=NOT_KERAS,
        ),
        Row(
            "keys with other features",
            NCE,
            (A(np.ones((4, 3))), A(np.ones((4, 2)))),
            expect=Raises("keys"),
            only=NOT_KERAS,
        ),
        Row(
            "queries of rank 1",
            NCE,
            (A(np.ones(3)), A(np.ones(3))),
            expect=Raises("queries"),
            only=NOT_KERAS,
        ),
        Row(
            "inf in the keys",
            NCE,
            (PAIRS[0], A([[np.inf, 0.0], [0.0, 1.0]])),
            expect=Raises("keys"),
        ),
        Row(
            "labels of another length", NCE, PAIRS, {"labels": [0, 1, 2]}, expect=Raises("labels")
        ),
        Row(
            "labels of rank 2",
            NCE,
            PAIRS,
            {"labels": [[0, 1]]},
            expect=Raises("labels"),
        ),
        Row(
            "symmetric 'yes' (a string)",
            NCE,
            PAIRS,
            {"symmetric": "yes"},
            expect=Raises("symmetric"),
        ),
        Row(
            "reduction 'avg'",
            NCE,
            PAIRS,
            {"reduction": "avg"},
            expect=Raises("reduction"),
            only=NOT_KERAS,
        ),
        Row(
            "mixed float dtypes: the widest",
            NCE,
            (A([[1.0, 0.0], [0.0, 1.0]], "float32"), A([[1.0, 0.0], [0.0, 1.0]], "float16")),
            one,
            Value(NCE_T1, dtype="float32", rtol=1e-3),
            only=NOT_KERAS,
        ),
        Row(
            "float16 embeddings",
            SUPCON,
            (A(TWO_CLASSES.value, "float16"), L4),
            one,
            Value(SUPCON_T1, dtype="float16", rtol=1e-3),
        ),
        Row(
            "rows near float32's largest",
            NCE,
            (A(BIG[:2], "float32"), A(BIG[:2], "float32")),
            one,
            Value(float(np.log(1 + np.exp(0.99875236 - 1))), rtol=1e-4),
        ),
        Row(
            "t = 1e-5: losses beyond float16",
            SUPCON,
            (A(TWO_CLASSES.value, "float16"), [0, 1, 0, 1]),
            {"temperature": 1e-5},
            expect=Raises("temperature"),
            only=NOT_KERAS,
        ),  # Keras computes in float32
        Row(
            "t = 1e-300 with equal cosines: finite",
            SUPCON,
            (A([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]]), [0, 0, 1]),
            {"temperature": 1e-300},
            Value(float(np.log(2.0))),
            overrides={"keras_losses": Raises("temperature")},  # computed in float32
        ),
        Row(
            "t = 1e-39 with float32 rows: below float32's smallest normal",
            SUPCON,
            (A([[1.0, 0.0], [1.0, 0.0]], "float32"), [0, 0]),
            {"temperature": 1e-39},
            expect=Raises("temperature"),
        ),
        Row("B = 0", SUPCON, (EMPTY, NO_LABELS), expect=Value(0.0, grad="zeros")),
        Row("B = 1", SUPCON, (A([[1.0, 2.0]]), [0]), expect=Value(0.0, grad="zeros")),
        Row(
            "no anchor with a positive",
            SUPCON,
            (A(np.eye(3)), [0, 1, 2]),
            expect=Value(0.0, grad="zeros"),
        ),
        Row(
            "zero rows: cosine 0, finite gradient",
            SUPCON,
            (A([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]), [0, 0, 1]),
            one,
            Value(float(np.log(2.0)), grad="finite"),
        ),
        Row("B = 0", NCE, (EMPTY, EMPTY), expect=Value(0.0, grad="zeros")),
        Row(
            "B = 0, none",
            NCE,
            (EMPTY, EMPTY),
            {"reduction": "none"},
            expect=Value(np.zeros(0)),
            only=NOT_KERAS,
        ),
        Row(
            "B = 1: the pair is its own softmax (0 up to rounding: logits 1 / t apart)",
            NCE,
            (A([[1.0, 2.0]]), A([[3.0, 1.0]])),
            expect=Value(0.0, grad="finite", atol=1e-5),
        ),
        Row(
            "zero rows: cosine 0, finite gradient",
            NCE,
            (A([[0.0, 0.0], [1.0, 0.0]]), A([[1.0, 0.0], [0.0, 0.0]])),
            one,
            Value(float(np.log(2.0) + np.log(np.e + 1.0)) / 2, grad="finite"),
        ),
    ]
    for fn, args in ((SUPCON, (TWO_CLASSES, L4)), (NCE, PAIRS)):
        for case, value, outcome in (
            ("temperature 0", 0.0, Raises("temperature")),
            ("temperature -0.1", -0.1, Raises("temperature")),
            ("temperature NaN", float("nan"), Raises("temperature")),
            ("temperature inf", float("inf"), Raises("temperature")),
            ("temperature True", True, Raises("temperature")),
            ("temperature '0.1' (a string)", "0.1", Raises("temperature")),
            ("temperature None", None, Raises("temperature")),
            ("temperature np.float32(1)", np.float32(1.0), None),
            ("temperature np.int64(1)", np.int64(1), None),
            ("temperature 0-d tensor of the backend", S(1.0), None),
        ):
            expected = Value(SUPCON_T1 if fn == SUPCON else NCE_T1)
            rows.append(Row(case, fn, args, {"temperature": value}, outcome or expected))
    return rows


ROWS: list[Row] = [
    # ------------------------------------------------------------ shapes
    *on_e4_raises("embeddings of rank 1", "embeddings", A([0.0, 1.0, 3.0, 4.0])),
    *on_e4_raises("embeddings of rank 3", "embeddings", A(np.zeros((4, 1, 2)))),
    *on_e4_raises("embeddings with no feature", "embeddings", A(np.zeros((4, 0)))),
    *on_e4_raises("labels of another length", "labels", labels=[0, 0, 1]),
    *on_e4_raises("labels of rank 2", "labels", labels=[L4]),
    Row(
        "x and y with different features",
        "pairwise_distances",
        (A(np.ones((2, 3))), A(np.ones((2, 4)))),
        expect=Raises("y"),
    ),
    Row(
        "x and y with different features",
        "similarity_matrix",
        (A(np.ones((2, 3))), A(np.ones((2, 4)))),
        expect=Raises("y"),
    ),
    Row("x of rank 1", "pairwise_distances", (A(np.ones(3)),), expect=Raises("x")),
    Row(
        "a and b that do not broadcast",
        "cosine_similarity",
        (A(np.ones((3, 2))), A(np.ones((4, 2)))),
        expect=Raises("b"),
    ),
    Row(
        "a with no feature",
        "cosine_similarity",
        (A(np.ones((3, 0))), A(np.ones((3, 0)))),
        expect=Raises("a"),
    ),
    Row("x with no feature", "l2_normalize", (A(np.ones((3, 0))),), expect=Raises("x")),
    Row("x of rank 0", "l2_normalize", (A(1.0),), expect=Raises("x")),
    Row(
        "negative with fewer rows",
        "triplet_loss",
        (A(np.ones((4, 3))), A(np.ones((4, 3))), A(np.ones((2, 3)))),
        expect=Raises("negative"),
        only=NOT_KERAS,  # Keras takes the three stacked: they cannot differ in shape
    ),
    Row(
        "scores not square",
        "modified_triplet_loss",
        (A(np.ones((2, 3))),),
        expect=Raises("scores"),
    ),
    Row(
        "scores 1 x 1 (a row needs a negative)",
        "modified_triplet_loss",
        (A(np.ones((1, 1))),),
        expect=Raises("scores"),
    ),
    Row("scores of rank 1", "closest_negative", (A(np.ones(3)),), expect=Raises("scores")),
    Row("scores of rank 1", "mean_negative", (A(np.ones(3)),), expect=Raises("scores")),
    Row("same of another length", "contrastive_loss", (*PAIR, [1, 0, 1]), expect=Raises("same")),
    Row(
        "same 2-D (a matrix of pair labels)",
        "contrastive_loss",
        (*PAIR, [[1, 0], [0, 1]]),
        expect=Raises("same", match=r"vector \(B,\)"),
        overrides={"keras_losses": Raises("same")},
    ),  # Keras flattens y_true: a length error
    Row("labels of rank 2", "positive_mask", ([L4],), expect=Raises("labels")),
    Row("labels of rank 2", "negative_mask", ([L4],), expect=Raises("labels")),
    # ------------------------------------------------------------ dtypes
    *on_e4_raises("complex embeddings", "embeddings", A(np.array(E4) + 0j, "complex128")),
    *on_e4_raises("embeddings as strings", "embeddings", [["a"], ["b"], ["c"], ["d"]]),
    *mining("integer embeddings", A(E4, "int64"), L4, {}, per_fn=E4_VALUES, margin=M),
    *mining(
        "float16 embeddings",
        A(E4, "float16"),
        L4,
        {"dtype": "float16"},
        per_fn=E4_VALUES,
        margin=M,
    ),
    Row(
        "mixed float dtypes: the widest",
        "triplet_loss",
        (A([[0.0, 0.0]], "float32"), A([[1.0, 0.0]], "float64"), A([[0.0, 2.0]], "float16")),
        expect=Value(0.0, dtype="float64"),
        only=NOT_KERAS,  # nor in dtype (a Keras loss is float32)
    ),
    Row(
        "mixed float dtypes: the widest",
        "contrastive_loss",
        (A([[0.0, 0.0]], "float32"), A([[3.0, 4.0]], "float64"), [1]),
        expect=Value(12.5, dtype="float64"),
        only=NOT_KERAS,
    ),
    Row(
        "mixed float dtypes: the widest",
        "pairwise_distances",
        (A([[0.0, 0.0]], "float32"), A([[3.0, 4.0]], "float64")),
        expect=Value([[5.0]], dtype="float64"),
    ),
    Row(
        "mixed float dtypes: the widest",
        "cosine_similarity",
        (A([1.0, 0.0], "float16"), A([1.0, 1.0], "float64")),
        expect=Value(np.sqrt(0.5), dtype="float64", rtol=1e-3),
    ),
    # ------------------------------------------------------------ labels
    # Keras hands its losses float32 labels: whole-number floats are labels there
    *on_e4_raises(
        "float labels with whole values", "labels", labels=np.array(L4, float), keras="E4"
    ),
    *on_e4_raises("labels 0.3, 0.3, 1.3, 1.3", "labels", labels=[0.3, 0.3, 1.3, 1.3]),
    *on_e4_raises("NaN labels", "labels", labels=[0.0, 0.0, np.nan, np.nan]),
    *on_e4_raises("bool labels", "labels", labels=np.array([False, False, True, True])),
    *on_e4_raises("labels as strings", "labels", labels=["a", "a", "b", "b"]),
    *on_e4_raises("labels as a list of lists of strings", "labels", labels=[["a"], ["a"]]),
    # Keras' float32 round trip would merge them: an error there, checked before it
    *on_e4(
        "labels of 2**24 and above: distinct",
        labels=np.array(L4) + 2**24,
        keras=Raises("labels", match=r"2\*\*24"),
    ),
    *on_e4("uint8 labels", labels=np.array(L4, np.uint8)),
    *on_e4("uint16 labels", labels=np.array(L4, np.uint16)),
    *on_e4("uint32 labels", labels=np.array(L4, np.uint32)),
    *on_e4(
        "uint64 labels, above 2**63",
        labels=np.array(L4, np.uint64) + np.uint64(2**63),
        keras=Raises("labels", match=r"2\*\*24"),
    ),
    *on_e4("negative labels", labels=[-5, -5, -7, -7]),
    *on_e4("labels as a list", labels=list(L4)),
    Row(
        "uint32 labels",
        "positive_mask",
        (np.array([3, 3, 1], np.uint32),),
        expect=Value([[False, True, False], [True, False, False], [False, False, False]]),
    ),
    Row(
        "uint64 labels",
        "negative_mask",
        (np.array([3, 3, 1], np.uint64),),
        expect=Value([[False, False, True], [False, False, True], [True, True, False]]),
    ),
    Row("labels as strings", "positive_mask", (["a", "b"],), expect=Raises("labels")),
    # ------------------------------------------------------------ hyperparameters
    *on_e4_raises("margin -0.1", "margin", margin=-0.1),
    *on_e4_raises("margin NaN", "margin", margin=float("nan")),
    *on_e4_raises("margin inf", "margin", margin=float("inf")),
    *on_e4_raises("margin True", "margin", margin=True),
    *on_e4_raises("margin '1.5' (a string)", "margin", margin="1.5"),
    *on_e4_raises("margin None", "margin", margin=None),
    *on_e4_raises("margin a vector", "margin", margin=np.array([1.5])),
    *on_e4("margin np.float32(1.5)", margin=np.float32(1.5)),
    *on_e4("margin np.float16(1.5)", margin=np.float16(1.5)),
    *on_e4("margin 0-d array", margin=np.array(1.5)),
    *on_e4("margin 0-d tensor of the backend", margin=S(1.5)),
    *mining(
        "margin np.int64(2)",
        A(E4),
        L4,
        {},
        margin=np.int64(2),
        per_fn={MINING[0]: (1.0, 0.25), MINING[1]: 0.5, MINING[2]: 0.5},
    ),
    *on_e4_raises("metric 'dot'", "metric", metric="dot"),
    *on_e4_raises("metric None", "metric", metric=None),
    Row(
        "soft 'no' (a string)",
        "batch_hard_triplet_loss",
        (A(E4), L4),
        {"soft": "no"},
        expect=Raises("soft"),
    ),
    Row(
        "soft 1 (an int)",
        "batch_hard_triplet_loss",
        (A(E4), L4),
        {"soft": 1},
        expect=Raises("soft"),
    ),
    Row(
        "soft None", "batch_hard_triplet_loss", (A(E4), L4), {"soft": None}, expect=Raises("soft")
    ),
    Row(
        "soft np.True_",
        "batch_hard_triplet_loss",
        (A(E4), L4),
        {"soft": np.True_},
        expect=Value(SOFT_E4),
    ),
    Row(
        "margin np.float32(0.5)",
        "triplet_loss",
        TRIPLET,
        {"margin": np.float32(0.5)},
        expect=Value(0.0),
    ),
    Row("margin np.int64(4)", "triplet_loss", TRIPLET, {"margin": np.int64(4)}, expect=Value(1.0)),
    Row("margin -1", "triplet_loss", TRIPLET, {"margin": -1}, expect=Raises("margin")),
    Row(
        "reduction 'avg'",
        "triplet_loss",
        TRIPLET,
        {"reduction": "avg"},
        expect=Raises("reduction"),
    ),
    Row(
        "margin 0-d tensor of the backend",
        "contrastive_loss",
        (*PAIR, [0, 0]),
        {"margin": S(1.0)},
        expect=Value(0.0625),
    ),
    Row(
        "margin np.float32(-1)",
        "contrastive_loss",
        (*PAIR, [0, 0]),
        {"margin": np.float32(-1)},
        expect=Raises("margin"),
    ),
    Row(
        "margin np.float32(0.25)",
        "modified_triplet_loss",
        (SCORES,),
        {"margin": np.float32(0.25)},
        expect=Value(0.516667),
    ),
    Row(
        "eps 0",
        "cosine_similarity",
        (A([1.0, 0.0]), A([1.0, 1.0])),
        {"eps": 0},
        expect=Raises("eps"),
    ),
    Row(
        "eps 'small'",
        "cosine_similarity",
        (A([1.0, 0.0]), A([1.0, 1.0])),
        {"eps": "small"},
        expect=Raises("eps"),
    ),
    Row(
        "eps np.float32(1e-8)",
        "cosine_similarity",
        (A([1.0, 0.0]), A([1.0, 1.0])),
        {"eps": np.float32(1e-8)},
        expect=Value(np.sqrt(0.5)),
    ),
    Row(
        "eps 0-d tensor of the backend",
        "l2_normalize",
        (A([[3.0, 4.0]]),),
        {"eps": S(1e-12)},
        expect=Value([[0.6, 0.8]]),
    ),
    Row("eps -1", "l2_normalize", (A([[3.0, 4.0]]),), {"eps": -1.0}, expect=Raises("eps")),
    Row(
        "metric 'cos'", "pairwise_distances", (A(E4),), {"metric": "cos"}, expect=Raises("metric")
    ),
    # ------------------------------------------------------------ non-finite values
    *on_e4_raises("NaN in the embeddings", "embeddings", A([[0.0], [np.nan], [3.0], [4.0]])),
    *on_e4_raises("inf in the embeddings", "embeddings", A([[0.0], [np.inf], [3.0], [4.0]])),
    Row("inf in x", "pairwise_distances", (A([[0.0], [np.inf]]),), expect=Raises("x")),
    Row("NaN in a", "cosine_similarity", (A([np.nan, 0.0]), A([1.0, 1.0])), expect=Raises("a")),
    Row("NaN in x", "l2_normalize", (A([[np.nan, 0.0]]),), expect=Raises("x")),
    Row(
        "NaN in the scores",
        "modified_triplet_loss",
        (A([[np.nan, 0.0], [0.0, 1.0]]),),
        expect=Raises("scores"),
    ),
    Row(
        "inf in the anchor",
        "triplet_loss",
        (A([[np.inf, 0.0]]), *TRIPLET[1:]),
        expect=Raises("anchor"),
    ),
    Row("NaN in same", "contrastive_loss", (*PAIR, [np.nan, 1.0]), expect=Raises("same")),
    Row("same 2 (not 0 or 1)", "contrastive_loss", (*PAIR, [2, 1]), expect=Raises("same")),
    # ------------------------------------------------------------ empty and one-row batches
    *mining(
        "B = 0",
        EMPTY,
        NO_LABELS,
        {"grad": "zeros"},
        per_fn={MINING[0]: (0.0, 0.0), MINING[1]: 0.0, MINING[2]: 0.0},
    ),
    *mining(
        "B = 0, labels []",
        EMPTY,
        [],
        {},
        per_fn={MINING[0]: (0.0, 0.0), MINING[1]: 0.0, MINING[2]: 0.0},
    ),
    Row(
        "B = 0, soft",
        "batch_hard_triplet_loss",
        (EMPTY, NO_LABELS),
        {"soft": True},
        expect=Value(0.0, grad="zeros"),
    ),
    Row("B = 0", "pairwise_distances", (EMPTY,), expect=Value(np.zeros((0, 0)), grad="zeros")),
    Row(
        "B = 0, l1",
        "pairwise_distances",
        (EMPTY,),
        {"metric": "l1"},
        expect=Value(np.zeros((0, 0))),
    ),
    Row(
        "B = 0, cosine",
        "pairwise_distances",
        (EMPTY,),
        {"metric": "cosine"},
        expect=Value(np.zeros((0, 0))),
    ),
    Row(
        "B = 0 against M = 2",
        "pairwise_distances",
        (EMPTY, A(np.ones((2, 3)))),
        expect=Value(np.zeros((0, 2))),
    ),
    Row("B = 0", "similarity_matrix", (EMPTY,), expect=Value(np.zeros((0, 0)))),
    Row("B = 0", "l2_normalize", (EMPTY,), expect=Value(np.zeros((0, 3)), grad="zeros")),
    Row("B = 0", "cosine_similarity", (EMPTY, EMPTY), expect=Value(np.zeros(0))),
    Row("B = 0", "cosine_distance", (EMPTY, EMPTY), expect=Value(np.zeros(0))),
    Row("B = 0", "triplet_loss", (EMPTY, EMPTY, EMPTY), expect=Value(0.0, grad="zeros")),
    Row(
        "B = 0, sum",
        "triplet_loss",
        (EMPTY, EMPTY, EMPTY),
        {"reduction": "sum"},
        expect=Value(0.0, grad="zeros"),
    ),
    Row(
        "B = 0, none",
        "triplet_loss",
        (EMPTY, EMPTY, EMPTY),
        {"reduction": "none"},
        expect=Value(np.zeros(0)),
    ),
    Row("B = 0", "contrastive_loss", (EMPTY, EMPTY, NO_LABELS), expect=Value(0.0, grad="zeros")),
    Row("B = 0", "modified_triplet_loss", (A(np.zeros((0, 0))),), expect=Value(0.0)),
    Row("B = 0", "mean_negative", (A(np.zeros((0, 0))),), expect=Value(np.zeros(0))),
    Row("B = 0", "closest_negative", (A(np.zeros((0, 0))),), expect=Value(np.zeros(0))),
    Row("B = 0", "positive_mask", (NO_LABELS,), expect=Value(np.zeros((0, 0), bool))),
    Row("B = 0", "negative_mask", (NO_LABELS,), expect=Value(np.zeros((0, 0), bool))),
    *mining(
        "B = 1",
        A([[1.0, 2.0]]),
        [0],
        {"grad": "zeros"},
        per_fn={MINING[0]: (0.0, 0.0), MINING[1]: 0.0, MINING[2]: 0.0},
    ),
    Row("B = 1", "pairwise_distances", (A([[1.0, 2.0]]),), expect=Value([[0.0]])),
    Row("B = 1", "triplet_loss", TRIPLET, {"margin": 4.0}, expect=Value(1.0, grad="finite")),
    # ------------------------------------------------------------ large values
    Row(
        "rows near float32's largest",
        "cosine_similarity",
        (A(BIG[0], "float32"), A(BIG[1], "float32")),
        expect=Value(0.99875236),
    ),
    Row(
        "rows near float32's largest",
        "l2_normalize",
        (A(BIG, "float32"),),
        expect=Value([[1.0, 0.0], [0.99875236, 0.04993762], [0.0, 1.0]]),
    ),
    Row(
        "rows near float32's largest",
        "pairwise_distances",
        (A(BIG, "float32"),),
        expect=Value(
            [
                [0.0, 1e37, 2.8284271e38],
                [1e37, 0.0, 2.7586228e38],
                [2.8284271e38, 2.7586228e38, 0.0],
            ]
        ),
    ),
    Row(
        "rows near float32's largest",
        "similarity_matrix",
        (A(BIG, "float32"),),
        expect=Value(
            [[1.0, 0.99875236, 0.0], [0.99875236, 1.0, 0.04993762], [0.0, 0.04993762, 1.0]]
        ),
    ),
    *mining(
        "rows near float32's largest",
        A(BIG, "float32"),
        [0, 1, 0],
        {},
        per_fn={MINING[0]: (BIG_LOSS, 1.0), MINING[1]: BIG_LOSS, MINING[2]: BIG_LOSS},
    ),
    *mining(
        "rows near float32's largest, 2 classes",
        A(BIG, "float32"),
        [0, 1, 1],
        {},
        per_fn={MINING[0]: (2.6586227e38, 0.5), MINING[1]: 1.3293114e38, MINING[2]: 1.3293114e38},
    ),
    *mining(
        "squared distances beyond float32",
        A(BIG, "float32"),
        [0, 1, 0],
        Raises("embeddings"),
        metric="sqeuclidean",
    ),
    Row(
        "rows near 1e200 in float64",
        "pairwise_distances",
        (A([[1e200, 0.0], [1e200, 1e199], [0.0, 1e200]]),),
        expect=Value(
            [
                [0.0, 1e199, 1.41421356e200],
                [1e199, 0.0, 1.3453624e200],
                [1.41421356e200, 1.3453624e200, 0.0],
            ]
        ),
    ),
    Row(
        "rows near 1e200 in float64",
        "cosine_similarity",
        (A([1e200, 0.0]), A([1e200, 1e199])),
        expect=Value(0.99503719),
    ),
    Row(
        "a dissimilar pair 3e19 apart in float32",
        "contrastive_loss",
        (A([[0.0, 0.0]], "float32"), A([[3e19, 0.0]], "float32"), [0]),
        expect=Value(0.0),
    ),
    Row(
        "a similar pair 3e19 apart in float32 (D^2 / 2 beyond float32)",
        "contrastive_loss",
        (A([[0.0, 0.0]], "float32"), A([[3e19, 0.0]], "float32"), [1]),
        expect=Raises("x1"),
    ),
    Row(
        "a similar pair 2e19 apart in float32 (D^2 beyond, D^2 / 2 within)",
        "contrastive_loss",
        (A([[0.0, 0.0]], "float32"), A([[2e19, 0.0]], "float32"), [1]),
        expect=Value(2e38),
    ),
    Row(
        "distances beyond float32",
        "triplet_loss",
        (A([[0.0, 0.0]], "float32"), A([[3e19, 0.0]], "float32"), A([[0.0, 3e19]], "float32")),
        expect=Raises("anchor"),
    ),
    # ------------------------------------------------------------ the boundary (issue 14)
    Row(
        "hinge 1 - 1.2 + 0.2 > 0 in float64",
        "batch_all_triplet_loss",
        (A([[0.0], [1.0], [1.2]]), [0, 0, 1]),
        expect=Value((0.5, 1.0)),
        overrides={"keras_losses": Value((1.0, SKIP))},  # Keras: float32, hinge -4.5e-8
    ),
    Row(
        "the course's example in float32",
        "batch_all_triplet_loss",
        (A(X05, "float32"), L05),
        {"margin": 0.2},
        expect=Value((0.755, 5 / 9)),
    ),
    # ------------------------------------------------------------ pairwise_distances(x, x)
    Row(
        "y the very same object as x: y = None",
        "pairwise_distances",
        (A(np.diag([3.0, 4.0])),),
        expect=Value([[0.0, 5.0], [5.0, 0.0]]),
    ),
    # ------------------------------------------------------------ softmax losses (issue 15)
    *softmax_rows(),
    # ------------------------------------------------------------ metrics, data (NumPy only)
    Row(
        "embeddings of rank 1",
        "metrics.retrieval_metrics",
        (np.zeros(3), [0, 0, 1]),
        expect=Raises("embeddings"),
    ),
    Row(
        "NaN in the embeddings",
        "metrics.map_at_r",
        (np.array([[np.nan], [0], [1]]), [0, 0, 1]),
        expect=Raises("embeddings"),
    ),
    Row(
        "N = 0",
        "metrics.precision_at_1",
        (np.zeros((0, 2)), NO_LABELS),
        expect=Raises("embeddings", match="at least one row"),
    ),
    Row(
        "float labels",
        "metrics.r_precision",
        (np.zeros((3, 1)), [0.0, 0.0, 1.0]),
        expect=Raises("labels"),
    ),
    Row(
        "every class a single sample",
        "metrics.r_precision",
        (np.zeros((3, 1)), [0, 1, 2]),
        expect=Raises("labels"),
    ),
    Row("seed np.int64(3)", "data.seed_everything", (np.int64(3),), expect=Value(SKIP)),
    Row("seed 0-d array", "data.seed_everything", (np.array(3),), expect=Value(SKIP)),
    Row("seed 2.0 (a float)", "data.seed_everything", (2.0,), expect=Raises("seed")),
    Row("seed -1", "data.seed_everything", (-1,), expect=Raises("seed")),
    Row(
        "epoch 'x'",
        "data.PKSampler:set_epoch",
        (np.repeat(np.arange(4), 4), 2, 2),
        {"epoch": "x"},
        expect=Raises("epoch"),
    ),
    Row(
        "epoch -1",
        "data.PKSampler:set_epoch",
        (np.repeat(np.arange(4), 4), 2, 2),
        {"epoch": -1},
        expect=Raises("epoch"),
    ),
    Row(
        "epoch np.int64(2)",
        "data.PKSampler:set_epoch",
        (np.repeat(np.arange(4), 4), 2, 2),
        {"epoch": np.int64(2)},
        expect=Value(SKIP),
    ),
    Row(
        "p np.int64(2), k 0-d array, seed np.uint8(1)",
        "data.PKSampler:batches",
        (np.repeat(np.arange(4), 4), np.int64(2), np.array(2), np.uint8(1)),
        {"epoch": 0},
        expect=Value(SKIP),
    ),
]


def table() -> list[tuple[Row, str]]:
    """Every (row, backend) pair of the table: its size."""
    return [(row, backend) for row in ROWS for backend in BACKENDS if applies(row, backend)]


CASES = table()


@pytest.mark.parametrize(
    ("row", "backend"), CASES, ids=[f"{row.id} [{backend}]" for row, backend in CASES]
)
def test_bad_input(row, backend):
    if backend.split("_")[0] in SKIPPED or (backend == "keras_losses" and "tensorflow" in SKIPPED):
        pytest.skip(f"{backend} skipped by TRIPLETLAB_SKIP_BACKENDS")
    problem = judge(row, backend, observe(row, backend))
    assert problem is None, problem


def test_the_table_covers_every_public_function_and_loss_object():
    from tripletlab import PUBLIC_NAMES

    names = {row.fn for row in ROWS}
    assert set(PUBLIC_NAMES) - names == set()
    assert {b for _, b in CASES} == set(BACKENDS)


def test_tensorflow_input_of_unknown_rank_names_the_argument():
    """Inside ``tf.function`` without a shape the rank is unknown: a ValueError naming
    the argument, not TensorFlow's "Cannot iterate over a shape with unknown rank"."""
    if "tensorflow" in SKIPPED:
        pytest.skip("tensorflow skipped")
    import tensorflow as tf

    from tripletlab import tensorflow as tl

    spec = [tf.TensorSpec(None, tf.float32), tf.TensorSpec(None, tf.int64)]
    calls = {
        "x": tf.function(lambda x, y: tl.pairwise_distances(x), input_signature=spec),
        "embeddings": tf.function(tl.batch_hard_triplet_loss, input_signature=spec),
        "labels": tf.function(
            lambda x, y: tl.batch_all_triplet_loss(tf.ensure_shape(x, [None, 2]), y)[0],
            input_signature=spec,
        ),
    }
    for name, fn in calls.items():
        with pytest.raises(ValueError, match=f"{name} must have a known rank"):
            fn(np.ones((4, 2), np.float32), np.array([0, 0, 1, 1]))


# --------------------------------------------------------------------------- more errors
# (one call each, in every function backend: the labels, margins, metrics and shapes that
# every mining, triplet and pair loss refuses)


def _error_cases():
    x, ok = np.ones((4, 3)), np.array([0, 0, 1, 1])
    return [
        (lambda tl, T: tl.batch_all_triplet_loss(T(x), ok[:3]), "labels must have one entry"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(x), ok.astype(float)), "labels must hold int"),
        (lambda tl, T: tl.batch_semihard_triplet_loss(T(x), ok[None]), "labels must be a vector"),
        (lambda tl, T: tl.batch_all_triplet_loss(T(x), ok, margin=-0.1), "margin must be"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(x), ok, metric="dot"), "metric must be"),
        (lambda tl, T: tl.batch_hard_triplet_loss(T(np.ones(3)), ok), "embeddings must be a"),
        (lambda tl, T: tl.batch_all_triplet_loss(T(np.full((4, 3), np.nan)), ok), "embeddings"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x), reduction="avg"), "reduction must"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x[:2])), "must have the same shape"),
        (lambda tl, T: tl.triplet_loss(T(x), T(x), T(x), metric="cos"), "metric must"),
        (lambda tl, T: tl.modified_triplet_loss(T(np.ones((2, 3)))), "square"),
        (lambda tl, T: tl.modified_triplet_loss(T(np.ones((1, 1)))), "at least 2 x 2"),
        (lambda tl, T: tl.closest_negative(T(np.ones(3))), "scores must be a matrix"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1, 2, 1]), "same must hold 0"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1]), "same"),
        (lambda tl, T: tl.contrastive_loss(T(x), T(x), [0, 1, 1, 1], margin=-1), "margin"),
    ]


@pytest.mark.parametrize("case", range(len(_error_cases())))
def test_bad_input_raises_value_error_naming_the_argument(backend, case):
    tl = load(backend)
    call, match = _error_cases()[case]
    with pytest.raises(ValueError, match=match):
        call(tl, lambda v: to_backend(backend, v))


def summary(observed) -> str:
    """One line for an observed outcome: the exception type and message, or the values."""
    kind, out, _ = observed
    if kind == "raises":
        return f"{type(out).__name__}: {_short(out)}"
    outputs = out if isinstance(out, tuple) else (out,)
    shown = []
    for o in outputs:
        values = _numpy(o)
        shown.append(
            "-"
            if values is SKIP or values is None
            else np.array2string(np.asarray(values), precision=6, threshold=6).replace("\n", "")
        )
    return "value: " + ", ".join(shown)


if __name__ == "__main__":  # every row: ok/FAIL, backend, row, outcome (for comparisons)
    for row, backend in CASES:
        observed = observe(row, backend)
        status = "ok" if judge(row, backend, observed) is None else "FAIL"
        print(f"{status}\t{backend}\t{row.id}\t{summary(observed)}")
    print(f"rows: {len(CASES)}", file=sys.stderr)
