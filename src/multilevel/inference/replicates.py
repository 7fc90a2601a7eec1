"""Running many simulate-and-refit replicates: all cores, a progress bar, one random stream
per replicate (so results do not depend on the number of workers), Ctrl-C keeps what is done.
Shared by the parametric bootstrap and power simulation."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from multiprocessing import TimeoutError as PoolTimeout
from multiprocessing import get_context
from typing import Any

import numpy as np

from multilevel.errors import ArgumentError
from multilevel.results.lmm_result import LinearMixedModelResult

Replicate = Callable[[Any, np.random.SeedSequence], np.ndarray]

# How often (seconds) the parent wakes while waiting for a worker, so that Ctrl-C is handled
# at once whatever the platform's signal delivery during a blocking wait.
_POLL_S = 0.1

_WORKER: tuple[Replicate, Any] | None = None


def _init_worker(fn: Replicate, payload: Any) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the workers ignore it and the
    # parent, which keeps the finished replicates, terminates them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _WORKER
    _WORKER = (fn, payload)


def _one_replicate(item: tuple[int, np.random.SeedSequence]) -> tuple[int, np.ndarray]:
    assert _WORKER is not None
    fn, payload = _WORKER
    index, seed = item
    return index, np.asarray(fn(payload, seed))


def simulate_refit(fit: LinearMixedModelResult, seed: np.random.SeedSequence,
                   mean_shift: np.ndarray | float = 0.0) -> LinearMixedModelResult | None:
    """One response simulated from ``fit`` (plus ``mean_shift``), refitted on the same design
    without the convergence check (only the estimates are needed); None if the refit fails."""
    y = fit.simulate(1, seed=int(np.random.default_rng(seed).integers(2**63)))["sim_1"]
    model = fit.model.with_response(y.to_numpy() + mean_shift)
    model.calc_derivs = False
    try:
        return LinearMixedModelResult.from_model(model, model.optimize())
    except (ArithmeticError, np.linalg.LinAlgError):
        return None


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
    """Run the replicates on ``jobs`` forked workers, one replicate per task, storing each in
    ``results`` as it arrives. On any exit (Ctrl-C included) the workers are terminated at
    once: a replicate in flight is lost, every finished one is in ``results``."""
    pool = get_context("fork").Pool(jobs, initializer=_init_worker, initargs=(fn, payload))
    try:
        stream = pool.imap_unordered(_one_replicate, enumerate(seeds), chunksize=1)
        for _ in range(len(seeds)):
            while True:
                try:
                    index, value = stream.next(timeout=_POLL_S)
                    break
                except PoolTimeout:
                    continue
            results[index] = value
            bar.update(1)
    finally:
        pool.terminate()
        pool.join()
