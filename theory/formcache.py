"""A disk cache of the numeric forms derived from a method's symbolic description.

Deriving a method's transfer functions and turning them into numpy functions (``sympy.cancel``,
``collect``/``factor`` and ``lambdify``) takes about a second per method and kind of form; a
small command needs the result, not the derivation. So the finished forms are stored as the
Python source that ``sympy.lambdify`` generates (plain numpy arithmetic on the arguments), in one
JSON file per (kind of forms, method description), and later processes execute that source
instead of deriving again.

The file name is a SHA-256 of everything the forms depend on: the method's matrices
(``sympy.srepr`` of ``F, K, G, x0``, the preconditioner and the extra parameters' names, symbol
assumptions included), the source text of the modules
that derive and lambdify them, and the sympy and sgdyn versions; any change to either gives a new
key, so a stale file is never read. A file that fails to load (truncated, edited) is rebuilt; a
file is written whole under a temporary name and then renamed, so a reader never sees half of one.

A method's own numeric form (``sgdyn.theory.methods.cached_method``, kind "method-form") is keyed
by what it is built from instead (a shipped method's name, a method's text) and the code that
builds it, so that loading it needs no sympy; forms derived from such a method are keyed by that
key (``method_description``). Nothing here imports sympy unless something is built.

Where: ``$SGDYN_CACHE_DIR`` if set (``off`` or an empty value turns the cache off), else
``$XDG_CACHE_HOME/sgdyn`` or ``~/.cache/sgdyn``; an unwritable folder just means no cache.
The files hold code that is executed on load: the cache folder must be as trusted as the package
itself (numba's ``cache=True`` files, beside the sources, are the same).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
import json
import math
import os
import pathlib
import tempfile
import types
from dataclasses import dataclass

FORMAT = 1          # bump when the file layout changes


@dataclass(frozen=True)
class Source:
    """A sympy expression to be stored as a numpy (or math) function of ``args``; ``broadcast``:
    the loaded function returns an array of the arguments' broadcast shape even where the
    expression is constant in them."""

    args: tuple
    expr: object
    modules: str = "numpy"
    broadcast: bool = False


def cache_dir() -> pathlib.Path | None:
    """The cache folder, or None when the cache is off."""
    env = os.environ.get("SGDYN_CACHE_DIR")
    if env is not None:
        if env.strip() in ("", "off", "0", "none"):
            return None
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sgdyn"


def _module_hash(name: str) -> str:
    """SHA-256 of a module's source file, found without importing the module."""
    spec = importlib.util.find_spec(name)
    path = spec.origin if spec is not None else None
    data = pathlib.Path(path).read_bytes() if path and os.path.isfile(path) else name.encode()
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _version(distribution: str) -> str:
    """An installed distribution's version, read from its metadata (importing sympy to ask it
    would cost what this cache saves)."""
    try:
        from importlib.metadata import version
        return version(distribution)
    except Exception:
        return "unknown"


def method_description(method) -> str:
    """The method's structure as ``sympy.srepr`` text (exact, with the symbols' assumptions): its
    matrices, preconditioner and extra parameters (names, in order); not the values bound to
    them, which the numeric forms take as arguments. A method with a cached form
    (``methods.cached_method``) is described by that form's key, which determines it."""
    form = getattr(method, "__dict__", {}).get("_form")
    if form:
        return f"{method.name}|method-form {form['key']}"
    import sympy as sp
    parts = [method.name] + [sp.srepr(getattr(method, k)) for k in ("F", "K", "G", "x0")]
    parts += [sp.srepr(method.preconditioner), ",".join(p.name for p in method.extra)]
    return "|".join(parts)


def key(kind: str, method, modules: tuple[str, ...]) -> str:
    """The cache key of forms of ``kind`` for ``method``, derived by the code of ``modules``."""
    return described_key(kind, method_description(method), modules)


