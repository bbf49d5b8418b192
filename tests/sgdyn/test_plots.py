"""Figures checked by content (what was drawn and the data behind it), never by pixels."""
import numpy as np
import pytest

from sgdyn import plots
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.horizon import final_losses, optimal_hyperparameters_at_horizon
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (asymptotic_rate, critical_learning_rate, noise_feedback,
                              optimal_rate)
from sgdyn.theory.transfer import rate_arrays

TAU1 = NoiseModel(1.0, 1.0)
SMALL = Problem.power_law(1.5, 3.0, 40)
NOISE_PHASE = Problem.power_law(1.5, 3.0, 100, data_size=100)   # zeta = 2 > 2 - 1/nu


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_convergence_region_rate():
    fig, d = plots.convergence_region(SMALL, 2, betas=np.linspace(-0.9, 0.9, 19), n_alpha=40)
    ax = fig.axes[0]
    assert "learning rate" in ax.get_xlabel() and "PyTorch lr" in ax.get_xlabel()
    assert "momentum" in ax.get_ylabel()
    assert "rho" in fig.axes[1].get_ylabel()            # the colour bar states the quantity
    assert len(legend_texts(ax)) == 3
    # the marked optimum is optimize's answer
    o = optimal_rate(SMALL, 2)
    assert d.optimum == (o.alpha, o.beta) and d.optimum_value == o.rate
    star = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(star) == 1 and tuple(star[0].get_xydata()[0]) == d.optimum
    # heavy ball's noiseless edge in closed form: alpha lambda_max = 2 (1 + beta)
    np.testing.assert_allclose(d.mode_edge, 2 * (1 + d.betas) / SMALL.eigenvalues[0], rtol=1e-12)
    # every noise-boundary point has U(1) = 1 (bisection to 1e-15 relative in alpha; U(1) is
    # smooth there with an O(1) log-derivative, so 1e-12 leaves room for its rounding)
    assert d.noise_boundary.shape[0] >= 15
    for a, b in d.noise_boundary:
        assert noise_feedback(SMALL, a, b, 2) == pytest.approx(1.0, abs=1e-12)
        assert noise_feedback(SMALL, a * (1 + 1e-9), b, 2) > 1.0
    # the shaded region (rate < 1 from the first root of det(I - zT)) is alpha < alpha_crit
    # (bisection on U(1)): two routes, they agree away from a 1e-9 sliver at the boundary
    A = d.alphas[None, :]
    far = np.abs(A / d.alpha_crit[:, None] - 1) > 1e-9
    assert np.array_equal(np.isfinite(d.values)[far], (A < d.alpha_crit[:, None])[far])
    i, j = 7, 10
    rho = rate_arrays("heavy-ball", SMALL.eigenvalues, d.alphas[j], d.betas[i], 0.5, 1.0, -1.0)[0][0]
    assert d.values[i, j] == rho == asymptotic_rate(SMALL, d.alphas[j], d.betas[i], 2).rate


def test_convergence_region_horizon_shows_negative_momentum():
    fig, d = plots.convergence_region(NOISE_PHASE, 1, noise=TAU1, objective="horizon", steps=600,
                                      betas=np.linspace(-0.8, 0.8, 9), n_alpha=12)
    o = optimal_hyperparameters_at_horizon(NOISE_PHASE, 1, 600, noise=TAU1)
    assert d.optimum == (o.alpha, o.beta) and d.optimum_value == o.loss
    assert d.optimum[1] < -0.1                     # negative momentum at batch 1, noise phase
    ax = fig.axes[0]
    texts = legend_texts(ax)
    assert len(texts) == 4 and any("beta = 0" in t for t in texts)
    # no grid point beats the refined optimum
    assert np.nanmin(d.values) >= o.loss


def test_critical_lr_vs_batch():
    bs, betas = [1, 4, 64, 10 ** 6], [-0.5, 0.0, 0.8]
    fig, d = plots.critical_lr_vs_batch(SMALL, bs, betas)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "batch" in ax.get_xlabel() and "alpha_{crit}" in ax.get_ylabel()
    assert len([ln for ln in ax.get_lines() if ln.get_marker() == "o"]) == len(betas)
    assert len(legend_texts(ax)) == len(betas) + 1
    for i, b in enumerate(betas):
        for j, n in enumerate(bs):
            assert d.alpha_eff_crit[i, j] == critical_learning_rate(SMALL, b, n).alpha_eff_crit
    np.testing.assert_allclose(d.reference, 2 * np.array(bs) / SMALL.trace, rtol=1e-15)
    # the exact U(1) exceeds its small-alpha form, so the critical rate stays below the reference,
    # and large batches reach the noiseless edge 2 (1 + beta) / ((1 - beta) lambda_max)
    assert np.all(d.alpha_eff_crit <= d.reference[None, :] * (1 + 1e-12))
    np.testing.assert_allclose(d.mode_edge, 2 * (1 + np.array(betas)) / (1 - np.array(betas)),
                               rtol=1e-12)
    # (the top mode's resonance closes the gap in proportion to gamma = 1e-6 at the last batch)
    assert np.all(np.diff(d.alpha_eff_crit, axis=1) > 0)
    np.testing.assert_allclose(d.alpha_eff_crit[:, -1], d.mode_edge, rtol=1e-4)


