"""The recursion kernel split over threads (``sgdyn.theory.recursion``, ``theory.spin``) against
curves stored from the one-thread kernel (commit c8f2e58, before the split): the same loss and
drive to 1e-12 relative at every recorded step, the guard stopping at the same step. Only the
order of the sums over modes differs; at beta = 0.99 the rounding differences that makes grow
about linearly in t (2.4e-13 at step 1000), elsewhere they stay near 1e-14.

The stored curves are written by ``python tests/theory/test_recursion_threads.py --write``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from sgdyn.theory import recursion, spin
from sgdyn.theory.dynamics import moments
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.run import Run
from sgdyn.theory.schedules import cosine, double, linear, warmup

STORED = Path(__file__).parent / "data" / "recursion_threads.npz"
N = 257                 # odd: the slices of two and three threads are unequal
PL = Problem.power_law(1.5, 3.0, N)
NOISY = Problem.power_law_continuum(1.5, 2.0, 5000, groups=150, exact=40, label_noise=0.3)


def cases() -> dict:
    """name -> Run: both signs of momentum near 1, every state dimension, a preconditioner,
    multiplicities with label noise, a schedule over several chunks, and a divergent run."""
    every = Record.every(3)
    return {
        "heavy-ball-0.99": Run.build(PL, "heavy-ball", alpha=0.01, beta=0.99, batch=2,
                                     steps=1000, record=every),
        "heavy-ball--0.9": Run.build(PL, "heavy-ball", alpha=0.05, beta=-0.9, batch=3,
                                     steps=1500, record=every),
        "sgd": Run.build(PL, "sgd", alpha=0.5, batch=1, steps=1500, record=every),
        "ema-heavy-ball": Run.build(PL, "ema-heavy-ball", alpha=0.2, beta=0.6, batch=2,
                                    steps=1500, record=every),
        "nesterov-rademacher": Run.build(PL, "nesterov", alpha=0.1, beta=0.8, batch=2, steps=900,
                                         noise=NoiseModel(1.0, -2.0), record=every),
        "preconditioned": Run.build(PL, "preconditioned-heavy-ball", alpha=0.05, beta=0.5,
                                    batch=4, steps=900, record=every),
        "noise-multiplicity": Run.build(NOISY, "heavy-ball", alpha=0.2, beta=0.7, batch=2,
                                        steps=1500, record=every),
        "schedule": Run.build(PL, "heavy-ball", alpha=warmup(50) + cosine(0.4, floor=0.01),
                              beta=linear(-0.3, 0.9), batch=double(2, milestones=[300]),
                              steps=1000, record=Record.log(80)),
        "divergent": Run.build(PL, "heavy-ball", alpha=0.9, beta=0.5, batch=1, steps=5000),
    }


def curves() -> dict:
    out = {}
    for name, run in cases().items():
        m = moments(run)
        out[f"{name}/steps"], out[f"{name}/loss"], out[f"{name}/drive"] = m.steps, m.loss, m.drive
        out[f"{name}/stopped"] = np.array([m.completed, m.stopped], dtype=np.int64)
    return out


STORE = np.load(STORED)


@pytest.mark.parametrize("team", [1, 2, 3])
def test_every_team_size_gives_the_stored_curves(monkeypatch, team):
    """Three threads on the 2-core CI machine: oversubscribed, the waits yield their core."""
    monkeypatch.setenv("SGDYN_RECURSION_THREADS", str(team))
    monkeypatch.setattr(recursion, "CHUNK", 97)     # the schedule in chunks, one team each
    for name, m in zip(cases(), map(moments, cases().values())):
        np.testing.assert_array_equal(m.steps, STORE[f"{name}/steps"], err_msg=name)
        np.testing.assert_array_equal([m.completed, m.stopped], STORE[f"{name}/stopped"],
                                      err_msg=name)
        np.testing.assert_allclose(m.loss, STORE[f"{name}/loss"], rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(m.drive, STORE[f"{name}/drive"], rtol=1e-12, atol=0,
                                   err_msg=name)


def test_the_team_size_follows_the_modes_and_the_variable(monkeypatch):
    monkeypatch.delenv("SGDYN_RECURSION_THREADS", raising=False)
    assert recursion.team_size(2 * recursion.MODES_PER_THREAD - 1) == 1
    assert recursion.running_elsewhere() >= 0
    big = recursion.team_size(10 ** 7)
    usable = min(len(os.sched_getaffinity(0)), numba.get_num_threads())
    assert 1 <= big <= usable
    monkeypatch.setattr(recursion, "running_elsewhere", lambda: 0)
    assert recursion.team_size(10 ** 7) == usable
    monkeypatch.setattr(recursion, "running_elsewhere", lambda: 99)
    assert recursion.team_size(10 ** 7) == 1
    monkeypatch.setenv("SGDYN_RECURSION_THREADS", "5")
    assert recursion.team_size(10) == 5
    for bad in ("0", "two", ""):
        monkeypatch.setenv("SGDYN_RECURSION_THREADS", bad)
        with pytest.raises(ValueError, match="SGDYN_RECURSION_THREADS"):
            recursion.team_size(10)


@numba.njit(nogil=True)
def _fails_in_thread_one(x, lo, hi, tid, team, counts, parts):
    if tid == 1:
        raise FloatingPointError("member one failed")
    total = 0.0
    for step in range(x.size):
        total += spin.reduce(counts, parts, tid, team, step, x[step], 0.0)[0]
    return total


def test_a_failing_thread_releases_the_others_and_its_error_is_raised():
    with pytest.raises(FloatingPointError, match="member one failed"):
        recursion.run_team(_fails_in_thread_one, 3, (np.ones(1000),))


@numba.njit(nogil=True)
def _slice_sums(x, steps, lo, hi, tid, team, counts, parts):
    total = np.zeros(2)
    for step in range(steps):
        a, b = spin.reduce(counts, parts, tid, team, step, (step + 1.0) * x[lo:hi].sum(), 1.0)
        total += np.array([a, b])
    return total


@pytest.mark.parametrize("team", [2, 3])
def test_the_slices_cover_every_mode_once_and_every_step_sums_the_team(team):
    x = np.arange(1.0, 102.0)           # 101 modes: slices cut at multiples of 8, the last short
    got = recursion.run_team(_slice_sums, team, (x, 200))
    np.testing.assert_array_equal(got, [x.sum() * 200 * 201 / 2, 200.0 * team])


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    np.savez_compressed(STORED, **curves())
