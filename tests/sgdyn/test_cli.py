import json
import subprocess
import sys

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem

SPEC = "powerlaw:nu=1.5,kappa=2,n=20"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_loss_json_matches_the_library(capsys):
    code, out, err = run_cli(capsys, "loss", "--problem", SPEC, "--alpha", "0.3", "--beta", "-0.2",
                             "--batch", "2", "--steps", "50", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    want = loss_curve(Problem.parse(SPEC), 0.3, -0.2, 2, 50).loss
    assert len(data["loss"]) == 51 and data["diverges"] is False
    np.testing.assert_allclose(data["loss"], want, rtol=1e-15)


def test_loss_flags_reach_the_theory(capsys, tmp_path):
    path = tmp_path / "p.json"
    Problem([2.0, 1.0, 0.5], [1.0, 1.0, 1.0]).save(path)
    code, out, _ = run_cli(capsys, "loss", "--problem", str(path), "--alpha", "0.2", "--beta", "0.3",
                           "--batch", "3", "--steps", "20", "--tau1", "1", "--tau2", "0.5",
                           "--method", "nesterov", "--label-noise", "0.1", "--data-size", "9",
                           "--json")
    from sgdyn.theory.noise import NoiseModel
    p = Problem([2.0, 1.0, 0.5], [1.0, 1.0, 1.0], label_noise=0.1, data_size=9)
    want = loss_curve(p, 0.2, 0.3, 3, 20, method="nesterov", noise=NoiseModel(1, 0.5)).loss
    np.testing.assert_allclose(json.loads(out)["loss"], want, rtol=1e-15)


def test_divergent_loss_is_reported_cleanly(capsys):
    code, out, _ = run_cli(capsys, "loss", "--problem", SPEC, "--alpha", "3", "--batch", "1",
                           "--steps", "10000", "--json")
    data = json.loads(out)
    assert code == 0 and data["diverges"] is True and data["stopped_early"] is True
    assert len(data["loss"]) < 10001 and all(np.isfinite(data["loss"]))
    code, out, _ = run_cli(capsys, "loss", "--problem", SPEC, "--alpha", "3", "--batch", "1",
                           "--steps", "100")
    assert "diverges" in out


@pytest.mark.parametrize("argv, match", [
    (["--alpha", "-1"], "alpha"), (["--beta", "1"], "beta"), (["--batch", "0"], "batch"),
    (["--batch", "2.5"], "batch"), (["--steps", "-3"], "steps"), (["--tau1", "-1"], "tau1"),
    (["--problem", "nope.json"], "does not exist"), (["--problem", "powerlaw:nu=x"], "not a number"),
    (["--alpha", "abc"], "--alpha: schedule 'abc' must be a number"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, match):
    base = {"--problem": SPEC, "--alpha": "0.1", "--beta": "0", "--batch": "1", "--steps": "5"}
    for flag, val in zip(argv[::2], argv[1::2]):
        base[flag] = val
    code, out, err = run_cli(capsys, "loss", *[x for kv in base.items() for x in kv])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sgdyn: error:") and match in err


def test_derive_prints_the_generating_functions(capsys):
    code, out, _ = run_cli(capsys, "derive", "--method", "heavy-ball")
    assert code == 0 and "U(z)" in out and "V(z)" in out and "characteristic polynomial" in out
    code, out, _ = run_cli(capsys, "derive", "--method", "nesterov", "--latex")
    assert code == 0 and "\\frac" in out


def test_console_entry_point_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "sgdyn", "loss", "--problem", SPEC, "--alpha", "0.1",
                           "--batch", "1", "--steps", "3", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["loss"]) == 4
    proc = subprocess.run([sys.executable, "-m", "sgdyn", "loss"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("sgdyn: error:")
