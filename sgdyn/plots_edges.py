"""Figures for the edges of stability (matplotlib via ``sgdyn.figures``: a bare Figure on the command
line, shown inline in Jupyter; Okabe-Ito colour-blind-safe palette).

``plot_eos``: sharpness along training against the edge it should hover at (``2/eta``, or
``2 (1 + beta)/eta`` for heavy ball, and SAM's edge at the measured ``||g||``), loss below.
``plot_lr_sweep``: converged / diverged fraction and the limiting gradient norm against
``eta / eta_crit``, the predicted transition marked at 1.
"""
from __future__ import annotations

import pathlib

import numpy as np

from sgdyn.edges_report import EdgeTrace, LrSweep
from sgdyn.figures import check_out, new_figure

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies
BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY, BLACK = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
FORMATS = (".png", ".svg", ".pdf")


def check_path(path) -> pathlib.Path:
    return pathlib.Path(check_out(path))


def _save(fig, path):
    """Write ``fig`` to ``path`` if given; return the path, or the figure when there is none."""
    if path is None:
        return fig
    p = check_path(path)
    fig.savefig(p, dpi=150, bbox_inches="tight")
    return p


def plot_eos(trace: EdgeTrace, path=None):
    """Sharpness against its edge (top) and the loss (bottom); written to ``path`` (returned), or
    the figure itself without a path."""
    fig, (top, bottom) = new_figure((7, 6), 2, 1, sharex=True,
                                    gridspec_kw={"height_ratios": [3, 2]})
    top.plot(trace.steps, trace.sharpness, color=BLUE, lw=1.8,
             label="sharpness (top Hessian eigenvalue)")
    label = "2/eta" if trace.optimizer != "heavy-ball" else "2(1+beta)/eta"
    top.axhline(trace.deterministic_edge, color=BLACK, ls="--", lw=1.2,
                label=f"{label} = {trace.deterministic_edge:.4g}")
    if trace.sam_edge is not None:
        top.plot(trace.steps, trace.sam_edge, color=VERMILION, ls="-.", lw=1.5,
                 label="SAM edge at measured ||g||")
    top.set_ylabel("sharpness")
    extra = {"gd": "", "heavy-ball": f", beta = {trace.beta:g}", "sam": f", rho = {trace.rho:g}"}
    top.set_title(f"{trace.model}, {trace.optimizer}, eta = {trace.eta:g}{extra[trace.optimizer]}"
                  + (" (diverged)" if trace.diverged else ""))
    top.legend(loc="lower right", fontsize=8)
    top.grid(alpha=0.3)
    bottom.semilogy(trace.steps, np.maximum(trace.loss, np.finfo(float).tiny), color=GREEN, lw=1.5,
                    label="training loss")
    bottom.set_xlabel("step")
    bottom.set_ylabel("loss")
    bottom.grid(alpha=0.3, which="both")
    bottom.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_lr_sweep(sweep: LrSweep, path=None):
    """Converged / diverged fractions (top) and the limiting gradient norm (bottom) against
    ``eta / eta_crit``; written to ``path`` (returned), or the figure itself without a path."""
    fig, (top, bottom) = new_figure((7, 6), 2, 1, sharex=True)
    r = sweep.ratios
    top.plot(r, sweep.converged_fraction, "o-", color=BLUE, label="converged fraction")
    top.plot(r, sweep.diverged_fraction, "s--", color=ORANGE, label="diverged fraction")
    top.set_ylabel(f"fraction of {sweep.runs} initialisations")
    top.set_ylim(-0.05, 1.05)
    top.set_title(f"GD on {sweep.model}, depth {sweep.depth}: eta_crit = {sweep.eta_crit:.5g} "
                  f"(flattest-minimum sharpness {sweep.flattest_sharpness:.5g})")
    finite = np.isfinite(sweep.grad_norm_median)
    floor = np.finfo(float).tiny
    bottom.semilogy(r[finite], np.maximum(sweep.grad_norm_median[finite], floor), "o-", color=GREEN,
                    label="limiting ||grad||, median")
    q = sweep.grad_norm_quartiles
    ok = finite & np.all(np.isfinite(q), axis=0)
    bottom.fill_between(r[ok], np.maximum(q[0, ok], floor), np.maximum(q[1, ok], floor), color=GREEN,
                        alpha=0.25, label="interquartile range")
    bottom.set_xlabel("eta / eta_crit")
    bottom.set_ylabel("limiting gradient norm")
    for ax in (top, bottom):
        ax.axvline(1.0, color=VERMILION, ls="--", lw=1.2, label="predicted eta_crit")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", fontsize=8)
    return _save(fig, path)
