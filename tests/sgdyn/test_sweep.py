"""sgdyn.sweep: grids, stores that survive interruption, and serial = LocalCluster.

Every value a sweep stores is compared with a direct call of the function it wraps (the
theory to 1e-12, see tests/theory/test_grid.py for why; everything else bit for bit), and the
Monte Carlo plumbing with the exact theory within 4 standard errors.
"""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client, LocalCluster

from sgdyn.cli import main
from sgdyn.sweep import (Field, Quantity, SweepSpec, get_quantity, monte_carlo, monte_carlo_summary,
                         open_sweep, point_seed, sweep)
from sgdyn.sweep.store import require
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities

SPEC = "powerlaw:nu=1.5,kappa=2,n=40"


def numpy_monte_carlo(problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
                      features="gaussian", every=1):
    """A small independent heavy-ball simulation (Gaussian features, eigenbasis, no label noise)."""
    assert method == "heavy-ball" and features == "gaussian" and problem.label_noise == 0
    rng = np.random.default_rng(seed)
    lam = problem.eigenvalues
    e = np.broadcast_to(np.sqrt(problem.initial), (runs, lam.size)).copy()
    v = np.zeros_like(e)
    losses = [0.5 * (e ** 2) @ lam]
    for _ in range(steps):
        x = rng.standard_normal((runs, batch, lam.size)) * np.sqrt(lam)
        g = np.einsum("rbk,rb->rk", x, np.einsum("rbk,rk->rb", x, e)) / batch
        v = beta * v - alpha * g
        e = e + v
        losses.append(0.5 * (e ** 2) @ lam)
    L = np.array(losses).T[:, ::every] if steps % every == 0 else None
    rec = np.arange(0, steps + 1, every)
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    return Trajectories(rec, L.mean(0), L.std(0, ddof=1) / np.sqrt(runs), levels,
                        np.quantile(L, levels, axis=0), np.full(rec.size, runs), 0, runs, seed, "numpy")


MC = monte_carlo(numpy_monte_carlo, name="mc")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def small_spec(quantities=("singularities", "loss"), chunk=4, **kw):
    args = dict(steps=30, batch=2)
    args.update(kw)
    return SweepSpec.build(SPEC, {"alpha": [0.1, 0.4, 0.8, 1.6], "beta": [-0.3, 0.0, 0.5]},
                           quantities, chunk=chunk, **args)


def assert_same(a: xr.Dataset, b: xr.Dataset, skip=("session",)):
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        if name not in skip:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# -- grid ----------------------------------------------------------------------------------------
def test_blocks_tile_the_grid_once_and_seeds_follow_the_point_index():
    spec = SweepSpec.build(SPEC, {"alpha": np.linspace(0.1, 1, 7), "beta": [0.0, 0.5],
                                  "batch": [1, 2, 4]}, ["singularities"], chunk=5)
    assert spec.shape == (7, 2, 3) and spec.chunk_shape == (1, 1, 3)
    count = np.zeros(spec.shape, dtype=int)
    for block in spec.blocks():
        count[block] += 1
        points = spec.points(block)
        assert len(points) == count[block].size
        for p in points:
            i = np.unravel_index(p.index, spec.shape)
            assert (p.alpha, p.beta, p.batch) == (spec.axes[0][1][i[0]], spec.axes[1][1][i[1]],
                                                  spec.axes[2][1][i[2]])
            assert p.seed == point_seed(0, p.index)
    assert (count == 1).all()
    seeds = spec.seeds()
    assert len(np.unique(seeds)) == spec.size and seeds.flat[5] == point_seed(0, 5) != point_seed(1, 5)


def test_problem_axes_build_the_problem_of_each_point():
    spec = SweepSpec.build(SPEC, {"nu": [1.2, 2.0], "n": [10, 30], "label_noise": [0.0, 0.1],
                                  "data_size": [50]}, ["singularities"], alpha=0.1)
    for p in spec.points(spec.blocks()[0]) + spec.points(spec.blocks()[-1]):
        i = np.unravel_index(p.index, spec.shape)
        nu, n, s2 = spec.axes[0][1][i[0]], spec.axes[1][1][i[1]], spec.axes[2][1][i[2]]
        want = Problem.power_law(nu, 2.0, n)
        np.testing.assert_array_equal(p.problem.eigenvalues, want.eigenvalues)
        np.testing.assert_array_equal(p.problem.initial, want.initial)
        assert (p.problem.label_noise, p.problem.data_size) == (s2, 50)


