"""Running many simulate-and-refit replicates: all cores, a progress bar, one random stream
per replicate (so results do not depend on the number of workers), Ctrl-C keeps what is done.
Shared by the parametric bootstrap and power simulation."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

import numpy as np

from multilevel.errors import MultilevelError
from multilevel.results.lmm_result import LinearMixedModelResult

Replicate = Callable[[Any, np.random.SeedSequence], np.ndarray]

_WORKER: tuple[Replicate, Any] | None = None


def _init_worker(fn: Replicate, payload: Any) -> None:
    global _WORKER
    _WORKER = (fn, payload)


def _chunk(seeds: list[np.random.SeedSequence]) -> np.ndarray:
    assert _WORKER is not None
    fn, payload = _WORKER
    return np.array([fn(payload, s) for s in seeds])


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
        raise MultilevelError(f"the number of replicates must be at least 1, got {n}")
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
            size = max(1, n // (jobs * 8))
            chunks = [seeds[i:i + size] for i in range(0, n, size)]
            with ProcessPoolExecutor(jobs, mp_context=get_context("fork"),
                                     initializer=_init_worker, initargs=(fn, payload)) as pool:
                futures = [pool.submit(_chunk, c) for c in chunks]
                order = {f: i for i, f in enumerate(futures)}
                pending: set[Future[np.ndarray]] = set(futures)
                results: dict[int, np.ndarray] = {}
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            results[order[f]] = f.result()
                            bar.update(len(results[order[f]]))
                finally:
                    for f in pending:
                        f.cancel()
                    done = [results[i] for i in sorted(results)]
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return done, interrupted
