"""``sgdyn optimize --objective rate|horizon|asymptotic``: each objective is what it says, the
output names it, and the horizon objective reproduces docs/negative_momentum.md."""
import pathlib
import re

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.horizon import final_losses, optimal_hyperparameters_at_horizon
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import critical_learning_rate_curve, optimal_rate

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "negative_momentum.md"
TAU1 = NoiseModel(1.0, 1.0)
NOISE_PHASE = ["--problem", "powerlaw:nu=1.5,kappa=3,n=100", "--data-size", "100", "--tau2", "1"]


def doc_row(batch: int) -> tuple[float, float]:
    """(alpha*, beta*) of the horizon table in docs/negative_momentum.md."""
    text = DOC.read_text()
    text = text[text.index("## Yes for the loss at a fixed horizon"):]
    m = re.search(rf"^\| {batch} \| ([0-9.]+) \| ([-+0-9.]+) \|", text, re.M)
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize("batch", [10, pytest.param(1, marks=pytest.mark.slow)])
def test_horizon_reproduces_the_negative_momentum_table(run_json, batch):
    d = run_json("optimize", "--problem", "powerlaw:nu=1.5,kappa=3,n=1000", "--data-size", "1000",
                 "--tau2", "1", "--batch", str(batch), "--objective", "horizon", "--steps", "3000")
    alpha, beta = doc_row(batch)
    # the table prints 3 decimals: the same optimum within that resolution
    assert d["objective"] == "horizon" and "L_T after T = 3000" in d["quantity"]
    assert abs(d["alpha"] - alpha) <= 6e-4 and abs(d["beta"] - beta) <= 6e-4 and d["beta"] < 0
    assert d["gain"] > 0 and d["value"] < d["value_beta0"]


def test_horizon_is_the_loss_at_the_horizon(run_json):
    d = run_json("optimize", *NOISE_PHASE, "--batch", "1", "--objective", "horizon", "--steps", "600")
    p = Problem.power_law(1.5, 3.0, 100, data_size=100)
    o = optimal_hyperparameters_at_horizon(p, 1, 600, noise=TAU1)
    assert (d["alpha"], d["beta"], d["value"]) == (o.alpha, o.beta, o.loss)
    # the value is the exact L_T there, and no point of an independent grid does better
    assert d["value"] == float(final_losses(p, d["alpha"], d["beta"], 1, 600, noise=TAU1))
    betas = np.linspace(-0.85, 0.85, 13)
    crit, _ = critical_learning_rate_curve(p, betas, 1, noise=TAU1)
    A = crit[:, None] * np.linspace(0.05, 0.95, 13)[None, :]
    grid = final_losses(p, A, np.broadcast_to(betas[:, None], A.shape), 1, 600, noise=TAU1)
    assert grid.min() >= d["value"]


def test_asymptotic_is_the_constant_of_the_dominating_asymptote(run_json):
    d = run_json("optimize", *NOISE_PHASE, "--batch", "1", "--objective", "asymptotic")
    p = Problem.power_law(1.5, 3.0, 100, data_size=100)
    ph = phases(p, d["alpha"], d["beta"], 1, noise=TAU1)
    assert ph.phase == "noise" and d["value"] == ph.noise_loss_constant
    assert "noise asymptote" in d["quantity"] and d["detail"].startswith("noise phase")
    assert d["beta"] < 0 and d["value"] < d["value_beta0"]      # negative momentum wins here
    betas = np.linspace(-0.85, 0.85, 11)
    crit, _ = critical_learning_rate_curve(p, betas, 1, noise=TAU1)
    for b, c in zip(betas, crit):
        for f in (0.2, 0.4, 0.6, 0.8):
            assert phases(p, f * c, b, 1, noise=TAU1).noise_loss_constant >= d["value"]


def test_rate_is_the_default_and_says_so(capsys, run_json):
    d = run_json("optimize", *NOISE_PHASE, "--batch", "10")
    o = optimal_rate(Problem.power_law(1.5, 3.0, 100, data_size=100), 10, noise=TAU1)
    assert d["objective"] == "rate" and (d["alpha"], d["beta"], d["rate"]) == (o.alpha, o.beta, o.rate)
    assert d["inputs"]["flags"]["objective"] == "rate"
    assert main(["optimize", *NOISE_PHASE, "--batch", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("objective: rate, the exponential rate rho") and "--objective horizon" in out


@pytest.mark.parametrize("argv, match", [
    (["--objective", "horizon"], "steps must be given"),
    (["--steps", "100"], "steps applies to objective 'horizon' only"),
    (["--objective", "asymptotic", "--label-noise", "0.1"], "power-law problem without label noise"),
    (["--objective", "horizon", "--steps", "10", "--method", "sgd"], "momentum parameter"),
    (["--objective", "speed"], "invalid choice"),
])
def test_bad_input_one_line_exit_2(capsys, argv, match):
    assert main(["optimize", *NOISE_PHASE, "--batch", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error:") and err.count("\n") == 1 and match in err
