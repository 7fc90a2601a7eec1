"""Cholesky factor of a large dense symmetric matrix stored as square tiles.

The second grouping factor of a crossed model with many levels (items of users x items) is a
dense q x q block of the factor (see :mod:`multilevel.linalg.blocked_cholesky`). Above a few
thousand levels this module holds that block as a lower triangle of separate Fortran arrays
of order at most ``TILE`` and factors it tile by tile (the right-looking blocked algorithm:
``potrf`` on a diagonal tile, ``trsm`` below it, ``syrk`` / ``gemm`` updates of the trailing
tiles), for three reasons, each measured here (2-core Skylake-X, numpy/scipy's OpenBLAS
0.3.30/0.3.31):

* LAPACK's threaded ``dpotrf`` -- and numpy's ``A @ A.T`` -- crash the process (segmentation
  fault inside OpenBLAS) on one array of order 16,000 or more with two threads; every call
  here works on arrays of at most ``TILE`` x ``TILE``, where they run correctly and at full
  speed. (Single-threaded ``dpotrf`` does not crash but takes 62 s where the tiles take ~30 s
  at order 20,000.)
* only the lower triangle of tiles is stored: 2.0 GiB at order 20,000 instead of the square
  array's 3.0 (and the one-array path's three such arrays per evaluation), and the matrix is
  assembled into the same tiles at every evaluation, so no evaluation allocates a q x q
  array;
* the assembly scatters the known non-zero cells of the matrix (a crossed design fills a few
  per cent of the item block before the factorization) straight into the tiles.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.linalg.blas import dgemm, dsyrk, dtrsm
from scipy.linalg.lapack import dpotrf

from multilevel.errors import InternalError

# Largest tile order; the matrix is cut into equal tiles no larger. Measured at order 20,000
# (2 threads): tiles of 4,096 factor in 33 s, 5,000 in 31 s, 6,667 in 30 s, 10,000 in 35 s --
# large enough for BLAS-3 speed on each call, small enough (under 400 MB a tile) for the crash
# above never to be reached.
TILE = 7000


class NotPositiveDefiniteTile(ArithmeticError):
    """A diagonal tile was not positive definite (the caller maps it to its own error)."""


class TiledLower:
    """The lower triangle of a symmetric ``n x n`` matrix, or of its Cholesky factor, in
    tiles: ``tiles[i][j]`` (``j <= i``) holds rows ``bounds[i]:bounds[i+1]`` and columns
    ``bounds[j]:bounds[j+1]``; diagonal tiles hold garbage above their diagonal.

    Parameters
    ----------
    n : int
        Order of the matrix.
    tile : int
        Largest tile order (the matrix is cut into equal tiles no larger).
    """

    def __init__(self, n: int, tile: int = TILE) -> None:
        self.n = n
        self.bounds = _bounds(n, tile)
        sizes = np.diff(self.bounds)
        self.tiles: list[list[np.ndarray]] = [
            [np.zeros((int(sizes[i]), int(sizes[j])), order="F") for j in range(i + 1)]
            for i in range(len(sizes))]
        self.factored = False

    @classmethod
    def from_dense(cls, M: np.ndarray, tile: int = TILE) -> TiledLower:
        """The lower triangle of the square array ``M`` (its upper triangle is not read)."""
        T = cls(M.shape[0], tile)
        b = T.bounds
        for i, row in enumerate(T.tiles):
            for j, t in enumerate(row):
                t[:] = M[b[i]:b[i + 1], b[j]:b[j + 1]]
        return T

    @property
    def n_tiles(self) -> int:
        """Tiles along one side."""
        return len(self.tiles)

    @property
    def nbytes(self) -> int:
        """Memory held by the tiles."""
        return sum(t.nbytes for row in self.tiles for t in row)

    @staticmethod
    def bytes_for(n: int, tile: int = TILE) -> int:
        """Memory a :class:`TiledLower` of order ``n`` holds, without allocating it."""
        sizes = np.diff(_bounds(n, tile)).astype(np.int64)
        return int(8 * sum(int(sizes[i] * sizes[j]) for i in range(len(sizes))
                           for j in range(i + 1)))

    # -- assembly ---------------------------------------------------------------------------
    def locate(self, rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int, np.ndarray,
                                                                     np.ndarray]]:
        """For distinct lower-triangle cells ``(rows, cols)`` (``rows >= cols``), the tiles
        they fall in: a list of ``(i, j, positions, flat)`` -- the positions into the cell
        list and the flat (column-major) offsets within tile ``(i, j)``, in increasing order
        of the offsets (the scatter then walks each tile once). Computed once per pattern."""
        ti = np.searchsorted(self.bounds, rows, side="right") - 1
        tj = np.searchsorted(self.bounds, cols, side="right") - 1
        heights = np.diff(self.bounds)
        flat = (cols - self.bounds[tj]) * heights[ti] + (rows - self.bounds[ti])
        order = np.lexsort((flat, ti * self.n_tiles + tj))
        key = (ti * self.n_tiles + tj)[order]
        keys, starts = np.unique(key, return_index=True)
        ends = np.append(starts[1:], len(order))
        return [(*divmod(int(k), self.n_tiles), order[a:b], flat[order[a:b]])
                for k, a, b in zip(keys, starts, ends, strict=True)]

    def assemble(self, diagonal: np.ndarray,
                 located: list[tuple[int, int, np.ndarray, np.ndarray]],
                 values: np.ndarray) -> None:
        """Set the matrix to ``values`` at the located (distinct) cells, zero elsewhere, plus
        ``diag(diagonal)``."""
        for row in self.tiles:
            for t in row:
                t.fill(0.0)
        for i, j, pos, flat in located:
            # a view (the tile is Fortran-contiguous); the cells are distinct
            self.tiles[i][j].reshape(-1, order="F")[flat] = values[pos]
        for i in range(self.n_tiles):
            d = self.tiles[i][i]
            d.reshape(-1, order="F")[:: d.shape[0] + 1] += diagonal[self.bounds[i]:
                                                                   self.bounds[i + 1]]
        self.factored = False

    # -- factorization ----------------------------------------------------------------------
    def cholesky(self, progress: Callable[[float], None] | None = None) -> float:
        """Overwrite the tiles with the lower Cholesky factor; return its log-determinant
        ``log |L|^2``.

        Parameters
        ----------
        progress : callable, optional
            Called with the fraction of the factorization's flops done after each tile
            column (for a progress bar on long evaluations).

        Raises
        ------
        NotPositiveDefiniteTile
        """
        T = self.tiles
        nt = self.n_tiles
        logdet = 0.0
        sizes = np.diff(self.bounds).astype(float)
        total = float(sum(sizes[k] * sizes[k:].sum() ** 2 for k in range(nt)))
        done = 0.0
        for k in range(nt):
            L, info = dpotrf(T[k][k], lower=1, clean=0, overwrite_a=1)
            if info != 0:
                raise NotPositiveDefiniteTile
            T[k][k] = L
            logdet += 2.0 * float(np.log(np.diagonal(L)).sum())
            for i in range(k + 1, nt):
                # L_ik = A_ik L_kk^{-T}
                T[i][k] = dtrsm(1.0, L, T[i][k], side=1, lower=1, trans_a=1, overwrite_b=1)
            for j in range(k + 1, nt):
                T[j][j] = dsyrk(-1.0, T[j][k], beta=1.0, c=T[j][j], lower=1, overwrite_c=1)
                for i in range(j + 1, nt):
                    T[i][j] = dgemm(-1.0, T[i][k], T[j][k], beta=1.0, c=T[i][j], trans_b=1,
                                    overwrite_c=1)
            if progress is not None:
                done += sizes[k] * sizes[k:].sum() ** 2
                progress(done / total)
        self.factored = True
        return logdet

    # -- solves with the factor -------------------------------------------------------------
    def solve_lower(self, B: np.ndarray) -> np.ndarray:
        """``L^{-1} B`` for the factor L (``B``: n rows, any columns; not modified)."""
        self._check_factored()
        X = np.array(B, dtype=float, order="F", copy=True).reshape(self.n, -1, order="F")
        b = self.bounds
        for k in range(self.n_tiles):
            rhs = np.asfortranarray(X[b[k]:b[k + 1]])
            for j in range(k):
                rhs = dgemm(-1.0, self.tiles[k][j], X[b[j]:b[j + 1]], beta=1.0, c=rhs,
                            overwrite_c=1)
            X[b[k]:b[k + 1]] = dtrsm(1.0, self.tiles[k][k], rhs, lower=1, overwrite_b=1)
        return X.reshape(np.shape(B), order="F")

    def solve_upper(self, B: np.ndarray) -> np.ndarray:
        """``L^{-T} B`` for the factor L (``B``: n rows, any columns; not modified)."""
        self._check_factored()
        X = np.array(B, dtype=float, order="F", copy=True).reshape(self.n, -1, order="F")
        b = self.bounds
        for k in range(self.n_tiles - 1, -1, -1):
            rhs = np.asfortranarray(X[b[k]:b[k + 1]])
            for i in range(k + 1, self.n_tiles):
                rhs = dgemm(-1.0, self.tiles[i][k], X[b[i]:b[i + 1]], beta=1.0, c=rhs,
                            trans_a=1, overwrite_c=1)
            X[b[k]:b[k + 1]] = dtrsm(1.0, self.tiles[k][k], rhs, lower=1, trans_a=1,
                                     overwrite_b=1)
        return X.reshape(np.shape(B), order="F")

    def diagonal(self) -> np.ndarray:
        """The diagonal (of the factor, once factored)."""
        return np.concatenate([np.diagonal(self.tiles[k][k]) for k in range(self.n_tiles)])

    def toarray(self, out: np.ndarray | None = None) -> np.ndarray:
        """The lower triangle as one dense ``n x n`` array (zeros above the diagonal), written
        into ``out`` when given."""
        if out is None:
            out = np.zeros((self.n, self.n))
        b = self.bounds
        for i, row in enumerate(self.tiles):
            for j, t in enumerate(row):
                out[b[i]:b[i + 1], b[j]:b[j + 1]] = np.tril(t) if i == j else t
            out[b[i]:b[i + 1], b[i + 1]:] = 0.0
        return out

    def _check_factored(self) -> None:
        if not self.factored:
            raise InternalError("a TiledLower was used for a solve before cholesky()")


def _bounds(n: int, tile: int) -> np.ndarray:
    """Edges of ``ceil(n / tile)`` tiles of (nearly) equal order."""
    count = max(1, -(-n // tile))
    return np.round(np.linspace(0, n, count + 1)).astype(np.int64)


_FLOPS: list[float] = []


def measured_flops() -> float:
    """This machine's speed of a dense double-precision matrix product of tile-like size, in
    flops per second (timed once per process, ~0.1 s), for estimating factorization times."""
    if not _FLOPS:
        n = 1536
        rng = np.random.default_rng(0)
        a = np.asfortranarray(rng.standard_normal((n, n)))
        b = np.asfortranarray(rng.standard_normal((n, n)))
        dgemm(1.0, a, b)  # warm the threads
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            dgemm(1.0, a, b)
            best = min(best, time.perf_counter() - started)
        _FLOPS.append(2.0 * n**3 / max(best, 1e-9))
    return _FLOPS[0]