@pytest.mark.parametrize("call, match", [
    (lambda: SweepSpec.build(SPEC, {"lr": [0.1]}, ["loss"]), "lr"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1, -0.1]}, ["loss"]), "alpha"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1, 0.1]}, ["loss"]), "repeats"),
    (lambda: SweepSpec.build(SPEC, {"beta": [0.0, 1.0]}, ["loss"]), "beta"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1]}, ["loss"], chunk=0), "chunk"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1]}, ["loss"], alpha=0.2), "both"),
    (lambda: SweepSpec.build("p.json", {"nu": [1.5]}, ["loss"], alpha=0.2), "powerlaw"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1]}, []), "quantities"),
    (lambda: get_quantity("energy"), "quantity"),
])
def test_bad_specs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("spec, match", [
    (small_spec(steps=None), "steps"),
    (SweepSpec.build(SPEC, {"beta": [0.0, 0.5]}, ["singularities"], alpha=0.1, method="sgd"), "beta"),
    (SweepSpec.build(SPEC, {"batch": [2, 20]}, ["singularities"], alpha=0.1, data_size=10), "batch"),
])
def test_points_that_cannot_be_built_fail_before_any_work(tmp_path, spec, match):
    with pytest.raises(ValueError, match=match):
        sweep(spec, tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


# -- values ----------------------------------------------------------------------------------------
def test_theory_sweep_equals_the_functions_it_wraps(tmp_path):
    spec = small_spec(data_size=40)
    report = sweep(spec, tmp_path / "s.zarr")
    assert report.complete and report.computed == spec.size == 12
    ds = open_sweep(tmp_path / "s.zarr")
    assert ds.singularities_rate.dims == ("alpha", "beta") and bool(ds.done.all())
    assert set(ds.singularities_limited_by.values.ravel()) <= {"noise", "mode stability"}
    problem = Problem.parse(SPEC).replace(data_size=40)
    for a in ds.alpha.values:
        for b in ds.beta.values:
            at = dict(alpha=a, beta=b)
            s = singularities(ModeSystem.build(problem, a, b, 2))
            for f in ("rate", "noise_feedback", "z_star", "mode_radius"):
                got, want = float(ds[f"singularities_{f}"].sel(at)), getattr(s, f)
                assert got == want if np.isinf(want) else np.isclose(got, want, rtol=1e-12, atol=0)
            assert ds.singularities_limited_by.sel(at).item() == s.limited_by
            assert bool(ds.singularities_diverges.sel(at)) == s.diverges
            c = loss_curve(problem, a, b, 2, 30)
            assert float(ds.loss_final.sel(at)) == (np.inf if c.stopped_early else c.final)
            assert bool(ds.loss_diverges.sel(at)) == c.diverges
    assert bool(ds.loss_diverges.any()) and not bool(ds.loss_diverges.all())


def test_vectorised_block_equals_the_per_point_route(tmp_path):
    spec = SweepSpec.build(SPEC, {"alpha": [0.05, 0.3, 0.9], "beta": [-0.5, 0.2, 0.7],
                                  "batch": [1, 3]}, ["singularities"], tau1=1.0, tau2=0.5, chunk=7)
    per_point = dataclasses.replace(get_quantity("singularities"), block=None)
    sweep(spec, tmp_path / "a.zarr")
    sweep(spec, tmp_path / "b.zarr", quantities=[per_point])
    a, b = open_sweep(tmp_path / "a.zarr"), open_sweep(tmp_path / "b.zarr")
    for name in a.data_vars:
        if a[name].dtype.kind == "f":
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, atol=0)
        else:
            np.testing.assert_array_equal(a[name].values, b[name].values)