def described_key(kind: str, description: str, modules: tuple[str, ...]) -> str:
    """The cache key of forms of ``kind`` built from ``description`` by the code of ``modules``
    (and of this module), with the sympy and sgdyn versions."""
    parts = [str(FORMAT), kind, description, _version("sympy"), _version("sgdyn")]
    parts += [f"{m}:{_module_hash(m)}" for m in modules + (__name__,)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _source_text(src: Source) -> str:
    import sympy as sp
    f = sp.lambdify(src.args, src.expr, modules=src.modules)
    return inspect.getsource(f)


def _encode(value):
    if isinstance(value, Source):
        return {"__source__": _source_text(value), "modules": value.modules,
                "broadcast": value.broadcast}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _names(code: types.CodeType) -> set:
    """Every name the code (and the functions it defines) reads from its globals or attributes."""
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _names(c)
    return out


def _namespace(modules: str, code: types.CodeType) -> dict:
    """What lambdify's namespace (``import numpy; from numpy import *; from numpy.linalg import
    *``, or the same for math) binds, for the names ``code`` reads: a star import of numpy imports
    every numpy submodule (numpy.f2py, numpy.testing, ...), a tenth of a second at start-up."""
    if modules == "numpy":
        import numpy
        ns, sources = {"numpy": numpy}, (numpy.linalg, numpy)      # the later star import wins
    elif modules == "math":
        ns, sources = {"math": math}, (math,)
    else:
        raise ValueError(f"modules must be 'numpy' or 'math', got {modules!r}")
    for name in _names(code) - set(ns):
        for mod in sources:
            public = getattr(mod, "__all__", None)
            if (name in public) if public is not None else \
                    (not name.startswith("_") and hasattr(mod, name)):
                ns[name] = getattr(mod, name)
                break
    return ns


def _function(text: str, modules: str, broadcast: bool):
    code = compile(text, "<sgdyn-form>", "exec")
    ns = _namespace(modules, code)
    exec(code, ns)
    f = ns["_lambdifygenerated"]
    if not broadcast:
        return f
    import numpy as np

    def call(*vals):
        out = f(*vals)
        return out + np.zeros(np.broadcast(*vals).shape, dtype=np.result_type(out, *vals))
    return call


def _decode(value):
    if isinstance(value, dict):
        if "__source__" in value:
            return _function(value["__source__"], value["modules"], value["broadcast"])
        if "__float__" in value:
            return float(value["__float__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def compiled(value):
    """``value`` (as ``build`` returns) with each ``Source`` a callable, made from the same source
    text a cache file holds."""
    return _decode(_encode(value))


def load_or_build(kind: str, method, modules: tuple[str, ...], build):
    """The forms of ``kind`` for ``method``: from the cache if present, else ``build()`` (a
    nested dict / list of ``Source`` and JSON values), stored, and returned decoded (each
    ``Source`` a callable)."""
    return load_or_build_described(kind, method_description(method), modules, build)[0]


def load_or_build_described(kind: str, description: str, modules: tuple[str, ...], build):
    """``(forms, key)``: as ``load_or_build``, for forms built from ``description`` (text that,
    with the code of ``modules``, determines what ``build`` returns)."""
    k = described_key(kind, description, modules)
    folder = cache_dir()
    path = None
    if folder is not None:
        path = folder / f"{kind}-{k}.json"
        try:
            return _decode(json.loads(path.read_text())), k
        except (OSError, ValueError, KeyError, TypeError, SyntaxError, NameError):
            pass            # absent or unreadable: rebuild below
    encoded = _encode(build())
    if path is not None:
        _write_atomically(folder, path, json.dumps(encoded))
    return _decode(encoded), k


def _write_atomically(folder: pathlib.Path, path: pathlib.Path, text: str) -> None:
    """Write ``text`` to a fresh temporary file beside ``path``, then rename it over ``path``:
    readers see the old file or the whole new one, never part of one, whatever the number of
    processes and threads writing."""
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:             # a read-only home or a full disk: work without the cache
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
