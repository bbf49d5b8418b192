"""Run a sweep: evaluate every block not yet done and write it to the store as it completes.

Schedulers: ``"serial"`` (this process, no Dask), ``"local"`` (a Dask ``LocalCluster`` of
``workers`` processes on 127.0.0.1, the default of the command line), a scheduler address
(``"tcp://host:port"``) or a ``distributed.Client``. Whatever the scheduler, a block is a pure
function of (spec, block), the seeds come from the point indices, and only this process writes
the store, so every schedule gives the same numbers. Interrupting a sweep (Ctrl-C, SIGTERM) keeps
every block written so far; running the same sweep again computes only the rest.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from sgdyn.sweep.grid import SweepSpec
from sgdyn.sweep.quantities import get_quantity
from sgdyn.sweep.store import SweepStore, lock, require
from sgdyn.theory.display import Result


_CONNECT_TIMEOUT = 5          # seconds to reach a scheduler address before saying so


@dataclass(frozen=True)
class SweepReport(Result):
    _properties = ("complete",)

    path: str
    points: int             # grid size
    done_before: int        # points already in the store when this run started
    computed: int           # points computed (and written) by this run
    session: int            # this run's number (0 for the first run on the store)
    seconds: float

    @property
    def complete(self) -> bool:
        return self.done_before + self.computed == self.points


class SweepInterrupted(KeyboardInterrupt):
    """Raised in the sweeping thread by SIGTERM (SIGINT gives KeyboardInterrupt as usual)."""

    def __init__(self, signum: int):
        super().__init__(f"sweep stopped by signal {signum}")
        self.signum = signum


def evaluate_block(spec: SweepSpec, quantities: tuple, block: tuple) -> tuple:
    """``(block, {quantity: {field: 1-D array over the block's points}})``: one task."""
    points = spec.points(block)
    return block, {q.name: q.evaluate(points) for q in quantities}


@contextlib.contextmanager
def _sigterm_interrupts():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SweepInterrupted(signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _client(scheduler, workers):
    distributed = require("distributed")
    if isinstance(scheduler, distributed.Client):
        yield scheduler
    elif scheduler == "local":
        n = workers or os.cpu_count() or 1
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
    elif isinstance(scheduler, str) and "://" in scheduler:
        try:
            client = distributed.Client(scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler {scheduler!r} is unreachable within {_CONNECT_TIMEOUT} s "
                             f"({type(exc).__name__})") from None
        with client:
            yield client
    else:
        raise ValueError(f"scheduler must be 'serial', 'local', an address like tcp://host:port or "
                         f"a distributed.Client, got {scheduler!r}")


def _serial(spec, quantities, blocks):
    for block in blocks:
        yield evaluate_block(spec, quantities, block)


def _distributed(client, spec, quantities, blocks):
    distributed = require("distributed")
    futures = [client.submit(evaluate_block, spec, quantities, block, pure=False) for block in blocks]
    try:
        for future in distributed.as_completed(futures):
            yield future.result()
    finally:
        client.cancel([f for f in futures if not f.done()])


def sweep(spec: SweepSpec, store, *, scheduler="serial", workers: int | None = None,
          progress: bool = False, overwrite: bool = False, quantities=None) -> SweepReport:
    """Evaluate ``spec`` over its grid into the Zarr store at ``store`` (created, or resumed).

    ``quantities``: Quantity objects to use instead of looking ``spec.quantities`` up in the
    registry (same names). Returns a SweepReport; the results are ``open_sweep(store)``.
    """
    t0 = time.perf_counter()
    qs = tuple(get_quantity(name) for name in spec.quantities) if quantities is None else tuple(quantities)
    if tuple(q.name for q in qs) != tuple(spec.quantities):
        raise ValueError(f"quantities must be named {spec.quantities}, got {tuple(q.name for q in qs)}")
    if isinstance(scheduler, str) and scheduler not in ("serial", "local") and "://" not in scheduler:
        raise ValueError(f"scheduler must be 'serial', 'local', an address like tcp://host:port or "
                         f"a distributed.Client, got {scheduler!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    constant_only = [q.name for q in qs if not q.schedules]
    if spec.has_schedule and constant_only:
        raise ValueError(f"quantity {constant_only[0]!r} needs constant alpha, beta and batch; a "
                         "schedule is swept by the quantities loss and montecarlo")
    spec.check({need for q in qs for need in q.needs})
    with lock(store):
        return _sweep(spec, store, qs, scheduler, workers, progress, overwrite, t0)


def _sweep(spec, store, qs, scheduler, workers, progress, overwrite, t0) -> SweepReport:
    st = SweepStore.open(store, spec, qs, overwrite=overwrite)
    done = st.done()
    pending = [b for b in spec.blocks() if not done[b].all()]
    done_before = int(done.sum())
    session = st.start_session()
    computed = 0
    bar = require("tqdm").tqdm(total=spec.size, initial=done_before, unit="pt", disable=not progress,
                               file=sys.stderr, dynamic_ncols=True)
    try:
        with _sigterm_interrupts(), contextlib.ExitStack() as stack:
            if scheduler == "serial":
                results = _serial(spec, qs, pending)
            else:
                client = stack.enter_context(_client(scheduler, workers))
                results = _distributed(client, spec, qs, pending)
            for block, values in results:
                st.write(block, values, session)
                n = int(done[block].size)
                computed += n
                bar.update(n)
    finally:
        bar.close()
    return SweepReport(st.path, spec.size, done_before, computed, session, time.perf_counter() - t0)
