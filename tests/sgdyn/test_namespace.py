"""The installed names: ``sgdyn``, ``sgdyn.theory`` and ``sgdyn.simulate``, never the bare
``theory`` / ``simulate``, so a user's own ``simulate.py`` or ``theory.py`` cannot shadow them."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHADOW = "raise ImportError('the user\\'s own {name}.py was imported instead of sgdyn.{name}')\n"


@pytest.fixture
def user_folder(tmp_path):
    """A working folder holding a ``simulate.py`` and a ``theory.py`` of the user's, which fail
    loudly when imported."""
    for name in ("simulate", "theory"):
        (tmp_path / f"{name}.py").write_text(SHADOW.format(name=name))
    return tmp_path


def _env():
    # the test runner puts the checkout on sys.path; the user's process does not have it
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def test_cli_runs_next_to_the_users_simulate_py(user_folder):
    argv = ["validate", "--problem", "powerlaw:nu=1.5,kappa=1,n=5", "--alpha", "0.2", "--batch", "2",
            "--steps", "5", "--runs", "50", "--seed", "1", "--quiet", "--json"]
    proc = subprocess.run([sys.executable, "-m", "sgdyn", *argv], cwd=user_folder, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "agrees"


def test_python_api_runs_next_to_the_users_theory_py(user_folder):
    code = """
import sys
import pkgutil, importlib
import sgdyn, sgdyn.theory, sgdyn.simulate
from sgdyn.theory import Problem
from sgdyn.theory.dynamics import loss_curve
from sgdyn import simulate
p = Problem.power_law(nu=1.5, kappa=1, n=5)
curve = loss_curve(p, 0.2, 0.0, 2, 5)
tr = simulate.run(p, 0.2, 0.0, 2, 5, runs=20, seed=1)
# every module of the package (the CUDA device code needs numba.cuda: it is tested elsewhere;
# __main__ runs the command line)
names = []
for pkg in (sgdyn, sgdyn.theory, sgdyn.simulate):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if not info.name.endswith(("cuda_kernels", "__main__")):
            importlib.import_module(info.name)
            names.append(info.name)
assert {"sgdyn.theory.stability", "sgdyn.simulate.cpu", "sgdyn.commands.validate"} <= set(names)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("theory", "simulate")))
print(curve.loss.size, tr.mean.size)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=user_folder, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    bare, sizes = proc.stdout.strip().splitlines()
    assert bare == "[]" and sizes == "6 6"


def test_no_source_file_imports_the_bare_names():
    pattern = re.compile(r"^\s*(>>> )?(from|import) (theory|simulate)\b", re.M)
    files = [p for d in ("theory", "simulate", "sgdyn", "tests", "benchmarks", "docs")
             for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".md")] + [ROOT / "README.md"]
    offenders = [str(p.relative_to(ROOT)) for p in files if pattern.search(p.read_text())]
    assert offenders == []
