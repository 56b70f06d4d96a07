"""The figures the notebooks draw, so that the notebooks show ideas rather than styling.

Every function takes NumPy arrays, draws on ``ax`` (a new figure when ``ax`` is None)
and returns the axes. matplotlib is imported here, not by ``import tripletlab``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize=(5, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def distance_scatter(x, y, *, ax=None, xlabel: str, ylabel: str, title: str = "", curve=None):
    """Scatter of one distance against another, one point per pair.

    ``curve``: an optional function drawn over the range of ``x`` (the relation the
    points should follow, e.g. ``lambda c: 2 * c``).
    """
    ax = _axes(ax)
    ax.scatter(x, y, s=8, alpha=0.5, label="random pairs")
    if curve is not None:
        grid = np.linspace(0.0, float(np.max(x)), 200)
        ax.plot(grid, curve(grid), color="black", lw=1.5, label="identity for unit vectors")
        ax.legend(loc="upper left")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return ax


def heatmap(
    matrix,
    *,
    ax=None,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    vmin: float = -1.0,
    vmax: float = 1.0,
    cmap: str = "RdBu_r",
    annotate: bool = True,
    fmt: str = "{:.2f}",
):
    """A matrix as coloured cells (similarities in [-1, 1] by default), values written in."""
    matrix = np.asarray(matrix)
    ax = _axes(ax)
    image = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    rows, cols = matrix.shape
    ax.set_xticks(range(cols), col_labels if col_labels is not None else range(cols))
    ax.set_yticks(range(rows), row_labels if row_labels is not None else range(rows))
    if annotate:
        middle = (vmin + vmax) / 2
        spread = (vmax - vmin) / 2
        for (i, j), value in np.ndenumerate(matrix):
            color = "white" if abs(value - middle) > 0.6 * spread else "black"
            text = fmt.format(value)
            text = fmt.format(0.0) if float(text) == 0 else text  # no "-0.00"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title)
    return ax


def timings(sizes, seconds: Mapping[str, Sequence[float]], *, ax=None, xlabel="batch size B"):
    """Run time against problem size, one line per method, log-log axes."""
    ax = _axes(ax)
    for label, values in seconds.items():
        ax.loglog(sizes, values, marker="o", label=label)
    ax.set(xlabel=xlabel, ylabel="seconds per call")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax
