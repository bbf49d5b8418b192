"""``--backend cuda`` on a machine without a usable GPU (CI): one line on stderr, exit code 2.

The GPU is taken away by monkeypatching (``cuda_kernels.available`` false, or ``numba.cuda`` not
importable), so the test means the same on a machine that has one.
"""
from __future__ import annotations

import sys

import pytest

from sgdyn import simulate
from sgdyn.cli import main
from sgdyn.simulate import cuda_kernels

ARGS = ["simulate", "--problem", "powerlaw:nu=1.5,kappa=1,n=5", "--alpha", "0.2", "--batch", "2",
        "--steps", "3", "--runs", "4", "--backend", "cuda", "--quiet"]


def _one_line_error(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sgdyn: error: ") and "Traceback" not in err
    return err


def test_no_gpu(capsys, monkeypatch):
    monkeypatch.setattr(cuda_kernels, "available", lambda: False)
    err = _one_line_error(capsys, ARGS)
    assert "backend 'cuda' needs an NVIDIA GPU" in err and 'pip install -e ".[cuda]"' in err
    assert "numba.cuda found no usable GPU" in err


def test_no_numba_cuda(capsys, monkeypatch):
    monkeypatch.delattr(simulate, "cuda_kernels")
    monkeypatch.setitem(sys.modules, "sgdyn.simulate.cuda_kernels", None)     # import fails
    err = _one_line_error(capsys, ARGS)
    assert "backend 'cuda' needs" in err and "importing numba.cuda failed" in err


@pytest.mark.parametrize("flag, value", [("--backend", "gpu"), ("--features", "data")])
def test_bad_choice(capsys, flag, value):
    err = _one_line_error(capsys, ARGS + [flag, value])      # argparse keeps the last value
    assert f"argument {flag}: invalid choice: '{value}'" in err


def test_validate_refuses_cuda_before_touching_the_device(capsys, monkeypatch):
    # validate's Hill tail diagnostic needs the per-run losses, which the CUDA backend never
    # brings back; the refusal comes first, whether or not a GPU is present
    monkeypatch.setattr(cuda_kernels, "available", lambda: True)
    argv = ["validate", *ARGS[1:]]
    err = _one_line_error(capsys, argv)
    assert "--backend: validate runs on the CPU backend" in err and "heavy-tail" in err
