"""Every bad, absurd or extreme input in the table gets one clear line and exit code 2.

The cases live in ``bad_inputs.py``; each runs in-process through ``sgdyn.cli.main`` (the same
code path as the console script, less the process start) with every warning turned into an
error, so a RuntimeWarning on the way to the message fails the case too."""
from __future__ import annotations

import io
import os
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from sgdyn.cli import main

from bad_inputs import CASES, write_files


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad")
    write_files(path)
    return path


def _run(argv, folder):
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(folder)
    try:
        with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
            warnings.simplefilter("error")
            code = main(argv)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def test_the_table_is_large_and_has_no_repeats():
    assert len(CASES) >= 150
    keys = [tuple(argv) for argv, _ in CASES]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(a)[:90] for a, _ in CASES])
def test_bad_input_is_one_line_naming_the_argument(argv, fragment, folder):
    code, out, err = _run(argv, folder)
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert out == "", out[:500]
    assert len(lines) == 1 and lines[0].startswith("sgdyn: error: "), err[-2000:]
    assert "Traceback" not in err
    assert fragment.lower() in lines[0].lower(), lines[0]


def test_top_level_help_starts_with_a_whole_sentence():
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    text = out.getvalue()
    description = text.split("\n\n")[1]           # after the usage block
    first = description.split(". ")[0]
    assert first.startswith("sgdyn: the expected loss dynamics") and "\n\n" not in description
    assert description.rstrip().endswith("."), description


# The Python API: the same classes of input, as calls, each a ValueError naming the argument.
def _api_cases():
    from sgdyn.theory import Problem
    from sgdyn.theory import Run, solve
    from sgdyn.theory.stability import asymptotic_rate, critical_learning_rate
    from sgdyn.simulate import run as simulate
    from sgdyn.simulate.adaptive import simulate_adaptive
    from sgdyn.simulate.adaptive_check import check_adaptive
    from sgdyn.theory.batching import loss_along_schedules

    p = Problem.power_law(nu=1.5, kappa=1.0, n=10)
    return [
        (lambda: Problem.parse(None), "problem"),
        (lambda: Problem.from_file(123), "path"),
        (lambda: Problem.power_law(nu=1.5, kappa=1.0, n=10**12), "n"),
        (lambda: Problem.power_law_continuum(nu=1.5, kappa=1.0, n=10**6, groups=10**10), "groups"),
        (lambda: Problem(eigenvalues=[1.0, 1j], initial=[1.0, 1.0]), "eigenvalues"),
        (lambda: Problem(eigenvalues=[True, False], initial=[1.0, 1.0]), "eigenvalues"),
        (lambda: Problem(eigenvalues=["a", "b"], initial=[1.0, 1.0]), "eigenvalues"),
        (lambda: Problem(eigenvalues=[1.0, 0.5], initial=[1.0, 1.0], label_noise=[0.1, 0.2]),
         "label_noise"),
        (lambda: Problem(eigenvalues=[1.0, -0.5], initial=[1.0, 1.0]), "eigenvalues"),
        (lambda: Problem(eigenvalues=[1.0, 0.5], initial=[1.0]), "initial"),
        (lambda: Problem.from_data([["a", "b"], ["c", "d"]], [1.0, 2.0]), "X"),
        (lambda: Problem.from_data(np.zeros((4, 2)), np.zeros(3)), "y"),
        (lambda: Problem.from_rows(np.ones((3, 2)) * np.nan, np.zeros(3)), "X"),
        (lambda: Problem.from_rows(np.ones((3, 2), dtype=bool), np.zeros(3)), "X"),
        (lambda: Problem.from_rows(np.ones((3, 2)), np.array(["a", "b", "c"])), "y"),
        (lambda: critical_learning_rate(p, batch=0), "batch"),
        (lambda: critical_learning_rate(p, 1.0, batch=2), "beta"),
        (lambda: critical_learning_rate(p, float("nan"), batch=2), "beta"),
        (lambda: asymptotic_rate(p, 0.1, 0.5, 0), "batch"),
        (lambda: asymptotic_rate(p, float("inf"), 0.5, 2), "alpha"),
        (lambda: Run.build(p, alpha=-0.1, batch=2, steps=10), "alpha"),
        (lambda: solve(Run.build(p, alpha=0.1, batch=2, steps=10**13)), "steps"),
        (lambda: Run.build(p, alpha=0.1, batch=2.5, steps=10), "batch"),
        (lambda: Run.build(p, alpha=0.1, batch=2, steps=10, params={"bogus": 1}), "bogus"),
        (lambda: solve(Run.build(p, alpha=0.1, batch=2, steps=10), route="bogus"), "route"),
        (lambda: simulate(Run.build(p, alpha=0.1, batch=2, steps=10), 0, 0), "runs"),
        (lambda: simulate(Run.build(p, alpha=0.1, batch=2, steps=10**6), 10**8, 0), "runs"),
        (lambda: simulate(Run.build(p, alpha=0.1, batch=2, steps=10), 4, -1), "seed"),
        (lambda: simulate(Run.build(p, alpha=0.1, batch=2, steps=10), 4, 1.5), "seed"),
        (lambda: simulate(Run.build(p, alpha=0.1, batch=2, steps=10), 4, 0, backend="tpu"),
         "backend"),
        # schedules: wrong length, non-finite, |beta_t| >= 1, fractional batch, unknown shape
        (lambda: Run.build(p, alpha=np.full(5, 0.1), batch=2, steps=10), "alpha"),
        (lambda: Run.build(p, alpha=[0.1] * 9 + [float("nan")], batch=2, steps=10), "alpha"),
        (lambda: Run.build(p, alpha=0.1, beta="linear(0.5,1.5)", batch=2, steps=10), "beta"),
        (lambda: Run.build(p, alpha=0.1, batch=np.full(10, 2.5), steps=10), "batch"),
        (lambda: Run.build(p, alpha="bogus(1)", batch=2, steps=10), "alpha"),
        (lambda: simulate_adaptive(p, 0.1, 3, 4, 0, adaptive=False, schedule=np.full((3, 3), 2)),
         "schedule"),
        (lambda: loss_along_schedules(p, 0.1, [[2.5, 2.0]]), "schedules"),
        (lambda: check_adaptive(p, simulate_adaptive(p, 0.1, 3, 4, 0, adaptive=False)), "sim"),
    ]


@pytest.mark.parametrize("index", range(38))
def test_bad_input_in_python_is_a_value_error_naming_the_argument(index):
    cases = _api_cases()
    call, fragment = cases[index]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            call()
    assert fragment.lower() in str(info.value).lower(), str(info.value)


def test_the_python_table_is_all_run():
    assert len(_api_cases()) == 38
