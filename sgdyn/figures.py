"""One way to make and save figures, for the command line and for notebooks alike.

* In a Jupyter kernel whose matplotlib backend is the inline (or widget) one, ``new_figure``
  makes the figure through pyplot, so the notebook shows it at the end of the cell wherever it was
  made (as pyplot figures always are), whether or not it is the cell's last expression.
* Everywhere else (the command line, scripts, tests) it builds a bare ``matplotlib.figure.Figure``:
  no pyplot state, no GUI backend, nothing to close; ``save`` writes it (.png, .svg or .pdf).

matplotlib is imported here only when a figure is made, never by ``check_out``.
"""
from __future__ import annotations

import os
import sys

FORMATS = (".png", ".svg", ".pdf")


def check_out(path, name: str = "out") -> str:
    """``path`` as a string if it names a .png, .svg or .pdf file that can be written."""
    from sgdyn.theory.checks import output_path
    return output_path(name, path, FORMATS)


def in_notebook() -> bool:
    """True inside a Jupyter kernel whose matplotlib backend displays figures inline."""
    if "ipykernel" not in sys.modules:
        return False
    import matplotlib
    backend = str(matplotlib.get_backend()).lower()
    return any(k in backend for k in ("inline", "ipympl", "widget", "nbagg"))


def new_figure(size=(6.4, 4.6), nrows: int = 1, ncols: int = 1, **subplots):
    """``(figure, axes)``: one axes, or an array of them for ``nrows x ncols`` (``subplots``
    keywords pass to ``Figure.subplots``). Constrained layout."""
    if in_notebook():
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=size, layout="constrained")
    else:
        from matplotlib.figure import Figure
        fig = Figure(figsize=size, layout="constrained")
    if nrows == 1 and ncols == 1 and not subplots:
        return fig, fig.add_subplot()
    return fig, fig.subplots(nrows, ncols, **subplots)


def save(fig, path, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` (.png at ``dpi``, .svg or .pdf)."""
    p = check_out(path)
    if not isinstance(dpi, int) or isinstance(dpi, bool) or dpi < 10:
        raise ValueError(f"dpi must be an integer >= 10, got {dpi!r}")
    fig.savefig(p, dpi=dpi)
