"""``ml.lmer_moments`` on a Dask DataFrame or Parquet files: the O(N) moments fit as sums over
the partitions.

Every quantity the moments method (:mod:`multilevel.models.moments`,
:mod:`multilevel.models.backfitting`) reads from the rows is a sum over rows grouped by level,
so each is computed as a map (per partition, ``bincount`` with the global level codes) and a
reduce (addition), and only arrays of the size of the levels reach the client:

1. The levels pass and the cross-products pass of the exact Dask path
   (:func:`~multilevel.distributed.lmer.dask_model`): global level codes, the encoding, the
   aliased fixed-effects columns, the level counts ``N_l`` and the level-pair counts
   ``N_{l l'}`` (the moment equations' coefficients).
2. The partitions are encoded once and persisted on the workers (``X``, ``y`` and the codes
   stay there between the sweeps).
3. One pass: per factor, the level sums of every column of ``[X y]``; and ``[X y]' [X y]``.
   OLS, the level means of any residual ``[X y] c`` and the GLS products ``X' M v`` follow
   on the client from these.
4. Per moment round, one pass: the within-level sums of squares of the residuals about their
   level means (centred, as in memory) -- the U-statistics.
5. Per backfitting sweep and factor, one pass: the level sums of ``v - sum_{m != k} u_m``
   for all the vectors being backfitted at once (the columns of X and y in the GLS step);
   a vector stops being updated at the sweep at which it alone would have stopped, so the
   result is the in-memory one, vector by vector.

The client repeats the in-memory arithmetic on these sums (same equations, same order of
updates), so the estimates agree with ``ml.lmer_moments`` on the same rows to rounding.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from multilevel.distributed.encoding import PartitionEncoder
from multilevel.distributed.passes import (
    RETRIES,
    active_client,
    lost_workers_fail_the_pass,
    tree_reduce,
)
from multilevel.errors import ConvergenceWarning, DataError
from multilevel.models.backfitting import _centre, ridge_lambdas
from multilevel.models.moments import MomentEstimates, intercept_factor_names, solve_components
from multilevel.results.moments_result import MomentsResult

# An encoded partition on a worker: [X y] (kept columns of X, then y minus offset) and the
# global level codes of each factor (model order).
Rows = tuple[np.ndarray, list[np.ndarray]]


# -- tasks (module level: the workers import them) ----------------------------------------------
def _encode_task(encoder: PartitionEncoder, frame: pd.DataFrame) -> Rows:
    enc = encoder.encode(frame)
    assert encoder.keep is not None
    V = np.column_stack([enc.X[:, encoder.keep], enc.y]) if len(enc.y) else np.zeros(
        (0, int(encoder.keep.sum()) + 1))
    return V, [np.asarray(c, dtype=np.intp) for c in enc.codes]


def _level_sums_task(n_levels: list[int], rows: Rows) -> tuple[list[np.ndarray], np.ndarray]:
    """Per factor the ``(levels, p + 1)`` level sums of ``[X y]``, and ``[X y]' [X y]``."""
    V, codes = rows
    sums = [np.column_stack([np.bincount(c, weights=V[:, j], minlength=nl)
                             for j in range(V.shape[1])])
            for c, nl in zip(codes, n_levels, strict=True)]
    return sums, V.T @ V


def _add_level_sums(*parts: tuple[list[np.ndarray], np.ndarray],
                    ) -> tuple[list[np.ndarray], np.ndarray]:
    sums = [np.sum([p[0][k] for p in parts], axis=0) for k in range(len(parts[0][0]))]
    return sums, np.sum([p[1] for p in parts], axis=0)


def _within_task(c: np.ndarray, means: list[np.ndarray], counts: list[np.ndarray],
                 mean: float, rows: Rows) -> np.ndarray:
    """The U-statistics' row sums for the residual ``r = [X y] c``: per factor
    ``sum_l N_l sum_{s in l} (r_s - rbar_l)^2`` over this partition's rows, then
    ``sum_s (r_s - rbar)^2``."""
    V, codes = rows
    r = V @ c
    out = [float(nl @ np.bincount(cd, weights=(r - m[cd]) ** 2, minlength=nl.size))
           for cd, m, nl in zip(codes, means, counts, strict=True)]
    out.append(float(np.sum((r - mean) ** 2)))
    return np.array(out)


