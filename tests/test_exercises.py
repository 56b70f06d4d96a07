"""The exercises of notebooks 01-07 and 09: their structure, their self-checks
(tripletlab.exercises), and the learner copies of ``make learner`` (tools/make_learner.py).
"""

import ast
import re
import shutil
from pathlib import Path

import jupytext
import make_learner
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from tripletlab import exercises
from tripletlab import numpy as tl_numpy

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
WITHOUT_EXERCISES = ("00", "08")  # the setup, and the distributed notebook
WITH_EXERCISES = [p for p in SOURCES if p.name[:2] not in WITHOUT_EXERCISES]
NO_ANSWER = "not yet: no answer yet"


def _exercises_of(source: Path) -> list[tuple[int, str, str]]:
    """``(cell index, exercise id, answer name)`` for each solution cell of ``source``."""
    cells = jupytext.read(source, fmt="py:percent").cells
    found = []
    for index, cell in enumerate(cells):
        if make_learner.is_solution(cell):
            following = next(c for c in cells[index + 1 :] if c.cell_type == "code")
            exercise_id, name = make_learner.check_call(following)
            found.append((index, exercise_id, name))
    return found


def _assigned_names(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


# --------------------------------------------------------------------------- structure


def test_the_notebooks_with_exercises_are_01_to_07_and_09():
    assert [p.name[:2] for p in WITH_EXERCISES] == ["01", "02", "03", "04", "05", "06", "07", "09"]


@pytest.mark.parametrize("source", WITH_EXERCISES, ids=lambda p: p.stem)
def test_two_to_four_solution_cells_each_followed_by_its_check(source):
    cells = jupytext.read(source, fmt="py:percent").cells
    found = _exercises_of(source)
    assert 2 <= len(found) <= 4, f"{source.name}: {len(found)} exercises"
    for index, exercise_id, name in found:
        assert cells[index - 1].cell_type == "markdown", "an exercise is stated before its cell"
        assert cells[index + 1].cell_type == "code", "the check follows the solution directly"
        assert make_learner.check_call(cells[index + 1]) == (exercise_id, name)
        assert exercise_id.startswith(source.name[:2] + "."), exercise_id
        assert name in _assigned_names(cells[index].source), f"{exercise_id}: {name} not set"


def test_every_exercise_id_is_used_once_in_course_order():
    used = [exercise_id for p in WITH_EXERCISES for _, exercise_id, _ in _exercises_of(p)]
    assert used == exercises.exercise_ids()


@pytest.mark.parametrize("source", WITH_EXERCISES, ids=lambda p: p.stem)
def test_the_committed_notebooks_pass_their_checks(source):
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for index, exercise_id, _ in _exercises_of(source):
        printed = "".join(o.get("text", "") for o in notebook.cells[index + 1].outputs)
        assert printed == f"{exercise_id}: pass\n"


# --------------------------------------------------------------------------- the checks


def _similarity_by_loops(x, y):
    return np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in y] for a in x])


def _similarity_unnormalized(x, y):
    return x @ y.T


def _unimplemented(x, y):
    raise NotImplementedError


def _broken(x, y):
    return 1 / 0


def _batch_hard_by_loops(d, labels, margin):
    losses = []
    for a in range(len(d)):
        positives = [d[a, p] for p in range(len(d)) if p != a and labels[p] == labels[a]]
        negatives = [d[a, n] for n in range(len(d)) if labels[n] != labels[a]]
        losses.append(max(max(positives) - min(negatives) + margin, 0.0))
    return sum(losses) / len(losses)


def _info_nce_by_loops(queries, keys, temperature):
    losses = []
    for i, q in enumerate(queries):
        cosines = [q @ k / np.linalg.norm(q) / np.linalg.norm(k) for k in keys]
        total = sum(np.exp(c / temperature) for c in cosines)
        losses.append(-np.log(np.exp(cosines[i] / temperature) / total))
    return sum(losses) / len(losses)


def _info_nce_dot_products(queries, keys, temperature):
    z = queries @ keys.T / temperature
    top = z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z - top).sum(axis=1)) + top[:, 0] - np.diag(z)))


def _batch_hard_shortcut(d, labels, margin):  # seed 003's row max, no positive mask
    negatives = np.where(labels[:, None] != labels[None, :], d, np.inf)
    return float(np.maximum(d.max(1) - negatives.min(1) + margin, 0).mean())


