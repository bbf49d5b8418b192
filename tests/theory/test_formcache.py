"""The disk cache of derived numeric forms: what it loads is what the derivation gives, a changed
description or deriving code never reads a stale file, and a bad or missing folder only costs
time."""
import json

import numpy as np
import pytest
import sympy as sp

from sgdyn.theory import formcache
from sgdyn.theory.formcache import Source, described_key, key, load_or_build
from sgdyn.theory.method_text import parse_method
from sgdyn.theory.methods import METHODS, Method, alpha, beta, cached_method, get_method, lam
from sgdyn.theory.symbolic import NUMERIC_ARGS, NumericForms, _derive_fields, b, derive, gamma, z

HEAVY_BALL = get_method("heavy-ball")

def build_counter():
    calls = []

    def build():
        calls.append(1)
        return {"f": Source((alpha, lam), alpha * lam ** 2 + sp.Rational(1, 3)),
                "g": [Source((alpha,), sp.Integer(2), broadcast=True)], "q": 3, "inf": float("inf")}
    return build, calls


def test_second_load_reads_the_file_and_gives_the_same_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    build, calls = build_counter()
    first = load_or_build("demo", HEAVY_BALL, (__name__,), build)
    second = load_or_build("demo", HEAVY_BALL, (__name__,), build)
    assert calls == [1] and len(list(tmp_path.glob("demo-*.json"))) == 1
    a, l = np.array([0.1, 0.2]), np.array([3.0, 4.0])
    for forms in (first, second):
        np.testing.assert_array_equal(forms["f"](a, l), a * l ** 2 + 1 / 3)
        assert forms["g"][0](a).shape == (2,) and forms["q"] == 3 and forms["inf"] == np.inf


def test_loaded_forms_equal_the_symbolic_expressions(tmp_path, monkeypatch, rng):
    """Independent route: the sympy expressions evaluated by substitution at random points."""
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    for name in METHODS:
        d = derive(name)
        m = d._method_obj
        for _ in range(2):      # built (and stored), then read back from the file
            nf = NumericForms.load(d)
            vals = dict(zip(NUMERIC_ARGS, (0.3, 0.4 if m.has_momentum else 0.0, 1.7,
                                           0.25, 1.0, -0.5)))
            vals.update({p.symbol: p.default for p in m.extra})
            zv = 0.37 + 0.2j
            for field in ("u", "v", "w", "u_loss", "v_loss", "w_loss"):
                expr = d.numeric_expr(getattr(d, field))
                sym = complex(expr.subs(b, 1 / gamma).subs({**vals, z: zv}))
                num = complex(getattr(nf, field)(zv, *vals.values()))
                assert num == pytest.approx(sym, rel=1e-12), (name, field)
            A = nf.A(*vals.values())
            want = np.array(d.numeric_expr(d.A).subs(b, 1 / gamma).subs(vals), dtype=float)
            np.testing.assert_allclose(A, want, rtol=1e-13, atol=1e-15)
    assert len(list(tmp_path.glob("numeric-forms-*.json"))) == len(METHODS)


def test_the_key_follows_the_description_and_the_code():
    k = key("numeric-forms", HEAVY_BALL, ("sgdyn.theory.symbolic",))
    assert k == key("numeric-forms", HEAVY_BALL, ("sgdyn.theory.symbolic",))
    nesterov = get_method("nesterov")
    other = Method.from_matrices("heavy-ball", nesterov.F, nesterov.K, nesterov.G, nesterov.x0)
    assert key("numeric-forms", other, ("sgdyn.theory.symbolic",)) != k      # same name, new G
    pre = get_method("preconditioned-heavy-ball").bind(s=0.0)
    assert key("numeric-forms", pre, ("sgdyn.theory.symbolic",)) != k        # a preconditioner
    assert key("numeric-forms", HEAVY_BALL, ("sgdyn.theory.symbolic", __name__)) != k
    assert key("stability-forms", HEAVY_BALL, ("sgdyn.theory.symbolic",)) != k


def test_a_damaged_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    build, calls = build_counter()
    load_or_build("demo", HEAVY_BALL, (__name__,), build)
    path = next(tmp_path.glob("demo-*.json"))
    for damage in ("{not json", json.dumps({"f": {"__source__": "def oops(:", "modules": "numpy",
                                                  "broadcast": False}})):
        path.write_text(damage)
        forms = load_or_build("demo", HEAVY_BALL, (__name__,), build)
        assert forms["f"](1.0, 2.0) == pytest.approx(4 + 1 / 3)
    assert calls == [1, 1, 1] and json.loads(path.read_text())["q"] == 3


@pytest.mark.parametrize("setting", ["off", ""])
def test_cache_off_writes_nothing(tmp_path, monkeypatch, setting):
    monkeypatch.setenv("SGDYN_CACHE_DIR", setting)
    monkeypatch.chdir(tmp_path)
    assert formcache.cache_dir() is None
    build, calls = build_counter()
    load_or_build("demo", HEAVY_BALL, (__name__,), build)
    load_or_build("demo", HEAVY_BALL, (__name__,), build)
    assert calls == [1, 1] and list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_only_costs_the_derivation(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(blocker / "cache"))
    build, calls = build_counter()
    assert load_or_build("demo", HEAVY_BALL, (__name__,), build)["q"] == 3 and calls == [1]


def test_the_default_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SGDYN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert formcache.cache_dir() == tmp_path / "sgdyn"


