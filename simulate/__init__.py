"""sgdyn.simulate: real stochastic optimisation of linear models, many independent runs at once.

Imports only ``sgdyn.theory.problem`` (and the method / noise descriptions) from the theory wing.
"""
from sgdyn.simulate.features import DataSet
from sgdyn.simulate.run import run
from sgdyn.simulate.spec import SimulationSpec
from sgdyn.simulate.trajectories import Trajectories

__all__ = ["DataSet", "SimulationSpec", "Trajectories", "run"]
