"""Rank updates L[i][0] L[j][0]' for scalar terms, as one sparse matrix-vector product.

With a scalar first grouping factor, L[i][0] is the sparse Z_i'Z_0 with its entries scaled by
t_i * t_0 / l0[c] (c the level of the first factor). So

    (L[i][0] L[j][0]')[r, s] = t_i t_j t_0^2 * sum_c a_i[r, c] a_j[s, c] / l0[c]^2,

where only the weights w = 1 / l0^2 change with theta. :class:`GramPattern` lists, once, every
product a_i[r, c] a_j[s, c] as a sparse matrix G (rows: the (r, s) pairs that occur; columns:
c), so each evaluation is one ``G @ w`` giving the dense block -- instead of a sparse
matrix-matrix product that re-derives the same pattern every time. For the crossed InstEval
model this is the difference between 18 ms and a few ms per evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# Above this many products, build nothing and let the caller use a sparse product instead
# (memory: 12 bytes per product).
MAX_PRODUCTS = 40_000_000


@dataclass(frozen=True)
class GramPattern:
    """Precomputed products for one pair of blocks (i, j) against the first block.

    Attributes
    ----------
    G : scipy.sparse.csr_matrix, shape (q_i * q_j, levels_0)
        Row r * q_j + s holds the products a_i[r, c] a_j[s, c] (only r >= s when i == j).
    shape : tuple of int
        ``(q_i, q_j)``.
    """

    G: sp.csr_matrix
    shape: tuple[int, int]

    def block(self, w: np.ndarray) -> np.ndarray:
        """The dense (q_i, q_j) block sum_c a_i[:, c] a_j[:, c]' w[c] (lower triangle only for
        a diagonal block)."""
        return np.asarray(self.G @ w).reshape(self.shape)


def _column_products(Ci: sp.csc_matrix, Cj: sp.csc_matrix, lo: int, hi: int,
                     symmetric: bool, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Products a_i[r, c] a_j[s, c] for the columns lo..hi-1: (cell r * width + s, c, value).

    Products come ordered by column, then by the entry of Ci, then by the entry of Cj; the
    index arithmetic is repeats and cumulative sums only (no division)."""
    first, last = Ci.indptr[lo], Ci.indptr[hi]
    entry_col = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(Ci.indptr[lo:hi + 1]))
    nj = np.diff(Cj.indptr)[entry_col]  # j-entries paired with each i-entry
    total = int(nj.sum())
    ia = np.repeat(np.arange(first, last, dtype=np.int64), nj)
    block_start = np.cumsum(nj) - nj  # where each i-entry's run of products starts
    jb = (np.arange(total, dtype=np.int64) - np.repeat(block_start, nj)
          + np.repeat(Cj.indptr[entry_col], nj))
    col = np.repeat(entry_col, nj).astype(np.int32)
    r = Ci.indices[ia].astype(np.int64)
    s = Cj.indices[jb].astype(np.int64)
    vals = Ci.data[ia] * Cj.data[jb]
    if symmetric:
        keep = r >= s
        return (r * width + s)[keep], col[keep], vals[keep]
    return r * width + s, col, vals


def _all_products(Ci: sp.csc_matrix, Cj: sp.csc_matrix, symmetric: bool, width: int,
                  chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_column_products` over every column, a few million products at a time (the
    chunks' index arrays are what bounds the memory), concatenated."""
    counts = np.diff(Ci.indptr) * np.diff(Cj.indptr)
    bounds = np.searchsorted(np.cumsum(counts), np.arange(chunk, int(counts.sum()), chunk))
    edges = [0, *sorted(set(int(b) + 1 for b in bounds)), len(counts)]
    pieces = [_column_products(Ci, Cj, lo, hi, symmetric, width)
              for lo, hi in zip(edges[:-1], edges[1:], strict=True) if hi > lo]
    return (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]),
            np.concatenate([p[2] for p in pieces]))


def gram_pattern(Pi: sp.csr_matrix, Pj: sp.csr_matrix, symmetric: bool,
                 chunk: int = 2_000_000) -> GramPattern | None:
    """Build the pattern for ``Pi diag(w) Pj'`` (``Pi``: q_i x q_0, ``Pj``: q_j x q_0),
    a few million products at a time to bound the memory of the intermediate arrays.

    Returns None when it would hold more than ``MAX_PRODUCTS`` products."""
    Ci = Pi.tocsc()
    Cj = Pj.tocsc()
    counts = np.diff(Ci.indptr) * np.diff(Cj.indptr)
    total = int(counts.sum()) // (2 if symmetric else 1)
    if total > MAX_PRODUCTS:
        return None
    cells, cols, vals = _all_products(Ci, Cj, symmetric, Pj.shape[0], chunk)
    # one row of G per cell of the dense (q_i x q_j) block, so G @ w is that block, flattened
    shape = (Pi.shape[0] * Pj.shape[0], len(counts))
    G = sp.csr_matrix((vals, (cells, cols)), shape=shape)
    return GramPattern(G=G, shape=(Pi.shape[0], Pj.shape[0]))


@dataclass(frozen=True)
class CompressedGram:
    """The symmetric ``P diag(w) P'`` at its non-zero lower-triangle cells only.

    :class:`GramPattern` has one row of G per cell of the dense block, which at 20,000 levels
    is 2 * 10^8 rows (1.6 GiB of row pointers) for a block a few per cent full. Here G has one
    row per cell that occurs, and the cells' coordinates are kept beside it, for the caller to
    scatter ``G @ w`` into its own storage (see :mod:`multilevel.linalg.tiled_cholesky`).

    Attributes
    ----------
    G : scipy.sparse.csr_matrix, shape (cells, levels_0)
    rows, cols : numpy.ndarray of int64
        The cells (``rows >= cols``).
    """

    G: sp.csr_matrix
    rows: np.ndarray
    cols: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held."""
        return int(self.G.data.nbytes + self.G.indices.nbytes + self.G.indptr.nbytes
                   + self.rows.nbytes + self.cols.nbytes)


def compressed_gram(P: sp.csr_matrix, chunk: int = 2_000_000) -> CompressedGram:
    """Build :class:`CompressedGram` for ``P diag(w) P'`` (``P``: q x levels_0), a few million
    products at a time."""
    C = P.tocsc()
    cells, cols, vals = _all_products(C, C, True, P.shape[0], chunk)
    unique, row_of = np.unique(cells, return_inverse=True)
    del cells
    G = sp.csr_matrix((vals, (row_of.reshape(-1), cols)), shape=(len(unique), C.shape[1]))
    r, s = np.divmod(unique, P.shape[0])
    return CompressedGram(G=G, rows=r, cols=s)
