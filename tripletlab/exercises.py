"""Self-checks for the exercises at the end of notebooks 01 to 07.

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

__all__ = ["check", "verdict", "exercise_ids"]

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


def _active_pair() -> tuple[bool, bool]:
    cos_ap, cos_an, margin = 0.9, 0.6, 0.4
    a = np.array([[1.0, 0.0]])
    p = np.array([[cos_ap, math.sqrt(1 - cos_ap**2)]])
    n = np.array([[cos_an, math.sqrt(1 - cos_an**2)]])
    return tuple(
        bool(tl.triplet_loss(a, p, n, margin=margin, metric=metric) > 1e-12)
        for metric in ("sqeuclidean", "cosine")
    )


# --------------------------------------------------------------------------- 02

_X02 = np.random.default_rng(2).normal(size=(4, 3)) * np.array([[0.5], [3.0], [1.0], [7.0]])
_Y02 = np.random.default_rng(3).normal(size=(5, 3)) * np.array([[2.0], [0.2], [1.0], [4.0], [1.0]])


def _similarity_reference():
    return tl.similarity_matrix(_X02, _Y02)


def _similarity_result(function) -> np.ndarray:
    try:
        result = function(_X02.copy(), _Y02.copy())
    except NotImplementedError:
        raise
    except Exception as error:  # the learner's code: report, never raise
        message = str(error).splitlines()[0][:80] if str(error) else ""
        raise _NotYet(f"your function raised {type(error).__name__}: {message}") from None
    return _as_float64(result, "your function to return an array")


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


def _opposite_v():
    return np.array([2.0, -1.0, 5.0])


# --------------------------------------------------------------------------- 03

_S03 = np.array([[0.8, 0.2, -0.4], [0.5, 0.3, 0.6], [-0.1, 0.0, 0.7]])


def _row_sums_over(count: int):
    return (_S03.sum(axis=1) - np.diag(_S03)) / count


def _closest_read(answer) -> np.ndarray:
    value = _vector(3)(answer)
    if np.isnan(value).any():
        raise _NotYet("a row without a candidate has closest_neg -inf, not NaN")
    return value


# --------------------------------------------------------------------------- 04

_X1_04, _X2_04 = np.array([[1.0, 1.0]]), np.array([[1.36, 1.48]])
_Y04 = np.array([0, 1, 1, 0, 1])


def _pair_loss(same: float, margin: float = 1.0) -> float:
    return float(tl.contrastive_loss(_X1_04, _X2_04, np.array([same]), margin=margin))


# --------------------------------------------------------------------------- 05

_LABELS05 = np.array([0, 0, 1, 1, 0, 1])
_X05 = np.array([[0.0], [0.5], [2.0], [0.3], [1.1], [1.5]])  # 1-D points, anchor 0 at 0


def _n_valid(p: int = 4, k: int = 3) -> int:
    labels = np.repeat(np.arange(p), k)
    return int((tl.positive_mask(labels)[:, :, None] & tl.negative_mask(labels)[:, None, :]).sum())


def _hardest_positive() -> int:
    d = tl.pairwise_distances(_X05)[0]
    return int(np.where(tl.positive_mask(_LABELS05)[0], d, -np.inf).argmax())


def _anchor_loss(margin: float = 0.2) -> float:
    d = tl.pairwise_distances(_X05)[0]
    hardest_positive = np.where(tl.positive_mask(_LABELS05)[0], d, -np.inf).max()
    hardest_negative = np.where(tl.negative_mask(_LABELS05)[0], d, np.inf).min()
    return float(max(hardest_positive - hardest_negative + margin, 0.0))


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


def _keras_function_sign() -> int:
    import keras

    return int(np.sign(float(keras.losses.cosine_similarity(_A06[0], _B06[0]))))


def _keras_metric_sign() -> int:
    import keras

    metric = keras.metrics.CosineSimilarity()
    metric.update_state(_A06[:1], _B06[:1])
    return int(np.sign(float(metric.result())))


# --------------------------------------------------------------------------- 07

_X07 = np.array([[0.0], [0.2], [1.0], [1.4], [0.75]])
_LABELS07 = np.array([0, 0, 1, 1, 0])


def _metric(name: str) -> Callable[[], float]:
    def compute() -> float:
        from tripletlab.metrics import retrieval_metrics

        return retrieval_metrics(_X07, _LABELS07)[name]

    return compute


# --------------------------------------------------------------------------- the table

_EXERCISES: dict[str, _Exercise] = {
    "01.unit_coefficient": _Exercise(
        _unit_coefficient,
        _number,
        _close,
        "set ||a|| = ||p|| = 1 in the boxed identity: what is left next to (1 - cos)?",
        (
            (_near(lambda: 1.0), "that is the forum answer's form, which drops a factor"),
            (_near(lambda: 0.5), "upside down: the squared distance is the larger of the two"),
        ),
    ),
    "01.margin": _Exercise(
        _cosine_margin,
        _number,
        _close,
        "for unit vectors every squared distance is a fixed multiple of the cosine distance",
        (
            (
                _near(lambda: 0.3 * _unit_coefficient()),
                "the wrong way round: divide, not multiply",
            ),
            (_near(lambda: 0.3), "the unconverted margin makes the cosine loss stricter"),
        ),
    ),
    "01.active": _Exercise(
        _active_pair,
        _bools(2),
        _equal,
        "compute d(a, p) - d(a, n) + 0.4 for each distance, with d_sq = 2 (1 - cos)",
        (
            (_is((True, True)), "with squared L2 the gap between the distances doubles too"),
            (_is((False, False)), "cosine distance: (1 - 0.9) - (1 - 0.6) + 0.4"),
            (_is((True, False)), "the two entries are swapped: (squared L2, cosine)"),
        ),
    ),
    "02.similarity_matrix": _Exercise(
        _similarity_reference,
        _function,
        _similarity_agrees,
        "compare your function with tl.similarity_matrix on a small batch of your own",
    ),
    "02.opposite": _Exercise(
        lambda: float(tl.cosine_similarity(_opposite_v(), -_opposite_v())),
        _number,
        _close,
        "what is the angle between v and -v?",
        (
            (_near(lambda: 1.0), "that is cos(v, v): -v points the other way"),
            (_near(lambda: 0.0), "0 is orthogonal; -v lies on the same line as v"),
        ),
    ),
    "02.shape": _Exercise(
        lambda: tl.similarity_matrix(np.ones((6, 8)), np.ones((3, 8))).shape,
        _shape,
        _equal,
        "one entry per pair (row of x, row of y)",
        (
            (_is((3, 6)), "the transpose: the rows of S belong to x"),
            (_is((8, 8)), "the 8 features are summed over in each dot product"),
        ),
    ),
    "03.mean_neg": _Exercise(
        lambda: tl.mean_negative(_S03),
        _vector(3),
        _close,
        "average the off-diagonal entries of each row",
        (
            (_near(lambda: _S03.mean(axis=1)), "the diagonal is the positive, not a negative"),
            (_near(lambda: _row_sums_over(3)), "there are B - 1 = 2 negatives per row"),
        ),
    ),
    "03.closest_neg": _Exercise(
        lambda: tl.closest_negative(_S03),
        _closest_read,
        _close,  # an infinity agrees only with one of the same sign
        "per row: the largest off-diagonal entry that is <= the row's positive",
        (
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
    ),
    "03.row_loss": _Exercise(
        lambda: float(tl.modified_triplet_loss(_S03, margin=0.25, reduction="none")[1]),
        _number,
        _close,
        "L1 + L2 for row 1, with mean_neg and closest_neg of the previous exercises",
        (
            (_near(lambda: 1.05), "row 1 has no closest negative: its L2 is 0"),
            (_near(lambda: 0.0), "mean_neg of row 1 is above its positive: L1 > 0"),
        ),
    ),
    "04.pair_loss": _Exercise(
        lambda: _pair_loss(same=0.0),
        _number,
        _close,
        "D first, then the branch of a dissimilar pair: 1/2 max(0, m - D)^2",
        (
            (_near(lambda: _pair_loss(same=1.0)), "that is the branch of a similar pair"),
            (_near(lambda: 2 * _pair_loss(same=0.0)), "the loss has a factor 1/2"),
        ),
    ),
    "04.same_from_y": _Exercise(
        lambda: 1.0 - _Y04,
        _vector(len(_Y04)),
        _close,
        "Y is 0 for a similar pair; same is 1 for a similar pair",
        ((_near(lambda: _Y04), "that is Y unchanged: the two conventions are opposite"),),
    ),
    "04.swapped": _Exercise(
        lambda: _pair_loss(same=1.0),
        _number,
        _close,
        "passing Y = 1 as same = 1 treats the dissimilar pair as a similar one",
        ((_near(lambda: _pair_loss(same=0.0)), "that is the loss with the correct label"),),
    ),
    "05.n_valid": _Exercise(
        _n_valid,
        _integer,
        _equal,
        "per anchor: (number of positives) x (number of negatives), times B anchors",
        (
            (_is(12**3), "that counts every index triple, valid or not"),
            (_is(12 * 3 * 9), "a positive is never the anchor itself: K - 1 per anchor"),
            (_is(12 * 2 * 11), "the negatives are the B - K points of other classes"),
        ),
    ),
    "05.hardest_positive": _Exercise(
        _hardest_positive,
        _integer,
        _equal,
        "among the points with the anchor's label (not the anchor), the farthest",
        (
            (_is(2), "point 2 has another label: it is a negative"),
            (_is(0), "the anchor is not its own positive"),
            (_is(1), "the hardest positive is the farthest one, not the nearest"),
        ),
    ),
    "05.anchor_loss": _Exercise(
        _anchor_loss,
        _number,
        _close,
        "max(hardest positive distance - hardest negative distance + margin, 0)",
        (
            (_near(lambda: 1.9), "the hardest positive must share the anchor's label"),
            (_near(lambda: 0.0), "the hardest negative is the closest one"),
        ),
    ),
    "06.one_minus_cos": _Exercise(
        _one_minus_cos_options,
        _letters("ABCDE"),
        _equal,
        "more than one of the calls gives 1 - cos; check each against the tables",
        (
            (lambda a: "C" in a, "tf.compat.v1.losses.cosine_distance is 1 - a.b"),
            (lambda a: "A" in a, "keras.losses.cosine_similarity alone is -cos"),
        ),
    ),
    "06.keras_sign": _Exercise(
        _keras_function_sign,
        _sign,
        _equal,
        "Keras' function is written as a loss to minimise",
    ),
    "06.metric_sign": _Exercise(
        _keras_metric_sign,
        _sign,
        _equal,
        "a metric reports the similarity itself, larger when more alike",
    ),
    "07.p_at_1": _Exercise(
        _metric("precision_at_1"),
        _number,
        _close,
        "for each point, is its nearest *other* point of its class? Average over the 5",
        ((_near(lambda: 1.0), "a query is never its own neighbour"),),
    ),
    "07.r_precision": _Exercise(
        _metric("r_precision"),
        _number,
        _close,
        "per query: the fraction of relevant points among its R nearest, R = class size - 1",
        ((_near(_metric("precision_at_1")), "that is P@1: look at the first R neighbours"),),
    ),
    "07.map_at_r": _Exercise(
        _metric("map_at_r"),
        _number,
        _close,
        "per query: (1/R) sum over the first R ranks of P(i) at each relevant rank i",
        ((_near(_metric("r_precision")), "that is the R-precision: weight each hit by P(i)"),),
    ),
}


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
