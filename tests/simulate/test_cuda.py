"""The CUDA backend (``simulate.cuda``) under numba's CUDA simulator: CI has no GPU.

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is imported, so ``cudasim_checks.py`` runs the
kernels in a subprocess (once per test session, ~20 s: the simulator runs each CUDA thread as a
Python thread, so the sizes are tiny) and prints JSON; the assertions are here.

Tolerances: the SE theory is exact in expectation for Gaussian and Rademacher features, so
``(mean - theory) / stderr`` is a standard normal deviate at each recorded step and 4 bounds it with
probability 1 - 6e-5; likewise the two-sample deviate against the CPU backend (independent draws).
On data rows the exact finite-data route plays the theory's part (exact in expectation for i.i.d.
batches and batches without replacement, the ``--data-size`` factor); shuffled epochs have no
theory and are checked against the CPU backend.
The on-device reduction is compared with numpy on the same data: means and standard errors to
float64 rounding of sums of a few hundred terms (1e-9 relative is ample), quantiles within the
sketch's stated resolution (one log-spaced bin).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba.cuda.random import (init_xoroshiro128p_states_cpu, xoroshiro128p_dtype,
                               xoroshiro128p_next, xoroshiro128p_normal_float64)

from sgdyn import simulate
import sgdyn.simulate.cuda as cuda_backend
from sgdyn.simulate.cpu import simulate_cpu
from sgdyn.simulate.run import make_spec
from sgdyn.simulate.spec import SimulationSpec
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER
from sgdyn.theory.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
NOISE = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}


def _cudasim(*argv):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("cudasim_checks.py")), *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def sim():
    return _cudasim()


def _arrays(tr):
    return {k: np.asarray(v, dtype=np.float64) if isinstance(v, list) else v for k, v in tr.items()}


def _case(sim, name):
    kw = dict(sim["cases"][name])
    return Problem.from_arrays(**kw.pop("problem")), kw


def _theory(problem, kw, noise=None):
    return loss_curve(problem, kw["alpha"], kw["beta"], kw["batch"], kw["steps"],
                      method=kw["method"], noise=noise or NOISE[kw["features"]]).loss


@pytest.mark.parametrize("name", ["gaussian", "gaussian_per_sample", "nesterov_gaussian", "rademacher"])
def test_agrees_with_exact_theory(sim, name):
    problem, kw = _case(sim, name)
    tr = _arrays(sim[name])
    th = _theory(problem, kw)[tr["steps"].astype(int)]
    assert tr["backend"] == "cuda" and tr["diverged_runs"] == 0
    assert np.all(tr["finite_runs"] == kw["runs"])
    assert tr["stderr"][0] == 0.0 and tr["mean"][0] == pytest.approx(th[0], rel=1e-14)
    z = (tr["mean"][1:] - th[1:]) / tr["stderr"][1:]
    assert np.abs(z).max() < 4.0
    floor = 0.5 * problem.label_noise          # the loss really moved: not a vacuous comparison
    assert th[-1] - floor < 0.1 * (th[0] - floor)
    q = tr["quantiles"]
    assert np.all(np.diff(q, axis=0) >= 0) and np.all(q[:, 0] == pytest.approx(th[0], rel=1e-14))


@pytest.mark.parametrize("name", ["qhm", "ema", "schedule", "user", "sgd", "nesterov-pytorch",
                                  "preconditioned-sgd", "preconditioned-heavy-ball"])
def test_described_runs_agree_with_the_theory(sim, name):
    """Methods other than heavy ball (a parameter, a 3-dimensional state, update equations of the
    user's, a spectral preconditioner) and schedules of alpha, beta and the batch: the kernel runs
    the described method."""
    _check_described_run(sim, name)


@pytest.mark.slow
def test_every_shipped_method_at_three_settings_agrees_with_the_theory():
    """The CUDA twin of tests/simulate/test_methods_mc.py: every shipped method at three (alpha,
    beta, batch) settings, simulated as itself (24 runs of the kernel under the simulator: minutes)."""
    sim = _cudasim("methods")
    assert sorted(sim["run_cases"]) == sorted(sim["run_case_args"]) and len(sim["run_cases"]) >= 24
    for name in sim["run_cases"]:
        _check_described_run(sim, name, moved=0.5)      # test_methods_mc.py's criterion


def _check_described_run(sim, name, moved=0.3):
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    kw = dict(sim["run_case_args"][name])
    problem = Problem.from_arrays(**kw.pop("problem"))
    runs, every = kw.pop("runs"), kw.pop("every")
    kw.pop("seed")
    th = solve(Run.build(problem, record=Record.every(every), **kw)).loss
    tr = _arrays(sim["run_cases"][name])
    assert tr["backend"] == "cuda" and tr["diverged_runs"] == 0 and np.all(tr["finite_runs"] == runs)
    assert tr["mean"][0] == pytest.approx(th[0], rel=1e-14)
    z = (tr["mean"][1:] - th[1:]) / tr["stderr"][1:]
    assert np.abs(z).max() < 4.0
    # the loss really moved: not a vacuous comparison
    assert th[-1] - 0.5 * problem.label_noise < moved * (th[0] - 0.5 * problem.label_noise)


def test_rademacher_is_not_gaussian(sim):
    # the theory check above can fail: the Gaussian prediction is many standard errors away
    problem, kw = _case(sim, "rademacher")
    tr = _arrays(sim["rademacher"])
    th = _theory(problem, kw, GAUSSIAN)[tr["steps"].astype(int)]
    assert np.abs((tr["mean"][1:] - th[1:]) / tr["stderr"][1:]).max() > 20.0


@pytest.mark.parametrize("name", ["gaussian", "gaussian_per_sample", "nesterov_gaussian",
                                  "rademacher", "small"])
def test_agrees_with_cpu_backend(sim, name):
    problem, kw = _case(sim, name)
    gpu = _arrays(sim[name])
    kw = {**kw, "runs": 4000, "seed": kw["seed"] + 1000}     # independent draws, more runs
    cpu = simulate_cpu(make_spec(problem, **kw))
    assert np.array_equal(cpu.steps, gpu["steps"]) and cpu.diverged_runs == gpu["diverged_runs"] == 0
    z = (gpu["mean"][1:] - cpu.mean[1:]) / np.hypot(gpu["stderr"][1:], cpu.stderr[1:])
    assert np.abs(z).max() < 4.0
    assert gpu["mean"][0] == pytest.approx(cpu.mean[0], rel=1e-14)


def test_divergent_runs_are_counted_and_leave_the_statistics(sim):
    tr = _arrays(sim["divergent"])
    runs = sim["cases"]["divergent"]["runs"]
    n = tr["finite_runs"]
    assert tr["diverged_runs"] == runs and n[0] == runs and n[-1] == 0
    assert np.all(np.diff(n) <= 0) and np.any((n > 0) & (n < runs))   # runs stop one by one
    live = n > 0
    for key in ("mean", "stderr"):
        assert np.all(np.isfinite(tr[key][live])) and np.all(np.isinf(tr[key][~live]))
    assert np.all(np.isfinite(tr["quantiles"][:, live])) and np.all(np.isinf(tr["quantiles"][:, ~live]))
    assert np.all(tr["mean"][live] < 1e200) and not np.any(np.isnan(tr["quantiles"]))


def test_same_seed_same_numbers_and_idle_threads_ignored(sim):
    a, b, c = (_arrays(sim[k]) for k in ("small", "small_again", "small_other_seed"))
    for key in ("mean", "stderr", "quantiles", "finite_runs"):
        assert np.array_equal(a[key], b[key])
    assert not np.any(a["mean"][1:] == c["mean"][1:])
    assert np.all(a["finite_runs"] == sim["cases"]["small"]["runs"])   # 50 runs in a 128-thread block


def test_device_reduction_matches_numpy_on_the_same_data(sim):
    rec = sim["record"]
    losses, live = np.array(rec["losses"]), np.array(rec["live"])
    levels, res = np.array(rec["levels"]), rec["resolution"]
    quantiles = np.array(rec["quantiles"])
    assert res == pytest.approx(10 ** (1 / 64) - 1)
    for j in range(losses.shape[0]):
        x = losses[j][live[j]]
        assert rec["finite"][j] == x.size
        if x.size == 0:
            assert np.isinf(rec["mean"][j]) and np.isinf(rec["stderr"][j])
            assert np.all(np.isinf(quantiles[:, j]))
            continue
        assert rec["mean"][j] == pytest.approx(x.mean(), rel=1e-12)
        if x.size == 1:
            assert np.isinf(rec["stderr"][j])
        else:
            scale = x.max()             # numpy would overflow squaring losses near 1e190
            std = (x / scale).std(ddof=1) * scale
            assert rec["stderr"][j] == pytest.approx(std / np.sqrt(x.size), rel=1e-9)
        # the sketch's read-off and the sample quantile at rank ceil(p n) share a bin
        exact = np.quantile(x, levels, method="inverted_cdf")
        ratio = quantiles[:, j] / exact
        assert np.all((ratio <= 1 + res) & (ratio >= 1 / (1 + res))), (j, ratio)
        assert quantiles[0, j] == x.min()
        assert quantiles[-1, j] == pytest.approx(x.max(), rel=1e-12)     # 10^log10(max)


def test_generators_match_numba_cuda_random(sim):
    from sgdyn.simulate.cuda_kernels import generator_states
    for runs, seed in ((300, 12345), (3, 2 ** 64 - 1), (sim["draws"]["runs"], sim["draws"]["seed"])):
        lib = np.empty(runs, dtype=xoroshiro128p_dtype)
        init_xoroshiro128p_states_cpu(lib, np.uint64(seed), np.uint64(0))
        ours = generator_states(runs, seed)
        assert np.array_equal(ours[:, 0], lib["s0"]) and np.array_equal(ours[:, 1], lib["s1"])
    d = sim["draws"]
    draws = [[xoroshiro128p_next(lib, r) for _ in range(d["n"])] for r in range(d["runs"])]
    assert [[int(x) for x in row] for row in draws] == d["draws"]
    # same uniforms; the library takes log(u1) in float32 (on the CPU too), ours in float64: they
    # differ by its float32 rounding, ~6e-8 relative
    normals = [[xoroshiro128p_normal_float64(lib, r) for _ in range(d["n"])] for r in range(d["runs"])]
    np.testing.assert_allclose(d["normals"], normals, rtol=1e-6, atol=0)


def _spec(**changes):
    spec = make_spec(Problem.from_arrays([1.0, 1.0], [1.0, 1.0]), 0.1, 0.0, 1, 2, 4, 0)
    return dataclasses.replace(spec, **changes)


def test_without_gpu_or_extra_a_clear_error(monkeypatch):
    from sgdyn.simulate import cuda_kernels
    monkeypatch.setattr(cuda_kernels, "available", lambda: False)
    with pytest.raises(ValueError, match="backend 'cuda' needs an NVIDIA GPU.*no usable GPU"):
        cuda_backend.simulate_cuda(_spec())
    with pytest.raises(ValueError, match="backend 'cuda' needs"):
        simulate.run(Problem.from_arrays([1.0], [1.0]), 0.1, 0.0, 1, 2, 4, 0, backend="cuda")
    monkeypatch.delattr(simulate, "cuda_kernels")               # numba.cuda cannot be imported
    monkeypatch.setitem(sys.modules, "sgdyn.simulate.cuda_kernels", None)
    with pytest.raises(ValueError, match="backend 'cuda' needs .*importing numba.cuda failed"):
        cuda_backend.simulate_cuda(_spec())


def _data_case(sim, name):
    """The data problem, its run description and the CUDA statistics of a DATA_CASES entry."""
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    from sgdyn.theory.sampling import Sampling
    d = sim["data_rows"]
    p = Problem.from_rows(np.array(d["X"]), np.array(d["y"]), w0=np.array(d["w0"]))
    kw = d["cases"][name]
    smp = Sampling.iid() if kw["sampling"] == "iid" else Sampling(kw["sampling"], p.data.n)
    r = Run.build(p, "heavy-ball", alpha=0.3, beta=0.4, batch=kw["batch"], steps=kw["steps"],
                  sampling=smp, record=Record.every(kw["every"]))
    return r, kw, _arrays(sim[name])


def _two_sample_z(gpu, cpu):
    return (gpu["mean"][1:] - cpu.mean[1:]) / np.hypot(gpu["stderr"][1:], cpu.stderr[1:])


@pytest.mark.parametrize("name", ["data_iid", "data_without_replacement"])
def test_data_rows_agree_with_the_exact_route_and_the_cpu_backend(sim, name):
    """Rows i.i.d. and without replacement within a batch: the exact finite-data route (its batch
    factor is the --data-size theory's (n - b) / ((n - 1) b)) and the CPU backend (independent
    draws, more runs); without replacement at b = 8 of 12 the i.i.d. theory is rejected."""
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.sampling import Sampling
    r, kw, gpu = _data_case(sim, name)
    assert gpu["backend"] == "cuda" and gpu["diverged_runs"] == 0
    th = solve(r, "exact-data").loss
    assert gpu["mean"][0] == pytest.approx(th[0], rel=1e-14)
    assert np.abs((gpu["mean"][1:] - th[1:]) / gpu["stderr"][1:]).max() < 4.0
    cpu = simulate.run(r, 4000, kw["seed"] + 1000, progress=False)
    assert np.abs(_two_sample_z(gpu, cpu)).max() < 4.0
    if kw["sampling"] == "without-replacement":
        iid = solve(r.replace(sampling=Sampling.iid()), "exact-data").loss
        assert np.abs((gpu["mean"][1:] - iid[1:]) / gpu["stderr"][1:]).max() > 4.0   # fails it


def test_shuffled_epochs_agree_with_the_cpu_backend(sim):
    """Shuffled epochs have no exact theory: the CUDA statistics against the CPU backend's, and
    below the without-replacement theory (each row once per epoch: less noise)."""
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.sampling import Sampling
    r, kw, gpu = _data_case(sim, "data_epochs")
    cpu = simulate.run(r, 4000, kw["seed"] + 1000, progress=False)
    assert gpu["diverged_runs"] == 0 and np.abs(_two_sample_z(gpu, cpu)).max() < 4.0
    wor = solve(r.replace(sampling=Sampling.without_replacement(r.problem.data.n)), "exact-data").loss
    assert np.all(gpu["mean"][1:] < wor[1:])


@pytest.mark.parametrize("name", ["data_full_batch_without_replacement", "data_full_batch_epochs"])
def test_the_whole_data_set_as_a_batch_is_gradient_descent(sim, name):
    """b = n: every run takes each row exactly once a step (the permutations are permutations),
    so every run is the same gradient descent; only the order of the row sums differs."""
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.sampling import Sampling
    r, _, gpu = _data_case(sim, name)
    gd = solve(r.replace(sampling=Sampling.without_replacement(r.problem.data.n)), "exact-data").loss
    np.testing.assert_allclose(gpu["mean"], gd, rtol=1e-12)
    assert np.all(gpu["stderr"] <= 1e-12 * gpu["mean"])


def test_features_other_than_the_known_laws_are_refused():
    with pytest.raises(ValueError, match="features must be one of .* or 'data'"):
        cuda_backend.simulate_cuda(_spec(features="uniform"))


def _synthetic_case(sim, name):
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    from sgdyn.theory.sampling import Sampling
    kw = sim["synthetic_cases"][name]
    r = Run.build(Problem.from_arrays(**sim["synthetic_problem"]), "heavy-ball", alpha=0.3, beta=0.4,
                  batch=kw["batch"], steps=kw["steps"], sampling=Sampling(kw["sampling"], 6),
                  record=Record.every(kw["every"]))
    return r, kw, _arrays(sim[name])


def test_a_whole_synthetic_orthogonal_data_set_as_the_batch_is_the_theory_s_gradient_descent(sim):
    """Each thread orthonormalises its own 6 x 3 frame: with b = N every run is gradient descent
    on a data set whose spectrum is the problem's, i.e. the theory at gamma = 0, to rounding."""
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.sampling import Sampling
    r, _, gpu = _synthetic_case(sim, "synthetic_full_batch")
    gd = solve(r.replace(sampling=Sampling.without_replacement(6))).loss
    np.testing.assert_allclose(gpu["mean"], gd, rtol=1e-12)
    assert np.all(gpu["stderr"] <= 1e-12 * gpu["mean"])


@pytest.mark.parametrize("name,checkpoints", [("synthetic_orthogonal", 4),
                                              ("synthetic_gaussian", 1)])
def test_synthetic_data_sets_per_run_match_the_cpu_backend(sim, name, checkpoints):
    """The same law of data sets and batches on both backends (independent generators): two-sample
    z over the checkpoints. 6 Gaussian rows of 3 features are sometimes ill-conditioned enough to
    make alpha = 0.3 unstable, so their loss is heavy-tailed after a few steps: only t = 4 there."""
    r, kw, gpu = _synthetic_case(sim, name)
    cpu = simulate.run(r, 20000, 5, synthetic=kw["synthetic"])
    assert gpu["finite_runs"][-1] == kw["runs"] and gpu["mean"][0] == pytest.approx(cpu.mean[0])
    sl = slice(1, 1 + checkpoints)
    z = (gpu["mean"][sl] - cpu.mean[sl]) / np.hypot(gpu["stderr"][sl], cpu.stderr[sl])
    assert np.abs(z).max() < 4
