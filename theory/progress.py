"""Progress bars for the computations that can take more than a few seconds (Monte Carlo runs,
loss-at-horizon grids and optimisations, network simulations).

``tqdm.auto``: a widget in Jupyter, text on a terminal. A bar appears only once its computation
has run for ``DELAY`` seconds (short calls print nothing), and tqdm is imported only then.

Turning bars off, from the narrowest to the widest scope:

* ``progress=False`` on a call that takes the argument (``progress=True`` forces a bar);
* ``with sgdyn.theory.progress.enabled(False): ...`` for a block;
* ``sgdyn.theory.progress.set_enabled(False)`` for the session;
* the environment variable ``SGDYN_PROGRESS=0`` for every process (the command line also has
  ``sgdyn --no-progress``, and shows bars only when its stderr is a terminal).
"""
from __future__ import annotations

import contextlib
import os
import time

DELAY = 2.0          # seconds before a bar appears
_STATE = {"enabled": None}     # None: follow SGDYN_PROGRESS (default on)


def is_enabled() -> bool:
    """Whether bars are on by default now (``set_enabled``, ``enabled``, ``SGDYN_PROGRESS``)."""
    if _STATE["enabled"] is not None:
        return _STATE["enabled"]
    return os.environ.get("SGDYN_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def set_enabled(flag: bool | None) -> None:
    """Turn bars on (True), off (False), or back to the environment's default (None)."""
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"flag must be True, False or None, got {flag!r}")
    _STATE["enabled"] = flag


@contextlib.contextmanager
def enabled(flag: bool | None):
    """``with enabled(False): ...``: bars off inside the block (None: leave the setting as is)."""
    before = _STATE["enabled"]
    if flag is not None:
        set_enabled(flag)
    try:
        yield
    finally:
        _STATE["enabled"] = before


class Bar:
    """A progress bar over ``total`` units that appears only after ``DELAY`` seconds.

    ``update(n)`` adds ``n`` done units; it is also a plain callable (``bar(n)``), the
    ``progress`` contract of ``simulate.run``. Use as a context manager (closes the bar)."""

    def __init__(self, total, desc: str = "", unit: str = "it", show: bool | None = None,
                 delay: float | None = None):
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.show = is_enabled() if show is None else bool(show)
        self.delay = DELAY if delay is None else float(delay)
        self.done = 0
        self._start = time.perf_counter()
        self._bar = None

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if not self.show:
            return
        if self._bar is None:
            if time.perf_counter() - self._start < self.delay:
                return
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.total, initial=self.done, desc=self.desc or None,
                             unit=self.unit, leave=False, dynamic_ncols=True)
        else:
            self._bar.update(n)

    __call__ = update

    @property
    def visible(self) -> bool:
        """True once the bar has been drawn."""
        return self._bar is not None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bar(progress, total, desc: str = "", unit: str = "it"):
    """The bar for a ``progress`` argument: ``None`` (the default setting), ``True`` / ``False``,
    or a callable (``progress(n)`` after each ``n`` units; then no bar is drawn here)."""
    if progress is None or isinstance(progress, bool):
        return Bar(total, desc, unit, show=progress)
    if not callable(progress):
        raise ValueError(f"progress must be None or a callable (or True / False), got {progress!r}")
    return _Callback(progress)


class _Callback:
    def __init__(self, fn):
        self.fn = fn

    def update(self, n: int = 1) -> None:
        self.fn(n)

    __call__ = update

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def chunks(n: int, parts: int = 20, minimum: int = 1):
    """``(start, stop)`` slices of ``range(n)`` in about ``parts`` pieces of at least ``minimum``."""
    size = max(int(minimum), -(-int(n) // max(1, int(parts))))
    return [(i, min(n, i + size)) for i in range(0, int(n), size)]
