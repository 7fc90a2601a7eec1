"""BLAS threads for the many small dense operations of one fit.

A GLMM evaluation runs dozens of BLAS/LAPACK calls on matrices of a few dozen to a few hundred
rows (the dense blocks of the blocked Cholesky factor, the fixed-effects block). Multi-threaded
BLAS spends more time waking and synchronizing its threads than computing on such sizes, and
on a busy machine much more: VerbAgg's evaluation took 3x longer with OpenBLAS's default
threads than with one, on 2 cores. Above :data:`SMALL_DENSE` the dense blocks are big enough
for threads to pay, and the user's setting is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache

from threadpoolctl import ThreadpoolController

# Dense blocks up to this order run single-threaded.
SMALL_DENSE = 1000


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
