"""Figures for the momentum-equivalence and adaptive-batch commands (matplotlib via
``sgdyn.figures``: a bare Figure on the command line, shown inline in Jupyter).

Each function takes result objects from ``theory.equivalence`` / ``simulate.adaptive`` and writes
one file whose format follows its suffix (.png, .svg, .pdf); without a path it returns the figure.
"""
from __future__ import annotations

import numpy as np

from sgdyn.figures import FORMATS, check_out  # noqa: F401  (the commands check --out with it)


def _figure(ncols=1):
    from sgdyn.figures import new_figure
    fig, axes = new_figure((5.2 * ncols, 4.0), 1, ncols, squeeze=False)
    return fig, axes[0]


def _done(fig, path):
    if path is None:
        return fig
    fig.savefig(check_out(path))
    return None


def plot_gap_scaling(scalings, path=None, title: str = ""):
    """Largest relative gap against eta (log-log), one line per ``a`` with its fitted slope."""
    fig, (ax,) = _figure()
    for s in scalings:
        pts = ax.loglog(s.etas, s.gaps, "o", ms=4)[0]
        fit = np.exp(s.intercept) * s.etas ** s.exponent
        ax.loglog(s.etas, fit, "-", color=pts.get_color(),
                  label=f"$1-\\beta = {s.scale:g}\\,\\eta^{{{s.a:g}}}$: slope {s.exponent:.3f}"
                        f" $\\pm$ {s.exponent_stderr:.3f}")
    ax.set_xlabel(r"effective learning rate $\eta$")
    ax.set_ylabel(r"max$_{t \leq K/\eta}$ |L$^{mom}_t$ - L$^{sgd}_t$| / L$^{sgd}_t$")
    ax.set_title(title or "SGD vs normalized momentum: exact relative gap")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _done(fig, path)


def plot_adaptive(curves, path=None, title: str = ""):
    """Left: mean loss (with a 2-standard-error band) against mean samples consumed, one line per
    labelled run; right: the mean batch schedule (and the theory's prediction where given).

    ``curves``: list of ``(label, AdaptiveRun, predicted_batch_or_None)``.
    """
    fig, (ax, bx) = _figure(2)
    for label, run, predicted in curves:
        m, se = run.mean_stderr("loss")
        x = run.samples.mean(axis=0)
        line = ax.loglog(x[1:], m[1:], label=label)[0]
        ax.fill_between(x[1:], np.maximum(m - 2 * se, m * 1e-3)[1:], (m + 2 * se)[1:],
                        color=line.get_color(), alpha=0.25)
        b, bse = run.mean_stderr("batch")
        bx.semilogy(np.arange(b.size), b, color=line.get_color(), label=f"{label} (simulated mean)")
        if predicted is not None:
            bx.semilogy(np.arange(predicted.size), predicted, "--", color=line.get_color(),
                        label=f"{label} (theory, mean field)")
    ax.set_xlabel("samples consumed")
    ax.set_ylabel("population loss (mean over runs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    bx.set_xlabel("step")
    bx.set_ylabel("batch size")
    bx.grid(True, which="both", alpha=0.3)
    bx.legend(fontsize=7)
    fig.suptitle(title or "constant vs adaptive batches")
    return _done(fig, path)
