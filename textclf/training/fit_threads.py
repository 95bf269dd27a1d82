"""How the wide branch's linear fits share the CPU: fits side by side in threads while memory allows, each with
one BLAS thread, in threads nicer than the epochs' (:func:`yield_to_training`).

scipy's sparse products, most of Newton-CG's time, release the GIL (two threads did twice the products of one
in 1.14 times its time on a 2-core machine); its dense vector products gain no time from a second BLAS thread but
take twice the CPU from the other fits and the epochs (docs/RESULTS.md, "Paid for speed").
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

# Memory of one Newton-CG fit: about this many float64 arrays of n-grams x outputs (float32 fits take half); fits
# run side by side only while all of them stay within PARALLEL_FIT_BYTES.
FIT_ARRAYS, PARALLEL_FIT_BYTES = 12, 1 << 30

# The fits' threads run this much nicer than the epochs: where both want a core, the epochs (the path on long
# texts) get about 10 times the fits' share, and the fits take what the epochs leave idle (docs/PERFORMANCE.md,
# "Time to quality").
FIT_NICENESS = 10

_blas = threading.Lock()
_blas_users = {"count": 0, "limiter": None}


@contextlib.contextmanager
def one_blas_thread():
    """One BLAS thread, process-wide, while any caller is inside (fit_linear may run in several threads at once:
    an earlier run's fits go on in their daemon thread); the setting found by the first is restored by the last."""
    from threadpoolctl import threadpool_limits

    with _blas:
        if _blas_users["count"] == 0:
            _blas_users["limiter"] = threadpool_limits(1, user_api="blas")
        _blas_users["count"] += 1
    try:
        yield
    finally:
        with _blas:
            _blas_users["count"] -= 1
            if _blas_users["count"] == 0:
                _blas_users["limiter"].restore_original_limits()
                _blas_users["limiter"] = None


def parallel_fits(fits: int, parameters: int) -> int:
    """Threads for ``fits`` fits of ``parameters`` weights each: the cores, as many as memory allows, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_fit = FIT_ARRAYS * 8 * parameters
    return max(1, min(fits, cores, PARALLEL_FIT_BYTES // max(per_fit, 1)))


def yield_to_training() -> None:
    """Gives the calling thread the main thread's nice value plus :data:`FIT_NICENESS` (at most 19), for good: only
    for threads that end with the fits (an unprivileged process cannot raise a priority back; a thread started by
    one already that nice keeps it).  Linux gives each thread a nice value of its own; elsewhere, or where the call
    is refused, the thread keeps its priority (the fits are only slower to share the cores)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + FIT_NICENESS)
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
    except OSError:  # A sandbox that refuses setpriority: the same fits, at the same priority.
        pass
