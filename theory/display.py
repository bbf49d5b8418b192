"""Results that read well in a notebook and travel as labelled data.

``Result`` is a mixin for the package's frozen dataclass results (a base class without fields: the
dataclass keeps its own fields and constructor). It gives

* a short ``repr`` (arrays as shape, dtype and range, never their entries; long strings cut) and
  an HTML table for Jupyter (``_repr_html_``);
* ``to_dict()`` (plain Python: lists, floats, nested results as dicts; ``to_json()`` for strict
  JSON, non-finite floats as null);
* ``to_xarray()``: an ``xarray.Dataset``, arrays as data variables on named dimensions with their
  coordinates (``steps`` on ``step``, ``betas`` on ``beta``, ...), numbers as 0-d variables,
  strings as attributes; ``to_dataframe()``: a ``pandas.DataFrame`` of the largest table (its
  index the coordinates), the scalars in ``DataFrame.attrs``. xarray / pandas are imported only
  there (``pip install "sgdyn[export]"``).

A result class may name its arrays' dimensions in ``_dims`` (``{"values": ("beta", "alpha")}``),
the coordinate field of a dimension in ``_coords`` (``{"beta": "betas"}``), the dimensions of its
table in ``_table`` and properties worth exporting in ``_properties``; by default the field names
below decide (``loss``, ``mean``, ... lie along ``step``).

``Conditions`` is a tuple of sympy expressions (each ``> 0``) that renders as LaTeX.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import numbers

import numpy as np

# default dimensions of array fields, by field name (a result's own _dims come first)
DIMS = {
    "loss": ("step",), "steps": ("step",), "mean": ("step",), "stderr": ("step",),
    "finite_runs": ("step",), "theory": ("step",), "z": ("step",), "tail_index": ("step",),
    "top_share": ("step",), "heavy_tailed": ("step",), "quantiles": ("quantile", "step"),
    "quantile_levels": ("quantile",), "low": ("step",), "high": ("step",),
    "eigenvalues": ("mode",), "initial": ("mode",), "multiplicity": ("mode",),
    "alphas": ("alpha",), "betas": ("beta",), "batches": ("batch",), "ratios": ("ratio",),
    "nus": ("nu",), "zetas": ("zeta",), "etas": ("eta",),
}
# the field holding a dimension's coordinate values
COORDS = {"step": "steps", "quantile": "quantile_levels", "mode": None, "alpha": "alphas",
          "beta": "betas", "batch": "batches", "ratio": "ratios", "nu": "nus", "zeta": "zetas",
          "eta": "etas"}
_MAX_STR = 80


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("sgdyn")
    except Exception:        # not installed (a bare checkout on sys.path)
        return "unknown"


def summary(value) -> str:
    """One short line for ``value``: numbers to 6 digits, arrays as shape and range."""
    if isinstance(value, Result):
        return value._short()
    if isinstance(value, np.ndarray):
        return _array_summary(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.6g}"
    if isinstance(value, str):
        return repr(value if len(value) <= _MAX_STR else value[:_MAX_STR - 3] + "...")
    if isinstance(value, (tuple, list)):
        if len(value) > 6 or any(isinstance(v, (tuple, list, np.ndarray)) for v in value):
            return f"<{type(value).__name__} of {len(value)}>"
        inner = ", ".join(summary(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= _MAX_STR else text[:_MAX_STR - 3] + "..."


def _array_summary(a: np.ndarray) -> str:
    shape = "x".join(str(n) for n in a.shape) or "scalar"
    if a.size == 0:
        return f"<{a.dtype} array {shape}, empty>"
    if a.dtype == bool:
        return f"<bool array {shape}, {int(a.sum())} True>"
    if a.dtype.kind in "iuf":
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        if a.size <= 4:
            return "[" + ", ".join(summary(x) for x in a.ravel()) + "]" if a.ndim == 1 else \
                f"<{a.dtype} array {shape}>"
        rng = f"{finite.min():.4g} .. {finite.max():.4g}" if finite.size else "no finite entry"
        extra = f", {a.size - finite.size} non-finite" if finite.size < a.size else ""
        return f"<{a.dtype} array {shape}: {rng}{extra}>"
    return f"<{a.dtype} array {shape}>"


def plain(value):
    """``value`` as plain Python (lists, floats, dicts) for JSON; results become dicts."""
    if isinstance(value, Result):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def strict_json(value):
    """``plain(value)`` with non-finite floats replaced by None (strict JSON has no NaN/inf)."""
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    return value


class Result:
    """Mixin for frozen dataclass results: short repr, HTML, dict / JSON / xarray / pandas."""

    _dims: dict = {}
    _coords: dict = {}
    _properties: tuple = ()
    _table: tuple = ()          # the dimensions of to_dataframe's table (default: the commonest)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # placed in the subclass's own namespace before @dataclass runs, which then keeps it
        # (dataclass only adds __repr__ when the class does not define one itself); a subclass
        # that writes its own __repr__ keeps that
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = Result.__repr__

    # -- display ----------------------------------------------------------------------------------
    def _items(self):
        for f in dataclasses.fields(self):
            if f.repr:
                yield f.name, getattr(self, f.name)

    def _short(self) -> str:
        return f"{type(self).__name__}(...)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={summary(v)}" for k, v in self._items()) + ")"

    def _repr_html_(self) -> str:
        doc = (type(self).__doc__ or "").strip().split("\n")[0]
        rows = "".join(f"<tr><td style='text-align:left'><code>{html.escape(k)}</code></td>"
                       f"<td style='text-align:left'>{html.escape(summary(v))}</td></tr>"
                       for k, v in list(self._items()) + [(p, getattr(self, p)) for p in self._properties])
        cap = html.escape(type(self).__name__) + (f": {html.escape(doc)}" if doc else "")
        return f"<table><caption style='text-align:left'><b>{cap}</b></caption>{rows}</table>"

    # -- conversion -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field (and the properties in ``_properties``) as plain Python."""
        out = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out.update({p: plain(getattr(self, p)) for p in self._properties})
        return out

    def to_json(self, **kwargs) -> str:
        """Strict JSON of ``to_dict()`` (non-finite floats as null)."""
        return json.dumps(strict_json(self.to_dict()), allow_nan=False, **kwargs)

    def _dims_of(self, name: str, shape: tuple) -> tuple:
        base = name.rsplit(".", 1)[-1]          # a nested result's field: its own name
        dims = self._dims.get(base) or DIMS.get(base)
        if dims is None or len(dims) != len(shape):
            dims = tuple(f"{name}_dim{i}" for i in range(len(shape)))
        return tuple(dims)

    def _labelled(self, prefix: str = ""):
        """``(arrays {name: (dims, values)}, scalars {name: value}, texts {name: str})``."""
        arrays, scalars, texts = {}, {}, {}
        for f in dataclasses.fields(self):
            name, v = prefix + f.name, getattr(self, f.name)
            self._place(name, v, arrays, scalars, texts)
        for p in self._properties:
            self._place(prefix + p, getattr(self, p), arrays, scalars, texts)
        return arrays, scalars, texts

    def _place(self, name, v, arrays, scalars, texts):
        if isinstance(v, Result):
            a, s, t = v._labelled(name + ".")
            arrays.update(a)
            scalars.update(s)
            texts.update(t)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            for f in dataclasses.fields(v):
                self._place(f"{name}.{f.name}", getattr(v, f.name), arrays, scalars, texts)
        elif isinstance(v, (bool, np.bool_, numbers.Number)) and not isinstance(v, complex):
            scalars[name] = v
        elif isinstance(v, str):
            texts[name] = v
        elif v is None:
            return
        else:
            a = np.asarray(v)
            if a.dtype == object:
                texts[name] = summary(v)
            elif a.ndim == 0:
                scalars[name] = a.item()
            else:
                arrays[name] = (self._dims_of(name, a.shape), a)

    @staticmethod
    def _consistent(arrays):
        """Rename a dimension where two arrays give it different lengths (a curve stopped early
        beside a full one): the later array gets ``dim:name``."""
        sizes = {}
        for name, (dims, v) in list(arrays.items()):
            new = []
            for d, n in zip(dims, np.shape(v)):
                if sizes.setdefault(d, n) != n:
                    d = f"{d}:{name}"
                    sizes[d] = n
                new.append(d)
            arrays[name] = (tuple(new), v)
        return arrays

    def _coordinates(self, arrays):
        """Pick coordinate arrays out of ``arrays``: {dim: values}."""
        coords = {}
        dims = {d for dd, _ in arrays.values() for d in dd}
        for d in dims:
            field = self._coords.get(d, COORDS.get(d))
            if field in arrays and arrays[field][0] == (d,):
                coords[d] = arrays.pop(field)[1]
        return coords

    def to_xarray(self):
        """An ``xarray.Dataset``: arrays on named dimensions with coordinates, numbers as 0-d
        variables, strings as attributes (plus ``result`` and ``sgdyn_version``)."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError('to_xarray needs xarray: pip install "sgdyn[export]"') from None
        arrays, scalars, texts = self._labelled()
        coords = self._coordinates(self._consistent(arrays))
        data = {k: (dims, v) for k, (dims, v) in arrays.items()}
        data.update({k: ((), v) for k, v in scalars.items()})
        attrs = {"result": type(self).__name__, "sgdyn_version": _version(), **texts}
        return xr.Dataset(data, coords={d: (d, v) for d, v in coords.items()}, attrs=attrs)

    def to_dataframe(self):
        """A ``pandas.DataFrame`` of the arrays on the dimensions most of them share (index: their
        coordinates, a MultiIndex for a grid; an array with one more leading dimension, such as
        the quantiles of a Monte Carlo run, becomes one column per entry of it, ``name[level]``),
        every number and string in ``.attrs``."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError('to_dataframe needs pandas: pip install "sgdyn[export]"') from None
        arrays, scalars, texts = self._labelled()
        coords = self._coordinates(self._consistent(arrays))
        if not arrays:
            df = pd.DataFrame({k: [v] for k, v in {**scalars, **texts}.items()})
        else:
            count: dict = {}
            for dims, v in arrays.values():
                count[dims] = count.get(dims, 0) + 1
            main = tuple(self._table) or \
                max(count, key=lambda dd: (count[dd], self._size(dd, arrays, coords)))
            shape = tuple(self._size((d,), arrays, coords) for d in main)
            levels = [coords.get(d, np.arange(n)) for d, n in zip(main, shape)]
            index = pd.Index(levels[0], name=main[0]) if len(main) == 1 else \
                pd.MultiIndex.from_product(levels, names=list(main))
            columns = {}
            for k, (dims, v) in arrays.items():
                v = np.asarray(v)
                if dims == main:
                    columns[k] = v.reshape(-1)
                elif len(dims) < len(main) and set(dims) <= set(main):
                    # e.g. alpha_crit(beta) beside values(beta, alpha): repeated along the rest
                    order = [d for d in main if d in dims]
                    w = np.moveaxis(v, [dims.index(d) for d in order], range(len(order)))
                    shape_b = [shape[i] if d in dims else 1 for i, d in enumerate(main)]
                    columns[k] = np.broadcast_to(w.reshape(shape_b), shape).reshape(-1)
                elif len(dims) == len(main) + 1 and dims[1:] == main:
                    lead = coords.get(dims[0], np.arange(v.shape[0]))
                    for label, row in zip(lead, v):
                        columns[f"{k}[{summary(label) if not isinstance(label, str) else label}]"] = \
                            np.asarray(row).reshape(-1)
            df = pd.DataFrame(columns, index=index)
        df.attrs.update({"result": type(self).__name__, "sgdyn_version": _version(), **texts,
                         **{k: (v.item() if isinstance(v, np.generic) else v) for k, v in scalars.items()}})
        return df

    @staticmethod
    def _size(dims, arrays, coords):
        for dd, v in arrays.values():
            if dd == tuple(dims):
                return np.asarray(v).size
            for i, d in enumerate(dd):
                if (d,) == tuple(dims):
                    return np.asarray(v).shape[i]
        if len(dims) == 1 and dims[0] in coords:
            return np.asarray(coords[dims[0]]).size
        n = 1
        for d in dims:
            n *= Result._size((d,), arrays, coords)
        return n


class Conditions(tuple):
    """A tuple of sympy expressions, each required to be ``> 0`` (all of them together): prints
    as the tuple it is, renders in Jupyter as the system of inequalities."""

    def _repr_latex_(self) -> str:
        import sympy as sp
        rows = r" \\ ".join(sp.latex(c) + " &> 0" for c in self)
        return r"$\displaystyle \begin{aligned} " + rows + r" \end{aligned}$"
