"""Self-checks for the exercises at the end of notebooks 01 to 07 and 09.

Each exercise ends with a cell ``check("01.margin", answer)``, which prints one line:

- ``01.margin: pass`` when the answer agrees with the reference;
- ``01.margin: not yet - <hint>`` when it does not (a hint for the common mistakes,
  otherwise a general one; never the answer itself);
- ``01.margin: not yet: no answer yet`` for ``...`` (the learner copy's placeholder)
  or a function that raises ``NotImplementedError``.

A wrong answer, of any type, never raises: the check prints its verdict and returns
``None`` (so nothing else appears under the cell). That holds for anything a learner
may pass: a tensor that requires grad (read through ``.detach()``), a number too large
for a float, an object whose conversion to an array fails, a function whose result is
any of these. Infinities are compared by sign: ``-inf`` is not ``inf``. The references
are computed here, mostly with the package itself, from the inputs the exercise states;
they are not stored as literals. ``verdict`` returns the line instead of printing it (for tests).

The exercises are defined below one notebook section at a time: the section's inputs
(the public ones, such as ``SCORES_03``, are what the notebook shows the learner), then
per exercise its helpers and one ``_exercise("NN.name", reference=..., read=...,
agrees=..., hint=..., mistakes=...)`` block. Adding an exercise is adding one such block
(in course order) and its ``check("NN.name", answer)`` cell.

Import cost: NumPy only; the references of notebook 06 import Keras and PyTorch when
they are first needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripletlab import numpy as tl

__all__ = ["check", "verdict", "exercise_ids", "SCORES_03", "X_05", "LABELS_05"]

NO_ANSWER = "not yet: no answer yet"
_ATOL = 1e-4  # hand-computed numbers may be rounded to four places


class _NotYet(Exception):
    """A wrong answer, with the hint to show."""


@dataclass(frozen=True)
class _Exercise:
    reference: Callable[[], Any]  # computes the reference answer
    read: Callable[[Any], Any]  # the learner's answer in comparable form, or raises _NotYet
    agrees: Callable[[Any, Any], bool]  # (answer, reference) -> pass?
    hint: str  # shown when no specific mistake is recognised
    mistakes: tuple[tuple[Callable[[Any], bool], str], ...] = ()  # (recognise, hint)


_EXERCISES: dict[str, _Exercise] = {}  # in course order: the order of the blocks below


def _exercise(exercise_id: str, **fields) -> None:
    """Register one exercise; each section below defines a notebook's inputs, then one
    ``_exercise`` block per exercise, with the fields of ``_Exercise`` by name."""
    if exercise_id in _EXERCISES:
        raise ValueError(f"exercise {exercise_id!r} is defined twice")
    _EXERCISES[exercise_id] = _Exercise(**fields)


# --------------------------------------------------------------------------- readers


def _as_float64(answer, expected: str) -> np.ndarray:
    """``answer`` as a float64 array; tensors that require grad are read detached, and
    anything that cannot be read (too large, a failing ``__array__``) is not yet."""
    if callable(getattr(answer, "detach", None)):  # a PyTorch tensor, maybe with grad
        try:
            answer = answer.detach().cpu()
        except Exception:
            pass
    try:
        return np.asarray(answer, dtype=np.float64)
    except OverflowError:
        raise _NotYet(f"expected {expected}; this one is too large for a float") from None
    except Exception:
        raise _NotYet(f"expected {expected}, got {type(answer).__name__}") from None


def _number(answer) -> float:
    value = _as_float64(answer, "a number")
    if value.size != 1:
        raise _NotYet(f"expected one number, got {value.size} values")
    return float(value.reshape(()))


def _integer(answer) -> int:
    value = _number(answer)
    if not math.isfinite(value) or value != round(value):
        raise _NotYet("expected a whole number")
    return int(round(value))


def _vector(length: int) -> Callable[[Any], np.ndarray]:
    def read(answer) -> np.ndarray:
        value = _as_float64(answer, f"{length} numbers")
        if value.shape != (length,):
            raise _NotYet(
                f"expected {length} numbers (shape ({length},)), got shape {value.shape}"
            )
        return value

    return read


def _bools(length: int) -> Callable[[Any], tuple[bool, ...]]:
    def read(answer) -> tuple[bool, ...]:
        values = tuple(answer) if isinstance(answer, tuple | list) else None
        if values is None or len(values) != length:
            raise _NotYet(f"expected a tuple of {length} booleans, e.g. (True, False)")
        if not all(isinstance(v, bool | np.bool_) for v in values):
            raise _NotYet("expected True or False for each entry")
        return tuple(bool(v) for v in values)

    return read


def _shape(answer) -> tuple[int, ...]:
    if not isinstance(answer, tuple | list):
        raise _NotYet(f"expected a shape such as (2, 5), got {type(answer).__name__}")
    return tuple(_integer(v) for v in answer)


def _sign(answer) -> int:
    value = _integer(answer)
    if value not in (-1, 1):
        raise _NotYet("expected +1 or -1")
    return value


def _letters(options: str) -> Callable[[Any], frozenset[str]]:
    def read(answer) -> frozenset[str]:
        if isinstance(answer, str):
            items = [c for c in answer.upper() if c.isalpha()]
        elif isinstance(answer, set | frozenset | list | tuple):
            items = [str(v).strip().upper() for v in answer]
        else:
            raise _NotYet(f"expected letters such as {{'A', 'C'}}, got {type(answer).__name__}")
        unknown = sorted(set(items) - set(options))
        if unknown:
            raise _NotYet(f"the options are {', '.join(options)}; got {', '.join(unknown)}")
        return frozenset(items)

    return read


def _function(answer):
    if not callable(answer):
        raise _NotYet(f"expected a function, got {type(answer).__name__}")
    return answer


# --------------------------------------------------------------------------- comparisons


def _close(answer, reference) -> bool:
    """Within 1e-4; ``inf`` only equals ``inf`` and ``-inf`` only ``-inf`` (``np.allclose``)."""
    return bool(np.allclose(answer, reference, rtol=0.0, atol=_ATOL))


def _equal(answer, reference) -> bool:
    return answer == reference


def _near(target) -> Callable[[Any], bool]:
    """Recognise a mistake: the answer is (close to) ``target()``."""
    return lambda answer: bool(np.allclose(answer, target(), rtol=0.0, atol=_ATOL))


def _is(target) -> Callable[[Any], bool]:
    return lambda answer: answer == target


# --------------------------------------------------------------------------- 01

_A01, _P01 = tl.l2_normalize(np.array([1.0, 2.0, 3.0])), tl.l2_normalize(np.array([1.0, 2.0, 3.5]))


def _unit_coefficient() -> float:
    return float(np.sum((_A01 - _P01) ** 2) / tl.cosine_distance(_A01, _P01))


def _cosine_margin() -> float:
    return 0.3 / _unit_coefficient()


_exercise(
    "01.margin",
    reference=_cosine_margin,
    read=_number,
    agrees=_close,
    hint="for unit vectors every squared distance is a fixed multiple of the cosine distance",
    mistakes=(
        (
            _near(lambda: 0.3 * _unit_coefficient()),
            "the wrong way round: divide, not multiply",
        ),
        (_near(lambda: 0.3), "the unconverted margin makes the cosine loss stricter"),
    ),
)


def _active_pair() -> tuple[bool, bool]:
    cos_ap, cos_an, margin = 0.9, 0.6, 0.4
    a = np.array([[1.0, 0.0]])
    p = np.array([[cos_ap, math.sqrt(1 - cos_ap**2)]])
    n = np.array([[cos_an, math.sqrt(1 - cos_an**2)]])
    return tuple(
        bool(tl.triplet_loss(a, p, n, margin=margin, metric=metric) > 1e-12)
        for metric in ("sqeuclidean", "cosine")
    )


_exercise(
    "01.active",
    reference=_active_pair,
    read=_bools(2),
    agrees=_equal,
    hint="compute d(a, p) - d(a, n) + 0.4 for each distance, with d_sq = 2 (1 - cos)",
    mistakes=(
        (_is((True, True)), "with squared L2 the gap between the distances doubles too"),
        (_is((False, False)), "cosine distance: (1 - 0.9) - (1 - 0.6) + 0.4"),
        (_is((True, False)), "the two entries are swapped: (squared L2, cosine)"),
    ),
)


def _euclidean_hinge(distance=lambda cos: math.sqrt(2 * (1 - cos))) -> float:
    """d(a, p) - d(a, n) + 0.2 for unit vectors with cos(a, p) = 0.6, cos(a, n) = 0.7."""
    return distance(0.6) - distance(0.7) + 0.2


_exercise(
    "01.euclidean_hinge",
    reference=_euclidean_hinge,
    read=_number,
    agrees=_close,
    hint="||a - p||^2 = 2 (1 - cos) for unit vectors; the euclidean distance is its root",
    mistakes=(
        (
            _near(lambda: _euclidean_hinge(lambda cos: 2 * (1 - cos))),
            "that uses the squared distance: take the square root of each",
        ),
        (
            _near(lambda: _euclidean_hinge(lambda cos: 1 - cos)),
            "that uses the cosine distance: convert it to the euclidean one first",
        ),
        (
            _near(lambda: _euclidean_hinge(lambda cos: math.sqrt(1 - cos))),
            "the squared distance is twice the cosine distance: sqrt(2 (1 - cos))",
        ),
        (
            _near(lambda: 0.4 - _euclidean_hinge()),
            "d(a, p) comes first: the positive's distance minus the negative's",
        ),
    ),
)


# --------------------------------------------------------------------------- 02

_X02 = np.random.default_rng(2).normal(size=(4, 3)) * np.array([[0.5], [3.0], [1.0], [7.0]])
_Y02 = np.random.default_rng(3).normal(size=(5, 3)) * np.array([[2.0], [0.2], [1.0], [4.0], [1.0]])


def _similarity_reference():
    return tl.similarity_matrix(_X02, _Y02)


class _UsedThePackage(Exception):
    """Raised by the stand-in for a package function while the learner's function runs."""


