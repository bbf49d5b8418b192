"""One reduction per step across threads that each own a slice of the modes, inside numba code.

The recursion's threads (``sgdyn.theory.recursion``) are launched once per kernel call and step
together: at every step each thread publishes its partial sums and waits for every other one's,
then all of them add the partials in the same order, so every thread holds the same numbers and
takes the same decisions (the overflow guard) and the result does not depend on timing.

The wait is a spin on per-thread step counters with acquire loads and release stores (LLVM
atomics through ``numba.extending.intrinsic``: numba has no CPU atomics, and with plain loads
LLVM may hoist the load out of the spin loop), with x86's ``pause`` between polls. After ``SPINS``
polls a waiting thread yields its core (``sched_yield``), so more threads than cores (a loaded or
oversubscribed machine) still make progress. A thread may run at most one step ahead of the
slowest (it waits for the step's partials before it starts the next), so two slots per thread
hold every partial still being read.
"""
from __future__ import annotations

import ctypes
import platform

from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

STRIDE = 8            # 64-bit words per cache line: a thread's counter and partials share none
SPINS = 64            # polls (a few microseconds with the pause between them) before a yield
RELEASE = 1 << 62     # a counter past every step: writing it lets every waiter through


def _register_yield() -> bool:
    """Make libc's ``sched_yield`` callable from compiled code (by name, so cached kernels find
    it in a new process); False where there is none (then the recursion runs on one thread)."""
    try:
        address = ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value
    except (AttributeError, OSError, TypeError):
        return False
    llvm_binding.add_symbol("sched_yield", address)
    return True


AVAILABLE = _register_yield()
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@intrinsic
def _load_acquire(typingctx, arr, i):
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load_atomic(builder.gep(data, [args[1]]), "acquire", 8)
    return arr.dtype(arr, types.intp), codegen


@intrinsic
def _store_release(typingctx, arr, i, value):
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        builder.store_atomic(args[2], builder.gep(data, [args[1]]), "release", 8)
        return context.get_dummy_value()
    return types.void(arr, types.intp, arr.dtype), codegen


@intrinsic
def _pause(typingctx):
    """x86's spin-wait hint (other processors: nothing): the poll leaves the pipeline and the
    partner's cache line alone for a few dozen cycles. Measured on the 2-core machine while
    others ran, the barrier alone per step, with it and without (polling 4000 times before a
    yield): 2 threads 0.5-1.3 against 1.0-2.7 us in 7 rounds of 8; 3 threads 3.9-4.5 against
    6.0-12.6 us."""
    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []),
                                            "sched_yield")
        return builder.call(fn, [])
    return types.int32(), codegen


@njit(cache=True, nogil=True)
def reduce(counts, parts, tid, team, step, a, b):
    """The sums over the ``team`` threads of their ``(a, b)`` at ``step`` (0, 1, ... within one
    call), once every thread has given its own: ``counts`` (``team * STRIDE`` int64, zero at the
    call's start) and ``parts`` (``2 * team * STRIDE`` float64) are shared by the team."""
    mine = ((step & 1) * team + tid) * STRIDE
    parts[mine] = a
    parts[mine + 1] = b
    _store_release(counts, tid * STRIDE, step + 1)
    sa = 0.0
    sb = 0.0
    for j in range(team):
        polls = 0
        while _load_acquire(counts, j * STRIDE) <= step:
            polls += 1
            _pause()
            if polls == SPINS:
                _sched_yield()
                polls = 0
        theirs = ((step & 1) * team + j) * STRIDE
        sa += parts[theirs]
        sb += parts[theirs + 1]
    return sa, sb
