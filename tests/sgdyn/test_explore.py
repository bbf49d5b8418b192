"""The explorer (``sgdyn.explore``): its compute layer against the package's own functions, the
notebook form headless, and the served page in a real (headless Chromium) browser."""
import dataclasses
import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from sgdyn.explore import views
from sgdyn.explore.views import Settings
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (asymptotic_rate, critical_learning_rate,
                                    critical_learning_rate_curve, optimal_rate)

SMALL = Settings(problem="powerlaw:nu=1.5,kappa=3,n=60", alpha=0.3, beta=0.2, batch=4, steps=300)
PROBLEM = Problem.power_law(1.5, 3, 60)


def test_curve_view_is_the_theorys_curve_with_its_asymptotes():
    c = views.curve_view(SMALL)
    full = loss_curve(PROBLEM, 0.3, 0.2, 4, 300).loss
    assert c.final_step == 300 and c.final == full[-1]
    assert np.array_equal(c.loss, full[c.steps]) and c.steps[0] == 1 and c.steps[-1] == 300
    ph = phases(PROBLEM, 0.3, 0.2, 4)
    assert c.transition == ph.transition_time and c.phase == ph.reason
    got = dict(c.asymptotes)
    assert np.array_equal(got["signal"], ph.signal_asymptote(c.steps.astype(float)))
    assert np.array_equal(got["noise"], ph.noise_asymptote(c.steps.astype(float)))
    # a problem file is no power law by name, but fits one; a non-power-law has no asymptotes
    other = views.curve_view(SMALL.replace(method="nesterov"))
    assert other.asymptotes == () and other.phase.startswith("no power-law asymptotes: method")


def test_exported_command_computes_the_same_curve(capsys):
    from sgdyn.cli import main
    s = SMALL.replace(data_size=500, tau1=1.2, tau2=-0.5)
    c = views.curve_view(s)
    argv = shlex.split(views.command_line(s))
    assert argv[:2] == ["sgdyn", "loss"]
    assert main(argv[1:] + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["loss"][-1] == c.final and out["tau1"] == 1.2 and out["tau2"] == -0.5
    assert np.array_equal(np.asarray(out["loss"])[c.steps], c.loss)
    assert Settings.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match="unknown key"):
        Settings.from_json('{"alpha": 0.1, "lr": 2}')


def test_critical_and_point_views_are_the_stability_functions():
    c = views.critical_view(SMALL)
    assert c.current == critical_learning_rate(PROBLEM, 0.2, 4)
    assert 4 in c.batches and c.batches[0] == 1 and c.batches[-1] == 1024
    each = np.array([critical_learning_rate(PROBLEM, 0.2, int(b)).alpha_eff_crit for b in c.batches])
    # one vectorised bisection for all batches: it stops when every point is within 1e-15
    # (relative) of its threshold, so points may differ from one-at-a-time by that much
    assert np.allclose(c.alpha_eff_crit, each, rtol=4e-15, atol=0)
    p = views.point_view(SMALL)
    assert p.rate == asymptotic_rate(PROBLEM, 0.3, 0.2, 4).rate and not p.diverges


def test_region_view_is_region_data_with_the_rate_optimum():
    r = views.region_view(SMALL, (12, 9))
    d = r.data
    opt = optimal_rate(PROBLEM, 4)
    assert d.optimum == (opt.alpha, opt.beta) and d.optimum_value == opt.rate
    assert np.array_equal(d.alpha_crit, critical_learning_rate_curve(PROBLEM, d.betas, 4)[0])
    i, j = 4, 3
    rho = asymptotic_rate(PROBLEM, d.alphas[j], d.betas[i], 4).rate
    assert d.values[i, j] == pytest.approx(rho, rel=1e-12)     # grid kernel vs per-point route
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.array_equal(r.shade, np.log10(1 - d.values), equal_nan=True)
    quick = views.region_view(SMALL, (12, 9), with_optimum=False)
    assert np.isnan(quick.data.optimum).all()
    assert (quick.data.betas[0], quick.data.betas[-1]) == (-0.95, 0.95)