def test_monte_carlo_quantity_matches_the_theory_within_its_standard_error(tmp_path):
    spec = SweepSpec.build("powerlaw:nu=1.5,kappa=2,n=6", {"alpha": [0.1, 0.3], "beta": [0.0, 0.4]},
                           ["mc"], batch=2, steps=20, runs=400, seed=7)
    sweep(spec, tmp_path / "mc.zarr", quantities=[MC])
    ds = open_sweep(tmp_path / "mc.zarr")
    problem = Problem.parse("powerlaw:nu=1.5,kappa=2,n=6")
    for p in spec.points(spec.blocks()[0]):
        at = dict(alpha=p.alpha, beta=p.beta)
        theory = loss_curve(problem, p.alpha, p.beta, 2, 20).final
        assert abs(float(ds.mc_mean.sel(at)) - theory) < 4 * float(ds.mc_stderr.sel(at))
        # the stored seed is the one the point was simulated with
        traj = numpy_monte_carlo(problem, p.alpha, p.beta, 2, 20, 400, int(ds.seed.sel(at)), every=20)
        assert float(ds.mc_mean.sel(at)) == traj.mean[-1]
    assert not ds.mc_heavy_tailed.any()


def test_heavy_tails_are_flagged():
    levels = np.array([0.05, 0.5, 0.95])
    def traj(final_mean, diverged=0):
        return Trajectories(np.array([0, 10]), np.array([1.0, final_mean]), np.array([0.0, 0.1]),
                            levels, np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.5]]),
                            np.array([100, 100 - diverged]), diverged, 100, 0, "cpu")
    assert not monte_carlo_summary(traj(0.3)).heavy_tailed
    assert monte_carlo_summary(traj(0.9)).heavy_tailed          # mean above the 95 % quantile
    s = monte_carlo_summary(traj(0.3, diverged=2))
    assert s.heavy_tailed and s.diverged_runs == 2 and s.finite_runs == 98 and s.median == 0.2


# -- schedules as axes ----------------------------------------------------------------------------
SCHEDULE_PROBLEM = "powerlaw:nu=1.5,kappa=1,n=12"


def schedule_spec(chunk=2, quantities=("loss",), **kw):
    """The peak of a warm-up + cosine (a placeholder axis) against two batch schedules (an axis of
    text forms)."""
    return SweepSpec.build(SCHEDULE_PROBLEM, {"peak": [0.1, 0.2, 0.4],
                                              "batch": ["2", "double(2,every=20)"]},
                           quantities, alpha="warmup(10)+cosine({peak},floor=0.003)", beta=0.5,
                           steps=60, chunk=chunk, **kw)


def test_schedule_axes_equal_the_functions_they_wrap(tmp_path):
    """The theory bit for bit against loss_curve along the same schedule; the Monte Carlo of the
    same points within 4 standard errors of it."""
    spec = schedule_spec(quantities=("loss", "montecarlo"), runs=300, seed=5)
    assert spec.axes[1][1] == ("2", "double(2, every=20)") and spec.has_schedule
    sweep(spec, tmp_path / "s.zarr")
    ds = open_sweep(tmp_path / "s.zarr")
    assert list(ds.batch.values) == ["2", "double(2, every=20)"]
    problem = Problem.parse(SCHEDULE_PROBLEM)
    for peak in ds.peak.values:
        for batch in ds.batch.values:
            c = loss_curve(problem, f"warmup(10)+cosine({float(peak)!r},floor=0.003)", 0.5, batch, 60)
            at = dict(peak=peak, batch=batch)
            assert float(ds.loss_final.sel(at)) == c.final
            z = (ds.montecarlo_mean.sel(at) - c.final) / ds.montecarlo_stderr.sel(at)
            assert abs(float(z)) < 4
    assert len(set(ds.loss_final.values.ravel())) == 6      # six different schedules


def test_placeholders_fill_milestones_and_peaks():
    spec = SweepSpec.build(SCHEDULE_PROBLEM, {"m": [10, 30], "peak": [0.25]}, ["loss"],
                           alpha="step({peak},milestones=[{m}],factor=0.5)", steps=40)
    points = spec.points(spec.blocks()[0])
    assert [p.alpha for p in points] == ["step(0.25, milestones=[10], factor=0.5)",
                                         "step(0.25, milestones=[30], factor=0.5)"]