def test_critical_lr_follows_reference_on_a_flat_spectrum():
    # many small equal eigenvalues: alpha lambda ~ 2 / n at the critical point, so the small-alpha
    # form is accurate to O(alpha lambda); without replacement the reference uses gamma
    flat = Problem.from_arrays(np.full(200, 0.01), np.ones(200), data_size=1000)
    _, d = plots.critical_lr_vs_batch(flat, [1, 2, 5], [0.0, 0.5], noise=NoiseModel(1.0, 0.0))
    gam = np.array([batch_factor(b, 1000) for b in (1, 2, 5)])
    np.testing.assert_allclose(d.reference, 2 / (gam * flat.trace), rtol=1e-15)
    ratio = d.alpha_eff_crit / d.reference
    assert np.all(ratio <= 1) and np.all(ratio > 0.97)


def test_phase_plane():
    nus = np.linspace(1.02, 2.5, 16)
    fig, d = plots.phase_plane(0.3, 0.0, 1, 1000, nus=nus, marks=[(1.5, 2.0, "A")])
    ax = fig.axes[0]
    assert "nu" in ax.get_xlabel() and "zeta" in ax.get_ylabel()
    assert len(legend_texts(ax)) == 3
    np.testing.assert_allclose(d.boundary, 2 - 1 / nus, rtol=1e-12)   # the noise exponent
    div = d.noise_feedback >= 1
    assert div.any() and (~div).any()
    assert np.all(d.phase[:, div] == plots.DIVERGENT)
    live = d.phase[:, ~div]
    above = d.zetas[:, None] > d.boundary[None, ~div]
    assert np.array_equal(live == plots.NOISE, above) and np.array_equal(live == plots.SIGNAL, ~above)
    # U(1) against stability's closed form, divergence against the rate of the loss series (first
    # root of det(I - zT)): independent routes. asymptotics sums u(1) in the polynomial form, which
    # loses up to log10(1 / (r lambda)) <= 6 digits on the slow modes (its _totals): 1e-9 relative
    for nu, u1, bad in zip(nus, d.noise_feedback, div):
        p = Problem.power_law(nu, 2.0, 1000)
        assert u1 == pytest.approx(noise_feedback(p, 0.3, 0.0, 1), rel=1e-9)
        assert asymptotic_rate(p, 0.3, 0.0, 1).diverges == bad
    # a few cells against asymptotics.phases on the problem with that very kappa
    names = {plots.SIGNAL: "signal", plots.NOISE: "noise", plots.DIVERGENT: "diverges"}
    for i, j in ((10, 0), (10, 8), (120, 8), (60, 15), (140, 15)):
        nu, zeta = nus[j], d.zetas[i]
        ph = phases(Problem.power_law(nu, zeta * nu, 1000), 0.3, 0.0, 1)
        assert ph.phase == names[int(d.phase[i, j])]
    assert {int(d.phase[i, j]) for i, j in ((10, 8), (120, 8), (60, 0))} == {0, 1, 2}
    with pytest.raises(ValueError, match="nus must be finite and > 1"):
        plots.phase_plane(0.3, 0.0, 1, 100, nus=[0.9, 1.5])


def test_phase_guides_and_loss_curves():
    p = Problem.power_law(1.5, 3.0, 60)
    T = 400
    ph = phases(p, 0.2, 0.0, 1)
    guides, transition = plots.phase_guides(ph)
    assert ph.phase == "noise" and transition == ph.transition_time
    assert len(guides) == 2
    t = np.arange(1.0, 11.0)
    np.testing.assert_array_equal(guides[0][1](t), ph.signal_asymptote(t))
    np.testing.assert_array_equal(guides[1][1](t), ph.noise_asymptote(t))
    # the two guides cross at the marked transition time
    assert guides[0][1](transition) == pytest.approx(guides[1][1](transition), rel=1e-12)
    # signal phase with zeta < 1: V(1) = inf, no noise asymptote, no transition
    sig, none = plots.phase_guides(phases(Problem.power_law(1.5, 1.0, 60), 0.2, 0.0, 1))
    assert len(sig) == 1 and none is None
    with pytest.raises(ValueError, match="diverges"):
        plots.phase_guides(phases(p, 3.0, 0.0, 1))

    exact = loss_curve(p, 0.2, 0.0, 1, T).loss
    fig, d = plots.loss_curves(p, 0.2, 0.0, 1, T, 400, 7, every=20, asymptotes=guides,
                               transition=transition)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and "loss" in ax.get_ylabel()
    np.testing.assert_array_equal(d.theory, exact)
    assert d.asymptote_labels == tuple(lbl for lbl, _ in guides)
    assert len(legend_texts(ax)) == 4 + 2 + 1     # bands, mean, theory; asymptotes; transition
    assert len(ax.collections) == 2               # the two bands
    vline = [ln for ln in ax.get_lines() if ln.get_xdata()[0] == transition]
    assert len(vline) == 1
    # theory against Monte Carlo within 5 standard errors at every recorded step (t > 0)
    z = (d.mean[1:] - d.theory[d.steps[1:]]) / d.stderr[1:]
    assert np.abs(z).max() < 5 and d.diverged_runs == 0
    assert d.quantile_levels == (0.05, 0.95)


