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


def test_cli_serves_on_the_loopback_and_stops_by_itself(capsys):
    pytest.importorskip("panel", reason="the optional extra 'explore' (panel) is not installed")
    from sgdyn.cli import main
    assert main(["explore", "--problem", "powerlaw:nu=1.5,kappa=3,n=20", "--no-browser",
                 "--stop-after", "0.5"]) == 0
    assert "serving http://127.0.0.1:" in capsys.readouterr().out


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
    e.method.value = "sgd"                    # no momentum: beta 0, and a click keeps it
    e.beta.value = 0.0
    e._on_tap(Tap(model=e.region_fig, x=0.4, y=0.6))
    assert (e.settings.alpha, e.settings.beta) == (0.4, 0.0) and not e.errors
    e.method.value = "heavy-ball"
    e.alpha.value, e.beta.value = 0.5, -0.3
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


# -- the served page in a real browser ---------------------------------------------------------
_DEEP = """
function deep(root, sel, out) {
  root.querySelectorAll(sel).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deep(e.shadowRoot, sel, out); });
  return out;
}
"""
READOUT_JS = _DEEP + """
const out = {};
deep(document, '[data-key]', []).forEach(e => { out[e.dataset.key] = e.dataset.value; });
return out;"""
INPUT_JS = _DEEP + """
for (const l of deep(document, 'label', [])) {
  if (l.textContent.trim().startsWith(arguments[0])) {
    const i = l.getRootNode().querySelector('input');
    if (i) return i;
  }
}
return null;"""
TEXT_JS = _DEEP + """
return deep(document, '[data-error]', []).map(e => e.textContent).join(' | ');"""


def _browser():
    """A headless Chromium driven by chromedriver, or a skip that says what is missing."""
    import shutil
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (optional extra 'explore')")
    pytest.importorskip("panel", reason="the optional extra 'explore' (panel) is not installed")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver) to run the browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1700,1250"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


def _wait(driver, predicate, what: str, timeout: float = 60.0):
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = driver.execute_script(READOUT_JS)
        if predicate(got):
            return got
        time.sleep(0.1)
    raise AssertionError(f"the page did not show {what} within {timeout:g} s; it shows {got}")


def test_served_page_in_a_real_browser(tmp_path):
    import os
    import threading
    import time
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from sgdyn.explore import free_port, serve
    driver = _browser()
    start = Settings(problem="powerlaw:nu=1.5,kappa=3,n=40", alpha=0.3, beta=0.2, batch=4,
                     steps=400)
    port = free_port("127.0.0.1")
    server = serve(start, port=port, address="127.0.0.1", threaded=True)
    guard = threading.Timer(120.0, server.stop)      # stops by itself, whatever the test does
    guard.start()
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        _wait(driver, lambda v: v.get("region_grid") == "80 x 41", "the fine region")
        # move the alpha slider (the first slider handle) to the right
        handle = driver.execute_script(_DEEP + "return deep(document, '.noUi-handle', [])[0];")
        ActionChains(driver).drag_and_drop_by_offset(handle, 40, 0).perform()
        moved = _wait(driver, lambda v: v.get("alpha") not in (None, "0.3"), "a new alpha")
        assert float(moved["alpha"]) > 0.3
        # change the batch
        box = driver.execute_script(INPUT_JS, "batch b")
        box.send_keys(Keys.END, Keys.BACKSPACE * 4, "16", Keys.ENTER)
        _wait(driver, lambda v: v.get("batch") == "16" and v.get("region_grid") == "80 x 41",
              "batch 16 with its fine region")
        # click in the region, left of the middle of its frame
        fig = driver.execute_script(_DEEP + "return deep(document, '.bk-Figure', [])[0];")
        before = driver.execute_script(READOUT_JS)
        ActionChains(driver).move_to_element_with_offset(fig, -90, 30).click().perform()
        shown = _wait(driver, lambda v: (v.get("alpha"), v.get("beta")) !=
                      (before.get("alpha"), before.get("beta")) and "final_loss" in v,
                      "the clicked point")
        # bad input shows in the page; the page lives on
        tau1 = driver.execute_script(INPUT_JS, "tau1")
        tau1.send_keys("abc", Keys.ENTER)
        end = time.monotonic() + 30
        while "tau1 must be a number" not in driver.execute_script(TEXT_JS):
            assert time.monotonic() < end, "no error message in the page"
            time.sleep(0.1)
        tau1.send_keys(Keys.END, Keys.BACKSPACE * 3, Keys.ENTER)
        shown = _wait(driver, lambda v: "final_loss" in v and v.get("region_grid") == "80 x 41"
                      and not driver.execute_script(TEXT_JS), "the page without the error")
        artefacts = os.environ.get("SGDYN_ARTEFACTS", str(tmp_path))
        os.makedirs(artefacts, exist_ok=True)
        driver.save_screenshot(os.path.join(artefacts, "explore.png"))
    finally:
        driver.quit()
        server.stop()
        guard.cancel()
    alpha, beta, batch = float(shown["alpha"]), float(shown["beta"]), int(shown["batch"])
    assert batch == 16 and 0 < alpha and -1 < beta < 1
    problem = Problem.power_law(1.5, 3, 40)
    crit = critical_learning_rate(problem, beta, batch)
    assert float(shown["alpha_crit"]) == crit.alpha_crit
    assert float(shown["final_loss"]) == loss_curve(problem, alpha, beta, batch, 400).final
    opt = optimal_rate(problem, batch)
    assert (float(shown["optimum_alpha"]), float(shown["optimum_beta"])) == (opt.alpha, opt.beta)
