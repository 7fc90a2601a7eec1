"""Running many simulate-and-refit replicates: all cores, a progress bar, one random stream
per replicate (so results do not depend on the number of workers), Ctrl-C keeps what is done.
Shared by the parametric bootstrap and power simulation, for every model kind: a replicate
draws from the fit's ``simulate`` and refits through ``fit.model.replace(y=...)``."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from multilevel.errors import ArgumentError
from multilevel.inference.refit import fit_like
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult

Replicate = Callable[[Any, np.random.SeedSequence], np.ndarray]

# How often (seconds) the parent wakes while the workers run: to update the progress bar and so
# that Ctrl-C is handled at once whatever the platform's signal delivery during a blocking wait.
_POLL_S = 0.1
# Tasks per worker: chunks of replicates, so that handing out work costs nothing next to a
# refit (one replicate per task cost 1.5 ms each, 50 % more than the refits on sleepstudy).
_CHUNKS_PER_WORKER = 8


@dataclass(frozen=True)
class _Shared:
    """What a worker needs, inherited through fork: the replicate function and its payload,
    and the shared memory it writes each finished replicate into (``values``, ``width``
    doubles per replicate), marking it in ``finished`` after the values are written."""

    fn: Replicate
    payload: Any
    values: Any
    finished: Any
    width: int


_WORKER: _Shared | None = None


def _init_worker(shared: _Shared) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the workers ignore it and the
    # parent, which reads the finished replicates from shared memory, terminates them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _WORKER
    _WORKER = shared


def _run_chunk(items: list[tuple[int, np.random.SeedSequence]]) -> None:
    assert _WORKER is not None
    w = _WORKER
    values = np.frombuffer(w.values, dtype=np.float64).reshape(-1, w.width)
    finished = np.frombuffer(w.finished, dtype=np.int8)
    for index, seed in items:
        values[index] = np.asarray(w.fn(w.payload, seed), dtype=np.float64).ravel()
        finished[index] = 1  # after the values: a replicate cut off mid-write is not marked


def simulate_refit(fit: MixedModelResult, seed: np.random.SeedSequence,
                   source: MixedModelResult | None = None, calc_derivs: bool = False,
                   ) -> MixedModelResult | None:
    """One response simulated from ``source`` (default ``fit`` itself; a copy with other
    parameters for power), refitted with ``fit``'s model on the same design; None if the
    refit fails. Without ``calc_derivs`` the convergence check (and a GLMM's Hessian-based
    covariance of the fixed effects) is skipped: only the estimates are needed then."""
    y = simulate_response(fit if source is None else source, seed)
    try:
        return fit_like(fit, fit.model.replace(y=y, calc_derivs=calc_derivs))
    except (ArithmeticError, np.linalg.LinAlgError):
        # NumericalError, and PIRLS or Cholesky failures of a GLMM refit, derive from it
        return None


def is_structured(fit: Any) -> bool:
    """Whether ``fit`` is an nlme-style fit (gls, lme, nlme) that simulates and refits
    itself (``simulate``, ``refit_response``, ``bootstrap_parameters``)."""
    return not isinstance(fit, MixedModelResult) and all(
        hasattr(fit, name) for name in ("simulate", "refit_response", "bootstrap_parameters"))


def simulate_refit_structured(fit: Any, seed: np.random.SeedSequence) -> Any:
    """One response simulated from an nlme-style fit, refitted with the fit's own call;
    None if the refit fails."""
    draw = fit.simulate(1, seed=int(np.random.default_rng(seed).integers(2**63)))
    try:
        return fit.refit_response(np.asarray(draw["sim_1"].to_numpy(), dtype=float))
    except (ArithmeticError, np.linalg.LinAlgError):
        return None


def simulate_response(fit: MixedModelResult, seed: np.random.SeedSequence) -> np.ndarray:
    """One response drawn from ``fit`` (its ``simulate``) with the replicate's stream."""
    if not isinstance(fit, LinearMixedModelResult | GeneralizedLinearMixedModelResult):
        raise ArgumentError(f"simulation from a {type(fit).__name__} is not available")
    draw = fit.simulate(1, seed=int(np.random.default_rng(seed).integers(2**63)))
    return np.asarray(draw["sim_1"].to_numpy(), dtype=float)


def run_replicates(fn: Replicate, payload: Any, n: int, seed: int | None,
                   n_jobs: int | None, progress: bool, desc: str,
                   ) -> tuple[list[np.ndarray], bool]:
    """Call ``fn(payload, seed_i)`` for ``n`` spawned seeds; returns the finished results in
    replicate order and whether the run was interrupted. ``fn`` must be a module-level
    function (it runs in worker processes)."""
    if n < 1:
        raise ArgumentError(f"the number of replicates must be at least 1, got {n}")
    from tqdm.auto import tqdm

    seeds = np.random.SeedSequence(seed).spawn(n)
    jobs = max(1, min(n_jobs or os.cpu_count() or 1, n))
    done: list[np.ndarray] = []
    interrupted = False
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    try:
        if jobs == 1:
            for s in seeds:
                done.append(np.asarray(fn(payload, s))[None, ...])
                bar.update(1)
        else:
            results: dict[int, np.ndarray] = {}
            try:
                _run_parallel(fn, payload, seeds, jobs, results, bar)
            finally:
                # every finished replicate, whether the run completed or was interrupted
                done = [results[i][None, ...] for i in sorted(results)]
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return done, interrupted


def _run_parallel(fn: Replicate, payload: Any, seeds: list[np.random.SeedSequence], jobs: int,
                  results: dict[int, np.ndarray], bar: Any) -> None:
    """Run the replicates on ``jobs`` forked workers, in chunks, each replicate written to
    shared memory as soon as it is done. On any exit (Ctrl-C included) the workers are
    terminated at once and every finished replicate is put in ``results``; only the ones in
    flight are lost. The first replicate runs here, to learn the shape of a result."""
    first = np.asarray(fn(payload, seeds[0]))
    results[0] = first
    bar.update(1)
    n = len(seeds)
    ctx = get_context("fork")
    shared = _Shared(fn, payload, ctx.RawArray("d", n * max(first.size, 1)),
                     ctx.RawArray("b", n), max(first.size, 1))
    finished = np.frombuffer(shared.finished, dtype=np.int8)
    finished[0] = 1
    items = list(enumerate(seeds))[1:]
    size = max(1, len(items) // (jobs * _CHUNKS_PER_WORKER))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(shared,))
    shown = 1
    try:
        work = pool.map_async(_run_chunk, chunks, chunksize=1)
        while not work.ready():
            work.wait(_POLL_S)
            count = int(finished.sum())
            bar.update(count - shown)
            shown = count
        work.get()  # a worker's exception is raised here
    finally:
        pool.terminate()
        pool.join()
        values = np.frombuffer(shared.values, dtype=np.float64).reshape(n, -1)
        for index in np.flatnonzero(finished)[1:]:
            results[int(index)] = values[index].reshape(first.shape).astype(first.dtype)
        bar.update(int(finished.sum()) - shown)
