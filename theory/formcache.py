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
key, so a stale file is never read. A file that fails to load (truncated, edited) is rebuilt.

Where: ``$SGDYN_CACHE_DIR`` if set (``off`` or an empty value turns the cache off), else
``$XDG_CACHE_HOME/sgdyn`` or ``~/.cache/sgdyn``; an unwritable folder just means no cache.
The files hold code that is executed on load: the cache folder must be as trusted as the package
itself (numba's ``cache=True`` files, beside the sources, are the same).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import pathlib
import sys
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
    mod = sys.modules[name]
    path = getattr(mod, "__file__", None)
    data = pathlib.Path(path).read_bytes() if path else name.encode()
    return hashlib.sha256(data).hexdigest()


def method_description(method) -> str:
    """The method's structure as ``sympy.srepr`` text (exact, with the symbols' assumptions): its
    matrices, preconditioner and extra parameters (names, in order); not the values bound to
    them, which the numeric forms take as arguments."""
    import sympy as sp
    parts = [method.name] + [sp.srepr(getattr(method, k)) for k in ("F", "K", "G", "x0")]
    parts += [sp.srepr(method.preconditioner), ",".join(p.name for p in method.extra)]
    return "|".join(parts)


def key(kind: str, method, modules: tuple[str, ...]) -> str:
    """The cache key of forms of ``kind`` for ``method``, derived by the code of ``modules``."""
    import sympy as sp
    try:
        from importlib.metadata import version
        pkg = version("sgdyn")
    except Exception:
        pkg = "unknown"
    parts = [str(FORMAT), kind, method_description(method), sp.__version__, pkg]
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


_NAMESPACES: dict = {}


def _namespace(modules: str) -> dict:
    if modules not in _NAMESPACES:
        ns: dict = {}
        if modules == "numpy":
            exec("import numpy\nfrom numpy import *\nfrom numpy.linalg import *", ns)
        elif modules == "math":
            exec("import math\nfrom math import *", ns)
        else:
            raise ValueError(f"modules must be 'numpy' or 'math', got {modules!r}")
        _NAMESPACES[modules] = ns
    return _NAMESPACES[modules]


def _function(text: str, modules: str, broadcast: bool):
    ns = dict(_namespace(modules))
    exec(compile(text, "<sgdyn-form>", "exec"), ns)
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


def load_or_build(kind: str, method, modules: tuple[str, ...], build):
    """The forms of ``kind`` for ``method``: from the cache if present, else ``build()`` (a
    nested dict / list of ``Source`` and JSON values), stored, and returned decoded (each
    ``Source`` a callable)."""
    folder = cache_dir()
    path = None
    if folder is not None:
        path = folder / f"{kind}-{key(kind, method, modules)}.json"
        try:
            return _decode(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, SyntaxError, NameError):
            pass            # absent or unreadable: rebuild below
    encoded = _encode(build())
    if path is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(encoded))
            os.replace(tmp, path)
        except OSError:
            pass            # read-only home, full disk: work without the cache
    return _decode(encoded)