def _refuse(*args, **kwargs):
    raise _UsedThePackage


def _run_learner(function, args: tuple, refused: str):
    """``function(*args)`` with ``refused`` (a function name) replaced, in every loaded
    backend, by a stand-in that refuses: the exercise is to write it. Any error the
    learner's code raises becomes a hint; ``NotImplementedError`` means no answer yet."""
    import sys

    backends = [
        module
        for name in ("tripletlab.numpy", "tripletlab.torch", "tripletlab.tensorflow")
        if (module := sys.modules.get(name)) is not None
    ]
    originals = [getattr(module, refused) for module in backends]
    try:
        for module in backends:
            setattr(module, refused, _refuse)
        result = function(*args)
    except _UsedThePackage:
        raise _NotYet(f"your function calls tl.{refused}: the exercise is to write it") from None
    except NotImplementedError:
        raise
    except Exception as error:  # the learner's code: report, never raise
        message = str(error).splitlines()[0][:80] if str(error) else ""
        raise _NotYet(f"your function raised {type(error).__name__}: {message}") from None
    finally:
        for module, original in zip(backends, originals, strict=True):
            setattr(module, refused, original)
    return _as_float64(result, "your function to return an array")


def _similarity_result(function) -> np.ndarray:
    return _run_learner(function, (_X02.copy(), _Y02.copy()), "similarity_matrix")


