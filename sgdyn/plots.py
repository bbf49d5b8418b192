"""Figures of the SE theory of mini-batch SGD / momentum (Velikanov, Kuznedelev, Yarotsky, ICLR 2023,
arXiv 2206.11124; ``docs/theory.md``).

Four kinds, each a function returning ``(figure, data)``: the matplotlib ``Figure`` and a small
frozen dataclass holding exactly what was drawn (so tests check content, not pixels; the data
converts with ``.to_xarray()`` / ``.to_dataframe()``):

1. ``convergence_region``: the (alpha, beta) plane at one batch size: noiseless mode-stability edge,
   noise boundary ``U(1) = 1``, contours of the rate ``rho`` (or of the loss after ``steps`` steps)
   and the optimum of that objective; ``convergence_regions``: one panel per batch size;
2. ``critical_lr_vs_batch``: critical effective learning rate ``alpha_crit / (1 - beta)`` against
   the batch size (log axes) with the small-alpha reference ``2 / (tau1 gamma Tr H)``
   (``= 2 b / (tau1 Tr H)`` for i.i.d. batches);
3. ``phase_plane``: power-law problems in the exponent plane (nu, zeta = kappa / nu): signal-
   dominated ``zeta < 2 - 1/nu``, noise-dominated ``zeta > 2 - 1/nu``, divergent ``U(1) >= 1``
   (``theory.asymptotics.phases``);
4. ``loss_curves``: theory against Monte Carlo (mean, a band of +-2 standard errors and the 5-95 %
   run quantiles), optional asymptotes and the transition time where they cross
   (``phase_guides``: the power-law asymptotes of ``theory.asymptotics.phases``).

Conventions (stated in the axis labels): heavy ball ``v <- beta v - alpha g, w <- w + v``
(PyTorch ``SGD(lr=alpha, momentum=beta)``), batch factor ``gamma = 1/b`` (i.i.d.) or
``(N - b)/((N - 1) b)`` (without replacement), SE noise ``(tau1, tau2)``. Figures come from
``sgdyn.figures.new_figure``: a bare ``matplotlib.figure.Figure`` on the command line and in
scripts (no pyplot state, no GUI backend), a pyplot figure in a Jupyter kernel, so the notebook
shows it; colours are the Okabe-Ito colour-blind-safe palette and ``viridis``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from sgdyn.figures import FORMATS, check_out, new_figure, save  # noqa: F401  (public here too)
from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.asymptotics import Phases, phases
from sgdyn.theory.horizon import final_losses, optimal_hyperparameters_at_horizon
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (_setup, critical_learning_rate, critical_learning_rate_curve,
                                    optimal_rate)
from sgdyn.theory.transfer import rate_arrays

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
             "grey": "#999999"}
CYCLE = ("blue", "vermillion", "green", "purple", "orange", "sky", "black")
OBJECTIVES = ("rate", "horizon")
RATIO_LEVELS = (1.0, 1.005, 1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0)
DEFAULT_BETA_RANGE = (-0.95, 0.95)

ALPHA_LABEL = r"learning rate $\alpha$  (heavy ball $v \leftarrow \beta v - \alpha g$; PyTorch lr)"
BETA_LABEL = r"momentum $\beta$"


def _new_figure(size=(6.4, 4.6)):
    return new_figure(size)


def _axes(ax, size=(6.4, 4.6)):
    if ax is None:
        return _new_figure(size)
    return ax.figure, ax


def _noise_text(noise: NoiseModel) -> str:
    return rf"$\tau_1={noise.tau1:g}, \tau_2={noise.tau2:g}$"


def _batch_text(batch, problem: Problem) -> str:
    if problem.data_size is None:
        return f"batch b = {batch} (i.i.d.)"
    return f"batch b = {batch} of N = {problem.data_size} (no replacement)"


# -- 1. convergence region ----------------------------------------------------------------------
@dataclass(frozen=True)
class RegionData(Result):
    """The (alpha, beta) plane of one batch size: what ``convergence_region`` drew."""

    alphas: np.ndarray          # (n_alpha,) learning-rate grid
    betas: np.ndarray           # (n_beta,) momentum grid
    values: np.ndarray          # (n_beta, n_alpha): rho ("rate") or L_T ("horizon"); nan where divergent
    objective: str              # "rate" or "horizon"
    steps: int | None           # the horizon T (objective "horizon")
    alpha_crit: np.ndarray      # (n_beta,) sup of the convergent alphas at each beta
    mode_edge: np.ndarray       # (n_beta,) alpha at which a noiseless mode turns unstable (inf: none)
    noise_boundary: np.ndarray  # (m, 2) points (alpha, beta) of the boundary U(1) = 1
    optimum: tuple[float, float]  # (alpha*, beta*) of the objective
    optimum_value: float        # rho* or L_T at the optimum
    batch: int = 0              # the batch size b
    boundary_values: np.ndarray | None = None   # (n_beta,) the objective at (alpha_crit, beta)
    reference: tuple | None = None  # "horizon": (alpha, L_T) of the best beta = 0 point

    _dims = {"values": ("beta", "alpha"), "alpha_crit": ("beta",), "mode_edge": ("beta",),
             "boundary_values": ("beta",), "noise_boundary": ("boundary_point", "alpha_beta"),
             "optimum": ("alpha_beta",)}
    _table = ("beta", "alpha")


def default_betas(optimum_beta: float, n: int = 77, beta_range=DEFAULT_BETA_RANGE) -> np.ndarray:
    """``n`` momenta over ``beta_range`` widened, if needed, to contain ``optimum_beta`` with room
    on its far side (4 % of the range, or half its distance to +-1), so the marked optimum is
    never cut off."""
    lo, hi = beta_range
    room = 0.04 * (hi - lo)
    if optimum_beta > hi - room:
        hi = min(max(optimum_beta + room, optimum_beta + 0.5 * (1.0 - optimum_beta)), 0.9999)
    if optimum_beta < lo + room:
        lo = max(min(optimum_beta - room, optimum_beta - 0.5 * (1.0 + optimum_beta)), -0.9999)
    return np.linspace(lo, hi, checks.integer("n", n, 2))


def _fill_grid(alphas, betas, shade, crit, edge_value, zero_value):
    """A boundary-fitted grid for the filled contours: in each row the points beyond
    ``alpha_crit(beta)`` move onto it and take the boundary's value, and a first column at
    ``alpha = 0`` takes the limit there, so the filled area runs from the beta axis to the drawn
    boundary curves (the polyline through (alpha_crit, beta)) instead of stopping at the grid
    points inside (a staircase; nothing at all in rows whose alpha_crit is below the first grid
    point, near beta = +-1)."""
    X = np.minimum(alphas[None, :], crit[:, None])
    outside = (alphas[None, :] >= crit[:, None]) | ~np.isfinite(shade)
    Z = np.where(outside, edge_value[:, None], shade)
    X = np.column_stack([np.zeros(betas.size), X])
    Z = np.column_stack([zero_value, Z])
    Y = np.broadcast_to(betas[:, None], X.shape)
    return X, Y, Z


def _row_ends(shade, default):
    """Per row: the last and the first finite value (``default`` in a row without any)."""
    ok = np.isfinite(shade)
    last = np.where(ok.any(axis=1), shade[np.arange(shade.shape[0]),
                                          shade.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)], default)
    first = np.where(ok.any(axis=1), shade[np.arange(shade.shape[0]), np.argmax(ok, axis=1)], default)
    return last, first


def region_data(problem: Problem, batch, method="heavy-ball", noise: NoiseModel = GAUSSIAN,
                objective: str = "rate", steps=None, betas=None, n_alpha: int = 120,
                alpha_max=None, n_beta: int = 77, progress=None,
                with_optimum: bool = True) -> RegionData:
    """What ``convergence_region`` draws, without drawing it (arguments as there): the grids, the
    objective on them and on the boundary, ``alpha_crit`` and the noiseless edge per beta, the
    noise boundary ``U(1) = 1`` and the optimum. ``with_optimum=False`` skips the optimum (nan;
    the momentum grid then spans ``DEFAULT_BETA_RANGE``): a quick first answer for
    ``sgdyn.explore``, which shows the same data live."""
    m = _setup(problem, method, noise)
    bsz = checks.integer("batch", batch, 1)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    T = checks.integer("steps", steps, 1) if objective == "horizon" else None
    n_alpha = checks.integer("n_alpha", n_alpha, 2)
    rows = np.size(betas) if betas is not None else checks.integer("n_beta", n_beta, 2)
    points = float(n_alpha) * rows
    budget.memory("n_alpha", 8 * 8.0 * points, f"a {n_alpha} x {rows} grid")
    # a rate is a root search over the modes (~2000 operations per mode); a horizon loss a
    # recursion of T steps (~20 per mode and step)
    per_mode = 2000.0 if objective == "rate" else 20.0 * T
    budget.work("n_alpha", points * problem.n_modes * per_mode, f"a {n_alpha} x {rows} grid")
    reference = None
    if not with_optimum:
        optimum, best = (np.nan, np.nan), np.nan
    elif objective == "rate":
        opt = optimal_rate(problem, bsz, m, noise)
        optimum, best = (opt.alpha, opt.beta), opt.rate
    else:
        opt = optimal_hyperparameters_at_horizon(problem, bsz, T, m, noise, progress=progress)
        optimum, best = (opt.alpha, opt.beta), opt.loss
        reference = (opt.alpha_beta0, opt.loss_beta0)
    if betas is None:
        betas = np.zeros(1) if not m.has_momentum else \
            default_betas(optimum[1], n_beta) if with_optimum else np.linspace(*DEFAULT_BETA_RANGE, n_beta)
    betas = np.asarray([checks.momentum("betas", b) if m.has_momentum else m.check_params(1.0, b)[1]
                        for b in np.atleast_1d(np.asarray(betas, float))])
    g = batch_factor(bsz, problem.data_size)
    lam = problem.eigenvalues
    crit, edge = critical_learning_rate_curve(problem, betas, bsz, m, noise)
    amax = 1.05 * float(np.nanmax([crit.max(), optimum[0]])) if alpha_max is None else \
        checks.positive("alpha_max", alpha_max)
    alphas = np.linspace(amax / n_alpha, amax, n_alpha)
    if objective == "rate":
        rho = np.stack([rate_arrays(m, lam, alphas, b, g, noise.tau1, noise.tau2,
                                     problem.multiplicity)[0]
                        for b in betas])
        values = np.where(rho < 1.0, rho, np.nan)
        boundary_values = np.ones(betas.size)         # rho = 1 on the boundary, by definition
    else:
        A, B = np.meshgrid(alphas, betas)
        inside = A < crit[:, None]
        L = np.full(A.shape, np.nan)
        L[inside] = final_losses(problem, A[inside], B[inside], bsz, T, m, noise,
                                 progress=progress)
        values = np.where(np.isfinite(L), L, np.nan)
        boundary_values = final_losses(problem, crit * (1 - 1e-12), betas, bsz, T, m, noise,
                                       progress=False)
    noise_side = crit < edge * (1.0 - 1e-9)
    boundary = np.column_stack([crit[noise_side], betas[noise_side]])
    return RegionData(alphas, betas, values, objective, T, crit, edge, boundary, optimum, best,
                      bsz, boundary_values, reference)


def convergence_region(problem: Problem, batch, method="heavy-ball", noise: NoiseModel = GAUSSIAN,
                       objective: str = "rate", steps=None, betas=None, n_alpha: int = 120,
                       alpha_max=None, ax=None, n_beta: int = 77,
                       progress=None) -> tuple["Figure", RegionData]:
    """Where the loss converges in the (alpha, beta) plane, and how fast.

    The region is ``{alpha < alpha_crit(beta)}`` (``theory.stability``: every mode stable and
    ``U(1) < 1``); its boundary is the noiseless mode edge (Schur-Cohn; heavy ball
    ``alpha lambda_max = 2 (1 + beta)``) where that binds and the noise boundary ``U(1) = 1``
    elsewhere. ``objective="rate"`` shades ``log10(1 - rho)``, ``L_t ~ rho^t`` (numba kernel
    ``theory.transfer.rate_arrays``, one call per beta row) and marks
    ``theory.stability.optimal_rate``; ``objective="horizon"`` shades ``log10 L_T`` after
    ``steps`` steps (``theory.horizon.final_losses``) and marks
    ``optimal_hyperparameters_at_horizon``, where negative momentum shows up in the
    noise-dominated phase at small batch (docs/negative_momentum.md).

    ``betas``: the momentum grid; by default ``n_beta`` points over [-0.95, 0.95], widened to
    contain the optimum (``default_betas``). The filled contours run up to the boundary curves
    (the objective is evaluated on the boundary too). ``progress``: a bar for the horizon grid
    (``theory.progress``).
    """
    from matplotlib.colors import BoundaryNorm
    d = region_data(problem, batch, method, noise, objective, steps, betas, n_alpha, alpha_max,
                    n_beta, progress)
    alphas, betas, values, crit, edge = d.alphas, d.betas, d.values, d.alpha_crit, d.mode_edge
    optimum, best, boundary, bsz, T = d.optimum, d.optimum_value, d.noise_boundary, d.batch, d.steps
    amax = float(alphas[-1])
    if objective == "rate":
        with np.errstate(divide="ignore"):
            shade = np.log10(1.0 - values)
        finite = shade[np.isfinite(shade)]
        levels = np.linspace(finite.min(), finite.max(), 15) if finite.size > 1 else 14
        # rho -> 1 at the boundary and as alpha -> 0: a cliff thinner than a grid cell; the fill
        # carries each row's nearest grid value out to both ends instead of a band of teeth
        edge_shade, zero_shade = _row_ends(shade, finite.min() if finite.size else 0.0)
        bar = r"$\log_{10}(1 - \rho)$,  $L_t \sim \rho^t$"
    else:
        # ratios to the optimum resolve the flat basin where the optimum sits
        shade = values / best
        edge_shade = d.boundary_values / best
        zero_shade = np.full(betas.size, problem.initial_loss / best)   # L_T = L_0 at alpha = 0
        bar = rf"$L_T / L_T^*$ after T = {T} steps"

    fig, ax = _axes(ax)
    X, Y, Z = _fill_grid(alphas, betas, shade, crit, edge_shade, zero_shade)
    if objective == "rate":
        cs = ax.contourf(X, Y, Z, levels=levels, cmap="viridis", extend="min")
    else:
        cs = ax.contourf(X, Y, Z, levels=RATIO_LEVELS, cmap="viridis", extend="max",
                         norm=BoundaryNorm(RATIO_LEVELS, 256, extend="max"))
    ax.contour(X, Y, Z, levels=cs.levels, colors="k", linewidths=0.3, alpha=0.5)
    fig.colorbar(cs, ax=ax, label=bar, format="%.3g")
    shown = np.isfinite(edge) & (edge <= amax)
    ax.plot(edge[shown], betas[shown], "--", color=OKABE_ITO["black"], lw=1.5,
            label="noiseless mode edge (Schur-Cohn)")
    ax.plot(boundary[:, 0], boundary[:, 1], "-", color=OKABE_ITO["vermillion"], lw=2.0,
            label=r"noise boundary $U(1) = 1$")
    ax.axhline(0.0, color=OKABE_ITO["grey"], lw=0.8, ls=":")
    if objective == "horizon":
        reference = d.reference
        gain = 100 * (1 - best / reference[1])
        ax.plot(reference[0], 0.0, "o", ms=8, mfc="white", mec="k", ls="none",
                label=rf"best $\beta = 0$: $\alpha = {reference[0]:.3g}$ (optimum {gain:.2g} % lower)")
    what = "rate optimum" if objective == "rate" else "loss-at-T optimum"
    ax.plot(*optimum, marker="*", ms=15, color=OKABE_ITO["orange"], mec="k", ls="none",
            clip_on=False, zorder=5,
            label=rf"{what} $\alpha^*={optimum[0]:.3g}, \beta^*={optimum[1]:.3g}$")
    ax.set_xlim(0.0, amax)
    ax.set_ylim(betas.min(), betas.max())
    ax.set_xlabel(ALPHA_LABEL)
    ax.set_ylabel(BETA_LABEL)
    ax.set_title(f"{problem.name}\n{_batch_text(bsz, problem)}, {_noise_text(noise)}", fontsize=9)
    ax.legend(loc="lower right", fontsize=7.5, framealpha=0.9)
    return fig, d


def convergence_regions(problem: Problem, batches, method="heavy-ball",
                        noise: NoiseModel = GAUSSIAN, objective: str = "rate", steps=None,
                        betas=None, n_alpha: int = 120, n_beta: int = 77,
                        progress=None) -> tuple["Figure", tuple[RegionData, ...]]:
    """``convergence_region`` for several batch sizes, one panel each, side by side in one
    figure (each panel its own momentum range, containing its optimum, unless ``betas`` is
    given)."""
    bs = [checks.integer("batches", b, 1) for b in np.atleast_1d(batches)]
    if not bs:
        raise ValueError("batches must name at least one batch size")
    fig, axes = new_figure((6.0 * len(bs), 4.8), 1, len(bs), squeeze=False)
    data = tuple(convergence_region(problem, b, method, noise, objective, steps, betas, n_alpha,
                                    ax=ax, n_beta=n_beta, progress=progress)[1]
                 for b, ax in zip(bs, axes[0]))
    return fig, data


# -- 2. critical learning rate against batch -----------------------------------------------------
@dataclass(frozen=True)
class CriticalLRData(Result):
    batches: np.ndarray         # (n_b,) batch sizes
    betas: np.ndarray           # (n_beta,) one curve per momentum
    alpha_eff_crit: np.ndarray  # (n_beta, n_b) alpha_crit / (1 - beta)
    limited_by: tuple           # (n_beta,) tuples of "noise" / "mode stability" per batch
    mode_edge: np.ndarray       # (n_beta,) noiseless edge in alpha_eff (dotted lines)
    reference: np.ndarray       # (n_b,) 2 / (tau1 gamma Tr H): 2 b / (tau1 Tr H) for i.i.d. batches

    _dims = {"alpha_eff_crit": ("beta", "batch"), "limited_by": ("beta", "batch"),
             "mode_edge": ("beta",), "reference": ("batch",)}


def critical_lr_vs_batch(problem: Problem, batches, betas=(0.0,), method="heavy-ball",
                         noise: NoiseModel = GAUSSIAN, ax=None) -> tuple["Figure", CriticalLRData]:
    """Critical effective learning rate ``alpha_crit / (1 - beta)`` against the batch size.

    ``theory.stability.critical_learning_rate`` per (beta, batch); the reference
    ``2 / (tau1 gamma Tr H)`` is the small-alpha form of ``U(1) = 1`` (docs/theory.md): the
    curves follow it while the collective noise binds (small batches) and saturate at the
    noiseless edge ``2 (1 + beta) / ((1 - beta) lambda_max)`` at large batches.
    """
    _setup(problem, method, noise)
    bs = np.array([checks.integer("batches", b, 1) for b in np.atleast_1d(batches)])
    if problem.data_size is not None and bs.max() >= problem.data_size:
        raise ValueError(f"batches must be below data_size = {problem.data_size}, got {bs.max()}")
    bts = np.atleast_1d(np.asarray(betas, float))
    crit = [[critical_learning_rate(problem, b, int(n), method, noise) for n in bs] for b in bts]
    eff = np.array([[c.alpha_eff_crit for c in row] for row in crit])
    limited = tuple(tuple(c.limited_by for c in row) for row in crit)
    gam = np.array([batch_factor(int(n), problem.data_size) for n in bs])
    ref = 2.0 / (noise.tau1 * gam * problem.trace) if noise.tau1 > 0 else np.full(bs.shape, np.inf)

    fig, ax = _axes(ax)
    edge = np.array([row[0].mode_edge / (1.0 - row[0].beta) for row in crit])
    for i, b in enumerate(bts):
        colour = OKABE_ITO[CYCLE[i % len(CYCLE)]]
        ax.plot(bs, eff[i], "o-", ms=3.5, color=colour, label=rf"$\beta = {b:g}$")
        # the noiseless edge 2 (1 + beta) / ((1 - beta) lambda_max) that large batches reach
        ax.axhline(edge[i], color=colour, ls=":", lw=1.0)
    if np.isfinite(ref).all():
        ax.plot(bs, ref, "--", color=OKABE_ITO["black"],
                label=r"$2 / (\tau_1 \gamma\, \mathrm{Tr} H)$  (= $2b / (\tau_1 \mathrm{Tr} H)$ i.i.d.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size b" + (" (i.i.d. samples)" if problem.data_size is None
                                    else f" (without replacement from N = {problem.data_size})"))
    ax.set_ylabel(r"critical effective lr $\alpha_{crit} / (1 - \beta)$")
    ax.set_title(f"{problem.name}, {get_method(method).name}, {_noise_text(noise)}; "
                 "dotted: noiseless edge", fontsize=9)
    ax.legend(fontsize=8)
    return fig, CriticalLRData(bs, bts, eff, limited, edge, ref)


# -- 3. phase plane of power-law problems --------------------------------------------------------
SIGNAL, NOISE, DIVERGENT = 0, 1, 2
PHASE_NAMES = ("signal-dominated", "noise-dominated", "divergent")


@dataclass(frozen=True)
class PhasePlaneData(Result):
    nus: np.ndarray             # (n_nu,) eigenvalue exponents, lambda_k = k^-nu (> 1)
    zetas: np.ndarray           # (n_zeta,) signal exponents zeta = kappa / nu
    boundary: np.ndarray        # (n_nu,) noise exponent 2 - 1/nu (asymptotics): the phase boundary
    noise_feedback: np.ndarray  # (n_nu,) U(1) of the n-mode power law at (alpha, beta, batch)
    phase: np.ndarray           # (n_zeta, n_nu) SIGNAL, NOISE or DIVERGENT
    alpha: float
    beta: float
    batch: int
    n: int

    _dims = {"boundary": ("nu",), "noise_feedback": ("nu",), "phase": ("zeta", "nu")}
    _table = ("zeta", "nu")


def phase_plane(alpha, beta, batch, n, nus=None, zetas=None, marks=(), method="heavy-ball",
                noise: NoiseModel = GAUSSIAN, ax=None) -> tuple["Figure", PhasePlaneData]:
    """Phases of power-law problems ``lambda_k = k^-nu, lambda_k c_k = k^-(kappa+1)`` (k <= n).

    From ``theory.asymptotics.phases`` (one call per nu): the renewal equation ``S = V + U * S``
    with ``V_t ~ t^-zeta`` and ``U_t ~ t^-(2 - 1/nu)``; the loss follows the signal
    ``V_t / (1 - U(1))`` when ``zeta`` is below the noise exponent ``2 - 1/nu`` and the noise
    ``V(1) U_t / (1 - U(1))^2`` above it; it diverges when ``U(1) >= 1`` or a mode is unstable.
    ``U(1)`` depends on the spectrum only, not on kappa, so divergence is a band of nu.
    ``nus > 1`` (a summable noise kernel). ``marks``: ``(nu, zeta, label)`` points to annotate.
    """
    bsz = checks.integer("batch", batch, 1)
    n = checks.integer("n", n, 3)
    nus = np.linspace(1.02, 3.0, 100) if nus is None else np.atleast_1d(np.asarray(nus, float))
    zetas = np.linspace(0.02, 3.0, 150) if zetas is None else np.atleast_1d(np.asarray(zetas, float))
    if not (np.all(np.isfinite(nus)) and np.all(nus > 1)):
        raise ValueError("nus must be finite and > 1 (summable noise kernel)")
    if not (np.all(np.isfinite(zetas)) and np.all(zetas > 0)):
        raise ValueError("zetas must be positive and finite")
    # kappa does not enter U(1), the noise exponent or divergence: one problem per nu
    ph = [phases(Problem.power_law(nu, nu, n), alpha, beta, bsz, method, noise) for nu in nus]
    boundary = np.array([p.noise_exponent for p in ph])
    U1 = np.array([p.noise_feedback for p in ph])
    diverges = np.array([p.phase == "diverges" for p in ph])
    phase = np.where(zetas[:, None] > boundary[None, :], NOISE, SIGNAL)
    phase = np.where(diverges[None, :], DIVERGENT, phase).astype(np.int8)

    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    fig, ax = _axes(ax)
    colours = [OKABE_ITO["sky"], OKABE_ITO["orange"], OKABE_ITO["grey"]]
    ax.pcolormesh(nus, zetas, phase, cmap=ListedColormap(colours), vmin=-0.5, vmax=2.5,
                  shading="nearest", rasterized=True)
    ax.plot(nus, boundary, "-", color=OKABE_ITO["black"], lw=1.5)
    for nu, zeta, label in marks:
        ax.plot(nu, zeta, "o", color="k", ms=5)
        ax.annotate(label, (nu, zeta), textcoords="offset points", xytext=(5, 4), fontsize=8)
    handles = [Patch(color=c, label=l) for c, l in zip(colours, (
        r"signal-dominated $\zeta < 2 - 1/\nu$: $L_t \approx V_t / (2(1-U(1)))$",
        r"noise-dominated $\zeta > 2 - 1/\nu$: $L_t \approx V(1) U_t / (2(1-U(1))^2)$",
        r"divergent: $U(1) \geq 1$ (or an unstable mode)"))]
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", framealpha=0.9)
    ax.set_ylim(zetas.min(), zetas.max())
    ax.set_xlim(nus.min(), nus.max())
    ax.set_xlabel(r"spectral exponent $\nu$  ($\lambda_k = k^{-\nu}$)")
    ax.set_ylabel(r"signal exponent $\zeta = \kappa / \nu$  ($\lambda_k c_k = k^{-\kappa-1}$)")
    ax.set_title(rf"n = {n} modes, $\alpha = {alpha:g}$, $\beta = {beta:g}$, b = {bsz} (i.i.d.), "
                 f"{_noise_text(noise)}", fontsize=9)
    return fig, PhasePlaneData(nus, zetas, boundary, U1, phase, float(alpha), float(beta), bsz, n)


# -- 4. loss curves: theory against Monte Carlo ------------------------------------------------
Asymptote = tuple[str, "np.ndarray | Callable[[np.ndarray], np.ndarray]"]


def phase_guides(ph: Phases) -> tuple[tuple[Asymptote, ...], float | None]:
    """The power-law asymptotes of ``theory.asymptotics.phases`` as ``loss_curves`` guides.

    Signal ``C_V t^-zeta / (2 (1 - U(1)))`` and noise ``V(1) C_U t^-(2 - 1/nu) / (2 (1 - U(1))^2)``
    (the latter only when ``V(1) < inf``, i.e. ``zeta > 1``), labelled with their constants, and
    the transition time where they cross (None if they do not). Valid for ``1 << t << cutoff``.
    """
    if ph.phase == "diverges":
        raise ValueError(f"the loss diverges, it has no power-law asymptotes ({ph.reason})")
    guides = [(rf"signal asymptote ${ph.signal_loss_constant:.3g}\,t^{{-{ph.signal_exponent:.3g}}}$"
               r"  ($\zeta = \kappa/\nu$)", ph.signal_asymptote)]
    if ph.noise_loss_constant > 0:
        guides.append((rf"noise asymptote ${ph.noise_loss_constant:.3g}\,t^{{-{ph.noise_exponent:.3g}}}$"
                       r"  ($2 - 1/\nu$)", ph.noise_asymptote))
    return tuple(guides), ph.transition_time


@dataclass(frozen=True)
class LossCurveData(Result):
    theory: np.ndarray          # (T+1,) exact expected loss L_0..L_T (shorter if divergent)
    steps: np.ndarray           # (n_rec,) Monte Carlo recorded steps
    mean: np.ndarray            # (n_rec,) Monte Carlo mean
    stderr: np.ndarray          # (n_rec,) its standard error
    low: np.ndarray             # (n_rec,) lowest recorded run quantile
    high: np.ndarray            # (n_rec,) highest recorded run quantile
    quantile_levels: tuple      # (low, high) levels
    runs: int
    diverged_runs: int
    asymptote_labels: tuple     # labels of the asymptotes drawn
    transition: float | None    # marked transition time
    scheduled: tuple = ()       # the hyperparameters drawn under the curve (those that change)

    _dims = {"theory": ("t",), "asymptote_labels": ("asymptote",), "quantile_levels": ("band",)}


def _evaluate(a, t):
    """An asymptote's values at steps ``t >= 1`` (an array over 0..T, or a callable of t)."""
    return np.asarray(a(t[1:]) if callable(a) else np.asarray(a, float)[1:], float)


