"""The command-line contract of data problems: problem from-data, critical-lr --route exact-data,
check-se, the problem file's tau as every command's default, and the trust warnings."""
import json

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine

from sgdyn.cli import main
from sgdyn.theory import exact_data as ed
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.q4_closure import q4_loss_curve
from sgdyn.theory.se_check import check_se
from sgdyn.theory.stability import critical_learning_rate


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wine(tmp_path):
    X, y = load_wine(return_X_y=True)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", header=",".join(f"f{i}" for i in range(13)),
               comments="")
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    return tmp_path, Problem.from_rows(X, y, standardize_data=True, name="X")


def test_problem_from_data_writes_what_from_rows_builds(capsys, wine):
    d, want = wine
    code, out, err = cli(capsys, "problem", "from-data", d / "X.npy", d / "y.npy", "--standardize",
                         "--out", d / "p.npz", "--json")
    assert code == 0 and err == ""
    s = json.loads(out)
    assert (s["modes"], s["rows"], s["features"], s["standardized"]) == (13, 178, 13, True)
    assert (s["tau1"], s["tau2"], s["tau_residual"]) == (want.noise.tau1, want.noise.tau2,
                                                         want.tau_residual)
    p = Problem.from_file(d / "p.npz")
    np.testing.assert_array_equal(p.data.rows, want.data.rows)
    # csv (with a header line) gives the same problem
    code, out, _ = cli(capsys, "problem", "from-data", d / "X.csv", d / "y.csv", "--standardize",
                       "--out", d / "q.json", "--name", "wine")
    assert code == 0 and "wrote" in out and "relative residual 0.219" in out
    q = Problem.from_file(d / "q.json")
    assert q.name == "wine"
    np.testing.assert_allclose(q.eigenvalues, p.eigenvalues, rtol=1e-9)
    code, out, _ = cli(capsys, "problem", "show", d / "q.json")
    assert code == 0 and "178 rows" in out and "exact finite-data route applies" in out


def test_critical_lr_exact_data_contract(capsys, wine):
    d, p = wine
    p.save(d / "p.npz")
    code, out, err = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--beta", "0.5",
                         "--batch", "4", "--route", "exact-data", "--json")
    assert code == 0 and err == ""
    got = json.loads(out)
    c = ed.exact_critical_learning_rate(p, 0.5, 4)
    assert got["alpha_crit"] == c.alpha_crit and got["route"] == "exact-data"
    assert got["sampling"] == "iid"
    code, out, _ = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--beta", "0.5",
                       "--batch", "4", "--route", "exact-data", "--data-size", "178", "--json")
    c = ed.exact_critical_learning_rate(p, 0.5, 4, sampling="without-replacement")
    assert json.loads(out)["alpha_crit"] == c.alpha_crit
    assert json.loads(out)["sampling"] == "without-replacement"
    code, out, _ = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--batch", "4",
                       "--route", "q4-closure", "--json")
    assert json.loads(out)["alpha_crit"] == ed.q4_critical_learning_rate(p, 0.0, 4).alpha_crit


def test_se_commands_default_to_the_file_tau_and_warn_when_the_trust_check_fails(capsys, wine):
    d, p = wine
    p.save(d / "p.npz")
    code, out, err = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--batch", "1", "--json")
    got = json.loads(out)
    assert got["alpha_crit"] == critical_learning_rate(p, 0.0, 1, noise=p.noise).alpha_crit
    assert (got["route"], got["tau1"], got["trusted"]) == ("se", p.noise.tau1, False)
    assert err.count("\n") == 1 and err.startswith("sgdyn: warning: SE (tau = (0.8435")
    code, out, err = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--batch", "1")
    assert "route: SE, tau = (0.843535, 0.0306263) from the problem file's tau" in out
    assert "trust check FAILED" in out and err.count("\n") == 1
    # loss at an alpha where SE converges and the rows diverge: one warning, the route stated
    code, out, err = cli(capsys, "loss", "--problem", d / "p.npz", "--alpha", "0.13", "--batch", "1",
                         "--steps", "20", "--json")
    got = json.loads(out)
    np.testing.assert_allclose(got["loss"], loss_curve(p, 0.13, 0.0, 1, 20, noise=p.noise).loss,
                               rtol=1e-15)
    assert got["diverges"] is False and got["exact_noise_radius"] > 1 and got["trusted"] is False
    assert err.count("\n") == 1 and "exact finite-data dynamics on these rows diverges" in err
    # the exact route itself, no warning
    code, out, err = cli(capsys, "loss", "--problem", d / "p.npz", "--alpha", "0.13", "--batch", "1",
                         "--steps", "20", "--route", "exact-data", "--json")
    got = json.loads(out)
    assert err == "" and got["diverges"] is True and got["route"] == "exact-data"
    np.testing.assert_allclose(got["loss"], ed.exact_loss_curve(p, 0.13, 0.0, 1, 20).loss, rtol=1e-15)
    # explicit flags still win, and a trusted setting stays silent
    code, out, err = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--batch", "16",
                         "--tau1", "1", "--tau2", "-1", "--json")
    assert json.loads(out)["tau2"] == -1.0


