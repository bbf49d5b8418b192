"""Progress bars: shown (tqdm.auto) for long computations, after a delay, and off at every scope."""
import numpy as np
import pytest

from sgdyn import simulate
from sgdyn.theory import progress
from sgdyn.theory.horizon import final_losses
from sgdyn.theory.problem import Problem

P = Problem.power_law(1.5, 3.0, 20)


@pytest.fixture
def instant(monkeypatch):
    """Bars appear at once (no 2 s delay) and bars are on, whatever the environment says."""
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.delenv("SGDYN_PROGRESS", raising=False)
    progress.set_enabled(None)
    yield
    progress.set_enabled(None)


def test_bar_appears_after_its_delay_and_counts(instant, capsys):
    with progress.Bar(10, "demo", "pt", delay=0.0) as bar:
        bar(4)
        bar.update(6)
        assert bar.visible and bar.done == 10
    assert "demo" in capsys.readouterr().err
    with progress.Bar(10, "late", delay=60.0) as bar:
        bar(10)
        assert not bar.visible                # a short computation prints nothing


@pytest.mark.parametrize("switch", ["call", "block", "session", "environment"])
def test_every_way_to_turn_bars_off(instant, capsys, monkeypatch, switch):
    kw = {}
    if switch == "call":
        kw = {"progress": False}
    elif switch == "session":
        progress.set_enabled(False)
    elif switch == "environment":
        monkeypatch.setenv("SGDYN_PROGRESS", "0")
    with progress.enabled(False if switch == "block" else None):
        tr = simulate.run(P, 0.2, 0.5, 2, 20, 64, 1, **kw)
    assert tr.mean.size == 21 and capsys.readouterr().err == ""
    assert progress.is_enabled() == (switch not in ("session", "environment"))


def test_simulate_shows_a_bar_by_default(instant, capsys):
    simulate.run(P, 0.2, 0.5, 2, 20, 64, 1)
    err = capsys.readouterr().err
    assert "simulate" in err and "64/64" in err


def test_a_callable_receives_the_work_done(instant, capsys):
    seen = []
    A = np.linspace(0.05, 0.3, 300)
    L = final_losses(P, A, np.zeros_like(A), 2, 30, progress=seen.append)
    assert sum(seen) == A.size and len(seen) > 1 and np.all(np.isfinite(L))
    assert capsys.readouterr().err == ""                  # a callback draws no bar itself
    # chunking changes no number
    np.testing.assert_array_equal(L, [final_losses(P, a, 0.0, 2, 30, progress=False) for a in A])


def test_bad_progress_argument_names_it():
    with pytest.raises(ValueError, match="progress must be None or a callable"):
        progress.bar(3, 10)
    with pytest.raises(ValueError, match="flag must be True, False or None"):
        progress.set_enabled("yes")


@pytest.mark.parametrize("flags, shown", [([], True), (["--no-progress"], False), (["--quiet"], False)])
def test_command_line_bars_on_a_terminal_only_unless_turned_off(instant, capsys, monkeypatch,
                                                                  flags, shown):
    import sys

    from sgdyn.cli import main
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    lead = [f for f in flags if f == "--no-progress"]
    rest = [f for f in flags if f != "--no-progress"]
    argv = lead + ["simulate", "--problem", "powerlaw:nu=1.5,kappa=1,n=10", "--alpha", "0.2",
                   "--batch", "2", "--steps", "10", "--runs", "64"] + rest
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert ("simulate" in err) == shown
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)       # piped: never a bar
    assert main(argv[len(lead):]) == 0 and capsys.readouterr().err == ""
