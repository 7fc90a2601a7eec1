"""BLAS threads for the many small dense operations of one fit.

A GLMM evaluation runs dozens of BLAS/LAPACK calls on matrices of a few dozen to a few hundred
rows (the dense blocks of the blocked Cholesky factor, the fixed-effects block). Multi-threaded
BLAS spends more time waking and synchronizing its threads than computing on such sizes, and
on a busy machine much more: VerbAgg's evaluation took 3x longer with OpenBLAS's default
threads than with one, on 2 cores. Above :data:`SMALL_DENSE` the dense blocks are big enough
for threads to pay, and the user's setting is left alone.

The linear mixed model's fit uses the same rule (:meth:`ModelStages.optimize` and the
cross-products pass), keyed on the order of its dense part: the [X y] block plus every grouping
factor after the first (the first stays block diagonal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache

from threadpoolctl import ThreadpoolController

# Dense blocks up to this order run single-threaded. Measured on the 2-core benchmark machine
# (OpenBLAS 0.3.31 from the numpy/scipy wheels, load average 5-6 from other work, 2026-11-26;
# medians, 1 thread vs OpenBLAS's default 2): dense Cholesky of order 250: 0.42 vs 1.42 ms,
# 1000: 28 vs 1284 ms, 2000: 116 vs 184 ms, 3000: 318 vs 4491 ms, 4000: 1009 vs 970 ms
# (the crossover); the triangular solves and products beside them lose with two threads at
# every order up to 4000. Whole fits, same process, load ~7: InstEval (ML, dense order ~1160)
# 38-74 s with OpenBLAS's default threads and 3.7-4.2 s with one before this rule, 1.6-2.1 s
# in the default environment with it; the 1 M-row crossed model (dense order 2003) 45 s with
# the default threads and 9-12 s with one (see docs/speed_notes.md).
SMALL_DENSE = 4000


@cache
def _controller() -> ThreadpoolController:
    """The thread pools of the loaded libraries, found once (finding them scans every loaded
    shared library: ~20 ms, as much as a small fit)."""
    return ThreadpoolController()


@contextmanager
def blas_threads_for(dense_order: int) -> Iterator[None]:
    """One BLAS thread while the work runs on dense blocks of order ``dense_order`` or less;
    the caller's setting otherwise (and restored on exit either way)."""
    limits = (_controller().limit(limits=1, user_api="blas") if dense_order <= SMALL_DENSE
              else nullcontext())
    with limits:
        yield