def test_loss_route_q4_on_a_data_problem(capsys, wine):
    d, p = wine
    p.save(d / "p.npz")
    base = ["--problem", d / "p.npz", "--alpha", "0.1", "--batch", "2", "--steps", "30"]
    code, out, err = cli(capsys, "loss", *base, "--route", "q4", "--json")
    got = json.loads(out)
    assert code == 0 and err == "" and got["route"] == "q4" and got["diverges"] is False
    want = q4_loss_curve(p, 0.1, 0.0, 2, 30)
    np.testing.assert_allclose(got["loss"], want.loss, rtol=1e-15)
    assert got["rate"] == want.rate and "Q4 closure" in got["approximation"]
    code, out, err = cli(capsys, "loss", *base, "--route", "q4", "--data-size", "178")
    assert code == 0 and "route: Q4 closure" in out and "batches without replacement" in out
    code, out, err = cli(capsys, "critical-lr", "--problem", d / "p.npz", "--batch", "2", "--route",
                         "q4", "--json")
    assert json.loads(out)["alpha_crit"] == ed.q4_critical_learning_rate(p, 0.0, 2).alpha_crit
    code, out, err = cli(capsys, "loss", *base, "--route", "q4", "--tau1", "1")
    assert code == 2 and "route 'q4' uses the data's own moments" in err


def test_a_saved_spectrum_keeps_its_fitted_tau(capsys, tmp_path):
    """The issue's case: critical-lr on a saved spectrum used the Gaussian tau silently."""
    X, y = load_diabetes(return_X_y=True)
    p = Problem.from_rows(X, y)
    spectrum = Problem(p.eigenvalues, p.initial, p.label_noise, noise=p.noise,
                       tau_residual=p.tau_residual)
    spectrum.save(tmp_path / "s.json")
    code, out, err = cli(capsys, "critical-lr", "--problem", tmp_path / "s.json", "--batch", "2",
                         "--json")
    assert code == 0 and err == ""                       # no rows: no trust check, no warning
    assert json.loads(out)["alpha_crit"] == critical_learning_rate(p, 0.0, 2, noise=p.noise).alpha_crit


def test_check_se_contract(capsys, wine):
    d, p = wine
    p.save(d / "p.npz")
    code, out, err = cli(capsys, "check-se", "--problem", d / "p.npz", "--beta", "0", "--batch", "1",
                         "--steps", "100", "--json")
    assert code == 0 and err == ""
    got = json.loads(out)
    want = check_se(p, 0.0, 1, steps=100)
    assert got["verdict"] == want.verdict and got["verdict"].startswith("unsafe")
    assert (got["alpha_crit_se"], got["alpha_crit_exact"], got["tau_residual"]) == \
        (want.alpha_crit_se, want.alpha_crit_exact, p.tau_residual)
    assert got["alpha_crit_q4"] == want.alpha_crit_q4
    assert got["q4_curve_deviation"] == list(want.q4_deviation)
    code, out, _ = cli(capsys, "check-se", "--problem", d / "p.npz", "--batch", "16", "--steps", "50")
    assert code == 0 and "verdict: safe" in out and "Q4 closure" in out


@pytest.mark.parametrize("argv,match", [
    (["problem", "from-data", "nope.npy", "{d}/y.npy", "--out", "{d}/p.npz"], "X file 'nope.npy' does not exist"),
    (["problem", "from-data", "{d}/X.npy", "{d}/X.npy", "--out", "{d}/p.npz"], "y file"),
    (["problem", "from-data", "{d}/X.npy", "{d}/y.npy", "--out", "{d}/p.txt"], "--out"),
    (["critical-lr", "--problem", "powerlaw:nu=1.5,kappa=1,n=5", "--batch", "1", "--route",
      "exact-data"], "no data rows"),
    (["critical-lr", "--problem", "{d}/p.npz", "--batch", "1", "--route", "exact-data",
      "--data-size", "50"], "--data-size must be None"),
    (["critical-lr", "--problem", "{d}/p.npz", "--batch", "1", "--route", "exact-data",
      "--tau1", "1"], "--tau1/--tau2 set the SE noise model"),
    (["loss", "--problem", "{d}/p.npz", "--alpha", "0.1", "--batch", "1", "--steps", "5",
      "--label-noise", "1"], "--label-noise"),
    (["check-se", "--problem", "{d}/p.npz", "--batch", "0"], "batch must be an integer >= 1"),
    (["check-se", "--problem", "{d}/bad.npz", "--batch", "1"], "key 'rows'"),
])
def test_bad_input_is_one_line_exit_2(capsys, wine, argv, match):
    d, p = wine
    p.save(d / "p.npz")
    np.savez(d / "bad.npz", eigenvalues=p.eigenvalues, initial=p.initial, rows=np.ones((3, 2)),
             residuals=np.zeros(3), initial_error=np.zeros(2))
    code, out, err = cli(capsys, *[a.format(d=d) for a in argv])
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("sgdyn: error:")
    assert match in err