def test_save_formats(tmp_path):
    fig, _ = plots.phase_plane(0.3, 0.0, 1, 20, nus=[1.2, 2.0], zetas=[0.5, 2.0])
    for ext in ("png", "svg", "pdf"):
        plots.save(fig, tmp_path / f"f.{ext}")
        assert (tmp_path / f"f.{ext}").stat().st_size > 1000
    with pytest.raises(ValueError, match="out must end with"):
        plots.save(fig, tmp_path / "f.jpg")
    with pytest.raises(ValueError, match="existing folder"):
        plots.save(fig, tmp_path / "nope" / "f.png")


@pytest.mark.parametrize("kwargs, match", [
    (dict(objective="loss"), "objective"),
    (dict(objective="horizon"), "steps"),
    (dict(betas=[1.2]), "betas"),
    (dict(n_alpha=1), "n_alpha"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.convergence_region(SMALL, 1, **kwargs)


def _filled_vertices(ax):
    cs = ax.collections[0]                     # the filled contour set, drawn first
    return np.concatenate([p.vertices for p in cs.get_paths() if len(p.vertices)])


@pytest.mark.parametrize("objective, kw", [("rate", {}), ("horizon", {"steps": 100})])
def test_region_range_contains_its_optimum_and_the_fill_reaches_the_boundary(objective, kw):
    """The rate optimum of this problem is beta* = 0.986 (docs/negative_momentum.md): the default
    momentum range widens to contain it; in every row the filled area runs from alpha = 0 to
    alpha_crit(beta), where the boundary curves are drawn (no staircase of grid cells)."""
    big = Problem.power_law(1.5, 3.0, 1000)
    fig, d = plots.convergence_region(big, 1, objective=objective, n_alpha=30, n_beta=15, **kw)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    if objective == "rate":
        assert d.optimum[1] > 0.95
    assert lo <= d.betas.min() < d.optimum[1] < d.betas.max() <= hi
    V = _filled_vertices(ax)
    for b, c in zip(d.betas, d.alpha_crit):
        row = V[np.abs(V[:, 1] - b) < 1e-12, 0]
        assert row.min() == 0.0 and row.max() == pytest.approx(c, rel=1e-12)
    # the boundary values are the objective on the boundary: rho = 1, or the exact L_T there
    if objective == "rate":
        assert np.all(d.boundary_values == 1.0)
    else:
        np.testing.assert_array_equal(
            d.boundary_values, final_losses(big, d.alpha_crit * (1 - 1e-12), d.betas, 1, 100))


def test_several_batch_sizes_on_one_figure():
    fig, data = plots.convergence_regions(SMALL, [1, 8], n_alpha=20, n_beta=9)
    assert [d.batch for d in data] == [1, 8] and len(fig.axes) == 4     # two panels, two bars
    for d, b in zip(data, (1, 8)):
        o = optimal_rate(SMALL, b)
        assert d.optimum == (o.alpha, o.beta)
        assert d.betas.min() < o.beta < d.betas.max()
    assert data[1].alpha_crit.max() > data[0].alpha_crit.max()       # larger batch, larger region


def test_loss_curves_draw_the_schedule_under_the_curve():
    """Scheduled hyperparameters get one small axis each under the loss (their values at every
    step, the same step axis); the theory is the recursion along the schedule, the Monte Carlo
    within 5 standard errors of it."""
    from sgdyn.theory.schedules import parse_shape
    p = Problem.power_law(1.5, 1.0, 20)
    alpha, batch = "warmup(5)+cosine(0.3,floor=0.01)", "double(2,every=20)"
    fig, d = plots.loss_curves(p, alpha, 0.5, batch, 60, 300, 3, every=10)
    assert d.scheduled == ("alpha", "batch") and len(fig.axes) == 3
    t = np.arange(60)
    for sx, shape in zip(fig.axes[1:], (alpha, batch)):
        np.testing.assert_array_equal(sx.get_lines()[0].get_ydata(),
                                      parse_shape(shape).values(t, 60)[1:])
    assert fig.axes[1].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
    np.testing.assert_array_equal(d.theory, loss_curve(p, alpha, 0.5, batch, 60).loss)
    live = d.steps > 0
    assert np.max(np.abs(d.mean[live] - d.theory[d.steps[live]]) / d.stderr[live]) < 5
    # on a given axis the schedule axes are appended under it
    _, ax = plots.new_figure()
    fig2, _ = plots.loss_curves(p, alpha, 0.5, 2, 20, 50, 3, ax=ax)
    assert len(fig2.axes) == 2
