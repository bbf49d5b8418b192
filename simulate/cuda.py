"""CUDA backend: ``simulate_cuda(spec) -> Trajectories``, the contract of ``simulate.cpu`` on a GPU.

Same dynamics as ``simulate.spec`` states: ``runs`` independent runs of the spec's method (its
matrices ``F, K, G`` per step or constant, the preconditioner, the batch schedule) from
``x0 * e_0``, ``e_0 = spec.initial_error``, features
``x = sqrt(lambda) z`` with Gaussian or Rademacher ``z`` drawn per sample on the fly, label noise
``eps ~ N(0, label_noise)`` per sample; or, ``spec.sampler == "projected"`` (Gaussian features), the
mini-batch gradient drawn exactly in law from ``2b + n`` normals (``simulate.features``); or a
data set's rows (``spec.features == "data"``) sampled as ``spec.sampling`` says (i.i.d., without
replacement within a batch, shuffled epochs), by the CPU backend's rules. Those two finite
samplings keep a permutation of the rows per run on the device: ``4 n_rows`` bytes a run (60000
rows x 10^5 runs would be 24 GB; split such a job into several seeds). A synthetic data set per
run (``spec.synthetic``, ``simulate.synthetic``) is drawn by each run's thread into its own slice
of an ``(N, d, runs)`` array: ``8 N d`` bytes a run, all runs at once on a GPU. Everything stays on the device (``simulate.cuda_kernels``):
only per-step statistics come back, never per-run losses:

* mean and standard error: per block (count, mean, sqrt(M2)) by two passes over shared memory,
  merged across blocks by the pairwise (Chan-Golub-LeVeque) update in float64, in units of the
  step's largest loss (so no cancellation and no overflow below the 1e200 guard);
* quantiles: a log-spaced histogram per recorded step (``simulate.sketch``, 64 bins per decade),
  read off by interpolation: within a factor ``10^(1/64)`` (3.7 %) of the exact sample quantile.

A run whose loss passes 1e200 stops, counts in ``diverged_runs`` and leaves the statistics of later
steps (``finite_runs`` drops). With no live run left the mean, standard error and quantiles are
``inf``; with one, the standard error is ``inf`` (as in the CPU backend).

Needs an NVIDIA GPU and the ``cuda`` extra (``pip install -e ".[cuda]"``, numba-cuda), or numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported; slow, for tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.simulate.sketch import LOG10_GUARD, LogHistogram
from sgdyn.simulate.spec import FEATURES, SAMPLINGS, SimulationSpec
from sgdyn.simulate.synthetic import NONE, SYNTHETIC
from sgdyn.simulate.trajectories import Trajectories

OVERFLOW_GUARD = 10.0 ** LOG10_GUARD
_NEEDS = ("backend 'cuda' needs an NVIDIA GPU with a working driver and the cuda extra "
          "(pip install -e \".[cuda]\", which installs numba-cuda), or numba's CUDA simulator "
          "(NUMBA_ENABLE_CUDASIM=1 before numba is imported)")


def _device():
    """The device-code module, or a ValueError saying what is missing."""
    try:
        from sgdyn.simulate import cuda_kernels
    except ImportError as exc:
        raise ValueError(f"{_NEEDS}; importing numba.cuda failed: {exc}") from None
    if not cuda_kernels.available():
        raise ValueError(f"{_NEEDS}; numba.cuda found no usable GPU")
    return cuda_kernels


@dataclass(frozen=True)
class DeviceStatistics:
    """Device buffers that ``cuda_kernels.record`` fills (in this order: per-block count, mean and
    sqrt(M2) ``(n_rec, blocks)``, the sketch's ``log10_lo``, bins per decade, counts
    ``(n_rec, n_bins)``, per-step minimum and maximum), and their reduction to statistics."""

    dev: object
    sketch: LogHistogram
    buffers: tuple

    @classmethod
    def allocate(cls, dev, n_rec: int, blocks: int, sketch: LogHistogram) -> "DeviceStatistics":
        def zeros(shape, dtype=np.float64):
            return dev.to_device(np.zeros(shape, dtype=dtype))

        return cls(dev, sketch, (
            zeros((n_rec, blocks), np.int32), zeros((n_rec, blocks)), zeros((n_rec, blocks)),
            sketch.log10_lo, sketch.bins_per_decade, zeros((n_rec, sketch.n_bins), np.int32),
            dev.to_device(np.full(n_rec, np.inf)), zeros(n_rec)))

    def summarize(self, levels: np.ndarray):
        """``(finite_runs, mean, stderr, quantiles)`` per recorded step: the blocks' moments merged
        on the device, then ``stderr = sqrt(M2 / (n - 1) / n)``; ``inf`` where undefined."""
        dev = self.dev
        blk_n, blk_mean, blk_root, _, _, hist, minimum, maximum = self.buffers
        n_rec = blk_n.shape[0]
        out_n, out_mean, out_m2 = (dev.to_device(np.zeros(n_rec)) for _ in range(3))
        dev.merge_kernel[dev.blocks_for(n_rec), dev.THREADS](blk_n, blk_mean, blk_root, maximum,
                                                             out_n, out_mean, out_m2)
        n = out_n.copy_to_host()
        high = maximum.copy_to_host()
        low = minimum.copy_to_host()
        has, two = n > 0, n > 1
        mean = np.where(has, out_mean.copy_to_host(), np.inf)
        scale = np.where((high > 0) & has, high, 1.0)    # merge_kernel's unit: M2 / scale^2
        var_units = np.divide(out_m2.copy_to_host(), n - 1, out=np.zeros(n_rec), where=two)
        stderr = np.where(two, scale * np.sqrt(var_units / np.maximum(n, 1)), np.inf)
        quantiles = self.sketch.quantiles(hist.copy_to_host(), low, high, levels)
        return n.astype(np.int64), mean, stderr, quantiles


def simulate_cuda(spec: SimulationSpec) -> Trajectories:
    """Monte Carlo statistics of the population loss ``1/2 sum_k lambda_k e_k^2 + sigma^2/2`` over
    ``spec.runs`` runs at ``spec.recorded_steps``, computed on the GPU (one thread per run,
    xoroshiro128+ generators seeded by ``spec.seed``: the same seed gives the same numbers)."""
    if spec.features not in FEATURES + ("data",):
        raise ValueError(f"features must be one of {FEATURES} or 'data' for backend 'cuda', "
                         f"got {spec.features!r}")
    data = spec.features == "data" or bool(spec.synthetic)
    if spec.sampling != "iid" and not data:
        raise ValueError(f"sampling {spec.sampling!r} needs a data set's rows")
    dev = _device()
    lam = np.ascontiguousarray(spec.eigenvalues, dtype=np.float64)
    e0 = np.ascontiguousarray(spec.initial_error, dtype=np.float64)
    recorded = np.ascontiguousarray(spec.recorded_steps, dtype=np.int64)
    runs = spec.runs
    sigma = float(np.sqrt(spec.label_noise))
    sketch = LogHistogram.for_initial_loss(0.5 * float(lam @ e0 ** 2) + 0.5 * spec.label_noise)
    blocks = dev.blocks_for(runs)
    stats = DeviceStatistics.allocate(dev, recorded.size, blocks, sketch)
    diverged = dev.to_device(np.zeros(1, dtype=np.int64))
    state = [dev.to_device(np.empty((lam.size, spec.dim, runs))),         # x per mode
             dev.to_device(np.empty((lam.size, runs))), dev.to_device(np.empty((lam.size, runs)))]
    method = [dev.to_device(np.ascontiguousarray(a, dtype=np.float64))
              for a in (spec.x0, spec.F, spec.K, spec.G)]
    if spec.synthetic:      # each run draws its own rows into its slice (on the device)
        rows, residuals = (np.empty((spec.data_size, lam.size, runs)),
                           np.empty((spec.data_size, runs)))
    elif data:              # one data set, shared by the runs
        rows = np.ascontiguousarray(spec.rows, dtype=np.float64)[:, :, None]
        residuals = np.ascontiguousarray(spec.residuals, dtype=np.float64)[:, None]
    else:                   # placeholders: the kernel reads them only for data rows
        rows, residuals = np.zeros((1, 1, 1)), np.zeros((1, 1))
    perm_shape = (rows.shape[0], runs) if data and spec.sampling != "iid" else (1, 1)
    dev.sgd_kernel[blocks, dev.THREADS](
        dev.to_device(dev.generator_states(runs, spec.seed)), dev.to_device(np.sqrt(lam)),
        dev.to_device(lam), dev.to_device(e0), *method, int(spec.stride),
        dev.to_device(np.ascontiguousarray(spec.batch, dtype=np.int64)),
        dev.to_device(np.ascontiguousarray(spec.preconditioner, dtype=np.float64)), sigma,
        spec.features == "rademacher", spec.sampler == "projected", data, dev.to_device(rows),
        dev.to_device(residuals), SYNTHETIC.get(spec.synthetic, NONE), SAMPLINGS.index(spec.sampling),
        dev.to_device(np.zeros(perm_shape, dtype=np.int32)), dev.to_device(recorded), OVERFLOW_GUARD, *state, *stats.buffers, diverged)
    levels = np.asarray(spec.quantile_levels, dtype=np.float64)
    finite, mean, stderr, quantiles = stats.summarize(levels)
    return Trajectories(
        steps=recorded, mean=mean, stderr=stderr, quantile_levels=levels, quantiles=quantiles,
        finite_runs=finite, diverged_runs=int(diverged.copy_to_host()[0]), runs=runs,
        seed=spec.seed, backend="cuda")
