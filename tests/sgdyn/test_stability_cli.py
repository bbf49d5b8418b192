import pytest

from sgdyn.cli import main
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (asymptotic_rate, critical_batch, critical_learning_rate,
                              optimal_rate)

SPEC = "powerlaw:nu=1.5,kappa=2,n=20"
P = Problem.parse(SPEC)


def test_critical_lr(run_json):
    d = run_json("critical-lr", "--problem", SPEC, "--beta", "-0.3", "--batch", "2",
                 "--tau2", "1")
    c = critical_learning_rate(P, -0.3, 2, noise=NoiseModel(1.0, 1.0))
    assert d["alpha_crit"] == c.alpha_crit and d["limited_by"] == c.limited_by
    assert d["alpha_eff_crit"] == pytest.approx(c.alpha_crit / 1.3, rel=1e-15)


def test_critical_batch(run_json):
    d = run_json("critical-batch", "--problem", SPEC, "--alpha", "1.2", "--beta", "0.2")
    assert d["batch_crit"] == critical_batch(P, 1.2, 0.2).batch_crit
    d = run_json("critical-batch", "--problem", SPEC, "--alpha", "5", "--beta", "0.2")
    assert d["batch_crit"] is None and d["diverges_for_every_batch"] is True


def test_rate(run_json):
    d = run_json("rate", "--problem", SPEC, "--alpha", "0.3", "--beta", "0.5",
                 "--batch", "3", "--method", "nesterov")
    s = asymptotic_rate(P, 0.3, 0.5, 3, "nesterov")
    assert d["rate"] == s.rate and d["diverges"] is False


def test_optimize(run_json):
    d = run_json("optimize", "--problem", SPEC, "--batch", "4")
    o = optimal_rate(P, 4)
    assert (d["alpha"], d["beta"], d["rate"]) == (o.alpha, o.beta, o.rate)


@pytest.mark.parametrize("argv", [
    ["critical-lr", "--problem", SPEC, "--beta", "1.5", "--batch", "1"],
    ["critical-batch", "--problem", SPEC, "--alpha", "-1"],
    ["rate", "--problem", SPEC, "--alpha", "0.1", "--batch", "0"],
    ["optimize", "--problem", SPEC, "--batch", "1.5"],
])
def test_bad_input_one_line_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error:") and err.count("\n") == 1