def _sweep_task(C: np.ndarray, effects: list[np.ndarray], k: int, n_level: int,
                rows: Rows) -> np.ndarray:
    """Level sums over factor ``k`` of ``[X y] C - sum_{m != k} u_m[codes_m]``, one column per
    vector backfitted."""
    V, codes = rows
    R = V @ C
    for m, (cd, u) in enumerate(zip(codes, effects, strict=True)):
        if m != k:
            R = R - u[cd]
    return np.column_stack([np.bincount(codes[k], weights=R[:, j], minlength=n_level)
                            for j in range(R.shape[1])]).reshape(n_level, R.shape[1])


def _add(*parts: Any) -> Any:
    return sum(parts[1:], parts[0])


# -- the fit on the client ----------------------------------------------------------------------
class _Cluster:
    """The encoded partitions, held on the workers (futures of a ``distributed.Client``; with
    Dask's default scheduler, in this process), and the passes over them.

    A pass submits one task per partition and adds the results in a tree on the workers, with
    futures rather than a new task graph per pass: a fit makes a pass per factor and sweep, so
    the per-pass overhead is what the wall time is made of on small data."""

    def __init__(self, ddf: Any, encoder: PartitionEncoder) -> None:
        import dask
        from dask import delayed

        parts = [delayed(_encode_task, pure=True)(encoder, p) for p in ddf.to_delayed()]
        if not parts:
            raise DataError("the Dask DataFrame has no partitions")
        self.client = active_client()
        if self.client is not None:
            self.parts: list[Any] = self.client.compute(parts, retries=RETRIES)
        else:
            self.parts = list(dask.compute(*parts))

    def reduce(self, task: Any, *args: Any, combine: Any = _add) -> Any:
        """``combine`` of ``task(*args, rows)`` over the partitions."""
        if self.client is None:
            return combine(*[task(*args, rows) for rows in self.parts])
        client = self.client

        def submit(func: Any, *inputs: Any) -> Any:
            return client.submit(func, *inputs, pure=False, retries=RETRIES)

        items = [submit(task, *args, f) for f in self.parts]
        with lost_workers_fail_the_pass():
            return tree_reduce(items, combine, submit).result()