def test_an_interrupted_schedule_sweep_resumes_with_identical_results(tmp_path):
    spec = schedule_spec()
    q, calls = counting(limit=3)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, tmp_path / "s.zarr", quantities=[q])
    assert int(open_sweep(tmp_path / "s.zarr").done.sum()) == 2
    q, calls = counting()
    report = sweep(spec, tmp_path / "s.zarr", quantities=[q])
    assert (report.done_before, report.computed) == (2, 4) and len(calls) == 4
    sweep(spec, tmp_path / "fresh.zarr")
    assert_same(open_sweep(tmp_path / "s.zarr"), open_sweep(tmp_path / "fresh.zarr"))


@pytest.mark.parametrize("call, match", [
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1]}, ["loss"], beta="linear(0.5,{top})"), "{top}"),
    (lambda: SweepSpec.build(SPEC, {"nu": [1.5]}, ["loss"], alpha="cosine({nu})"), "rename"),
    (lambda: SweepSpec.build(SPEC, {"peak": [0.1, "x"]}, ["loss"], alpha="cosine({peak})"), "peak"),
    (lambda: SweepSpec.build(SPEC, {"alpha": ["cosine(0.1)", "bogus(1)"]}, ["loss"]), "bogus"),
    (lambda: SweepSpec.build(SPEC, {"alpha": ["cosine(0.1)", "cosine(0.1)"]}, ["loss"]), "repeats"),
    (lambda: SweepSpec.build(SPEC, {"steps": ["cosine(1)"]}, ["loss"], alpha=0.1), "steps"),
    (lambda: SweepSpec.build(SPEC, {"alpha": [0.1]}, ["loss"], batch="linear(4,"), "batch"),
])
def test_bad_schedule_specs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        call()


@pytest.mark.parametrize("spec, match", [
    (SweepSpec.build(SPEC, {"peak": [0.1, 2.0]}, ["singularities"], alpha="cosine({peak})",
                     steps=10), "needs constant alpha, beta and batch"),
    (SweepSpec.build(SPEC, {"peak": [0.1, 2.0]}, ["loss"], alpha="cosine({peak})"), "steps"),
    (SweepSpec.build(SPEC, {"peak": [0.5, 1.5]}, ["loss"], alpha=0.1, beta="linear(0.5,{peak})",
                     steps=10), "beta must lie in (-1, 1)"),
    (SweepSpec.build(SPEC, {"batch": ["double(2,every=5)"]}, ["loss"], alpha=0.1, steps=20,
                     data_size=10), "batch"),
])
def test_schedule_points_that_cannot_be_built_fail_before_any_work(tmp_path, spec, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        sweep(spec, tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_cli_schedule_sweep_equals_the_python_api(tmp_path, capsys):
    argv = ["sweep", "--problem", SCHEDULE_PROBLEM, "--alpha", "warmup(10)+cosine({peak},floor=0.003)",
            "--axis", "peak=0.1,0.2,0.4", "--axis", "batch=2;double(2,every=20)", "--beta", "0.5",
            "--steps", "60", "--quantity", "loss", "--chunk", "2", "--scheduler", "serial",
            "--store", str(tmp_path / "cli.zarr")]
    assert main(argv) == 0
    assert "6 computed now" in capsys.readouterr().out
    sweep(schedule_spec(), tmp_path / "api.zarr")
    assert_same(open_sweep(tmp_path / "cli.zarr"), open_sweep(tmp_path / "api.zarr"))


# -- resuming --------------------------------------------------------------------------------------
def counting(limit=None):
    """The loss quantity, counting its evaluations and interrupting itself after ``limit``."""
    calls = []
    base = get_quantity("loss")

    def point(p):
        if limit is not None and len(calls) == limit:
            raise KeyboardInterrupt
        calls.append(p.index)
        return base.point(p)
    return dataclasses.replace(base, point=point), calls


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path):
    spec = small_spec(quantities=("loss",), chunk=2)
    path = tmp_path / "s.zarr"
    assert spec.chunk_shape == (1, 2)                    # blocks of 2, 1, 2, 1, .. points
    q, calls = counting(limit=4)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, path, quantities=[q])
    first = open_sweep(path)
    done = first.done.values
    assert done.sum() == 3 and len(calls) == 4          # the half-done third block is not recorded
    q, calls = counting()
    report = sweep(spec, path, quantities=[q])
    assert (report.done_before, report.computed, report.session) == (3, 9, 1) and report.complete
    assert len(calls) == 9 and not set(calls) & set(np.flatnonzero(done))
    final = open_sweep(path)
    np.testing.assert_array_equal(final.session.values, np.where(done, 0, 1))
    np.testing.assert_array_equal(final.loss_final.values[done], first.loss_final.values[done])
    sweep(spec, tmp_path / "fresh.zarr")
    assert_same(final, open_sweep(tmp_path / "fresh.zarr"))
    assert sweep(spec, path).computed == 0