def _similarity_agrees(function, reference) -> bool:
    result = _similarity_result(function)
    if result.shape != reference.shape:
        if result.shape == reference.shape[::-1]:
            raise _NotYet(
                f"the shape is {result.shape}, the transpose: row i of S belongs to x_i, "
                "column j to y_j"
            )
        raise _NotYet(f"S for x (4, 3) and y (5, 3) has shape (4, 5), yours {result.shape}")
    if np.allclose(result, _X02 @ _Y02.T):
        raise _NotYet("these are dot products of the raw rows: normalize each row first")
    col_x = _X02 / np.linalg.norm(_X02, axis=0, keepdims=True)
    col_y = _Y02 / np.linalg.norm(_Y02, axis=0, keepdims=True)
    if np.allclose(result, col_x @ col_y.T):
        raise _NotYet("each column was normalized: divide each row by its own norm (axis=1)")
    return bool(np.allclose(result, reference, rtol=0.0, atol=1e-9))


_exercise(
    "02.similarity_matrix",
    reference=_similarity_reference,
    read=_function,
    agrees=_similarity_agrees,
    hint="compare your function with tl.similarity_matrix on a small batch of your own",
)


_V02 = np.array([[3.0, 4.0], [0.0, 2.0]])


def _row_norm_bug() -> tuple[float, float]:
    """(what x @ y.T / (|x|_F |y|_F) gives at [0, 1] for x = y = _V02, the cosine there)."""
    buggy = (_V02 @ _V02.T / (np.linalg.norm(_V02) * np.linalg.norm(_V02)))[0, 1]
    return float(buggy), float(tl.similarity_matrix(_V02, _V02)[0, 1])


