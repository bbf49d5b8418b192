"""The notebooks of ``docs/notebooks`` run headless (nbclient, a fresh Python kernel) and show what
they promise: result tables, figures wherever they are made, derivations as LaTeX."""
import pathlib
import re

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def execute(name: str, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()           # raises CellExecutionError on the first failing cell
    return nb


def outputs(nb, marker: str):
    """The outputs of the code cell whose source contains ``marker``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, marker
    return cells[0].outputs


def mime(outs) -> set:
    return {k for o in outs for k in o.get("data", {})}


def text(outs) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)


def test_the_three_notebooks_are_there():
    assert NAMES == ["quick_start.ipynb", "stability_condition.ipynb", "your_own_data.ipynb"]
    for name in NAMES:           # stored without outputs: the test suite is where they run
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_quick_start(tmp_path):
    nb = execute("quick_start.ipynb", tmp_path)
    assert "text/html" in mime(outputs(nb, "curve = loss_curve("))
    assert "<table>" in outputs(nb, "curve = loss_curve(")[0]["data"]["text/html"]
    z = float(re.search(r"largest \|z\| over 100 steps: ([0-9.]+)", text(outputs(nb, "z = "))).group(1))
    assert z < 4.0
    # the figure shows although the cell ends with an assignment
    assert "image/png" in mime(outputs(nb, "plots.loss_curves("))
    assert "text/html" in mime(outputs(nb, "curve.to_dataframe()"))
    assert "xarray.Dataset" in text(outputs(nb, "mc.to_xarray()"))


def test_stability_condition(tmp_path):
    nb = execute("stability_condition.ipynb", tmp_path)
    latex = outputs(nb, 'd = derive("heavy-ball")')[0]["data"]["text/latex"]
    assert latex.startswith("$") and r"\begin{aligned}" in latex and r"\mu" in latex
    conds = outputs(nb, "conds = mode_stability_conditions(")[0]["data"]
    assert conds["text/latex"].count("> 0") == 2
    assert conds["text/plain"] == "(-(beta - 1)*(beta + 1), -alpha*lambda*(alpha*lambda - 2*beta - 2))"
    assert "text/latex" in mime(outputs(nb, "sp.factor(u1.subs("))
    assert "1.33333" in text(outputs(nb, 'critical_learning_rate(one, 0.0, 1, "sgd")'))
    assert "image/png" in mime(outputs(nb, "plots.critical_lr_vs_batch("))


def test_your_own_data(tmp_path):
    nb = execute("your_own_data.ipynb", tmp_path)
    assert "tau1=0.9809" in text(outputs(nb, "fit = estimate_tau(X)")).replace(" ", "")
    assert text(outputs(nb, "report = validate(")).startswith("agrees - ")
    assert "image/png" in mime(outputs(nb, "plots.loss_curves("))
    assert "text/html" in mime(outputs(nb, "report.to_dataframe()"))


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_linked_from_the_index(name):
    index = (NOTEBOOKS.parent / "index.md").read_text()
    assert f"notebooks/{name}" in index