def test_a_store_of_another_sweep_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    sweep(small_spec(quantities=("loss",)), path)
    with pytest.raises(ValueError, match="different sweep"):
        sweep(small_spec(quantities=("loss",), steps=31), path)
    report = sweep(small_spec(quantities=("loss",), steps=31), path, overwrite=True)
    assert report.computed == 12 and open_sweep(path).attrs["sweep_spec"]["fixed"][1] == ["steps", 31]
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError, match="not a sweep store"):
        sweep(small_spec(quantities=("loss",)), tmp_path / "junk")
    with pytest.raises(ValueError, match="does not exist"):
        open_sweep(tmp_path / "nothing.zarr")


KILL_ARGS = ["--problem", "powerlaw:nu=1.5,kappa=2,n=1500", "--axis", "alpha=0.02:0.2:10",
             "--axis", "beta=0,0.3,0.6", "--quantity", "loss", "--steps", "30000", "--batch", "4",
             "--chunk", "1", "--scheduler", "serial", "--no-progress"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_command_resumes_with_identical_results(tmp_path, capsys, sig):
    path = str(tmp_path / "k.zarr")
    proc = subprocess.Popen([sys.executable, "-m", "sgdyn", "sweep", *KILL_ARGS, "--store", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = 0
    deadline = time.monotonic() + 120
    while done < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if os.path.exists(os.path.join(path, "done", ".zarray")):
            done = int(zarr.open_group(path, mode="r")["done"][...].sum())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 128 + signal.SIGTERM), err
    if sig == signal.SIGTERM:
        assert "run the same command again to resume" in err
    before = open_sweep(path)
    was_done = before.done.values
    assert 3 <= was_done.sum() < was_done.size
    assert main(["sweep", *KILL_ARGS, "--store", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done_before"] == was_done.sum() and report["computed"] == was_done.size - was_done.sum()
    after = open_sweep(path)
    assert bool(after.done.all())
    np.testing.assert_array_equal(after.session.values, np.where(was_done, 0, 1))
    for name in ("loss_final", "loss_rate", "loss_diverges", "loss_limited_by", "seed"):
        np.testing.assert_array_equal(after[name].values[was_done], before[name].values[was_done])
    # and the values are the theory's
    problem = Problem.parse("powerlaw:nu=1.5,kappa=2,n=1500")
    for i in (0, was_done.size - 1):
        a, b = np.unravel_index(i, was_done.shape)
        want = loss_curve(problem, after.alpha.values[a], after.beta.values[b], 4, 30000).final
        assert after.loss_final.values[a, b] == want


# -- Dask ----------------------------------------------------------------------------------------
def test_local_cluster_gives_the_serial_numbers(tmp_path, client):
    spec = SweepSpec.build("powerlaw:nu=1.5,kappa=2,n=6", {"alpha": [0.1, 0.3, 0.6],
                                                          "beta": [0.0, 0.4], "batch": [1, 3]},
                           ["singularities", "loss", "mc"], steps=15, runs=50, seed=3, chunk=2)
    qs = [get_quantity("singularities"), get_quantity("loss"), MC]
    serial = sweep(spec, tmp_path / "serial.zarr", quantities=qs)
    cluster = sweep(spec, tmp_path / "cluster.zarr", quantities=qs, scheduler=client)
    assert serial.computed == cluster.computed == 12
    assert_same(open_sweep(tmp_path / "serial.zarr"), open_sweep(tmp_path / "cluster.zarr"))
    by_address = sweep(spec, tmp_path / "address.zarr", quantities=qs,
                       scheduler=client.scheduler.address)
    assert by_address.complete
    assert_same(open_sweep(tmp_path / "serial.zarr"), open_sweep(tmp_path / "address.zarr"))


def test_simulator_sweep_on_the_cluster_equals_serial_and_the_theory(tmp_path, client):
    """The registered ``montecarlo`` quantity (simulate.run) with the point seeds."""
    spec = SweepSpec.build("powerlaw:nu=1.5,kappa=2,n=6", {"alpha": [0.1, 0.3], "beta": [0.0, 0.4]},
                           ["montecarlo", "loss"], batch=2, steps=20, runs=400, seed=11, chunk=1)
    sweep(spec, tmp_path / "serial.zarr")
    sweep(spec, tmp_path / "cluster.zarr", scheduler=client)
    ds = open_sweep(tmp_path / "serial.zarr")
    assert_same(ds, open_sweep(tmp_path / "cluster.zarr"))
    z = (ds.montecarlo_mean - ds.loss_final) / ds.montecarlo_stderr
    assert float(abs(z).max()) < 4 and not ds.montecarlo_heavy_tailed.any()
    assert (ds.montecarlo_finite_runs == 400).all()


def test_a_cluster_sweep_resumes_a_serial_one(tmp_path, client):
    spec = small_spec(quantities=("loss",), chunk=3)
    path = tmp_path / "s.zarr"
    q, _ = counting(limit=4)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, path, quantities=[q])
    report = sweep(spec, path, scheduler=client)
    assert (report.done_before, report.computed) == (3, 9)
    sweep(spec, tmp_path / "fresh.zarr")
    assert_same(open_sweep(path), open_sweep(tmp_path / "fresh.zarr"))


def test_bad_scheduler_and_workers(tmp_path):
    with pytest.raises(ValueError, match="scheduler"):
        sweep(small_spec(), tmp_path / "s.zarr", scheduler="cloud")
    assert not (tmp_path / "s.zarr").exists()
    with pytest.raises(ValueError, match="workers"):
        sweep(small_spec(), tmp_path / "t.zarr", scheduler="local", workers=0)


# -- command line and packaging ------------------------------------------------------------------
def test_cli_sweep_equals_the_python_api(tmp_path, capsys):
    argv = ["sweep", "--problem", SPEC, "--axis", "alpha=0.1,0.4,0.8,1.6", "--axis", "beta=-0.3,0,0.5",
            "--quantity", "singularities", "--quantity", "loss", "--steps", "30", "--batch", "2",
            "--chunk", "4", "--scheduler", "serial", "--store", str(tmp_path / "cli.zarr")]
    assert main(argv) == 0
    assert "12 computed now" in capsys.readouterr().out
    sweep(small_spec(tau1=1.0, tau2=-1.0), tmp_path / "api.zarr")
    assert_same(open_sweep(tmp_path / "cli.zarr"), open_sweep(tmp_path / "api.zarr"))


@pytest.mark.parametrize("extra, match", [
    (["--axis", "alpha=1:2"], "start:stop:num"), (["--axis", "alpha=0.1:1:2.5"], "num"),
    (["--axis", "alpha=log:0:1:3"], "log range"), (["--axis", "alpha=a,b"], "numbers"),
    (["--axis", "alpha"], "name="), (["--axis", "alpha=0.1", "--alpha", "0.2"], "also an axis"),
    (["--axis", "tau1=0.5,1", "--tau1", "2"], "also an axis"),
    (["--axis", "eta=0.1"], "eta"), (["--axis", "alpha=0.1", "--quantity", "energy"], "invalid choice"),
    (["--axis", "alpha=cosine(0.1);cosine(0.2", "--quantity", "loss", "--steps", "9"], "alpha"),
    (["--axis", "alpha=cosine({p})", "--quantity", "loss", "--steps", "9"], "alpha"),
    (["--axis", "p=0.1,0.2", "--alpha", "cosine({q})"], "{q}"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, extra, match):
    base = ["sweep", "--problem", SPEC, "--store", str(tmp_path / "x.zarr"), "--quantity",
            "singularities", "--batch", "1", "--alpha", "0.1"]
    if "--alpha" in extra or any(e.startswith("alpha") for e in extra):
        base.remove("--alpha"), base.remove("0.1")
    assert main(base + extra) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and match in err


def test_missing_optional_package_says_how_to_install(monkeypatch):
    import importlib
    real = importlib.import_module

    def fake(name, *a):
        if name == "zarr":
            raise ImportError("No module named 'zarr'")
        return real(name, *a)
    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pip install 'sgdyn\[sweep\]'"):
        require("zarr")
