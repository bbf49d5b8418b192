"""The README's Python snippet and its set-up command run as shown, without a warning."""
import contextlib
import io
import pathlib
import re
import shlex
import warnings

from sgdyn.cli import main

README = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_python_snippet_runs_without_a_warning():
    blocks = re.findall(r"^```python\n(.*?)^```$", README, re.S | re.M)
    assert len(blocks) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # the old snippet divided 0 by 0 at t = 0
        namespace = {}
        exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert abs(namespace["z"]).max() < 5 and namespace["z"].size == 100


def test_setup_command_runs():
    line = next(l for l in README.splitlines() if l.startswith('pip install -e ".[dev]" && sgdyn '))
    argv = shlex.split(line.split("&& ", 1)[1])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv[1:]) == 0
    assert "L_3000" in buf.getvalue() and "converges" in buf.getvalue()