_exercise(
    "02.row_norm_bug",
    reference=_row_norm_bug,
    read=_vector(2),
    agrees=_close,
    hint="np.linalg.norm(x) without axis= is one number for the whole batch",
    mistakes=(
        (
            _near(lambda: (_row_norm_bug()[1], _row_norm_bug()[1])),
            "the bug does not give the cosine: it divides by the whole batch's norm",
        ),
        (
            _near(lambda: _row_norm_bug()[::-1]),
            "the order is (what the buggy function returns, the cosine)",
        ),
        (
            _near(lambda: (8 / np.linalg.norm(_V02), _row_norm_bug()[1])),
            "x and y are both v here: the bug divides by its norm twice",
        ),
    ),
)


# --------------------------------------------------------------------------- 03

SCORES_03 = np.array([[0.8, 0.2, -0.4], [0.5, 0.3, 0.6], [-0.1, 0.0, 0.7]])
"""The scores of notebook 03's exercises (``scores_ex``): positives on the diagonal."""


def _row_sums_over(count: int):
    return (SCORES_03.sum(axis=1) - np.diag(SCORES_03)) / count


_exercise(
    "03.mean_neg",
    reference=lambda: tl.mean_negative(SCORES_03),
    read=_vector(3),
    agrees=_close,
    hint="average the off-diagonal entries of each row",
    mistakes=(
        (_near(lambda: SCORES_03.mean(axis=1)), "the diagonal is the positive, not a negative"),
        (_near(lambda: _row_sums_over(3)), "there are B - 1 = 2 negatives per row"),
    ),
)


def _closest_read(answer) -> np.ndarray:
    value = _vector(3)(answer)
    if np.isnan(value).any():
        raise _NotYet("a row without a candidate has closest_neg -inf, not NaN")
    return value


_exercise(
    "03.closest_neg",
    reference=lambda: tl.closest_negative(SCORES_03),
    read=_closest_read,
    agrees=_close,  # an infinity agrees only with one of the same sign
    hint="per row: the largest off-diagonal entry that is <= the row's positive",
    mistakes=(
        (
            lambda a: bool(np.isclose(a[1], 0.6) or np.isclose(a[1], 0.5)),
            "in row 1 both negatives are above the positive 0.3: no candidate is left",
        ),
        (
            lambda a: bool(np.isclose(a[1], 0.0)),
            "tl.closest_negative gives -np.inf for a row without a candidate",
        ),
        (
            lambda a: bool(a[1] == np.inf),
            "check the sign of that infinity: a maximum over no candidate at all",
        ),
    ),
)


_exercise(
    "03.row_loss",
    reference=lambda: float(tl.modified_triplet_loss(SCORES_03, margin=0.25, reduction="none")[1]),
    read=_number,
    agrees=_close,
    hint="L1 + L2 for row 1, with mean_neg and closest_neg of the previous exercises",
    mistakes=(
        (_near(lambda: 1.05), "row 1 has no closest negative: its L2 is 0"),
        (_near(lambda: 0.0), "mean_neg of row 1 is above its positive: L1 > 0"),
    ),
)


# --------------------------------------------------------------------------- 04

_X1_04, _X2_04 = np.array([[1.0, 1.0]]), np.array([[1.36, 1.48]])


def _pair_loss(same: float, margin: float = 1.0) -> float:
    return float(tl.contrastive_loss(_X1_04, _X2_04, np.array([same]), margin=margin))


_exercise(
    "04.pair_loss",
    reference=lambda: _pair_loss(same=0.0),
    read=_number,
    agrees=_close,
    hint="D first, then the branch of a dissimilar pair: 1/2 max(0, m - D)^2",
    mistakes=(
        (_near(lambda: _pair_loss(same=1.0)), "that is the branch of a similar pair"),
        (_near(lambda: 2 * _pair_loss(same=0.0)), "the loss has a factor 1/2"),
    ),
)


def _dissimilar_gradient(distance: float = 0.6, margin: float = 1.0) -> float:
    """d/dD of 1/2 max(0, m - D)^2, by PyTorch's autograd."""
    import torch

    d = torch.tensor(distance, dtype=torch.float64, requires_grad=True)
    (0.5 * torch.clamp(margin - d, min=0.0) ** 2).backward()
    return float(d.grad)


_exercise(
    "04.gradient",
    reference=_dissimilar_gradient,
    read=_number,
    agrees=_close,
    hint="chain rule: the derivative of (m - D)^2 / 2 with respect to D, for D < m",
    mistakes=(
        (_near(lambda: -_dissimilar_gradient()), "the loss falls as D grows: mind the sign"),
        (_near(lambda: 2 * _dissimilar_gradient()), "the 1/2 cancels the 2 of the square"),
        (_near(lambda: 0.08), "that is the loss itself, not its derivative"),
    ),
)


