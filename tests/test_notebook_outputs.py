"""Which notebook outputs nbval does not compare, and why: a short, honest list.

A cell's output is either exact on every machine (nbval compares it strictly), or it
depends on the hardware (float32 training, timings): then the cell is tagged
``nbval-ignore-output`` and must assert, with measured margins, what the text
concludes from it. ``NOT_COMPARED`` lists every such cell by its first line of code;
a cell tagged but not listed, listed but not tagged, skipped outright, or asserting
nothing fails here.
"""

import ast
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TRAINED = "float32 training: its scores round differently on other CPUs, threads and GPUs"
TIMED = "timings"

NOT_COMPARED = {
    "02_similarity_matrices": {"sizes = [8, 16, 32, 64, 128]": TIMED},
    "05_online_mining": {"def forward_backward(loss_fn, x, y):": TIMED},
    "06_tf_vs_torch_cosine": {
        "for name, (value_diff, grad_diff) in differences.items():": (
            "differences at the level of rounding, which depend on the math libraries"
        )
    },
    "04_siamese_losses": {
        "epochs, batch_size, learning_rate = 4, 32, 0.02": TRAINED,
        "tf.config.experimental.enable_op_determinism()": TRAINED,
        'full = [("PyTorch", "base and head"), ("Keras", "base and head")]': TRAINED,
        'logits["PyTorch", "head only"] = train_torch(train_base=False)': TRAINED,
    },
    "07_training": {
        'LOSS_NAMES = ("batch_all", "batch_hard", "batch_semihard", "batch_hard_soft", "contrastive")': (  # noqa: E501
            TRAINED
        ),
        "runs, histories, models = {}, {}, {}": TRAINED,
        'raw_point = (raw["map_at_r"], 0.0)': TRAINED,
        'setting = chosen["batch_hard_soft"]': TRAINED,
        "valid_triplets = P * K * (K - 1) * (P * K - K)": TRAINED,
        'MLP = "MLP, batch_hard_soft"': TRAINED,
        'KERAS = "batch_hard_soft, Keras"': TRAINED,
        'one_shot = {"raw pixels": one_shot_accuracy(x_test)}': TRAINED,
    },
    "09_softmax_losses": {
        'LOSS_NAMES = ("supervised_contrastive", "batch_hard_soft")': TRAINED,
        "SEEDS = [SEED + i for i in range(5)]": TRAINED,
    },
}
IGNORE_TAG = "nbval-ignore-output"
FORBIDDEN = ("nbval-skip", "nbval-raises-exception", "NBVAL_SKIP", "NBVAL_IGNORE_OUTPUT")


def _code_cells(stem):
    notebook = jupytext.read(NOTEBOOKS / f"{stem}.py", fmt="py:percent")
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _key(cell) -> str:
    """The cell's first line of code, its name in NOT_COMPARED (a first
    ``seed_everything(...)`` skipped: several cells start with it)."""
    lines = [line for line in cell.source.splitlines() if line and not line.startswith("#")]
    return next((line for line in lines if not line.startswith("seed_everything(")), lines[0])


def _not_compared(stem) -> dict[str, str]:
    return {
        _key(c): c.source for c in _code_cells(stem) if IGNORE_TAG in c.metadata.get("tags", [])
    }


STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("stem", STEMS)
def test_the_cells_not_compared_are_exactly_the_listed_ones(stem):
    assert sorted(_not_compared(stem)) == sorted(NOT_COMPARED.get(stem, {}))


@pytest.mark.parametrize("stem", STEMS)
def test_no_cell_is_skipped_or_marked_another_way(stem):
    for cell in _code_cells(stem):
        markers = [*cell.metadata.get("tags", []), *cell.source.split()]
        assert not set(markers) & set(FORBIDDEN), (stem, _key(cell))


@pytest.mark.parametrize(
    ("stem", "key"), [(stem, key) for stem, cells in NOT_COMPARED.items() for key in cells]
)
def test_every_cell_not_compared_asserts_something(stem, key):
    source = _not_compared(stem)[key]
    asserts = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
    assert asserts, f"{stem}: the cell {key!r} prints numbers nobody checks"
