"""A quick start: ``sgdyn --help`` imports no numerical package, the command modules import their
numerics only when they run, small commands keep scipy.optimize and matplotlib off their path,
and with a warm form cache ``loss``, ``critical-lr`` and ``simulate`` do not even import sympy
(the times themselves: ``benchmarks/startup.py``)."""
import json
import os
import subprocess
import sys

import pytest

from sgdyn.cli import COMMAND_MODULES, main

HEAVY = ("numpy", "sympy", "scipy", "numba", "matplotlib", "tqdm", "pandas", "xarray")


def run_python(code: str, env=None) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_and_every_command_module_import_no_numerics():
    out = run_python(f"""
import contextlib, io, sys, importlib, json
from sgdyn.cli import main, COMMAND_MODULES
for name in COMMAND_MODULES:
    importlib.import_module("sgdyn.commands." + name)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules],
                   "help": buf.getvalue()}}))
""")
    got = json.loads(out)
    assert got["loaded"] == []
    for name in COMMAND_MODULES:               # every command listed with its one-line help
        assert name.replace("_", "-") in got["help"]


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_has_its_own_help(capsys, name):
    import importlib
    mod = importlib.import_module(f"sgdyn.commands.{name}")
    with pytest.raises(SystemExit) as exc:
        main([mod.COMMAND, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sgdyn {mod.COMMAND}") and "--" in out


SMALL = {
    "loss": ["loss", "--problem", "powerlaw:nu=1.5,kappa=3,n=50", "--alpha", "0.3", "--beta", "0.5",
             "--batch", "4", "--steps", "100"],
    "critical-lr": ["critical-lr", "--problem", "powerlaw:nu=1.5,kappa=3,n=50", "--beta", "-0.2",
                    "--batch", "10"],
    "simulate": ["simulate", "--problem", "powerlaw:nu=1.5,kappa=1,n=20", "--alpha", "0.3",
                 "--beta", "0.5", "--batch", "2", "--steps", "50", "--runs", "64", "--seed", "1"],
}
SMALL["simulate-text-method"] = [*SMALL["simulate"], "--method",
                                 "v' = beta*v - alpha*g(w); w' = w + v'"]


def imported_modules(stderr: str) -> set:
    """Every module a ``python -X importtime`` process imported (one stderr line each)."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("command", sorted(SMALL))
def test_small_commands_with_a_warm_cache_import_no_sympy(command, tmp_path):
    """Structural, not timed: once a first process has cached the forms (the method's own and
    those derived from it), ``python -m sgdyn`` runs the command without importing sympy (so
    without deriving anything), matplotlib or scipy.optimize."""
    env = dict(os.environ, SGDYN_CACHE_DIR=str(tmp_path), SGDYN_PROGRESS="0")
    argv = SMALL[command]
    run_python(f"from sgdyn.cli import main\nassert main({argv!r}) == 0", env=env)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sgdyn", *argv],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    mods = imported_modules(proc.stderr)
    assert {"numpy", "numba", "sgdyn.theory.methods"} <= mods        # the list is complete
    heavy = sorted(m for m in mods if m.split(".")[0] in ("sympy", "matplotlib", "pandas",
                                                           "xarray", "tqdm")
                   or m.startswith("scipy.optimize"))
    assert heavy == []
    assert any(p.name.startswith("method-form-") for p in tmp_path.iterdir())
    # the loss curve needs no lambdified forms (its kernel forms each mode's map itself), only
    # the transfer polynomials of its rate: those came from the cache in the second process
    assert any(p.name.startswith("transfer-polynomials-") for p in tmp_path.iterdir()) or \
        command != "loss"


def test_console_script_exit_code_and_flushed_output(tmp_path):
    """``python -m sgdyn`` ends the process itself (no module teardown): its output is complete
    and its exit code is the command's."""
    env = dict(os.environ, SGDYN_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "sgdyn", *SMALL["loss"], "--json"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["loss"]) == 101
    proc = subprocess.run([sys.executable, "-m", "sgdyn", "loss", "--problem", "nope.json",
                           "--alpha", "1", "--batch", "1", "--steps", "1"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("sgdyn: error:")
    assert proc.stderr.count("\n") == 1 and "nope.json" in proc.stderr
