"""sgdyn: the front door (command line, plots, validation, sweeps) of the theory engine."""
__version__ = "0.1.0"
