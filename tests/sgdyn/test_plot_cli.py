import numpy as np
import pytest

from sgdyn import plots
from sgdyn.cli import main
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import critical_learning_rate, optimal_rate

SPEC = "powerlaw:nu=1.5,kappa=3,n=30"
P = Problem.parse(SPEC)


def test_phase_diagram(run_json, tmp_path):
    out = tmp_path / "region.svg"
    d = run_json("phase-diagram", "--problem", SPEC, "--batch", "2", "--n-beta", "11",
                 "--n-alpha", "20", "--out", str(out))
    o = optimal_rate(P, 2)
    assert (d["alpha"], d["beta"], d["value"]) == (o.alpha, o.beta, o.rate)
    assert d["noise_boundary_points"] > 0 and out.stat().st_size > 1000


def test_plot_kinds(run_json, tmp_path):
    d = run_json("plot", "critical-lr", "--problem", SPEC, "--batches", "1,8",
                 "--betas", "0,0.5", "--out", str(tmp_path / "c.png"))
    assert d["alpha_eff_crit"][1][1] == critical_learning_rate(P, 0.5, 8).alpha_eff_crit
    d = run_json("plot", "phase-plane", "--alpha", "0.3", "--batch", "1", "--n", "50",
                 "--out", str(tmp_path / "p.pdf"))
    _, ref = plots.phase_plane(0.3, 0.0, 1, 50)
    assert d["noise_feedback"] == ref.noise_feedback.tolist()
    d = run_json("plot", "loss-curves", "--problem", SPEC, "--alpha", "0.2", "--batch", "1",
                 "--steps", "100", "--runs", "100", "--asymptotes", "--out", str(tmp_path / "l.png"))
    ph = phases(P, 0.2, 0.0, 1)
    assert d["phase"] == ph.phase == "noise" and d["transition"] == ph.transition_time
    assert abs(d["mc_final"] - d["theory_final"]) < 5 * d["mc_stderr_final"]
    d = run_json("plot", "loss-curves", "--problem", SPEC, "--alpha", "step(0.3,milestones=[20])",
                 "--beta", "linear(0.3,0.8)", "--batch", "2", "--steps", "40", "--runs", "100",
                 "--out", str(tmp_path / "s.png"))
    assert d["scheduled"] == ["alpha", "beta"] and d["inputs"]["run"]["schedule"]["alpha"] == \
        "step(0.3, milestones=[20], factor=0.1)"
    assert abs(d["mc_final"] - d["theory_final"]) < 5 * d["mc_stderr_final"]
    for name in ("c.png", "p.pdf", "l.png", "s.png"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.parametrize("argv", [
    ["phase-diagram", "--problem", SPEC, "--batch", "1", "--out", "x.jpg"],
    ["phase-diagram", "--problem", SPEC, "--batch", "1", "--objective", "horizon", "--out", "x.png"],
    ["phase-diagram", "--problem", SPEC, "--batch", "1", "--beta-range", "0.5", "0.1", "--out", "x.png"],
    ["plot", "critical-lr", "--problem", SPEC, "--betas", "0,a", "--out", "x.png"],
    ["plot", "phase-plane", "--alpha", "0.1", "--batch", "0", "--out", "x.png"],
    ["plot", "loss-curves", "--problem", SPEC, "--label-noise", "0.1", "--alpha", "0.1",
     "--batch", "1", "--steps", "10", "--asymptotes", "--out", "x.png"],
    ["plot", "loss-curves", "--problem", SPEC, "--alpha", "0.1", "--batch", "1", "--steps", "10",
     "--out", "/nonexistent-dir/x.png"],
    ["plot", "loss-curves", "--problem", SPEC, "--alpha", "cosine(0.1)", "--batch", "1", "--steps",
     "10", "--asymptotes", "--out", "x.png"],
    ["plot", "loss-curves", "--problem", SPEC, "--alpha", "0.1", "--batch", "linear(2,0.5", "--steps",
     "10", "--out", "x.png"],
])
def test_bad_input_one_line_exit_2(capsys, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error:") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())           # nothing written
