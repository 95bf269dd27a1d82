"""How the wide branch's linear fits share the CPU: fits side by side in threads while memory allows, each with
one BLAS thread.

scipy's sparse products, most of Newton-CG's time, release the GIL (two threads did twice the products of one
in 1.14 times its time on a 2-core machine); its dense vector products gain no time from a second BLAS thread but
take twice the CPU from the other fits and the epochs (docs/RESULTS.md, "Paid for speed").
"""

from __future__ import annotations

import contextlib
import os
import threading

# Memory of one Newton-CG fit: about this many float64 arrays of n-grams x outputs (float32 fits take half); fits
# run side by side only while all of them stay within PARALLEL_FIT_BYTES.
FIT_ARRAYS, PARALLEL_FIT_BYTES = 12, 1 << 30

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
