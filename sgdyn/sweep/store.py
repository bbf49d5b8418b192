"""The on-disk store of a sweep: a local Zarr group laid out as an xarray Dataset.

Why Zarr (not NetCDF/HDF5): every chunk of every variable is its own file, written atomically
(zarr >= 3: temporary file + rename), so a sweep killed at any instant leaves each chunk either
old or new, and a block of results is one chunk per variable, written in place without touching
the rest. An HDF5 file killed mid-write can lose its metadata, and xarray writes NetCDF regions only
by rewriting or appending along one dimension.

Layout: one dimension per axis (coordinates = axis values), chunked like ``SweepSpec.blocks``;
a variable ``{quantity}_{field}`` per output field (categories stored as int8 codes with the
category names in the attribute ``categories``, -1 = not computed), ``seed`` (per point),
``done`` (bool) and ``session`` (which run of the sweep computed the point, -1 = none). A block's
values are written first and its ``done`` flags last, so a point flagged done is complete.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil

import numpy as np

from sgdyn.sweep.grid import SweepSpec

INSTALL_HINT = "pip install 'sgdyn[sweep]'"
_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_, "category": np.int8}
_FILL = {"float": np.nan, "int": -1, "bool": False, "category": -1}


def require(*modules):
    """Import optional dependencies, or say how to install them."""
    import importlib
    out = []
    for name in modules:
        try:
            out.append(importlib.import_module(name))
        except ImportError as exc:
            raise ImportError(f"sgdyn sweeps need the optional package {name!r} ({exc}); "
                              f"install with: {INSTALL_HINT}") from exc
    return out if len(out) > 1 else out[0]


def variable(quantity, field) -> str:
    return f"{quantity.name}_{field.name}"


class SweepStore:
    """A store bound to one SweepSpec and its quantities."""

    def __init__(self, path, spec: SweepSpec, quantities):
        self.path = os.fspath(path)
        self.spec = spec
        self.quantities = tuple(quantities)

    # -- creation / reopening ---------------------------------------------------------------
    @classmethod
    def open(cls, path, spec: SweepSpec, quantities, overwrite: bool = False) -> "SweepStore":
        """Create the store, or reopen it to resume; a store of another sweep is an error.
        Call it holding ``lock(path)``: creation is then atomic (built under a temporary name
        and renamed), and a creation killed half-way leaves only that temporary folder, which
        the next ``open`` removes."""
        zarr = require("zarr")
        store = cls(path, spec, quantities)
        folder = os.path.dirname(os.path.abspath(store.path))
        if not os.path.isdir(folder):
            raise ValueError(f"store {store.path!r}: folder {folder!r} does not exist")
        if os.path.exists(store.path) and not os.path.isdir(store.path):
            raise ValueError(f"store {store.path!r} is a file, not a sweep store")
        for leftover in _partials(store.path):
            shutil.rmtree(leftover, ignore_errors=True)
        if os.path.exists(store.path) and overwrite:
            shutil.rmtree(store.path)
        if not os.path.exists(store.path):
            tmp = f"{store.path}.partial-{os.getpid()}"
            store._create(tmp)
            os.rename(tmp, store.path)
            return store
        try:
            attrs = dict(zarr.open_group(store.path, mode="r").attrs)
        except Exception as exc:   # zarr raises several types for "not a group"
            raise ValueError(f"store {store.path!r} exists and is not a sweep store ({exc})") from None
        if attrs.get("sweep_spec") != spec.to_json():
            raise ValueError(f"store {store.path!r} holds a different sweep "
                             f"({attrs.get('sweep_spec')}); use another path or overwrite it")
        return store

    def _create(self, path):
        xr = require("xarray")
        spec = self.spec
        dims = spec.axis_names
        data, encoding = {}, {}
        for q in self.quantities:
            for f in q.fields:
                name = variable(q, f)
                attrs = {"categories": list(f.categories)} if f.kind == "category" else {}
                data[name] = (dims, np.full(spec.shape, _FILL[f.kind], dtype=_DTYPES[f.kind]), attrs)
        data["seed"] = (dims, spec.seeds())
        data["done"] = (dims, np.zeros(spec.shape, dtype=bool))
        data["session"] = (dims, np.full(spec.shape, -1, dtype=np.int16))
        for name in data:
            encoding[name] = {"chunks": spec.chunk_shape, "_FillValue": None}
        ds = xr.Dataset(data, coords={name: list(values) for name, values in spec.axes},
                        attrs={"sweep_spec": spec.to_json(), "sessions": 0})
        ds.to_zarr(path, mode="w-", encoding=encoding, zarr_format=2, consolidated=True)

    # -- progress ----------------------------------------------------------------------------
    def _group(self, mode="r+"):
        return require("zarr").open_group(self.path, mode=mode)

    def done(self) -> np.ndarray:
        return self._group("r")["done"][...]

    def start_session(self) -> int:
        g = self._group()
        session = int(g.attrs.get("sessions", 0))
        g.attrs["sessions"] = session + 1
        return session

    def write(self, block: tuple, results: dict, session: int) -> None:
        """Write one block: values first, then ``session``, then ``done``."""
        g = self._group()
        shape = tuple(s.stop - s.start for s in block)
        for q in self.quantities:
            for f in q.fields:
                g[variable(q, f)][block] = _encode(f, results[q.name][f.name]).reshape(shape)
        g["session"][block] = np.full(shape, session, dtype=np.int16)
        g["done"][block] = np.ones(shape, dtype=bool)


def _partials(path: str) -> list[str]:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    stem = os.path.basename(path) + ".partial-"
    return [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(stem)]


@contextlib.contextmanager
def lock(path):
    """Hold the store's lock (an advisory ``flock`` on ``<store>.lock`` beside it) while one
    sweep creates, resumes or writes it: a second sweep on the same store stops at once with a
    clear message instead of racing it. The kernel drops the lock when its holder dies (even by
    SIGKILL), so a killed sweep never leaves the store locked."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"store {path!r}: folder {folder!r} does not exist")
    try:
        import fcntl
    except ImportError:         # no flock on this platform: run unguarded
        yield
        return
    try:
        fh = open(path + ".lock", "a+")
    except OSError as exc:
        raise ValueError(f"store {path!r}: cannot create its lock file ({exc.strerror})") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ValueError(f"store {path!r} is in use by another sweep ({holder}); wait for it "
                             "to finish, then run this one again to resume") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _encode(field, values) -> np.ndarray:
    values = np.asarray(values)
    if field.kind != "category":
        return values.astype(_DTYPES[field.kind])
    codes = {c: i for i, c in enumerate(field.categories)}
    try:
        return np.array([codes[v] for v in values.ravel()], dtype=np.int8).reshape(values.shape)
    except KeyError as exc:
        raise ValueError(f"field {field.name!r} must be one of {field.categories}, got {exc}") from None


def open_sweep(path):
    """The sweep at ``path`` as an xarray Dataset (loaded): category codes become strings
    ("" where not computed); ``done`` says which points hold results."""
    xr = require("xarray")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"store {path!r} does not exist")
    with xr.open_zarr(path, consolidated=False) as ds:
        ds = ds.load()
    for name, var in ds.data_vars.items():
        cats = var.attrs.get("categories")
        if cats is not None:
            labels = np.array(list(cats) + [""])
            ds[name] = (var.dims, labels[np.where(var.values < 0, len(cats), var.values)])
    ds.attrs["sweep_spec"] = json.loads(ds.attrs["sweep_spec"])
    return ds
