"""The second-moment recursion under the SE noise model, for any method, any schedule: O(N T).

Per mode ``k`` (eigenvalue ``lambda_k``, multiplicity ``w_k``, preconditioner ``p_k``) the state's
second moments ``P = E[x x^T]`` (stored as ``X = vech(P)``, q = d(d+1)/2 entries) move at step
``t`` by ``P' = M P M^T + (p K)(p K)^T s`` with ``M = F_t + x_k K_t G_t``, ``x_k = lambda_k p_k``
(``sgdyn.theory.symbolic``):

    X' = vech(M P M^T) + kk_t p_k^2 s_k,
    s_k = gamma_t (tau1 lambda_k D_t - tau2 lambda_k^2 (g_t . X) + sigma^2 lambda_k),
    D_t = sum_k w_k lambda_k (g_t . X_k),     L_t = 1/2 sum_k w_k lambda_k X_k[0] + sigma^2 / 2,

with ``kk = vech(K K^T)`` and ``g . X = G P G^T`` computed once per step from the method's
matrices at that step's parameters (``step_coefficients``), and ``gamma_t`` the batch factor of
``b_t`` (``sgdyn.theory.sampling``). Exact for Gaussian features (SE with ``tau = (1, -1)``), the
SE closure otherwise (Velikanov, Kuznedelev, Yarotsky, ICLR 2023).

The kernel (generated per state dimension and sparsity: ``sgdyn.theory.kernel_source``) keeps the
state as a structure of arrays ``(q, N)`` and reads per mode only its state and five numbers
(``lambda, x, p^2, w lambda`` and the label-noise source): ``M`` is recomputed from ``lambda``
instead of loaded, and the loop over modes has no branches, so LLVM vectorises it. A constant
schedule is one kernel call over the whole horizon; otherwise the schedule is evaluated in chunks
of steps, so memory is ``O(N + chunk + checkpoints)`` whatever the horizon.

From ``2 * MODES_PER_THREAD`` modes on, each call runs on several threads (``team_size``,
``run_team``): each owns a contiguous slice of the modes for the whole call and the threads
meet once per step to add their partial ``D`` and loss (``sgdyn.theory.spin``). Every mode's
arithmetic is the same as on one thread; only the order in which ``D_t`` and ``L_t`` are summed
changes (slices, then the partials in thread order, the same in every thread, so the result does
not depend on timing). ``D_t`` is a sum of nonnegative terms, so a different order changes it by
a few ulps, and the curve by those ulps carried through the map: measured on the stored curves of
``tests/theory/test_recursion_threads.py``, at most 2.4e-13 relative after 1000 steps at
``beta = 0.99`` (where rounding differences grow about linearly in t, as between any two
summation orders, the one-thread kernel's included) and ~1e-14 elsewhere, below the 1e-12 the
tests ask.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from sgdyn.theory import kernel_source
from sgdyn.theory.kernel_source import vech_pairs
from sgdyn.theory.methods import MAX_STATE_DIM

OVERFLOW_GUARD = 1e200
CHUNK = 4096          # steps per evaluation of a non-constant schedule
MODES_PER_THREAD = 2048   # a team from 4096 modes: four times the break-even of heavy ball on the
                          # quiet 2-core machine (N ~ 1000, where half the modes saves what the
                          # per-step barrier costs; benchmarks/theory_loss.py), margin for a busy one
THREADS_VARIABLE = "SGDYN_RECURSION_THREADS"
_ALONE, _ALONE_PARTS = np.zeros(1, np.int64), np.zeros(1)   # never touched by a team of one


def team_size(n_modes: int) -> int:
    """How many threads step the recursion's ``n_modes`` modes: ``SGDYN_RECURSION_THREADS`` when
    set (any size, for tests and benchmarks), else one per ``MODES_PER_THREAD`` modes, at most the
    cores this process may use less those busy at the call (``running_elsewhere``) and
    ``numba.get_num_threads()``."""
    forced = os.environ.get(THREADS_VARIABLE)
    if forced is not None:
        team = int(forced) if forced.strip().isdigit() else 0
        if team < 1:
            raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, got {forced!r}")
    elif n_modes < 2 * MODES_PER_THREAD:
        return 1
    else:
        import numba
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        team = max(1, min((cores or 1) - running_elsewhere(), numba.get_num_threads(),
                          n_modes // MODES_PER_THREAD))
    from sgdyn.theory import spin       # numba: imported where a kernel runs, not with the module
    return team if spin.AVAILABLE else 1


def running_elsewhere() -> int:
    """Threads running or ready to run right now besides the caller (Linux ``/proc/loadavg``; 0
    where it cannot be read). A team steps in lockstep, so a core taken by another process slows
    every step: measured on 2 cores with one busy, heavy ball at N = 10^4 took 1.1 ns per
    mode-step on two threads against 0.74 on one."""
    try:
        with open("/proc/loadavg") as fh:
            return max(0, int(fh.read().split()[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return 0


def run_team(kernel, team: int, args: tuple):
    """``kernel(*args, lo, hi, tid, team, counts, parts)`` on ``team`` OS threads at once, thread
    ``tid`` stepping modes ``lo..hi-1`` (slices cut at multiples of 8 modes, so no two threads
    write one cache line of the state), the calling thread being thread 0; its result.

    Real threads (not numba's ``prange``, which may run the slices one after another) so that
    every thread of a team is running while the others wait for it; a thread that fails releases
    the others' waits (``spin.RELEASE``) before its error is raised here."""
    from sgdyn.theory import spin
    n = args[0].size
    if team == 1:
        return kernel(*args, 0, n, 0, 1, _ALONE, _ALONE_PARTS)
    counts = np.zeros(team * spin.STRIDE, np.int64)
    parts = np.zeros(2 * team * spin.STRIDE)
    cut = [min(n, (n * j // team + 7) // 8 * 8) for j in range(team)] + [n]
    results, errors = [None] * team, []

    def member(tid):
        try:
            results[tid] = kernel(*args, cut[tid], cut[tid + 1], tid, team, counts, parts)
        except BaseException as exc:        # re-raised by the calling thread
            errors.append(exc)
            counts[:] = spin.RELEASE

    others = [threading.Thread(target=member, args=(tid,), daemon=True) for tid in range(1, team)]
    for t in others:
        t.start()
    member(0)
    for t in others:
        t.join()
    if errors:
        raise errors[0]
    return results[0]


def on_cache_lines(shape, values=None) -> np.ndarray:
    """A float64 array of ``shape`` (holding ``values`` if given) whose data starts on a 64-byte
    cache line. numpy's large blocks start 16 bytes past one, and then half the kernel's vector
    loads and stores straddle two lines (heavy ball at N = 10^4, the same kernel alternating in
    one process: 0.73 ns per mode-step on cache lines, 1.1-1.9 off them)."""
    size = int(np.prod(shape))
    block = np.empty(size + 8)
    start = (-block.ctypes.data % 64) // 8
    out = block[start:start + size].reshape(shape)
    if values is not None:
        out[...] = values
    return out


def step_coefficients(F, K, G):
    """``(F, KG, kk, g)`` per step from the method's matrices ``F (c, d, d)``, ``K (c, d)``,
    ``G (c, d)``: ``KG = K G^T``, ``kk = vech(K K^T)``, ``g`` with ``g . vech(P) = G P G^T``."""
    pairs = vech_pairs(F.shape[-1])
    r = np.array([a for a, _ in pairs])
    s = np.array([b for _, b in pairs])
    KG = K[:, :, None] * G[:, None, :]
    kk = K[:, r] * K[:, s]
    g = G[:, r] * G[:, s] * np.where(r == s, 1.0, 2.0)[None, :]
    return (np.ascontiguousarray(F), np.ascontiguousarray(KG), np.ascontiguousarray(kk),
            np.ascontiguousarray(g))


def structure(method) -> tuple[tuple, tuple]:
    """Which entries of ``F`` and of ``K G`` the method can make nonzero (symbolically): the
    sparsity the generated kernel is specialised to (``Method.sparsity``)."""
    return method.sparsity


def kernel_module(method, inputs: "ModeInputs | None" = None):
    """The generated kernel module of ``method``'s dimension and sparsity (and of the per-mode
    arrays ``inputs`` needs: preconditioner, multiplicities, label noise)."""
    return kernel_source.load(method.dim, *structure(method), per_mode(inputs))


def per_mode(inputs: "ModeInputs | None") -> tuple[bool, bool, bool]:
    """Which per-mode arrays a kernel must read (preconditioner, multiplicities, label noise):
    all of them without ``inputs``."""
    if inputs is None:
        return True, True, True
    return (bool(np.any(inputs.pp != 1.0)), bool(np.any(inputs.wl != inputs.lam)),
            bool(np.any(inputs.src != 0.0)))


@dataclass(frozen=True)
class ModeInputs:
    """Per-mode inputs of the kernel: ``lam``, ``lp = lambda p``, ``pp = p^2``, ``wl = w lambda``
    and the label-noise source ``src`` (``sigma^2 lambda``, SE), all ``(N,)``; the initial state
    ``X0`` ``(q, N)``; ``tau1, tau2`` and the loss floor ``sigma^2 / 2``."""

    lam: np.ndarray
    lp: np.ndarray
    pp: np.ndarray
    wl: np.ndarray
    src: np.ndarray
    X0: np.ndarray
    tau1: float
    tau2: float
    floor: float


@dataclass(frozen=True)
class Moments:
    """What a recursion returns: at the recorded ``steps`` (up to where it stopped), the loss and
    ``D_t = sum_k w_k lambda_k E[(G x_k)^2]``; ``completed`` the last step reached; ``stopped``
    whether the overflow guard stopped it."""

    steps: np.ndarray
    loss: np.ndarray
    drive: np.ndarray
    completed: int
    stopped: bool


def _coefficients(method, values: dict, gamma_of, constant: bool) -> tuple:
    """Kernel arguments ``(F, KG, kk, g, gamma)`` for the steps whose parameters are ``values``:
    all of them (constant: one step, ``g`` repeated for the next) or all but the last, whose ``g``
    only closes ``D`` at the chunk's end."""
    F, KG, kk, g = step_coefficients(*method.numeric_matrices(values))
    gam = np.ascontiguousarray(gamma_of(values["batch"]), dtype=np.float64)
    if constant:
        return F, KG, kk, np.ascontiguousarray(np.vstack([g, g])), gam[:1]
    return F[:-1], KG[:-1], kk[:-1], g, gam[:-1]


def run_moments(inputs: ModeInputs, method, schedule_values, gamma_of, steps: int,
                recorded: np.ndarray, constant: bool) -> Moments:
    """Drive the kernel over ``steps`` steps, recording at ``recorded`` (sorted, in ``0..steps``).

    ``schedule_values(t0, t1)`` gives the parameter arrays of steps ``t0..t1-1`` (for a constant
    schedule it is called once with ``(0, 1)``), ``gamma_of(batch array)`` the batch factors.
    """
    if method.dim > MAX_STATE_DIM:
        raise ValueError(f"the recursion handles per-mode states up to dimension {MAX_STATE_DIM}")
    kernel = kernel_module(method, inputs).kernel
    team = team_size(inputs.lam.size)
    q, n = inputs.X0.shape
    Z = on_cache_lines((2, q, -(-n // 8) * 8))      # every row starts on a cache line
    Z[0, :, :n] = inputs.X0
    parity = 0
    fixed = _coefficients(method, schedule_values(0, 1), gamma_of, True)
    L0 = 0.5 * float(inputs.wl @ inputs.X0[0]) + inputs.floor
    D = float(inputs.wl @ (fixed[3][0] @ inputs.X0))
    rec = np.asarray(recorded, dtype=np.int64)
    out_L, out_D = np.empty(rec.size), np.empty(rec.size)
    written = 0
    if rec.size and rec[0] == 0:
        out_L[0], out_D[0] = L0, D
        written = 1
    if not abs(L0) < OVERFLOW_GUARD:
        return Moments(rec[:written], out_L[:written], out_D[:written], 0, True)
    args = tuple(on_cache_lines(n, a) for a in (inputs.lam, inputs.lp, inputs.pp, inputs.wl,
                                                inputs.src))
    consts = (inputs.tau1, inputs.tau2, inputs.floor)
    t0 = 0
    while t0 < steps:
        t1 = steps if constant else min(steps, t0 + CHUNK)
        lo, hi = np.searchsorted(rec, [t0, t1], side="right")
        local = rec[lo:hi] - t0
        if constant:
            coeffs, stride = fixed, 0
            if not (local.size and local[-1] == t1 - t0):   # the kernel runs to its last record
                local = np.append(local, t1 - t0)
        else:
            # the parameters of step t1 close D_{t1} (the horizon's last step repeats its own)
            vals = schedule_values(t0, min(t1 + 1, steps))
            if t1 == steps:
                vals = {k: np.append(v, v[-1]) for k, v in vals.items()}
            coeffs, stride = _coefficients(method, vals, gamma_of, False), 1
        buf_L, buf_D = np.empty(local.size + 1), np.empty(local.size + 1)
        done, parity, D = run_team(kernel, team, (*args, Z, parity, *coeffs, stride, *consts, D,
                                   np.ascontiguousarray(local, dtype=np.int64), buf_L, buf_D,
                                   OVERFLOW_GUARD))
        if done < t1 - t0:
            # the guard fired: keep the checkpoints before it and the loss where it fired
            m = int(np.searchsorted(local, done, side="left")) + 1
            steps_out = np.concatenate([rec[:written], rec[lo:lo + m - 1], [t0 + done]])
            return Moments(steps_out, np.concatenate([out_L[:written], buf_L[:m]]),
                           np.concatenate([out_D[:written], buf_D[:m]]), t0 + done, True)
        out_L[written:written + hi - lo] = buf_L[:hi - lo]
        out_D[written:written + hi - lo] = buf_D[:hi - lo]
        written += hi - lo
        t0 = t1
    return Moments(rec[:written], out_L[:written], out_D[:written], steps, False)
