"""A fixed log-spaced histogram of the loss: the quantile sketch that the CUDA backend fills on the
device (one histogram per recorded step, counts added with atomics) so that quantiles come back
without the per-run losses.

Bins: ``bins_per_decade`` equal bins per decade of ``log10 L`` from ``10^log10_lo`` up to the
overflow guard ``10^log10_hi``; bin 0 collects every loss below ``10^log10_lo`` (zero included).
Bin ``i >= 1`` holds ``10^(log10_lo + (i-1)/B) <= L < 10^(log10_lo + i/B)``. The smallest and largest
loss of each recorded step are kept alongside, so the outermost occupied bins are clipped to the data.

Read-off (``quantiles``): the ``p``-quantile is the point where the cumulative count reaches
``p * n``, interpolated linearly in ``log10 L`` inside the bin it falls in (linearly in ``L`` inside
the underflow bin). Resolution: the exact quantile and the read-off lie in the same bin, so they
differ by less than one bin, a factor ``10^(1/B)`` (B = 64: 3.7 %), plus the gap between the order
statistics next to rank ``p n`` (the sketch cannot tell how numpy interpolates between them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BINS_PER_DECADE = 64
DECADES_BELOW_INITIAL = 40   # losses below L_0 * 1e-40 share the underflow bin
LOG10_GUARD = 200            # the overflow guard 1e200: larger losses are diverged runs


def bin_index(loss, log10_lo, bins_per_decade, n_bins):
    """Bin of one loss value (plain scalar math: compiled as a CUDA device function too)."""
    if not loss >= 10.0 ** log10_lo:
        return 0
    i = 1 + int((math.log10(loss) - log10_lo) * bins_per_decade)
    return min(i, n_bins - 1)


@dataclass(frozen=True)
class LogHistogram:
    log10_lo: int
    bins_per_decade: int
    n_bins: int                  # underflow bin + one per 1/B decade up to the guard

    @classmethod
    def for_initial_loss(cls, initial_loss: float,
                         bins_per_decade: int = BINS_PER_DECADE) -> "LogHistogram":
        """Bins from ``L_0 * 1e-40`` (rounded down to a decade) to the guard ``1e200``."""
        if initial_loss > 0:
            lo = math.floor(math.log10(initial_loss)) - DECADES_BELOW_INITIAL
        else:   # e_0 = 0 and no label noise: every loss is 0, all in the underflow bin
            lo = -DECADES_BELOW_INITIAL
        lo = min(lo, LOG10_GUARD - 1)
        return cls(lo, bins_per_decade, 1 + (LOG10_GUARD - lo) * bins_per_decade)

    @property
    def relative_resolution(self) -> float:
        """Largest ratio between a read-off quantile and the exact one, minus one."""
        return 10.0 ** (1.0 / self.bins_per_decade) - 1.0

    def quantiles(self, counts: np.ndarray, minimum: np.ndarray, maximum: np.ndarray,
                  levels: np.ndarray) -> np.ndarray:
        """Quantiles ``(n_levels, n_steps)`` from ``counts`` ``(n_steps, n_bins)`` and the per-step
        extreme values; ``inf`` where a step has no counts (every run diverged)."""
        counts = np.asarray(counts, dtype=np.float64)
        levels = np.asarray(levels, dtype=np.float64)
        n_steps, n_bins = counts.shape
        cum = np.cumsum(counts, axis=1)
        total = cum[:, -1]
        live = total > 0
        # One searchsorted for all steps: offset each row so the flattened cumulative counts
        # increase from row to row (row j's values and targets lie in [off_j, off_j + total_j]).
        off = np.arange(n_steps) * (total.max() + 1.0)
        target = levels[:, None] * total[None, :]
        pos = np.searchsorted((cum + off[:, None]).ravel(), target + off[None, :], side="left")
        i = np.clip(pos - np.arange(n_steps)[None, :] * n_bins, 0, n_bins - 1)
        rows = np.broadcast_to(np.arange(n_steps)[None, :], i.shape)
        below = np.where(i > 0, cum[rows, np.maximum(i - 1, 0)], 0.0)
        frac = np.clip((target - below) / np.maximum(counts[rows, i], 1.0), 0.0, 1.0)
        lo_data = np.where(live, minimum, 1.0)[None, :]
        hi_data = np.where(live, maximum, 1.0)[None, :]
        floor = 10.0 ** self.log10_lo
        with np.errstate(divide="ignore"):
            # bin i >= 1 spans [lo + (i-1)/B, lo + i/B) in log10 L, clipped to the data's range
            top = self.log10_lo + i / self.bins_per_decade
            lo_edge = np.maximum(top - 1.0 / self.bins_per_decade, np.log10(np.maximum(lo_data, floor)))
            hi_edge = np.minimum(top, np.log10(hi_data))
        logq = lo_edge + frac * np.maximum(hi_edge - lo_edge, 0.0)
        under_hi = np.minimum(hi_data, floor)
        value = np.where(i == 0, lo_data + frac * (under_hi - lo_data), 10.0 ** logq)
        value = np.clip(value, lo_data, hi_data)
        return np.where(live[None, :], value, np.inf)