# A reference answer (as a learner would type it) and a typical wrong one, per exercise.
ANSWERS = {
    "01.margin": (0.15, 0.6),
    "01.active": ((False, True), (True, True)),
    "01.euclidean_hinge": (0.3198, 0.4),
    "02.similarity_matrix": (_similarity_by_loops, _similarity_unnormalized),
    "02.row_norm_bug": ((0.2759, 0.8), (0.8, 0.8)),
    "03.mean_neg": ([-0.1, 0.55, -0.05], [0.2, 0.4666667, 0.2]),
    "03.closest_neg": ([0.2, -np.inf, 0.0], [0.2, 0.6, 0.0]),
    "03.row_loss": (0.5, 1.05),
    "04.pair_loss": (0.08, 0.18),
    "04.gradient": (-0.4, 0.4),
    "04.swapped": (0.18, 0.08),
    "05.n_valid": (216, 324),
    "05.shortcut_anchors": ([0, 1, 2, 5], [3, 4]),
    "05.anchor_loss": (1.0, 1.9),
    "05.batch_hard": (_batch_hard_by_loops, _batch_hard_shortcut),
    "06.one_minus_cos": ({"B", "D", "E"}, "BCD"),
    "06.negated_loss": (-1, 1),
    "07.p_at_1": (0.6, 1.0),
    "07.r_precision": (0.7, 0.6),
    "07.map_at_r": (0.65, 0.7),
    "09.negative_gradient": ([1.2589, 0.2809, 0.0380], [0.2518, 0.0562, 0.0076]),
    "09.info_nce": (_info_nce_by_loops, _info_nce_dot_products),
    "09.cold_limit": (0.3, 0.0),
}
IDS = exercises.exercise_ids()


def test_every_exercise_has_answers_here():
    assert list(ANSWERS) == IDS


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_answer_passes(exercise_id):
    reference = exercises._reference(exercise_id)
    if exercise_id in ("02.similarity_matrix", "05.batch_hard", "09.info_nce"):  # a function
        reference = ANSWERS[exercise_id][0]
    assert exercises.verdict(exercise_id, reference) == f"{exercise_id}: pass"
    assert exercises.verdict(exercise_id, ANSWERS[exercise_id][0]) == f"{exercise_id}: pass"


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_wrong_answer_gets_not_yet_with_a_hint(exercise_id):
    line = exercises.verdict(exercise_id, ANSWERS[exercise_id][1])
    assert re.fullmatch(rf"{re.escape(exercise_id)}: not yet - \S.*", line), line


@pytest.mark.parametrize("exercise_id", IDS)
def test_no_answer_yet(exercise_id):
    missing = (..., ...) if exercise_id == "01.active" else ...
    assert exercises.verdict(exercise_id, ...) == f"{exercise_id}: {NO_ANSWER}"
    assert exercises.verdict(exercise_id, missing) == f"{exercise_id}: {NO_ANSWER}"


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize(
    "junk", ["abc", None, [1.0, 2.0], np.nan, object(), _broken, {"x": 1}], ids=repr
)
def test_any_answer_gets_a_verdict_and_never_raises(exercise_id, junk):
    line = exercises.verdict(exercise_id, junk)
    assert line.startswith(f"{exercise_id}: not yet - "), line


class _NoArray:
    """An object whose conversion to an array fails."""

    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array here")


def _hostile_answers():
    """Answers that made ``check`` raise, or pass when wrong (issue 14)."""
    torch = pytest.importorskip("torch")
    with_grad = torch.tensor(0.15, requires_grad=True)

    def grad_matrix(x, y):
        return torch.tensor(_similarity_by_loops(x, y), requires_grad=True)

    return [  # (exercise, answer, the verdict starts with)
        ("01.margin", with_grad, "01.margin: pass"),
        ("01.margin", with_grad * 4, "01.margin: not yet - "),
        ("05.n_valid", 10**400, "05.n_valid: not yet - "),
        ("01.margin", _NoArray(), "01.margin: not yet - "),
        ("06.one_minus_cos", [_NoArray()], "06.one_minus_cos: not yet - "),
        ("02.similarity_matrix", grad_matrix, "02.similarity_matrix: pass"),
        ("02.similarity_matrix", lambda x, y: _NoArray(), "02.similarity_matrix: not yet - "),
        ("03.closest_neg", [0.2, np.inf, 0.0], "03.closest_neg: not yet - "),  # -inf expected
        ("03.closest_neg", [0.2, -np.inf, 0.0], "03.closest_neg: pass"),
    ]