def test_stale_views_and_the_conditions():
    assert views.stale(None, SMALL) == set(views.STALE)
    assert views.stale(SMALL, SMALL.replace(alpha=0.1)) == {"curve", "point"}
    assert views.stale(SMALL, SMALL.replace(steps=9)) == {"curve"}
    assert views.stale(SMALL, SMALL.replace(beta=0.1)) == {"curve", "point", "critical"}
    assert views.stale(SMALL, SMALL.replace(batch=8)) == {"curve", "point", "critical", "region"}
    assert views.stale(SMALL, SMALL.replace(method="sgd")) == set(views.STALE)
    c = views.conditions_view(SMALL)
    assert c.mode_stability.startswith("$") and r"\alpha" in c.noise_feedback


@pytest.mark.parametrize("changes, message", [
    (dict(problem=""), "problem is empty"),
    (dict(problem="powerlaw:nu=1.5"), "powerlaw spec needs nu, kappa, n"),
    (dict(alpha=-0.1), "alpha must be > 0"),
    (dict(beta=1.5), "beta must lie in"),
    (dict(batch=0), "batch"),
    (dict(data_size=1), "data_size"),
])
def test_bad_settings_are_one_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        views.curve_view(SMALL.replace(**changes))


def test_bad_problem_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(ValueError, match="is not valid JSON"):
        views.problem_of(SMALL.replace(problem=str(empty)))
    bad = tmp_path / "bad.json"
    bad.write_text('{"eigenvalues": [1, 2]}')
    with pytest.raises(ValueError, match="initial"):
        views.problem_of(SMALL.replace(problem=str(bad)))


def test_the_core_never_imports_the_widget_library():
    code = ("import sys, importlib, sgdyn, sgdyn.cli, sgdyn.explore, sgdyn.explore.views\n"
            "for name in sgdyn.cli.COMMAND_MODULES:\n"
            "    importlib.import_module('sgdyn.commands.' + name)\n"
            "print(sorted(m for m in ('panel', 'bokeh', 'selenium') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_refuses_bad_settings_before_serving(capsys, tmp_path):
    from sgdyn.cli import main
    assert main(["explore", "--problem", str(tmp_path / "none.json"), "--no-browser"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explore", "--beta", "1.2", "--no-browser"]) == 2
    assert "beta must lie in" in capsys.readouterr().err
    saved = tmp_path / "s.json"
    saved.write_text('{"alpha": 0.1, "lr": 2}')
    assert main(["explore", "--settings", str(saved), "--no-browser"]) == 2
    assert "unknown key(s) lr" in capsys.readouterr().err


# -- the notebook form, headless ---------------------------------------------------------------
def test_notebook_form_headless():
    pytest.importorskip("panel", reason="the optional extra 'explore' (panel) is not installed")
    from bokeh.events import Tap
    from sgdyn.explore import explorer
    from sgdyn.validate import validate
    from sgdyn.theory.run import Run
    from sgdyn.theory.record import Record
    e = explorer(**dataclasses.asdict(SMALL))
    assert e.settings == SMALL and not e.errors and not e.error_box.visible
    assert e.values["alpha_crit"] == critical_learning_rate(PROBLEM, 0.2, 4).alpha_crit
    opt = optimal_rate(PROBLEM, 4)
    assert (e.values["optimum_alpha"], e.values["optimum_beta"]) == (opt.alpha, opt.beta)
    assert e._repr_mimebundle_() is not None
    e.alpha.value = 0.25
    assert e.values["final_loss"] == loss_curve(PROBLEM, 0.25, 0.2, 4, 300).final
    assert 'data-key="final_loss"' in e.readout.object
    e._on_tap(Tap(model=e.region_fig, x=0.5, y=-0.3))
    assert (e.settings.alpha, e.settings.beta) == (0.5, -0.3)
    assert list(e.point_src.data["x"]) == [0.5]
    e.tau1.value = "abc"
    assert e.error_box.visible and "tau1 must be a number" in e.error_box.object
    e.tau1.value = ""
    e.source.value = "spec or file"        # an empty spec: an error in the page, the rest alive
    assert e.error_box.visible and "problem is empty" in e.error_box.object
    e.source.value = "power law"
    assert not e.error_box.visible and e.settings.problem == views.power_law_spec(1.5, 3, 60)
    e._on_monte_carlo()
    run = Run.build(PROBLEM, alpha=0.5, beta=-0.3, batch=4, steps=300,
                    record=Record.log(views.MC_CHECKPOINTS))
    rep = validate(run, views.MC_RUNS, 0)
    assert e.values["verdict"] == rep.verdict
    assert np.array_equal(e.band_src.data["mean"], rep.mean[rep.steps >= 1])