_exercise(
    "04.swapped",
    reference=lambda: _pair_loss(same=1.0),
    read=_number,
    agrees=_close,
    hint="passing Y = 1 as same = 1 treats the dissimilar pair as a similar one",
    mistakes=((_near(lambda: _pair_loss(same=0.0)), "that is the loss with the correct label"),),
)


# --------------------------------------------------------------------------- 05

X_05 = np.array([[0.0], [0.5], [2.0], [0.3], [1.1], [1.5]])
"""The points of notebook 05's exercises (``x_ex``): 1-D, anchor 0 at 0."""
LABELS_05 = np.array([0, 0, 1, 1, 0, 1])
"""Their labels (``labels_ex``)."""


def _n_valid(p: int = 4, k: int = 3) -> int:
    labels = np.repeat(np.arange(p), k)
    return int((tl.positive_mask(labels)[:, :, None] & tl.negative_mask(labels)[:, None, :]).sum())


_exercise(
    "05.n_valid",
    reference=_n_valid,
    read=_integer,
    agrees=_equal,
    hint="per anchor: (number of positives) x (number of negatives), times B anchors",
    mistakes=(
        (_is(12**3), "that counts every index triple, valid or not"),
        (_is(12 * 3 * 9), "a positive is never the anchor itself: K - 1 per anchor"),
        (_is(12 * 2 * 11), "the negatives are the B - K points of other classes"),
    ),
)


def _shortcut_anchors(farthest: bool = True) -> tuple[int, ...]:
    """The anchors whose farthest other point has another label: where the row-max
    shortcut takes a negative for the hardest positive (``farthest=False``: the nearest,
    a mistake)."""
    d = tl.pairwise_distances(X_05).copy()
    np.fill_diagonal(d, -np.inf if farthest else np.inf)
    chosen = d.argmax(axis=1) if farthest else d.argmin(axis=1)
    return tuple(int(i) for i in np.flatnonzero(LABELS_05[chosen] != LABELS_05))


def _indices(answer) -> tuple[int, ...]:
    if isinstance(answer, np.ndarray):
        answer = answer.tolist()
    if not isinstance(answer, list | tuple | set | frozenset):
        raise _NotYet(f"expected a list of indices such as [1, 4], got {type(answer).__name__}")
    return tuple(sorted(_integer(v) for v in answer))


_exercise(
    "05.shortcut_anchors",
    reference=_shortcut_anchors,
    read=_indices,
    agrees=_equal,
    hint="for each row: the farthest other point, then compare its label with the anchor's",
    mistakes=(
        (_is(tuple(range(6))), "some rows' farthest point does share the anchor's label"),
        (
            lambda a: a == tuple(sorted(set(range(6)) - set(_shortcut_anchors()))),
            "those are the anchors the shortcut gets right",
        ),
        (
            lambda a: a == _shortcut_anchors(farthest=False),
            "the shortcut takes the largest distance of each row, not the smallest",
        ),
    ),
)


def _anchor_loss(margin: float = 0.2) -> float:
    d = tl.pairwise_distances(X_05)[0]
    hardest_positive = np.where(tl.positive_mask(LABELS_05)[0], d, -np.inf).max()
    hardest_negative = np.where(tl.negative_mask(LABELS_05)[0], d, np.inf).min()
    return float(max(hardest_positive - hardest_negative + margin, 0.0))


_exercise(
    "05.anchor_loss",
    reference=_anchor_loss,
    read=_number,
    agrees=_close,
    hint="max(hardest positive distance - hardest negative distance + margin, 0)",
    mistakes=(
        (_near(lambda: 1.9), "the hardest positive must share the anchor's label"),
        (_near(lambda: 0.0), "the hardest negative is the closest one"),
    ),
)


