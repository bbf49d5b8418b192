"""``sgdyn phases`` against ``theory.asymptotics.phases`` (same numbers, JSON contract, text
output, bad input as one line with exit code 2, divergence as a result)."""
import json

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem

SWITCH = "powerlaw:nu=1.5,kappa=2.5,n=1e8,groups=300"
SIGNAL = "powerlaw:nu=2,kappa=1,n=1e6,groups=200"
KEYS = {"nu", "kappa", "signal_exponent", "noise_exponent", "signal_loss_constant",
        "noise_loss_constant", "signal_constant", "noise_constant", "noise_feedback", "signal_total",
        "decay_rate", "phase", "diverges", "transition_time", "cutoff_time", "rate",
        "fit_deviation", "reason"}


def run_json(capsys, *argv):
    code = main(["phases", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    return json.loads(out)


def test_json_matches_theory_noise_phase(capsys):
    d = run_json(capsys, "--problem", SWITCH, "--alpha", "0.2", "--beta", "-0.3", "--batch", "2",
                 "--tau2", "1")
    ph = phases(Problem.parse(SWITCH), 0.2, -0.3, 2, noise=NoiseModel(1.0, 1.0))
    assert set(d) == KEYS | {"inputs"}
    assert d["phase"] == ph.phase == "noise" and d["diverges"] is False
    for key in ("signal_exponent", "noise_exponent", "signal_constant", "noise_constant",
                "noise_feedback", "signal_total", "transition_time", "cutoff_time"):
        assert d[key] == getattr(ph, key)
    assert d["signal_loss_constant"] == ph.signal_loss_constant
    assert d["noise_loss_constant"] == ph.noise_loss_constant
    # exponents of the spec's power law (zeta = kappa / nu, 2 - 1/nu)
    assert d["signal_exponent"] == pytest.approx(2.5 / 1.5, rel=1e-12)
    assert d["noise_exponent"] == pytest.approx(2 - 1 / 1.5, rel=1e-12)
    # the transition time is where the two printed asymptotes are equal
    tx, a, q = d["transition_time"], d["signal_loss_constant"], d["noise_loss_constant"]
    assert a * tx ** -d["signal_exponent"] == pytest.approx(q * tx ** -d["noise_exponent"], rel=1e-10)


def test_signal_phase_has_no_noise_asymptote(capsys):
    """zeta = 1/2 <= 1: V(1) = inf, so no noise term and no crossing (nulls in JSON)."""
    d = run_json(capsys, "--problem", SIGNAL, "--alpha", "0.3", "--beta", "0.3", "--batch", "1")
    assert d["phase"] == "signal" and d["transition_time"] is None and d["signal_total"] is None
    assert d["noise_loss_constant"] == 0.0
    assert d["signal_loss_constant"] == phases(Problem.parse(SIGNAL), 0.3, 0.3, 1).signal_loss_constant


def test_text_output(capsys):
    assert main(["phases", "--problem", SWITCH, "--alpha", "0.2", "--beta", "-0.3",
                 "--batch", "2"]) == 0
    out = capsys.readouterr().out
    ph = phases(Problem.parse(SWITCH), 0.2, -0.3, 2)
    assert f"L_t ~ {ph.signal_loss_constant:.6g} t^-{ph.signal_exponent:.6g}" in out
    assert f"L_t ~ {ph.noise_loss_constant:.6g} t^-{ph.noise_exponent:.6g}" in out
    assert "phase at large t: noise" in out
    assert f"transition time:  {ph.transition_time:.6g}" in out


def test_divergence_is_a_result(capsys):
    argv = ["--problem", SWITCH, "--alpha", "2", "--batch", "1"]
    d = run_json(capsys, *argv)
    assert d["phase"] == "diverges" and d["diverges"] is True and d["rate"] > 1
    assert d["signal_loss_constant"] is None and d["transition_time"] is None
    assert "diverges" in d["reason"] and "noise" in d["reason"]
    assert main(["phases", *argv]) == 0
    out = capsys.readouterr().out
    assert out.count("diverges") == 1 and "L_t ~" not in out


def test_max_deviation(capsys, tmp_path):
    """A spectrum off the power law by 1e-3 in log: rejected by default, accepted when the user
    allows that deviation (the fit then reports it)."""
    p = Problem.power_law(1.5, 2.0, 200)
    bent = Problem.from_arrays(p.eigenvalues * np.exp(1e-3 * np.sin(np.arange(200))), p.initial)
    path = tmp_path / "bent.json"
    bent.save(path)
    argv = ["phases", "--problem", str(path), "--alpha", "0.1", "--batch", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error: problem is not a power law") and err.count("\n") == 1
    d = run_json(capsys, *argv[1:], "--max-deviation", "0.01")
    assert 1e-4 < d["fit_deviation"] < 0.01
    assert d["noise_feedback"] == phases(bent, 0.1, 0.0, 1, max_deviation=0.01).noise_feedback


@pytest.mark.parametrize("extra, match", [
    (["--problem", "powerlaw:nu=0.8,kappa=2,n=100"], "nu must be > 1"),
    (["--problem", SIGNAL, "--method", "nesterov"], "method"),
    (["--problem", SIGNAL, "--label-noise", "0.1"], "--label-noise"),
    (["--problem", SIGNAL, "--batch", "0"], "batch"),
    (["--problem", SIGNAL, "--max-deviation", "-1"], "--max-deviation"),
    (["--problem", SIGNAL, "--beta", "1.5"], "beta"),
])
def test_bad_input_one_line_exit_2(capsys, extra, match):
    argv = ["phases", "--alpha", "0.1", "--batch", "1", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error:") and err.count("\n") == 1 and match in err