def test_hostile_answers_get_a_verdict_and_infinities_keep_their_sign():
    for exercise_id, answer, start in _hostile_answers():
        line = exercises.verdict(exercise_id, answer)
        assert line.startswith(start), (exercise_id, line)


def test_a_function_answer_that_raises():
    check_id = "02.similarity_matrix"
    assert exercises.verdict(check_id, _unimplemented) == f"{check_id}: {NO_ANSWER}"
    assert exercises.verdict(check_id, _broken) == (
        f"{check_id}: not yet - your function raised ZeroDivisionError: division by zero"
    )
    transposed = exercises.verdict(check_id, lambda x, y: _similarity_by_loops(y, x))
    assert "transpose" in transposed


def test_the_similarity_exercise_refuses_the_package_function():
    from tripletlab import numpy as tl

    original = tl.similarity_matrix
    line = exercises.verdict("02.similarity_matrix", lambda x, y: tl.similarity_matrix(x, y))
    assert line.startswith("02.similarity_matrix: not yet - your function calls"), line
    assert tl.similarity_matrix is original  # put back, even after the refusal
    assert exercises.verdict("02.similarity_matrix", _similarity_by_loops).endswith(": pass")


# Every mistake an exercise names a hint for, as a learner would type it: each must get
# "not yet" with that hint, never "pass".
KNOWN_WRONG = {
    "01.euclidean_hinge": {
        0.4: "squared distance",
        0.3: "cosine distance",
        0.2848: "twice the cosine distance",
        0.0802: "comes first",
    },
    "02.row_norm_bug": {
        (0.8, 0.8): "whole batch",
        (0.8, 0.2759): "the order is",
        (1.4856, 0.8): "norm twice",
    },
    "04.gradient": {0.4: "mind the sign", -0.8: "cancels", 0.08: "the loss itself"},
    "05.shortcut_anchors": {
        (0, 1, 2, 3, 4, 5): "does share",
        (3, 4): "gets right",
    },
    "05.batch_hard": {
        _batch_hard_shortcut: "positive mask",
        lambda d, y, m: float(
            np.maximum(
                np.where(y[:, None] == y[None, :], d, -np.inf).max(1) - d.min(1) + m, 0
            ).mean()
        ): "negative mask",
        lambda d, y, m: float(
            (
                np.where((y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool), d, -np.inf).max(
                    1
                )
                - np.where(y[:, None] != y[None, :], d, np.inf).min(1)
                + m
            ).mean()
        ): "clamp",
        lambda d, y, m: len(y) * _batch_hard_by_loops(d, y, m): "not the sum",
        lambda d, y, m: tl_numpy.batch_hard_triplet_loss(d, y, m): "calls tl.batch_hard",
    },
    "06.negated_loss": {1: "already -cos"},
    "07.map_at_r": {0.7: "number of hits"},
    "09.negative_gradient": {
        (0.2518, 0.0562, 0.0076): "factor 1/tau",
        (-1.2589, -0.2809, -0.0380): "rises with a negative's score",
        (3.9894, 0.8902, 0.1205): "whole row",
        (0.0504, 0.0112, 0.0015): "do not multiply",
    },
    "09.info_nce": {
        _info_nce_dot_products: "normalize the rows",
        lambda q, k, t: _info_nce_by_loops(k, q, t): "down the columns",
        lambda q, k, t: len(q) * _info_nce_by_loops(q, k, t): "not the sum",
        lambda q, k, t: _info_nce_by_loops(q, k, 1 / t): "do not multiply",
        lambda q, k, t: float(
            np.mean(
                [
                    np.log(
                        sum(
                            np.exp(tl_numpy.cosine_similarity(qi, kj) / t)
                            for j, kj in enumerate(k)
                            if j != i
                        )
                    )
                    - tl_numpy.cosine_similarity(qi, k[i]) / t
                    for i, qi in enumerate(q)
                ]
            )
        ): "positive stays in the denominator",
        lambda q, k, t: tl_numpy.info_nce_loss(q, k, t): "calls tl.info_nce_loss",
    },
    "09.cold_limit": {0.0: "no <= s(A, P) rule", 300.0: "multiply it by tau", 0.5: "positive's"},
}


