"""Flags shared by ``momentum-gap`` and ``adaptive-batch``: the problem and noise flags of
``sgdyn.cli.add_problem_args`` without its ``--method`` and hyperparameters (these commands fix
the methods they compare)."""
from __future__ import annotations

import argparse

from sgdyn.cli import add_noise_args, add_output_args


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated floats."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--problem", required=True,
                   help="file (.json/.npz with eigenvalues, initial[, label_noise]) "
                        "or powerlaw:nu=..,kappa=..,n=..")
    add_noise_args(p)
    p.add_argument("--label-noise", type=float, default=None, help="label-noise variance sigma^2")
    p.add_argument("--data-size", type=float, default=None,
                   help="batches drawn without replacement from N data points")
    add_output_args(p)
