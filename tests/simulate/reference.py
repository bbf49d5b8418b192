"""Plain numpy simulators (one run at a time) that replay the kernel's random draws: the
independent implementations the numba kernels are checked against.

* heavy ball, Nesterov and SGD in their textbook momentum forms (``v <- beta v - alpha g``);
* any other method by interpreting its update equations as written (``Method.text``): each line
  ``x' = rhs`` evaluated in order with numpy, ``g(point)`` the mini-batch gradient at ``point`` —
  never through the matrices ``(F, K, G)`` the kernels use.
"""
from __future__ import annotations

import re

import numpy as np

from sgdyn.simulate.cpu import OVERFLOW_GUARD
from sgdyn.simulate.features import replay, replay_projected, sampling_inputs

_TEXTBOOK = ("heavy-ball", "nesterov", "sgd")


def reference_run(spec, run, method, values):
    """Losses at ``spec.recorded_steps`` of run ``run`` (up to where the guard stops it).

    ``method``: the ``Method`` the spec was built from; ``values``: its hyperparameters as scalars or
    per-step arrays (``{"alpha": .., "beta": .., extra names: ..}``).
    """
    kind, sqrt_lam, sigma, rows, residuals = sampling_inputs(spec)
    projected = spec.sampler == "projected"
    batch = np.ascontiguousarray(np.broadcast_to(spec.batch, (spec.steps,)) if spec.stride == 0
                                 else spec.batch[:spec.steps], dtype=np.int64)
    draws = replay_projected(np.uint64(spec.seed), run, batch, sqrt_lam.size) if projected else \
        replay(np.uint64(spec.seed), run, batch, kind, sqrt_lam, sigma, rows, residuals)
    lam = spec.eigenvalues
    floor = 0.5 * spec.label_noise
    vals = {k: np.broadcast_to(np.asarray(v, float), (max(spec.steps, 1),)) for k, v in values.items()}
    e0 = np.array(spec.initial_error, dtype=np.float64)
    step = _textbook if method.name in _TEXTBOOK else _interpreted(method, lam)
    state = {"w": e0.copy(), "v": np.zeros_like(e0)} if method.name in _TEXTBOOK else \
        {name: spec.x0[i] * e0 for i, name in enumerate(method.state)}
    out = method.name if method.name in _TEXTBOOK else method.state[0]
    curve = [0.5 * lam @ (state["w"] if method.name in _TEXTBOOK else state[out]) ** 2 + floor]
    for t in range(spec.steps):
        b = batch[t]
        grad = _gradient(sqrt_lam, sigma, draws, projected, t, b)
        state = step(method.name, state, grad, {k: v[t] for k, v in vals.items()})
        e = state["w"] if method.name in _TEXTBOOK else state[out]
        loss = 0.5 * lam @ e ** 2 + floor
        if not loss < OVERFLOW_GUARD:
            break
        curve.append(loss)
    curve = np.array(curve)
    rec = spec.recorded_steps
    return curve[rec[rec < curve.size]]


def _gradient(sqrt_lam, sigma, draws, projected, t, b):
    if projected:
        pairs, ws = draws
        return lambda p: _projected_gradient(sqrt_lam, sigma, p, pairs[t, :b], ws[t])
    feats, eps = draws
    x, e = feats[t, :b], eps[t, :b]
    return lambda p: x.T @ (x @ p - e) / b


def _textbook(name, state, grad, v):
    """PyTorch's momentum form: v <- beta v - alpha g(point), w <- w + v."""
    w, vel = state["w"], state["v"]
    beta = v.get("beta", 0.0)
    point = w + beta * vel if name == "nesterov" else w
    vel = beta * vel - v["alpha"] * grad(point)
    return {"w": w + vel, "v": vel}


def _interpreted(method, lam):
    """Evaluate the method's update equations in order, as written."""
    lines, pre = [], "1"
    for raw in re.split(r"[;\n]", method.text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, rest = line.partition(":")
        if sep and key.strip() == "precondition":
            pre = rest.strip()
        elif sep and key.strip() in ("name", "params", "output", "init", "references"):
            continue
        else:
            var, rhs = line.split("=", 1)
            lines.append((var.strip().rstrip("'").strip(), re.sub(r"([A-Za-z_]\w*)'", r"\1__new", rhs)))

    def step(name, state, grad, values):
        env = {**values, "np": np, **state}
        p = eval(pre.replace("lambda", "lam_"), {"lam_": lam, **values})
        cache = {}

        def g(point):
            key = point.tobytes()
            if key not in cache:
                cache[key] = p * grad(point)
            return cache[key]
        env["g"] = g
        new = {}
        for var, rhs in lines:
            new[var] = eval(rhs, {}, env)
            env[var + "__new"] = new[var]
        return new
    return step


def _projected_gradient(sqrt_lam, sigma, p, pairs, w):
    """The batch gradient from the split of each sample along u = sqrt(lambda) p (see
    ``simulate.features.projected_gradient``), written with numpy."""
    u = sqrt_lam * p
    norm = np.linalg.norm(u)
    uhat = u / norm
    z, eps = pairs[:, 0], sigma * pairs[:, 1]
    c = norm * z - eps
    along = np.mean(c * z)
    across = np.sqrt(np.sum(c ** 2)) / len(z) * (w - (w @ uhat) * uhat)
    return sqrt_lam * (along * uhat + across)