def test_derivation_is_lazy():
    """``derive`` does no symbolic work until a symbolic field is read."""
    from sgdyn.theory.symbolic import Derivation
    d = Derivation(HEAVY_BALL)
    assert "_fields" not in vars(d) and d.gradient_at_iterate is True
    assert "_fields" not in vars(d)
    assert d.u == _derive_fields(HEAVY_BALL)["u"] and "_fields" in vars(d)
    assert Derivation(METHODS["nesterov"]).gradient_at_iterate is False


# -- a method's own numeric form (methods.cached_method) ----------------------------------------
def _shipped_build(name):
    from sgdyn.theory.catalogue import _SHIPPED, ema
    if name.startswith("ema-"):
        return lambda: ema(parse_method(_SHIPPED[name[4:]][0], name[4:]))
    return lambda: parse_method(_SHIPPED[name][0], name)


def _loaded(description, build):
    """``cached_method`` twice through the test's folder: built and stored, then read back."""
    first = cached_method(description, build, ("sgdyn.theory.method_text",))
    return first, cached_method(description, build, ("sgdyn.theory.method_text",))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_cached_method_evaluates_as_the_parsed_one_before_building_anything(name, tmp_path,
                                                                            monkeypatch, rng):
    """Its numbers are the eagerly parsed method's, bit for bit, and (independent route) the sympy
    matrices' entries by substitution; its sympy fields are built only when asked for, and then
    it equals the parsed method."""
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    parsed = _shipped_build(name)()
    calls = []

    def build():
        calls.append(1)
        return _shipped_build(name)()
    built, loaded = _loaded(f"test\n{name}", build)
    assert calls == [1] and "F" not in vars(loaded)
    a, b = rng.uniform(0.05, 0.9, 3), (rng.uniform(-0.9, 0.9, 3) if parsed.has_momentum else 0.0)
    values = {"alpha": a, "beta": b, **{p.name: p.default for p in parsed.extra}}
    lam_ = rng.uniform(0.01, 2.0, 5)
    for m in (built, loaded):
        assert (m.dim, m.has_momentum, m.label, m.extra) == \
            (parsed.dim, parsed.has_momentum, parsed.label, parsed.extra)
        for got, want in zip(m.numeric_matrices(values), parsed.numeric_matrices(values)):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(m.initial_state(values), parsed.initial_state(values))
        np.testing.assert_array_equal(m.preconditioner_values(lam_), parsed.preconditioner_values(lam_))
    subs = {alpha: a[0], beta: b[0] if parsed.has_momentum else 0.0,
            **{p.symbol: p.default for p in parsed.extra}}
    F = np.array(parsed.F.subs(subs), dtype=float)
    np.testing.assert_allclose(loaded.numeric_matrices(values)[0][0], F, rtol=1e-15, atol=1e-15)
    bound = loaded.bind(**{p.name: p.default for p in parsed.extra}).structure
    assert "F" not in vars(bound) and "F" not in vars(loaded) and calls == [1]
    assert loaded == parsed and loaded.F == parsed.F and calls == [1, 1]
    assert bound == parsed and calls == [1, 1]     # the copy shares the build


def test_the_method_form_key_follows_the_text_the_code_and_the_versions(monkeypatch):
    k = described_key("method-form", "text\nw' = w - alpha*g(w)", ("sgdyn.theory.method_text",))
    assert k == described_key("method-form", "text\nw' = w - alpha*g(w)",
                              ("sgdyn.theory.method_text",))
    assert k != described_key("method-form", "text\nw' = w - alpha*g(w) ",
                              ("sgdyn.theory.method_text",))
    assert k != described_key("method-form", "text\nw' = w - alpha*g(w)", ("sgdyn.theory.methods",))
    monkeypatch.setattr(formcache, "_version", lambda d: "0.0.0" if d == "sgdyn" else "1.14.0")
    assert k != described_key("method-form", "text\nw' = w - alpha*g(w)",
                              ("sgdyn.theory.method_text",))
    # forms derived from a cached method are keyed by its form's key (no sympy needed)
    plain = _shipped_build("heavy-ball")()
    assert formcache.method_description(HEAVY_BALL) == \
        f"heavy-ball|method-form {vars(HEAVY_BALL)['_form']['key']}"
    assert formcache.method_description(plain).startswith("heavy-ball|ImmutableDenseMatrix")


def test_a_foreign_method_form_is_refused_when_the_matrices_are_built(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    _loaded("test\nsgd", _shipped_build("sgd"))
    sgd_file = next(tmp_path.glob("method-form-*.json"))
    nesterov = _shipped_build("nesterov")
    key = described_key("method-form", "test\nnesterov",
                        ("sgdyn.theory.method_text", "sgdyn.theory.methods"))
    (tmp_path / f"method-form-{key}.json").write_text(sgd_file.read_text())
    m = cached_method("test\nnesterov", nesterov, ("sgdyn.theory.method_text",))
    assert m.name == "sgd"            # what the file says, until the matrices are built
    with pytest.raises(RuntimeError, match="does not match its description"):
        m.F


def test_concurrent_writers_leave_one_whole_file(tmp_path, monkeypatch):
    """Each writer renames its own temporary file over the target: the file is always one whole
    version, and no temporary file stays behind."""
    from concurrent.futures import ThreadPoolExecutor
    monkeypatch.setenv("SGDYN_CACHE_DIR", str(tmp_path))
    big = {"x": list(range(20000))}
    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(lambda i: load_or_build("demo", HEAVY_BALL, (__name__,), lambda: big),
                            range(32)))
    assert all(o == big for o in out)
    assert [p.name.startswith("demo-") for p in tmp_path.iterdir()] == [True]
    assert json.loads(next(tmp_path.iterdir()).read_text()) == big