@pytest.mark.parametrize(
    ("exercise_id", "answer", "words"),
    [(e, a, w) for e, wrong in KNOWN_WRONG.items() for a, w in wrong.items()],
)
def test_known_wrong_answers_get_their_hint(exercise_id, answer, words):
    line = exercises.verdict(exercise_id, answer)
    assert line.startswith(f"{exercise_id}: not yet - ") and words in line, line


def test_the_hints_never_give_the_answer_away():
    for exercise_id, (_, wrong) in ANSWERS.items():
        hint = exercises.verdict(exercise_id, wrong).split(" - ", 1)[1]
        reference = ANSWERS[exercise_id][0]
        if isinstance(reference, int | float) and reference not in (0, 1, -1, 2):
            assert str(reference) not in hint, (exercise_id, hint)


def test_check_prints_one_line_and_returns_none(capsys):
    assert exercises.check("01.margin", 0.15) is None
    assert exercises.check("01.margin", ...) is None
    assert capsys.readouterr().out == f"01.margin: pass\n01.margin: {NO_ANSWER}\n"


def test_an_unknown_id_is_an_error():
    with pytest.raises(ValueError, match="exercise_id"):
        exercises.verdict("01.nope", 1)


# --------------------------------------------------------------------------- learner copies


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """A copy of notebooks/ (so relative paths work) with the learner copies written in it."""
    folder = tmp_path_factory.mktemp("course")
    shutil.copytree(
        NOTEBOOKS, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb")
    )
    out = folder / "learner"
    assert make_learner.main(["--out", str(out), *map(str, SOURCES)]) == 0
    for path in out.glob("*.ipynb"):
        shutil.move(path, folder / path.name)
    return folder


def test_a_learner_copy_for_every_notebook(learner):
    assert sorted(p.stem for p in learner.glob("*.ipynb")) == [p.stem for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_learner_copies_hold_no_solution_and_no_output(learner, source):
    original = jupytext.read(source, fmt="py:percent").cells
    copy = nbformat.read(learner / source.with_suffix(".ipynb").name, as_version=4).cells
    assert len(copy) == len(original)
    for cell in copy:
        assert "solution" not in cell.metadata.get("tags", [])
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    elsewhere = {
        line for c in original if not make_learner.is_solution(c) for line in c.source.splitlines()
    }
    learner_text = "\n".join(c.source for c in copy)
    for index, exercise_id, name in _exercises_of(source):
        placeholder = copy[index].source
        assert "exercise" in copy[index].metadata["tags"]
        assert f"{name} = ...  # your code here" in placeholder or (
            f"def {name}(" in placeholder and "raise NotImplementedError" in placeholder
        )
        kept = set(placeholder.splitlines()) | elsewhere
        solution_lines = [
            line
            for line in original[index].source.splitlines()
            if line.strip() and not line.strip().startswith("#") and line not in kept
        ]
        assert solution_lines, f"{exercise_id}: the solution has code of its own"
        for line in solution_lines:
            assert line not in learner_text, f"{exercise_id}: {line!r} leaked"


def test_a_solution_without_a_check_is_an_error(tmp_path):
    source = tmp_path / "99_broken.py"
    source.write_text('# %% tags=["solution"]\nanswer = 1\n\n# %%\nprint(answer)\n')
    with pytest.raises(ValueError, match="no check"):
        make_learner.learner_copy(source)


# Each learner copy runs, in a fresh kernel, every cell before its first exercise (the
# whole lesson: the exercises come last) and then the exercises themselves, whose
# placeholders must leave every check printing "no answer yet". 5 to 15 s each, except
# 07, which trains about 70 small networks (about 3 minutes on 2 cores); ``timeout`` is
# per cell.
@pytest.mark.parametrize("source", WITH_EXERCISES, ids=lambda p: p.stem)
def test_learner_copies_run_and_say_no_answer_yet(learner, source):
    path = learner / source.with_suffix(".ipynb").name
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(learner)}},
    ).execute()
    for index, exercise_id, _ in _exercises_of(source):
        printed = "".join(o.get("text", "") for o in notebook.cells[index + 1].outputs)
        assert printed == f"{exercise_id}: {NO_ANSWER}\n"
