"""The recursion kernel split over threads (``sgdyn.theory.recursion``, ``theory.spin``) against
curves stored from the one-thread kernel (commit c8f2e58, before the split): the same loss and
drive to 1e-12 relative at every recorded step, the guard stopping at the same step.

The stored curves are written by ``python tests/theory/test_recursion_threads.py --write``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

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
    monkeypatch.setenv("SGDYN_RECURSION_THREADS", str(team))
    for name, m in zip(cases(), map(moments, cases().values())):
        np.testing.assert_array_equal(m.steps, STORE[f"{name}/steps"], err_msg=name)
        np.testing.assert_array_equal([m.completed, m.stopped], STORE[f"{name}/stopped"],
                                      err_msg=name)
        np.testing.assert_allclose(m.loss, STORE[f"{name}/loss"], rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(m.drive, STORE[f"{name}/drive"], rtol=1e-12, atol=0,
                                   err_msg=name)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    np.savez_compressed(STORED, **curves())