def _bh_cases() -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Batches for the batch-hard exercise: (points, labels, margin)."""
    rng = np.random.default_rng(5)
    return [
        (X_05, LABELS_05, 0.2),
        (rng.normal(size=(12, 3)), np.repeat(np.arange(4), 3), 0.5),
        (rng.normal(size=(10, 2)), np.array([0, 1, 0, 1, 2, 2, 0, 1, 2, 0]), 0.2),
        # tight clusters far apart and one stray point of class 0: only some anchors are
        # active, the others count 0
        (
            np.array([[0.0], [0.1], [5.0], [5.1], [10.0], [10.1], [5.05]]),
            np.repeat([0, 1, 2, 0], [2, 2, 2, 1]),
            0.2,
        ),
    ]


def _batch_hard_reference() -> np.ndarray:
    return np.array([float(tl.batch_hard_triplet_loss(x, y, m)) for x, y, m in _bh_cases()])


def _batch_hard_variant(positive: bool, negative: bool, clamp: bool, mean: bool) -> np.ndarray:
    """Batch-hard with some of its parts left out: the usual mistakes."""
    values = []
    for x, y, m in _bh_cases():
        d = tl.pairwise_distances(x)
        hardest_p = np.where(tl.positive_mask(y), d, -np.inf).max(1) if positive else d.max(1)
        hardest_n = np.where(tl.negative_mask(y), d, np.inf).min(1) if negative else d.min(1)
        per_anchor = hardest_p - hardest_n + m
        per_anchor = np.maximum(per_anchor, 0.0) if clamp else per_anchor
        values.append(per_anchor.mean() if mean else per_anchor.sum())
    return np.array(values)


def _batch_hard_agrees(function, reference) -> bool:
    results = []
    for x, y, m in _bh_cases():
        value = _run_learner(
            function, (tl.pairwise_distances(x), y.copy(), m), "batch_hard_triplet_loss"
        )
        if value.size != 1:
            raise _NotYet(f"return one number (the mean over anchors), got shape {value.shape}")
        results.append(float(value.reshape(())))
    results = np.array(results)
    if np.allclose(results, reference, rtol=0.0, atol=1e-9):
        return True
    mistakes = (
        ((False, True, True, True), "the hardest positive must be taken over the positive mask"),
        ((True, False, True, True), "the hardest negative must be taken over the negative mask"),
        ((True, True, False, True), "an anchor whose triplet is already easy counts 0: clamp"),
        ((True, True, True, False), "the loss is the mean over anchors, not the sum"),
    )
    for parts, hint in mistakes:
        if np.allclose(results, _batch_hard_variant(*parts), rtol=0.0, atol=1e-9):
            raise _NotYet(hint)
    return False


_exercise(
    "05.batch_hard",
    reference=_batch_hard_reference,
    read=_function,
    agrees=_batch_hard_agrees,
    hint="per anchor: max over the positive mask, min over the negative mask, hinge, mean",
)


# --------------------------------------------------------------------------- 06

_A06 = np.array([[1.0, 2.0, 3.0], [3.0, -1.0, 0.5]])
_B06 = np.array([[1.0, 2.0, 3.5], [0.0, 2.0, -1.0]])


def _one_minus_cos_options() -> frozenset[str]:
    import keras
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    at, bt = torch.tensor(_A06), torch.tensor(_B06)
    calls = {
        "A": lambda: keras.losses.cosine_similarity(_A06, _B06),
        "B": lambda: 1 + keras.losses.cosine_similarity(_A06, _B06),
        "C": lambda: tf.compat.v1.losses.cosine_distance(_A06, _B06, axis=1, reduction="none"),
        "D": lambda: 1 - F.cosine_similarity(at, bt),
        "E": lambda: torch.nn.CosineEmbeddingLoss(reduction="none")(
            at, bt, torch.ones(len(at), dtype=at.dtype)
        ),
    }
    target = 1 - tl.cosine_similarity(_A06, _B06)
    return frozenset(
        name
        for name, call in calls.items()
        if np.allclose(np.asarray(call(), dtype=np.float64).ravel(), target, atol=1e-6)
    )


_exercise(
    "06.one_minus_cos",
    reference=_one_minus_cos_options,
    read=_letters("ABCDE"),
    agrees=_equal,
    hint="more than one of the calls gives 1 - cos; check each against the tables",
    mistakes=(
        (lambda a: "C" in a, "tf.compat.v1.losses.cosine_distance is 1 - a.b"),
        (lambda a: "A" in a, "keras.losses.cosine_similarity alone is -cos"),
    ),
)


def _negated_loss_target() -> int:
    """Where minimising ``-keras.losses.cosine_similarity`` drives the cosine: the
    negated loss has the cosine's sign (it is +cos), so minimising it drives cos to -1."""
    import keras

    negated = -float(keras.losses.cosine_similarity(_A06[0], _B06[0]))
    cos = float(tl.cosine_similarity(_A06[0], _B06[0]))
    return -1 if np.sign(negated) == np.sign(cos) else 1


_exercise(
    "06.negated_loss",
    reference=_negated_loss_target,
    read=_sign,
    agrees=_equal,
    hint="what does keras.losses.cosine_similarity return for a similar pair, and its negative?",
    mistakes=(
        (
            lambda a: a == -_negated_loss_target(),  # lazy: imports Keras
            "keras.losses.cosine_similarity is already -cos: its negative is +cos, "
            "and minimising +cos pushes the pair apart",
        ),
    ),
)


