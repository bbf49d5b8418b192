"""``sgdyn schedule optimize``: the command reports what the Python API computes, and its
figure and Monte Carlo confirmation come out."""
import numpy as np

from sgdyn.theory import Problem
from sgdyn.theory.optimal_schedule import optimal_schedule

ARGS = ["schedule", "optimize", "--problem", "powerlaw:nu=1.5,kappa=1,n=20", "--steps", "60",
        "--batch", "2", "--beta", "0.3", "--knots", "6"]


def test_json_is_the_python_result(run_json, tmp_path):
    out = tmp_path / "opt.png"
    d = run_json(*ARGS, "--runs", "200", "--seed", "4", "--out", str(out))
    o = optimal_schedule(Problem.power_law(nu=1.5, kappa=1, n=20), 60, 2, 0.3, knots=6)
    assert np.array_equal(d["alpha"], o.alpha) and d["loss"] == o.loss
    assert [b["name"] for b in d["comparison"]] == ["optimal", "constant", "cosine", "step"]
    assert d["gradient_check"] < 1e-6
    assert set(d["monte_carlo"]) == {"optimal", "constant", "cosine", "step"}
    for b in d["comparison"]:              # each schedule's Monte Carlo agrees with its theory
        mc = d["monte_carlo"][b["name"]]
        assert mc["runs"] == 200 and abs(mc["mean"] - b["loss"]) < 4 * mc["stderr"]
    assert d["figure"] == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
