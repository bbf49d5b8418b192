"""Results read well in a notebook: short one-line reprs (never the arrays' entries), HTML tables,
and derivations / stability conditions that render as LaTeX."""
import numpy as np
import sympy as sp

from sgdyn.theory.display import Conditions, summary
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import critical_learning_rate, mode_stability_conditions
from sgdyn.theory.symbolic import derive, mu

BIG = Problem.power_law(1.5, 3.0, 1000)


def balanced(tex: str) -> bool:
    depth = 0
    for ch in tex.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_reprs_are_short_and_show_no_entries():
    curve = loss_curve(BIG, 0.3, 0.5, 4, 10_000)
    crit = critical_learning_rate(BIG, 0.5, 4)
    for r in (curve, crit, BIG):
        text = repr(r)
        assert "\n" not in text and len(text) < 400, text
        assert text.startswith(type(r).__name__ + "(")
    text = repr(curve)
    assert "loss=<float64 array 10001: " in text and "array([" not in text
    assert f"rate={curve.rate:.6g}" in text
    html = curve._repr_html_()
    assert html.startswith("<table>") and "<code>loss</code>" in html and len(html) < 3000
    assert "<code>reason</code>" in crit._repr_html_()         # properties worth reading too


def test_summary_of_values():
    assert summary(np.array([1.0, np.inf, 3.0, 2.0, 5.0])) == "<float64 array 5: 1 .. 5, 1 non-finite>"
    assert summary(np.array([True, False, True])) == "<bool array 3, 2 True>"
    assert summary(np.arange(3)) == "[0, 1, 2]"
    assert summary("x" * 200).endswith("...'") and len(summary("x" * 200)) < 90
    assert summary((0.1, 2)) == "(0.1, 2)"


def test_derivation_renders_as_latex():
    d = derive("heavy-ball")
    tex = d._repr_latex_()
    assert tex.startswith(r"$\displaystyle \begin{aligned}") and tex.endswith(r"\end{aligned}$")
    assert balanced(tex)
    assert sp.latex(sp.collect(d.char_poly, mu, sp.factor)) in tex
    assert sp.latex(d.u) in tex and "U(z)" in tex and r"\text{heavy-ball}" in tex
    assert repr(d) == "Derivation(method='heavy-ball')"


def test_stability_conditions_render_as_latex_and_stay_a_tuple():
    conds = mode_stability_conditions("heavy-ball")
    assert isinstance(conds, tuple) and isinstance(conds, Conditions)
    assert repr(conds) == repr(tuple(conds))
    tex = conds._repr_latex_()
    assert tex.count("&> 0") == len(conds) == 2 and balanced(tex)
    for c in conds:
        assert sp.latex(c) in tex
    # still the objects to compute with
    assert sp.solve(conds[1], sp.Symbol("alpha", real=True)) != []


def test_the_mixin_replaces_only_the_generated_repr():
    from dataclasses import dataclass

    from sgdyn.theory.display import Result

    @dataclass(frozen=True)
    class Plain(Result):
        x: np.ndarray

    @dataclass(frozen=True)
    class Own(Result):
        x: float

        def __repr__(self):
            return "own"
    assert repr(Plain(np.zeros(5000))) == "Plain(x=<float64 array 5000: 0 .. 0>)"
    assert repr(Own(1.0)) == "own"
