"""Convergence region, critical learning rate and batch size, asymptotic rates and rate-optimal
hyperparameters of mini-batch SGD / momentum under the SE noise model (``docs/theory.md``,
"Convergence and divergence"; Velikanov, Kuznedelev, Yarotsky, ICLR 2023, arXiv 2206.11124,
section 4).

**When does the loss converge?** The per-mode second moments evolve by the full coupled map
``T = blockdiag(A_k) + (rank-one noise coupling)``; with SE noise (``tau2 <= tau1``) ``T`` maps
positive semi-definite second moments to positive semi-definite ones, so ``rho(T) < 1`` iff the
stationary equations have a positive solution (Krein-Rutman). Solving them mode by mode (matrix
determinant lemma for the tau2 self-term) gives *(derived)*: the loss converges iff

1. every mode is stable without noise: the roots of ``det(mu I - M(lambda_k))`` lie in the open
   unit disk; the Schur-Cohn conditions of that polynomial (``mode_stability_conditions``, derived
   symbolically; for degree 2 they are ``|c0| < 1, |c1| < 1 + c0``);
2. no mode's own second-moment map ``A_k`` (tau2 self-term included) has a pole in ``(0, 1]``:
   ``det(I - A_k) > 0``, i.e. ``1 + tau2 gamma lambda_k^2 G_k > 0`` (binding only for tau2 < 0);
3. the noise feedback ``U(1) = sum_k u(1; lambda_k) < 1``, ``u`` the transfer function of
   ``theory.symbolic.derive``; for heavy ball, ``tau2 = 0``:
   ``U(1) = (alpha tau1 gamma) sum_k lambda_k (1 + beta) / ((1 - beta)(2 + 2 beta - alpha lambda_k))``.

Each per-mode quantity depends on ``alpha lambda_k`` and ``beta`` only, and ``U(1)`` increases with
alpha and with the batch factor ``gamma`` (1/b, or (N - b)/((N - 1) b) without replacement), so
the convergent alphas form an interval ``(0, alpha_crit)`` and the convergent batches
``[batch_crit, inf)``. For ``|beta| < 1`` some alpha always converges: ``U(1) = O(alpha)``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Conditions, Result
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem, normalizing_scale
from sgdyn.theory.system import ModeSystem, extra_arguments
from sgdyn.theory.transfer import Singularities, rate_arrays, singularities, transfer_polynomials

# The symbolic parts (the conditions, the sources of their numeric forms) import sympy where they
# run: the numeric routes load those forms from the disk cache without it.


# -- symbolic: Schur-Cohn ------------------------------------------------------------------------
def schur_cohn_conditions(coeffs) -> tuple[sp.Expr, ...]:
    """Conditions ``c_j > 0`` (all j) that hold iff every root of the real polynomial with
    coefficients ``coeffs`` (highest power first) lies in the open unit disk.

    Schur-Cohn reduction (Jury's table row by row): with ``p*(z) = z^n p(1/z)``, if
    ``|a_0| < |a_n|`` then ``p`` is Schur stable iff ``(a_n p(z) - a_0 p*(z)) / z`` is; each level
    contributes ``a_n^2 - a_0^2 > 0``. Degree 2, monic: ``1 - c0^2 > 0`` and
    ``(1 - c0)^2 ((1 + c0)^2 - c1^2) > 0``.
    """
    import sympy as sp
    p = [sp.sympify(c) for c in coeffs]
    while len(p) > 1 and p[0] == 0:
        p = p[1:]
    conds = []
    while len(p) > 1:
        an, a0 = p[0], p[-1]
        conds.append(sp.expand(an ** 2 - a0 ** 2))
        rev = p[::-1]
        p = [sp.expand(an * p[i] - a0 * rev[i]) for i in range(len(p) - 1)]   # constant term is 0
    return tuple(conds)


def _sign_part(expr: sp.Expr, implied_nonzero) -> sp.Expr:
    """``expr`` with squared factors and positive constants dropped: same sign wherever the
    dropped factors do not vanish (they are powers of expressions already known to be nonzero)."""
    import sympy as sp
    const, factors = sp.factor_list(expr)
    keep = [f ** (m % 2) for f, m in factors]
    dropped = [f for f, m in factors if m % 2 == 0]
    for f in dropped:
        if not any(sp.simplify(f - g) == 0 or sp.simplify(f + g) == 0 for g in implied_nonzero):
            keep.append(f ** 2)     # cannot justify dropping it: keep the square
    return sp.sign(const) * sp.Mul(*keep)


def mode_stability_conditions(method="heavy-ball") -> Conditions:
    """Per-mode stability of the noiseless map ``M(lambda)``: expressions in alpha, beta, lambda
    that are all ``> 0`` iff the roots of ``det(mu I - M)`` lie in the open unit disk (a tuple;
    in a notebook it renders as the system of inequalities).

    Derived from ``derive(method).char_poly`` by ``schur_cohn_conditions``. Heavy ball:
    ``1 - beta^2 > 0`` and ``alpha lambda (2 + 2 beta - alpha lambda) > 0``. The spectral radius of
    the noiseless second-moment map ``A0`` is the square of the largest root modulus, so the
    same conditions decide ``rho(A0) < 1``. Extra parameters of the method stay symbols.
    """
    return _mode_stability_conditions(get_method(method).structure)


@functools.lru_cache(maxsize=None)
def _mode_stability_conditions(method) -> tuple[sp.Expr, ...]:
    import sympy as sp

    from sgdyn.theory.symbolic import derive, mu
    coeffs = sp.Poly(derive(method).char_poly, mu).all_coeffs()
    out = []
    for j, c in enumerate(schur_cohn_conditions(coeffs)):
        # degree 2: the square (a_n - a_0)^2 in the second condition is nonzero by the first
        implied = [coeffs[0] - coeffs[-1]] if j == 1 and len(coeffs) == 3 else []
        out.append(sp.factor(_sign_part(c, implied)))
    return Conditions(out)


def noise_feedback_per_mode(method="heavy-ball") -> sp.Expr:
    """Closed form of one mode's share of ``U(1)``: ``u(z = 1; lambda)`` from the derivation, in
    alpha, beta, lambda, b, tau1, tau2 (the tau2 self-term folded in: Sherman-Morrison) and the
    method's extra parameters."""
    return _noise_feedback_per_mode(get_method(method).structure)


@functools.lru_cache(maxsize=None)
def _noise_feedback_per_mode(method) -> sp.Expr:
    import sympy as sp

    from sgdyn.theory.symbolic import derive, z
    return sp.factor(sp.cancel(derive(method).u.subs(z, 1)))


# -- numeric forms ----------------------------------------------------------------------------
def _forms_spec(method) -> dict:
    """Cacheable sources of the stability conditions of ``method`` (its structure: extra
    parameters stay arguments), in (alpha, beta, lambda, extras), and of their coefficients in
    ``x = alpha lambda`` as functions of (beta, extras) when they depend on alpha and lambda
    through x only (else None)."""
    import sympy as sp

    from sgdyn.theory.formcache import Source
    from sgdyn.theory.methods import alpha, beta, lam
    from sgdyn.theory.symbolic import derive
    _x = sp.Symbol("x", positive=True)   # alpha * lambda
    ne = derive(method).numeric_expr
    conds = [ne(c) for c in mode_stability_conditions(method)]
    extra = method.extra_symbols
    x_polys = []
    for c in conds:
        e = sp.expand(sp.cancel(c.subs(alpha, _x / lam)))
        if lam in e.free_symbols:
            x_polys = None
            break
        x_polys.append([Source((beta,) + extra, co) for co in sp.Poly(e, _x).all_coeffs()])
    return {"conditions": [Source((alpha, beta, lam) + extra, c) for c in conds],
            "x_polys": x_polys}


class _Forms:
    """Lambdified stability conditions of one method (extra parameters at their bound values): in
    (alpha, beta, lambda), and, when they depend on alpha and lambda through ``x = alpha lambda``
    only, as polynomial coefficients in x (to find the deterministic edge x_edge(beta) exactly);
    otherwise the edge is found by bisection in alpha (``mode_edges``). Loaded from the disk cache
    of ``sgdyn.theory.formcache`` when present."""

    def __init__(self, method):
        from sgdyn.theory.formcache import load_or_build
        spec = load_or_build("stability-forms", method.structure, (__name__, "sgdyn.theory.symbolic"),
                             lambda: _forms_spec(method.structure))
        extra = extra_arguments(method)
        self.conditions = [functools.partial(_with_extra, f, extra) for f in spec["conditions"]]
        self.x_polys = None if spec["x_polys"] is None else \
            [[functools.partial(_with_extra, f, extra) for f in p] for p in spec["x_polys"]]

    def stable(self, a, b, lam_) -> np.ndarray:
        out = np.ones(np.broadcast(a, b, lam_).shape, dtype=bool)
        with np.errstate(invalid="ignore", over="ignore"):
            for f in self.conditions:
                out &= np.asarray(f(a, b, lam_)) > 0
        return out

    def x_edge(self, b: float) -> float:
        """Largest X with every mode stable for 0 < alpha lambda < X (0 if none, inf if unbounded)."""
        polys = [np.array([float(f(b)) for f in p]) for p in self.x_polys]
        roots = []
        for c in polys:
            if c.size > 1 and np.any(c[:-1] != 0):
                r = np.roots(c)
                roots += [float(v.real) for v in r if abs(v.imag) <= 1e-12 * abs(v) and v.real > 0]
        roots = sorted(set(roots))
        cuts = [0.0] + roots

        def ok(x):
            return all(np.polyval(c, x) > 0 for c in polys)
        for i, r in enumerate(cuts):
            nxt = cuts[i + 1] if i + 1 < len(cuts) else (2 * r + 1.0)
            if not ok(0.5 * (r + nxt)):
                return r
        return np.inf

    def mode_edges(self, betas: np.ndarray, lam_: np.ndarray) -> np.ndarray:
        """Per beta, the alpha at which the first noiseless mode turns unstable (inf if none):
        ``x_edge / lambda_max`` when the conditions depend on ``alpha lambda`` only, else a
        vectorised bisection in alpha from the smallest alpha (the stable alphas are taken to form
        an interval ``(0, edge)``, as for every shipped method)."""
        if self.x_polys is not None:
            return np.array([self.x_edge(b) for b in betas]) / lam_.max()
        def ok(a):
            return self.stable(a[:, None], betas[:, None], lam_[None, :]).all(axis=-1)
        lo = np.zeros(betas.size)
        hi = np.full(betas.size, 1.0 / lam_.max())
        grow = ok(hi)
        while grow.any() and hi.max() < 1e300:
            lo = np.where(grow, hi, lo)
            hi = np.where(grow, 4.0 * hi, hi)
            grow = grow & ok(hi)
        edge = np.where(ok(hi), np.inf, hi)
        hi = np.where(np.isfinite(edge), hi, lo)
        for _ in range(200):
            if np.all(hi - lo <= 1e-15 * hi):
                break
            mid = 0.5 * (lo + hi)
            good = ok(mid)
            lo = np.where(good, mid, lo)
            hi = np.where(good, hi, mid)
        return np.where(np.isfinite(edge), lo, np.inf)


def _forms(method) -> _Forms:
    """The stability forms of ``method`` (a Method or a shipped name), cached per method."""
    return _cached_forms(get_method(method))


@functools.lru_cache(maxsize=None)
def _cached_forms(method) -> _Forms:
    return _Forms(method)


def _with_extra(f, extra, *args):
    return f(*args, *extra)


def mode_stable(alpha_value, beta_value, lam_value, method="heavy-ball") -> np.ndarray:
    """Boolean (broadcast): the noiseless mode ``lambda`` is stable (Schur-Cohn conditions)."""
    return _forms(get_method(method)).stable(
        np.asarray(alpha_value, float), np.asarray(beta_value, float), np.asarray(lam_value, float))


def _feedback(method, lam_, a, b, g, t1, t2, w):
    """For parameter arrays a, b (shape P), modes lam_ with multiplicities w: (conditions 1-2 hold,
    U(1) = sum_k w_k u_k(1), largest single-mode share u_k(1) / U(1))."""
    a = np.asarray(a, float)[..., None]
    b = np.asarray(b, float)[..., None]
    g = np.asarray(g, float)[..., None]
    tp = transfer_polynomials(method)
    args = (a, b, lam_, g, t1, t2)
    den1 = tp.denominator(*args).sum(axis=-1)
    ok = _forms(method).stable(a, b, lam_).all(axis=-1) & (den1 > 0).all(axis=-1)
    # a subnormal den1 (a mode at its edge, beta ~ 1e-311) overflows to u = inf: unstable, as it is
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = np.where(den1 > 0, tp.numerator(*args).sum(axis=-1) / np.where(den1 > 0, den1, 1.0), 0.0)
    U1 = np.where(ok, u @ w, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(U1 > 0, u.max(axis=-1) / U1, 1.0)
    return ok, U1, share


RESOLVABLE_MOMENTUM = 5e-5


def resolvable(name: str, beta) -> float:
    """``beta`` with ``1 - |beta| >= RESOLVABLE_MOMENTUM`` (5e-5), for the threshold and rate
    queries. Closer to +-1 float64 cannot answer them: a mode's characteristic roots meet near
    ``z = 1`` and ``U(1)`` carries a relative rounding of about ``eps / (1 - |beta|)^2``: 9e-8 at
    the limit, 11 times below a 1e-6 margin around ``alpha_crit``; at ``1 - 1.3e-5`` it is 1.2e-6
    and two evaluations of ``U(1)`` disagreed on the side of 1 at ``alpha_crit (1 - 1e-6)``. The
    loss curves (the recursion) and the Monte Carlo take any ``beta`` in (-1, 1)."""
    try:
        b = float(beta)
    except (TypeError, ValueError):
        return beta         # not a number: the argument checks that follow say so
    if np.isfinite(b) and -1.0 < b < 1.0 and 1.0 - abs(b) < RESOLVABLE_MOMENTUM * (1 - 1e-9):
        raise ValueError(f"{name} = {b!r} is within {RESOLVABLE_MOMENTUM:g} of +-1, where float64 "
                         "cannot resolve the convergence threshold or the rate (their rounding "
                         "exceeds the margins); loss curves and the Monte Carlo accept it")
    return beta


def _setup(problem, method, noise):
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if not isinstance(noise, NoiseModel):
        raise ValueError(f"noise must be a theory.NoiseModel, got {type(noise).__name__}")
    return get_method(method)


def noise_feedback(problem: Problem, alpha_value, beta_value, batch, method="heavy-ball",
                   noise: NoiseModel = GAUSSIAN) -> float:
    """``U(1)`` (inf when condition 1 or 2 of the module docstring fails)."""
    resolvable("beta", beta_value)
    s = ModeSystem.build(problem, alpha_value, beta_value, batch, method, noise)
    return float(_feedback(s.method, s.problem.eigenvalues, s.alpha, s.beta, s.gamma,
                           noise.tau1, noise.tau2, s.problem.multiplicity)[1])


def converges(problem: Problem, alpha_value, beta_value, batch, method="heavy-ball",
              noise: NoiseModel = GAUSSIAN) -> bool:
    """Conditions 1-3 of the module docstring (``U(1) < 1`` with every mode stable)."""
    return noise_feedback(problem, alpha_value, beta_value, batch, method, noise) < 1.0


# -- critical learning rate -------------------------------------------------------------------
@dataclass(frozen=True)
class CriticalLearningRate(Result):
    """The largest convergent learning rate at one (beta, batch), and what limits it."""

    alpha_crit: float         # sup of the convergent alphas (0 if none)
    alpha_eff_crit: float     # alpha_crit / (1 - beta)
    limited_by: str           # "mode stability", "single-mode noise", "noise", or "diverges for every alpha"
    mode_edge: float          # alpha at which the worst noiseless mode turns unstable
    mode_share: float         # largest single-mode share of U(1) at alpha_crit
    beta: float
    batch: int

    _properties = ("reason",)

    @property
    def reason(self) -> str:
        if self.limited_by == "diverges for every alpha":
            return "diverges for every alpha"
        head = (f"alpha_crit = {self.alpha_crit:.12g} (alpha_eff = {self.alpha_eff_crit:.12g}), "
                f"limited by {self.limited_by}: ")
        share = f"{100 * self.mode_share:.3g} % of U(1) = 1"
        if self.limited_by == "mode stability":
            return head + (f"the noiseless edge, where a mode's deterministic iteration turns "
                           f"unstable (alpha = {self.mode_edge:.12g}); the worst mode carries "
                           f"{share} there")
        if self.limited_by == "single-mode noise":
            return head + (f"one mode's own second-moment resonance (it carries {share} at "
                           f"alpha_crit), {100 * (1 - self.alpha_crit / self.mode_edge):.3g} % "
                           f"below the noiseless edge alpha = {self.mode_edge:.12g}")
        return head + (f"the collective noise feedback U(1) = 1 (the worst mode carries {share}); "
                       f"the noiseless modes turn unstable at alpha = {self.mode_edge:.12g}")


def _critical_alphas(name, lam_, betas, g, t1, t2, w):
    """Vectorised bisection over betas: (alpha_crit, mode_edge, mode_share) arrays, computed at
    the normalised scale of ``Problem.normalized`` (exact power-of-two rescaling)."""
    s = normalizing_scale(lam_)
    if s != 1.0 and not name.preconditioned:
        lo, edge, share = _critical_alphas(name, lam_ / s, betas, g, t1, t2, w)
        return lo / s, edge / s, share
    betas = np.atleast_1d(np.asarray(betas, float))
    edge = _forms(name).mode_edges(betas, lam_)
    hi = np.where(np.isfinite(edge), edge, 1.0 / lam_.max())
    lo = np.zeros_like(hi)
    # unbounded edge: grow until the noise feedback stops it
    for _ in range(2000):
        grow = ~np.isfinite(edge) & _feedback(name, lam_, hi, betas, g, t1, t2, w)[0] & \
            (_feedback(name, lam_, hi, betas, g, t1, t2, w)[1] < 1)
        if not grow.any() or np.any(hi > 1e300):
            break
        lo = np.where(grow, hi, lo)
        hi = np.where(grow, 2 * hi, hi)
    for _ in range(200):
        if np.all(hi - lo <= 1e-15 * hi):
            break
        mid = 0.5 * (lo + hi)
        ok, U1, _ = _feedback(name, lam_, mid, betas, g, t1, t2, w)
        good = ok & (U1 < 1.0)
        lo = np.where(good, mid, lo)
        hi = np.where(good, hi, mid)
    share = _feedback(name, lam_, np.where(lo > 0, lo, hi * 1e-300), betas, g, t1, t2, w)[2]
    return lo, edge, share


def critical_learning_rate_curve(problem: Problem, betas, batch=1, method="heavy-ball",
                                 noise: NoiseModel = GAUSSIAN) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha_crit(beta), mode_edge(beta))`` for an array of momenta at one batch size (or an
    array of batch sizes, broadcast against ``betas``): the vectorised form of
    ``critical_learning_rate`` (same bisection, all points at once), with the noiseless edge (inf
    where no mode edge exists) beside it."""
    m = _setup(problem, method, noise)
    if np.ndim(batch) == 0:
        g = batch_factor(checks.integer("batch", batch, 1), problem.data_size)
        betas = np.atleast_1d(np.asarray(betas, float))
    else:
        g = np.array([batch_factor(checks.integer("batch", b, 1), problem.data_size)
                      for b in np.ravel(batch)]).reshape(np.shape(batch))
        betas, g = np.broadcast_arrays(np.asarray(betas, float), g)
        betas, g = np.atleast_1d(betas.ravel()), g.ravel()
    for b in betas:
        m.check_params(1.0, float(b))
        resolvable("betas", b)
    crit, edge, _ = _critical_alphas(m, problem.eigenvalues, betas, g, noise.tau1, noise.tau2,
                                     problem.multiplicity)
    return crit, edge


def critical_learning_rate(problem: Problem, beta_value=0.0, batch=1, method="heavy-ball",
                           noise: NoiseModel = GAUSSIAN) -> CriticalLearningRate:
    """The largest alpha for which the loss converges (conditions 1-3 of the module docstring),
    to relative accuracy ~1e-14 for ``|beta| <= 0.99`` (bisection on the exact convergence test:
    ``U(1)`` grows at least linearly in alpha, so its rounding moves the root by ~1e-16
    relative; checked against mpmath in the tests). Towards ``beta -> 1`` the rounding of
    ``U(1)`` grows like ``eps / (1 - beta)^2`` (measured: 6e-12 at 0.999, 3e-11 at 0.9999);
    ``1 - |beta| < 5e-5`` is refused (``resolvable``).

    ``limited_by``: "mode stability" when the noiseless edge binds (alpha_crit equal to
    ``mode_edge``, e.g. full batch ``gamma = 0``); "single-mode noise" when one mode carries more
    than half of ``U(1) = 1`` at alpha_crit (its own second-moment resonance, below the
    noiseless edge: one mode, a dominant eigenvalue, large batches); "noise" when the collective
    feedback ``U(1) ~ alpha_eff tau1 gamma Tr H / 2`` sets it.
    """
    m = _setup(problem, method, noise)
    if m.has_momentum:
        b = resolvable("beta", checks.momentum("beta", beta_value))
    else:
        b = m.check_params(1.0, beta_value)[1]
    bsz = checks.integer("batch", batch, 1)
    g = batch_factor(bsz, problem.data_size)
    a, edge, share = (float(v[0]) for v in _critical_alphas(
        m, problem.eigenvalues, b, g, noise.tau1, noise.tau2, problem.multiplicity))
    if a == 0.0:
        return CriticalLearningRate(0.0, 0.0, "diverges for every alpha", edge, float("nan"), b, bsz)
    limit = "mode stability" if a >= edge * (1 - 1e-10) else \
        "single-mode noise" if share > 0.5 else "noise"
    return CriticalLearningRate(a, a / (1 - b), limit, edge, share, b, bsz)


# -- critical batch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CriticalBatch(Result):
    """The smallest convergent batch size at one (alpha, beta)."""

    batch_crit: int | None     # smallest convergent batch (None: diverges for every batch)
    batch_crit_real: float     # the batch size at which U(1) = 1 (continuous; 0 if b = 1 converges)
    gamma_crit: float          # the batch factor at which U(1) = 1
    alpha: float
    beta: float

    _properties = ("diverges_for_every_batch", "reason")

    @property
    def diverges_for_every_batch(self) -> bool:
        return self.batch_crit is None

    @property
    def reason(self) -> str:
        if self.batch_crit is None:
            return ("diverges for every batch: a mode is unstable without noise "
                    "(alpha lambda_max beyond the deterministic edge)")
        return (f"converges for batch >= {self.batch_crit} (U(1) = 1 at batch factor "
                f"{self.gamma_crit:.10g}, batch {self.batch_crit_real:.10g})")


def critical_batch(problem: Problem, alpha_value, beta_value=0.0, method="heavy-ball",
                   noise: NoiseModel = GAUSSIAN) -> CriticalBatch:
    """Smallest batch size for which the loss converges at (alpha, beta).

    ``U(1)`` increases with the batch factor gamma (``u_k = tau1 gamma h_k / (1 + tau2 gamma h_k)``),
    so bisect for ``gamma_crit`` (``U(1) = 1``) and map it to the batch: ``b = 1 / gamma`` (i.i.d.)
    or ``b = N / (1 + gamma (N - 1))`` (without replacement from ``N = problem.data_size``).
    """
    m = _setup(problem, method, noise)
    a, b = m.check_params(alpha_value, beta_value)
    resolvable("beta", b)
    lam_ = problem.eigenvalues
    N = problem.data_size

    def good(gs):
        ok, U1, _ = _feedback(m, lam_, np.full_like(gs, a), np.full_like(gs, b), gs,
                              noise.tau1, noise.tau2, problem.multiplicity)
        return ok & (U1 < 1.0)
    if not _forms(m).stable(a, b, lam_).all():
        return CriticalBatch(None, float("inf"), 0.0, a, b)
    if good(np.array([1.0]))[0]:
        return CriticalBatch(1, 0.0, 1.0, a, b)
    lo, hi = 0.0, 1.0          # gamma = 0 converges (modes stable), gamma = 1 does not
    for _ in range(200):
        if hi - lo <= 1e-15 * hi:
            break
        mid = 0.5 * (lo + hi)
        if good(np.array([mid]))[0]:
            lo = mid
        else:
            hi = mid
    gc = hi
    b_real = 1.0 / gc if N is None else N / (1.0 + gc * (N - 1))
    cand = max(1, int(np.floor(b_real)))
    if N is not None:
        cand = min(cand, N)
    while not good(np.array([batch_factor(cand, N)]))[0]:   # first integer strictly beyond
        cand += 1
    return CriticalBatch(cand, b_real, gc, a, b)


# -- rates and the rate-optimal hyperparameters --------------------------------------------------
def asymptotic_rate(problem: Problem, alpha_value, beta_value, batch, method="heavy-ball",
                    noise: NoiseModel = GAUSSIAN) -> Singularities:
    """``rho`` with ``L_t ~ rho^t`` (``theory.transfer.singularities``): ``rate``, ``diverges``,
    ``limited_by``, ``reason``."""
    resolvable("beta", beta_value)
    return singularities(ModeSystem.build(problem, alpha_value, beta_value, batch, method, noise))


@dataclass(frozen=True)
class RateOptimum(Result):
    """The (alpha, beta) with the fastest exponential rate (``theory.optimize`` for the other
    objectives)."""

    alpha: float
    beta: float
    rate: float
    alpha_eff: float
    alpha_crit: float        # critical learning rate at the optimal beta
    limited_by: str          # what sets the rate at the optimum
    evaluations: int         # rate evaluations spent


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def optimal_rate(problem: Problem, batch, method="heavy-ball", noise: NoiseModel = GAUSSIAN,
                 grid: tuple[int, int] = (41, 25)) -> RateOptimum:
    """(alpha, beta) minimising the asymptotic rate ``rho`` over the whole convergence region,
    negative momenta included.

    Global stage: the region ``{|beta| < 1, 0 < alpha < alpha_crit(beta)}`` mapped onto a
    rectangle by ``beta = tanh(t)``, ``alpha = alpha_crit(beta) / (1 + exp(-s))``, ``grid`` points
    in t in [-4, 6] and s in [-6, 8] (rates of all points in one numba call), so every grid point
    converges whatever the region's shape. Local stage: Nelder-Mead on
    ``(atanh(beta), log alpha)`` from the best grid point. ``rho`` (the spectral radius of the full
    second-moment map) is defined and continuous on both sides of the region's boundary, where it
    crosses 1, so the boundary is neither a wall nor a trap for the local search.
    """
    from scipy import optimize
    m = _setup(problem, method, noise)
    bsz = checks.integer("batch", batch, 1)
    g = batch_factor(bsz, problem.data_size)
    lam_ = problem.eigenvalues
    t1, t2 = noise.tau1, noise.tau2
    w = problem.multiplicity
    ts = np.linspace(-4.0, 6.0, grid[0]) if m.has_momentum else np.zeros(1)
    ss = np.linspace(-6.0, 8.0, grid[1])
    betas = np.tanh(ts)
    crit = _critical_alphas(m, lam_, betas, g, t1, t2, w)[0]
    A = crit[:, None] * _sigmoid(ss)[None, :]
    B = np.broadcast_to(betas[:, None], A.shape)
    rates = rate_arrays(m, lam_, A, B, g, t1, t2, w)[0]
    count = rates.size
    i, j = np.unravel_index(np.argmin(rates), rates.shape)

    def point(v):
        return float(np.exp(v[-1])), (float(np.tanh(v[0])) if m.has_momentum else 0.0)

    def objective(v):
        nonlocal count
        count += 1
        a, bt = point(v)
        if not (0.0 < a < np.inf and abs(bt) < 1.0):
            return np.inf
        return float(rate_arrays(m, lam_, a, bt, g, t1, t2, w)[0][0])
    x0 = np.array([ts[i], np.log(A[i, j])]) if m.has_momentum else np.array([np.log(A[i, j])])
    # a simplex of grid-cell size: scipy's default (5 % of each coordinate) is nil at beta = 0
    simplex = x0 + 0.1 * np.vstack([np.zeros(x0.size), np.eye(x0.size)])
    res = optimize.minimize(objective, x0, method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-16, "maxiter": 600,
                                     "initial_simplex": simplex})
    a, bt = point(res.x if res.fun <= rates[i, j] else x0)
    sing = asymptotic_rate(problem, a, bt, bsz, m, noise)
    ac = float(_critical_alphas(m, lam_, bt, g, t1, t2, w)[0][0])
    return RateOptimum(a, bt, sing.rate, a / (1 - bt), ac, sing.limited_by, count)
