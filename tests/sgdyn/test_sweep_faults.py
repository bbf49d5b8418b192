"""Fault injection: a sweep SIGKILLed at random moments (while the interpreter starts, while the
store is created, between and during block writes) always resumes to the numbers of an
uninterrupted run, bit for bit; two sweeps on one store never corrupt it, and the second one
says why it stopped."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.sweep import open_sweep
from sgdyn.sweep.store import lock

ARGS = ["sweep", "--problem", "powerlaw:nu=1.5,kappa=2,n=300", "--axis", "alpha=0.02:0.2:6",
        "--axis", "beta=0,0.3,0.6", "--quantity", "loss", "--steps", "5000", "--batch", "4",
        "--chunk", "1", "--scheduler", "serial", "--no-progress"]


def _values(path):
    ds = open_sweep(path)
    assert bool(ds.done.all())
    return {name: ds[name].values for name in ds.data_vars if name != "session"}


def _spawn(path):
    return subprocess.Popen([sys.executable, "-m", "sgdyn", *ARGS, "--store", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ref") / "ref.zarr")
    t0 = time.monotonic()
    proc = _spawn(path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return _values(path), time.monotonic() - t0


# 6 kills by default (one per stage on average: start-up, store creation, blocks); the full 20 with
# -m slow
@pytest.mark.parametrize("trials", [6, pytest.param(20, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, reference, capsys, trials):
    want, duration = reference
    rng = np.random.default_rng(17)
    # from the imports, through the store's creation (right after them), to the last block
    delays = rng.uniform(0.1 * duration, 1.0 * duration, trials)
    paths = [str(tmp_path / f"t{i}.zarr") for i in range(trials)]
    outcomes = [None] * trials

    def trial(i):
        proc = _spawn(paths[i])
        try:
            proc.wait(timeout=delays[i])
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        outcomes[i] = proc.returncode

    for pair in range(0, trials, 2):          # two at a time: one per core
        threads = [threading.Thread(target=trial, args=(i,)) for i in range(pair, min(pair + 2, trials))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(outcomes) <= {0, -signal.SIGKILL}
    killed = sum(o == -signal.SIGKILL for o in outcomes)
    assert killed >= trials // 2, outcomes       # most trials really were interrupted
    for path in paths:
        assert main([*ARGS, "--store", path]) == 0, capsys.readouterr().err
        got = _values(path)
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        stem = os.path.basename(path) + ".partial-"
        leftovers = [f for f in os.listdir(tmp_path) if f.startswith(stem)]
        assert leftovers == []
    capsys.readouterr()


def test_a_store_in_use_is_refused_at_once(tmp_path, capsys):
    path = str(tmp_path / "busy.zarr")
    with lock(path):
        t0 = time.monotonic()
        assert main([*ARGS, "--store", path]) == 2
        assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert err.startswith("sgdyn: error: store") and "in use by another sweep (pid" in err
    assert len(err.strip().splitlines()) == 1
    assert not os.path.exists(path)                  # nothing was created under the other's lock


def test_two_concurrent_sweeps_leave_intact_data(tmp_path, reference):
    want, _ = reference
    path = str(tmp_path / "both.zarr")
    procs = [_spawn(path) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes and set(codes) <= {0, 2}, (codes, results)
    for code, (_, err) in zip(codes, results):
        if code == 2:
            assert "in use by another sweep" in err and len(err.strip().splitlines()) == 1
    got = _values(path)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
