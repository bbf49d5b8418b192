"""sgdyn.simulate: real stochastic optimisation of linear models, many independent runs at once.

Imports only ``theory.problem`` (and the method / noise descriptions) from the theory wing.
"""
from simulate.features import DataSet
from simulate.run import run
from simulate.spec import SimulationSpec
from simulate.trajectories import Trajectories

__all__ = ["DataSet", "SimulationSpec", "Trajectories", "run"]
