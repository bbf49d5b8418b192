"""sgdyn.simulate: real stochastic optimisation of linear models, many independent runs at once.

Imports only ``sgdyn.theory.problem`` (and the method / noise descriptions) from the theory wing.
The names below are imported on first use (PEP 562): ``sgdyn.simulate.run(...)`` loads numba and
the kernels, ``import sgdyn.simulate.spec`` does not.
"""
from __future__ import annotations

import importlib
import sys
import types

_LAZY = {"DataSet": "features", "SimulationSpec": "spec", "Trajectories": "trajectories",
         "run": "run"}

__all__ = ["DataSet", "SimulationSpec", "Trajectories", "run"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``sgdyn.simulate.run`` is the function ``run`` even after the submodule of the same name is
    imported (the import system then sets the package attribute to the submodule; this keeps the
    function, as an eager ``from sgdyn.simulate.run import run`` here used to)."""

    def __setattr__(self, name, value):
        if name == "run" and isinstance(value, types.ModuleType):
            value = value.run
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