def _backfit_many(cluster: _Cluster, C: np.ndarray, scale: np.ndarray, counts: list[np.ndarray],
                  lambdas: np.ndarray, tol: float, max_sweeps: int,
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Backfit the vectors ``[X y] C`` together, each as :func:`~multilevel.models.backfitting
    .backfit` would alone (it stops being updated after its own converging sweep). Returns the
    effects per factor ``(levels, q)``, the sweeps and the convergence of each vector."""
    q = C.shape[1]
    active = [k for k in range(len(counts)) if np.isfinite(lambdas[k])]
    effects = [np.zeros((c.size, q)) for c in counts]
    sweeps = np.full(q, max_sweeps)
    done = np.zeros(q, dtype=bool)
    scale = np.where(scale > 0, scale, 1.0)
    for sweep in range(1, max_sweeps + 1):
        change = np.zeros(q)
        live = ~done
        for k in active:
            sums = cluster.reduce(_sweep_task, C, effects, k, counts[k].size)
            new = sums / (counts[k] + lambdas[k])[:, None]
            step = new - effects[k]
            change += counts[k] @ step**2
            effects[k] = np.where(live[None, :], new, effects[k])
        for j in np.flatnonzero(live):
            cols = [e[:, j].copy() for e in effects]
            _centre(cols, lambdas, active)
            for e, col in zip(effects, cols, strict=True):
                e[:, j] = col
        now = live & (np.sqrt(change) <= tol * scale)
        sweeps[now] = sweep
        done |= now
        if done.all():
            break
    return effects, sweeps, done


def dask_lmer_moments(formula: str, data: Any, offset: Any = None, rounds: int = 2,
                      tol: float = 1e-8, max_sweeps: int = 500) -> MomentsResult:
    """``ml.lmer_moments`` on a Dask DataFrame or Parquet path (see
    :func:`multilevel.lmer_moments`; ``offset`` only as a column name)."""
    from multilevel.distributed import require

    require()
    from multilevel.distributed.lmer import _column_name, dask_sums, rows_used

    # the exact path's two passes: levels, then counts and pair counts (the cross-products of
    # intercept-only terms) -- not its model, whose dense blocks a large crossed design
    # could not afford
    total, encoder, design, ddf = dask_sums(formula, data, None, _column_name(offset, "offset"))
    names = intercept_factor_names(design.terms)
    design = rows_used(total, encoder, design)
    # the sums come per block (one intercept term each, ordered by size); the result follows
    # the design's order of the terms, as in memory
    block_of = [encoder.blocks.index((t,)) for t in range(len(design.terms))]
    counts = [d[:, 0, 0].copy() for d in total.diag]
    n = float(design.nobs)
    K = len(counts)
    coef = _moment_coefficients(n, counts, {key: data[:, 0, 0]
                                            for key, (_, data) in total.pairs.items()})
    cluster = _Cluster(ddf, encoder)
    n_levels = [c.size for c in counts]
    level_sums, G = cluster.reduce(_level_sums_task, n_levels, combine=_add_level_sums)
    p = G.shape[0] - 1
    XtX, Xty = G[:p, :p], G[:p, p]

    def residual_vector(beta: np.ndarray) -> np.ndarray:
        return np.concatenate([-beta, [1.0]])

    def components(c: np.ndarray) -> tuple[MomentEstimates, float]:
        means = [np.divide(s @ c, nl, out=np.zeros(nl.size), where=nl > 0)
                 for s, nl in zip(level_sums, counts, strict=True)]
        mean = float(level_sums[0].sum(axis=0) @ c) / n
        parts = cluster.reduce(_within_task, c, means, counts, mean)
        stat = np.append(parts[:K], n * parts[K])
        return solve_components(stat, coef), float(parts[K] + n * mean**2)

    ols_beta = np.linalg.solve(XtX, Xty)
    est, rss = components(residual_vector(ols_beta))
    ols_vcov = rss / max(n - p, 1) * np.linalg.inv(XtX)
    beta = ols_beta
    vcov = np.zeros((p, p))
    sweeps, converged = 0, True
    n_rounds = max(int(rounds), 1)
    for round_ in range(n_rounds):
        if round_:
            est, _ = components(residual_vector(beta))
        lambdas = ridge_lambdas(est.sigma2, est.sigma2_resid)
        eye = np.eye(p + 1)
        effects, used, done = _backfit_many(cluster, eye, np.sqrt(np.diag(G)), counts,
                                            lambdas, tol, max_sweeps)
        # X' (v - Z u) for every column v of [X y], from the level sums of X
        XMV = G[:p, :] - sum(s[:, :p].T @ u for s, u in zip(level_sums, effects, strict=True))
        sweeps, converged = max(sweeps, int(used.max())), converged and bool(done.all())
        if not done.all():
            warnings.warn(f"backfitting did not converge in {max_sweeps} sweeps: the GLS fixed "
                          "effects are approximate; raise max_sweeps", ConvergenceWarning,
                          stacklevel=2)
        xmx = (XMV[:, :p] + XMV[:, :p].T) / 2
        beta = np.linalg.solve(xmx, XMV[:, p])
        vcov = est.sigma2_resid * np.linalg.inv(xmx)
    lambdas = ridge_lambdas(est.sigma2, est.sigma2_resid)
    c = residual_vector(beta)[:, None]
    modes, used, done = _backfit_many(cluster, c, np.sqrt(np.atleast_1d(c[:, 0] @ G @ c[:, 0])),
                                      counts, lambdas, tol, max_sweeps)
    return MomentsResult(
        formula=formula, fixed_names=tuple(design.fixed_names), beta=beta, vcov_array=vcov,
        group_names=tuple(names), levels=tuple(tuple(t.factor.levels) for t in design.terms),
        sigma2_groups=est.sigma2[block_of], sigma2_resid=est.sigma2_resid,
        effects=tuple(modes[b][:, 0] for b in block_of), ols_beta=ols_beta, ols_vcov=ols_vcov,
        rounds=n_rounds, sweeps=max(sweeps, int(used.max())),
        converged=converged and bool(done.all()),
        at_boundary=tuple(nm for nm, b in zip(names, block_of, strict=True)
                          if b in est.at_boundary), n_obs=design.nobs,
        n_dropped=design.n_dropped, data=None, row_index=None)


def _moment_coefficients(n: float, counts: list[np.ndarray],
                         pair_counts: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """:func:`~multilevel.models.moments.moment_coefficients` from the level counts and the
    level-pair counts (``pair_counts[(i, j)]``, i > j: the rows of each pair that occurs)."""
    K = len(counts)
    square = [float(c @ c) for c in counts]
    coef = np.zeros((K + 1, K + 1))
    for k in range(K):
        coef[k, K] = square[k] - n
        for m in range(K):
            if m != k:
                pc = pair_counts[(max(k, m), min(k, m))]
                coef[k, m] = square[k] - float(pc @ pc)
    coef[K, K] = n * n - n
    for m in range(K):
        coef[K, m] = n * n - square[m]
    return coef


__all__ = ["dask_lmer_moments"]
