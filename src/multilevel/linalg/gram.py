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


def gram_pattern(Pi: sp.csr_matrix, Pj: sp.csr_matrix, symmetric: bool) -> GramPattern | None:
    """Build the pattern for ``Pi diag(w) Pj'`` (``Pi``: q_i x q_0, ``Pj``: q_j x q_0).

    Returns None when it would hold more than ``MAX_PRODUCTS`` products."""
    Ci = Pi.tocsc()
    Cj = Pj.tocsc()
    ni = np.diff(Ci.indptr)
    nj = np.diff(Cj.indptr)
    counts = ni * nj
    total = int(counts.sum())
    if total > MAX_PRODUCTS:
        return None
    col = np.repeat(np.arange(len(ni)), counts)
    # position of each product within its column's ni x nj grid
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    nj_rep = np.repeat(nj, counts)
    a = offset // np.maximum(nj_rep, 1)
    b = offset % np.maximum(nj_rep, 1)
    ia = Ci.indptr[col] + a
    jb = Cj.indptr[col] + b
    r = Ci.indices[ia].astype(np.int64)
    s = Cj.indices[jb].astype(np.int64)
    vals = Ci.data[ia] * Cj.data[jb]
    if symmetric:
        keep = r >= s
        r, s, col, vals = r[keep], s[keep], col[keep], vals[keep]
    # one row of G per cell of the dense (q_i x q_j) block, so G @ w is that block, flattened
    shape = (Pi.shape[0] * Pj.shape[0], len(ni))
    G = sp.coo_matrix((vals, (r * Pj.shape[0] + s, col)), shape=shape).tocsr()
    return GramPattern(G=G, shape=(Pi.shape[0], Pj.shape[0]))