# --------------------------------------------------------------------------- 07

_X07 = np.array([[0.0], [0.2], [1.0], [1.4], [0.75]])
_LABELS07 = np.array([0, 0, 1, 1, 0])


def _metric(name: str) -> Callable[[], float]:
    def compute() -> float:
        from tripletlab.metrics import retrieval_metrics

        return retrieval_metrics(_X07, _LABELS07)[name]

    return compute


_exercise(
    "07.p_at_1",
    reference=_metric("precision_at_1"),
    read=_number,
    agrees=_close,
    hint="for each point, is its nearest *other* point of its class? Average over the 5",
    mistakes=((_near(lambda: 1.0), "a query is never its own neighbour"),),
)


_exercise(
    "07.r_precision",
    reference=_metric("r_precision"),
    read=_number,
    agrees=_close,
    hint="per query: the fraction of relevant points among its R nearest, R = class size - 1",
    mistakes=((_near(_metric("precision_at_1")), "that is P@1: look at the first R neighbours"),),
)


_exercise(
    "07.map_at_r",
    reference=_metric("map_at_r"),
    read=_number,
    agrees=_close,
    hint="per query: (1/R) sum over the first R ranks of P(i) at each relevant rank i",
    mistakes=(
        (
            _near(_metric("r_precision")),
            "that is what dividing by the number of hits among the first R gives (and, "
            "here, the R-precision too): MAP@R divides the sum of P(i) by R itself",
        ),
    ),
)


# --------------------------------------------------------------------------- 09

_S09 = np.array([0.6, 0.4, 0.1, -0.3])  # one row of scores, the positive first
_TAU09 = 0.2
_COLD09 = np.array([0.2, 0.5, 0.1, -0.4])  # the positive first; a negative beats it


def _row_softmax(row: np.ndarray, temperature: float) -> np.ndarray:
    z = row / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def _negative_gradient(factor: float | None = None, over_negatives: bool = False) -> np.ndarray:
    """dL/ds_j = p_j / tau for the negatives of _S09. The usual mistakes: another
    ``factor`` than 1 / tau, or ``over_negatives``, the softmax of the negatives alone."""
    p = _row_softmax(_S09[1:], _TAU09) if over_negatives else _row_softmax(_S09, _TAU09)[1:]
    return p * (1.0 / _TAU09 if factor is None else factor)


