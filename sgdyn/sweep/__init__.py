"""sgdyn.sweep: parameter sweeps over a grid of hyperparameters (and problem parameters),
evaluated by the theory (vectorised) and/or Monte Carlo, written block by block to a Zarr store
that an interrupted sweep resumes from; serial, on a Dask LocalCluster, or on any Dask cluster.

    spec = SweepSpec.build("powerlaw:nu=1.5,kappa=3,n=1000",
                           {"alpha": np.linspace(0.05, 1, 100), "beta": np.linspace(-0.9, 0.9, 100)},
                           ["singularities"], batch=10)
    sweep(spec, "phase.zarr", scheduler="local")      # run again after a crash: resumes
    ds = open_sweep("phase.zarr")                     # xarray Dataset, dims (alpha, beta)

Needs the optional packages of ``pip install 'sgdyn[sweep]'`` (xarray, zarr, dask[distributed],
tqdm), imported only when a sweep runs.
"""
from sgdyn.sweep.grid import AXES, Point, SweepSpec, point_seed
from sgdyn.sweep.quantities import (QUANTITIES, Field, Quantity, get_quantity, monte_carlo,
                                    monte_carlo_summary, register)
from sgdyn.sweep.run import SweepInterrupted, SweepReport, sweep
from sgdyn.sweep.store import open_sweep

__all__ = ["AXES", "Point", "SweepSpec", "point_seed", "QUANTITIES", "Field", "Quantity",
           "get_quantity", "monte_carlo", "monte_carlo_summary", "register", "SweepInterrupted",
           "SweepReport", "sweep", "open_sweep"]
