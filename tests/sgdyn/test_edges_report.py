"""Acceptance: predicted edges of stability against simulated full-batch training."""
import numpy as np
import pytest

from sgdyn.edges_report import matrix_lr_sweep, scalar_lr_sweep, tanh_eos
from sgdyn.simulate import networks as nw
from sgdyn.theory.edges import scalar_network_edge


@pytest.mark.parametrize("a, p, depth", [(1.3, -1.7, 3), (0.6, 2.5, 2)])
def test_scalar_network_converged_fraction_drops_within_two_percent(a, p, depth):
    # 200 near-balanced initialisations; 2 % either side of the closed-form eta_crit
    sweep = scalar_lr_sweep(a, p, depth, [0.98, 1.02], runs=200, steps=50_000)
    assert sweep.converged_fraction.tolist() == [1.0, 0.0]
    assert sweep.diverged_fraction.tolist() == [0.0, 0.0]
    # below: ||g|| -> 0; above: GD keeps oscillating with a positive limiting gradient norm
    assert sweep.grad_norm_median[0] < 1e-8 and sweep.grad_norm_quartiles[0, 1] > 0.1


def test_scalar_network_converged_minima_obey_the_edge():
    edge = scalar_network_edge(1.3, -1.7, 3)
    eta = 0.98 * edge.critical_lr
    m = nw.scalar_net(1.3, -1.7, 3)
    out = nw.run(m, nw.near_balanced_scalar_init(-1.7, 3, 50, seed=3), eta, 50_000)
    s = np.array([m.sharpness(w) for w in out.final])
    # GD only stops at minima flatter than 2/eta, and never flatter than the flattest one
    assert out.converged.all() and np.all(s < 2 / eta) and np.all(s >= edge.sharpness * (1 - 1e-6))


def test_matrix_network_transition_within_five_percent():
    rng = np.random.default_rng(3)
    _, _, phi = nw.whitened_regression(60, rng.standard_normal((3, 3)) / np.sqrt(3), noise=0.01, seed=3)
    sweep = matrix_lr_sweep(phi, 2, [0.95, 1.05], runs=100, steps=8_000)
    assert sweep.converged_fraction.tolist() == [1.0, 0.0] and 0.95 <= sweep.transition_ratio <= 1.05


def test_tanh_net_gd_sharpens_then_hovers_at_two_over_eta():
    tr = tanh_eos(0.2, 6000, every=100)
    assert tr.deterministic_edge == pytest.approx(10.0, rel=1e-15) and not tr.diverged
    assert tr.sharpness[0] < 0.5 * tr.deterministic_edge          # progressive sharpening ...
    hover = tr.hover_ratio(0.5)                                     # ... to the edge, and it hovers
    assert np.all(np.abs(hover - 1) < 0.10)
    assert tr.loss[-1] < 0.05 * tr.loss[0]


def test_tanh_net_sam_tracks_the_sam_edge():
    tr = tanh_eos(0.2, 10_000, optimizer="sam", rho=0.05, every=100)
    hover = tr.hover_ratio(0.5)
    assert np.all(np.abs(hover - 1) < 0.10)
    # and that is not GD's edge: SAM's sits far below 2/eta here
    assert np.all(tr.sharpness[tr.steps.size // 2:] < 0.7 * tr.deterministic_edge)


@pytest.mark.slow
def test_deep_wide_matrix_network_transition_within_five_percent():
    _, _, phi = nw.whitened_regression(80, np.random.default_rng(4).standard_normal((4, 4)) / 2, 0.01, 4)
    sweep = matrix_lr_sweep(phi, 4, [0.95, 1.05], runs=100, steps=20_000, seed=4)
    assert sweep.converged_fraction.tolist() == [1.0, 0.0]


@pytest.mark.slow
@pytest.mark.parametrize("a, p, depth", [(1.0, 3.0, 2), (2.0, 0.5, 3), (1.0, -2.0, 4)])
def test_scalar_network_transition_fine_grid(a, p, depth):
    ratios = np.linspace(0.9, 1.1, 11)
    sweep = scalar_lr_sweep(a, p, depth, ratios, runs=400, steps=100_000, spread=0.15, seed=1)
    assert np.all(sweep.converged_fraction[ratios < 0.999] == 1.0)
    assert np.all(sweep.converged_fraction[ratios > 1.001] == 0.0)