def loss_curves(problem: Problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
                noise: NoiseModel = GAUSSIAN, features="gaussian", every: int = 1,
                asymptotes: Sequence[Asymptote] = (), transition=None,
                ax=None, progress=None) -> tuple["Figure", LossCurveData]:
    """Theory (``theory.dynamics.loss_curve``, exact for Gaussian features) against Monte Carlo
    (``simulate.run``: mean, a band of +-2 standard errors of the mean, and the outermost recorded
    run quantiles), on log-log axes.

    ``alpha``, ``beta``, ``batch``: numbers or schedules (``sgdyn.theory.schedules``); those that
    change are drawn on a small axis under the curve (step ``t`` on the same log axis).
    ``asymptotes``: ``(label, values)`` pairs, values an array over t = 0..T or a callable of t
    (e.g. ``phase_guides``); ``transition``: a step to mark with a vertical line. A Monte Carlo
    run that passed the overflow guard is counted, not averaged (``diverged_runs``).
    ``progress``: the Monte Carlo's bar, as in ``simulate.run``.
    """
    from sgdyn import simulate
    from sgdyn.theory.run import Run
    T = checks.integer("steps", steps, 1)
    run = Run.build(problem, method, alpha=alpha, beta=beta, batch=batch, steps=T, noise=noise)
    curve = loss_curve(problem, alpha, beta, batch, T, method, noise).loss
    tr = simulate.run(problem, alpha, beta, batch, T, runs, seed, method, features=features,
                      every=every, progress=progress)
    t = np.arange(T + 1, dtype=float)

    scheduled = tuple(name for name in ("alpha", "beta", "batch")
                      if not run.schedule[name].is_constant)
    if scheduled:
        fig, ax, small = _schedule_axes(ax, len(scheduled), (6.4, 4.6 + 0.9 * len(scheduled)))
        ax.tick_params(labelbottom=False)
        _draw_schedules(small, run.hyperparameters(0, T), scheduled)
    else:
        fig, ax = _axes(ax)
    live = (tr.steps > 0) & np.isfinite(tr.mean)
    s = tr.steps[live]
    ax.fill_between(s, tr.quantiles[0][live], tr.quantiles[-1][live], color=OKABE_ITO["sky"],
                    alpha=0.35, lw=0, label=f"runs: {100 * tr.quantile_levels[0]:g}-"
                                             f"{100 * tr.quantile_levels[-1]:g} % quantiles")
    lo = tr.mean[live] - 2 * tr.stderr[live]
    ax.fill_between(s, np.where(lo > 0, lo, np.nan), tr.mean[live] + 2 * tr.stderr[live],
                    color=OKABE_ITO["blue"], alpha=0.45, lw=0,
                    label=r"Monte Carlo mean $\pm$ 2 s.e.")
    ax.plot(s, tr.mean[live], "-", color=OKABE_ITO["blue"], lw=0.8,
            label=f"Monte Carlo mean ({tr.runs} runs, "
                  f"{features if isinstance(features, str) else 'data-set rows as'} features)")
    ax.plot(t[1:curve.size], curve[1:], "-", color=OKABE_ITO["black"], lw=1.6,
            label="theory (SE recursion)")
    labels = []
    styles = (("--", "vermillion"), ("-.", "green"), (":", "purple"), ("--", "orange"))
    for i, (label, values) in enumerate(asymptotes):
        ls, c = styles[i % len(styles)]
        ax.plot(t[1:], _evaluate(values, t), ls, color=OKABE_ITO[c], lw=1.4, label=label)
        labels.append(label)
    if transition is not None:
        ax.axvline(transition, color=OKABE_ITO["grey"], lw=1.2, ls="-",
                   label=f"predicted transition t = {transition:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = np.nanmax(tr.quantiles[-1][live]) if live.any() else curve.max()
    ax.set_ylim(max(np.nanmin(curve[curve > 0]), np.nanmin(tr.quantiles[0][live])) * 0.3, top * 2)
    if not scheduled:
        ax.set_xlabel("step t")
    ax.set_ylabel(r"population loss $L_t = \frac{1}{2}\sum_k \lambda_k E[e_{k,t}^2]$")
    text = run.schedule.text
    ax.set_title(rf"{problem.name}, {_noise_text(noise)}" "\n" rf"$\alpha = ${text['alpha']}, "
                 rf"$\beta = ${text['beta']}, {_batch_text(text['batch'], problem)}", fontsize=8.5)
    ax.legend(fontsize=7.5, loc="best")
    data = LossCurveData(curve, tr.steps, tr.mean, tr.stderr, tr.quantiles[0], tr.quantiles[-1],
                         (float(tr.quantile_levels[0]), float(tr.quantile_levels[-1])), tr.runs,
                         tr.diverged_runs, tuple(labels), transition, scheduled)
    return fig, data


_SYMBOLS = {"alpha": r"$\alpha_t$", "beta": r"$\beta_t$", "batch": "$b_t$"}


def _schedule_axes(ax, count: int, size: tuple):
    """``(figure, main axis, [count small axes under it])`` sharing the step axis: subplots of a new
    constrained-layout figure, or axes appended under a given ``ax``."""
    if ax is None:
        fig, axes = new_figure(size, nrows=1 + count, sharex=True,
                               gridspec_kw={"height_ratios": [4] + [1] * count})
        return fig, axes[0], list(axes[1:])
    from mpl_toolkits.axes_grid1 import make_axes_locatable
    divider = make_axes_locatable(ax)
    return ax.figure, ax, [divider.append_axes("bottom", size="22%", pad=0.08, sharex=ax)
                           for _ in range(count)]


def _draw_schedules(axes, values: dict, names: tuple) -> None:
    """Each scheduled hyperparameter at steps ``t = 1..T-1`` on its small axis."""
    colours = ("vermillion", "green", "purple")
    for i, (sx, name) in enumerate(zip(axes, names)):
        t = np.arange(values[name].size, dtype=float)
        sx.plot(t[1:], values[name][1:], "-", color=OKABE_ITO[colours[i]], lw=1.3)
        sx.set_ylabel(_SYMBOLS[name], fontsize=8)
        sx.tick_params(labelsize=7)
        sx.grid(True, alpha=0.3)
        if name == "batch":
            sx.set_yscale("log", base=2)
    for sx in axes[:-1]:
        sx.tick_params(labelbottom=False)
    axes[-1].set_xlabel("step t")