def _info_nce_cases() -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Batches for the InfoNCE exercise: (queries, keys, temperature), rows of many norms."""
    rng = np.random.default_rng(9)
    cases = []
    for batch, dim, temperature in ((5, 3, 0.1), (8, 4, 0.5), (6, 6, 0.05)):
        queries = rng.normal(size=(batch, dim)) * rng.uniform(0.2, 5.0, size=(batch, 1))
        keys = queries + rng.normal(size=(batch, dim))
        cases.append((queries, keys * rng.uniform(0.2, 5.0, size=(batch, 1)), temperature))
    return cases


def _info_nce_variant(
    normalize=True, transpose=False, keep_positive=True, mean=True, divide=True
) -> np.ndarray:
    """One-way InfoNCE of each case, with some of its parts changed: the usual mistakes."""
    values = []
    for queries, keys, temperature in _info_nce_cases():
        s = tl.similarity_matrix(queries, keys) if normalize else queries @ keys.T
        s = s.T if transpose else s
        z = s / temperature if divide else s * temperature
        others = np.where(np.eye(len(z), dtype=bool), -np.inf, z)
        denominator = z if keep_positive else others
        top = denominator.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(denominator - top).sum(axis=1)) + top[:, 0]
        losses = log_sum - np.diag(z)
        values.append(losses.mean() if mean else losses.sum())
    return np.array(values)


def _info_nce_reference() -> np.ndarray:
    return np.array(
        [float(tl.info_nce_loss(q, k, temperature=t)) for q, k, t in _info_nce_cases()]
    )


def _info_nce_agrees(function, reference) -> bool:
    results = []
    for queries, keys, temperature in _info_nce_cases():
        value = _run_learner(function, (queries.copy(), keys.copy(), temperature), "info_nce_loss")
        if value.size != 1:
            raise _NotYet(f"return one number (the mean over queries), got shape {value.shape}")
        results.append(float(value.reshape(())))
    results = np.array(results)
    if np.allclose(results, reference, rtol=0.0, atol=1e-9):
        return True
    mistakes = (
        ({"normalize": False}, "these are dot products: normalize the rows, S holds cosines"),
        ({"transpose": True}, "that softmax runs down the columns (key -> query): use the rows"),
        ({"keep_positive": False}, "the positive stays in the denominator: p_ii is over all B"),
        ({"mean": False}, "the loss is the mean over the queries, not the sum"),
        ({"divide": False}, "divide the cosines by the temperature, do not multiply"),
    )
    for changes, hint in mistakes:
        if np.allclose(results, _info_nce_variant(**changes), rtol=0.0, atol=1e-9):
            raise _NotYet(hint)
    return False


def _cold_limit(temperature: float = 1e-3) -> float:
    """tau L of the row _COLD09 at ``temperature`` (it tends to max_j s_j - s_0 here)."""
    z = _COLD09 / temperature
    return float(temperature * (np.log(np.exp(z - z.max()).sum()) + z.max() - z[0]))


_exercise(
    "09.negative_gradient",
    reference=_negative_gradient,
    read=_vector(3),
    agrees=_close,
    hint="differentiate log sum_m exp(s_m / tau) - s_0 / tau with respect to s_j, j > 0",
    mistakes=(
        (_near(lambda: _negative_gradient(factor=1.0)), "each weight comes with a factor 1/tau"),
        (
            _near(lambda: _negative_gradient(over_negatives=True)),
            "the softmax runs over the whole row, the positive included",
        ),
        (_near(lambda: -_negative_gradient()), "the loss rises with a negative's score"),
        (
            _near(lambda: _negative_gradient(factor=_TAU09)),
            "divide by the temperature, do not multiply",
        ),
    ),
)


_exercise(
    "09.info_nce",
    reference=_info_nce_reference,
    read=_function,
    agrees=_info_nce_agrees,
    hint="per query: logsumexp over its row of cos(q_i, k_j) / tau, minus the diagonal entry",
)


_exercise(
    "09.cold_limit",
    reference=_cold_limit,
    read=_number,
    agrees=_close,
    hint="tau L = tau log sum_j exp(s_j / tau) - s_0: which term of the sum wins as tau -> 0?",
    mistakes=(
        (
            _near(lambda: 0.0),
            "a negative beats the positive here: the softmax has no <= s(A, P) rule, "
            "and the hardest negative decides",
        ),
        (_near(lambda: _cold_limit() / 1e-3), "that is L itself: multiply it by tau"),
        (_near(lambda: float(_COLD09[1:].max())), "subtract the positive's score"),
        (_near(lambda: -_cold_limit()), "the hardest negative minus the positive"),
    ),
)


def exercise_ids() -> list[str]:
    """Every exercise id, in course order."""
    return list(_EXERCISES)


def _reference(exercise_id: str):
    """The reference answer (for the tests; the notebooks' solution cells compute it)."""
    return _EXERCISES[exercise_id].reference()


def _missing(answer) -> bool:
    if answer is Ellipsis:
        return True
    return isinstance(answer, tuple | list) and any(v is Ellipsis for v in answer)


def verdict(exercise_id: str, answer) -> str:
    """The line ``check`` prints: ``"<id>: pass"``, ``"<id>: not yet - <hint>"`` or
    ``"<id>: not yet: no answer yet"``. Raises ``ValueError`` only for an unknown id."""
    if exercise_id not in _EXERCISES:
        raise ValueError(f"exercise_id must be one of {exercise_ids()}, got {exercise_id!r}")
    exercise = _EXERCISES[exercise_id]
    if _missing(answer):
        return f"{exercise_id}: {NO_ANSWER}"
    try:
        value = exercise.read(answer)
        if exercise.agrees(value, exercise.reference()):
            return f"{exercise_id}: pass"
        for recognise, hint in exercise.mistakes:
            try:
                recognised = recognise(value)
            except Exception:  # a mistake detector that does not apply to this answer
                continue
            if recognised:
                raise _NotYet(hint)
        raise _NotYet(exercise.hint)
    except NotImplementedError:
        return f"{exercise_id}: {NO_ANSWER}"
    except _NotYet as not_yet:
        return f"{exercise_id}: not yet - {not_yet}"
    except Exception as error:  # never raise on a learner's answer, whatever it is
        return (
            f"{exercise_id}: not yet - this answer could not be checked ({type(error).__name__})"
        )


def check(exercise_id: str, answer) -> None:
    """Print whether ``answer`` solves exercise ``exercise_id`` (see the module docstring)."""
    print(verdict(exercise_id, answer))
