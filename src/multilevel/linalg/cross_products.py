"""The blocks of A = [Z X y]' W [Z X y], accumulated in one pass over the rows.

Block rows follow the random-effects blocks (one per grouping factor, the model decides their
order), then one dense block row for [X y]. Storage per block type:

* diagonal block of a grouping factor: a stack ``(levels, k, k)`` -- Z_i'Z_i is block diagonal;
* block between two grouping factors: :class:`PairBlock`, the (level_i, level_j) pairs that
  occur together, each with a dense ``k_i x k_j`` block;
* [X y] against a grouping factor: a stack ``(levels, p + 1, k)``;
* [X y] against itself: dense ``(p + 1, p + 1)``.

Nothing here depends on theta, so it is computed once per model (and once per new response
for the [X y] parts, which is what bootstrap refits reuse).

Structure and values are kept apart: which level pairs occur, and where each row falls among
them (``pair_index``), depend on the grouping factors only; the summed products depend on the
weights too. :func:`reweighted` recomputes the values for new weights on the same structure --
what a GLMM's penalized iteratively reweighted least squares does at every step -- and starts
a fresh cache, so nothing derived from the old weights is ever reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class PairBlock:
    """Sparse block Z_i' W Z_j between two grouping factors, stored by level pairs.

    Attributes
    ----------
    rows, cols : numpy.ndarray of int64, shape (npairs,)
        Level of factor i and of factor j for each pair that occurs in the data.
    data : numpy.ndarray, shape (npairs, k_i, k_j)
        The summed cross-products of the two terms' columns over the rows of each pair.
    shape : tuple of int
        ``(levels_i * k_i, levels_j * k_j)``.
    indptr, indices, perm : numpy.ndarray
        CSR structure of the expanded matrix and the permutation taking ``data.ravel()``
        to CSR order, so a new ``data`` becomes a CSR matrix without re-sorting.
    """

    rows: np.ndarray
    cols: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    perm: np.ndarray

    def to_csr(self, data: np.ndarray | None = None) -> sp.csr_matrix:
        """The block as a CSR matrix, optionally with new block values of the same pattern."""
        values = (self.data if data is None else data).ravel()[self.perm]
        return sp.csr_matrix((values, self.indices, self.indptr), shape=self.shape)


def make_pair_block(rows: np.ndarray, cols: np.ndarray, data: np.ndarray,
                    shape: tuple[int, int]) -> PairBlock:
    """Build a :class:`PairBlock`, precomputing its CSR structure."""
    npairs, ki, kj = data.shape
    a = np.arange(ki)
    b = np.arange(kj)
    r = (rows[:, None, None] * ki + a[None, :, None]) * np.ones((1, 1, kj), dtype=np.int64)
    c = (cols[:, None, None] * kj + b[None, None, :]) * np.ones((1, ki, 1), dtype=np.int64)
    r = r.ravel()
    c = c.ravel()
    perm = np.lexsort((c, r))
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.add.at(indptr, r + 1, 1)
    np.cumsum(indptr, out=indptr)
    return PairBlock(rows=rows, cols=cols, data=data, shape=shape, indptr=indptr,
                     indices=c[perm].astype(np.int32), perm=perm)


@dataclass(frozen=True)
class CrossProducts:
    """All blocks of A for one model. See the module docstring for the layout.

    Attributes
    ----------
    diag : list of numpy.ndarray
        ``diag[i]`` is the ``(levels_i, k_i, k_i)`` stack of Z_i' W Z_i.
    pairs : dict
        ``pairs[(i, j)]`` for ``i > j`` is the :class:`PairBlock` Z_i' W Z_j (present only
        for pairs of distinct grouping factors).
    xy_re : list of numpy.ndarray
        ``xy_re[j]`` is the ``(levels_j, p + 1, k_j)`` stack of [X y]' W Z_j.
    xy : numpy.ndarray
        ``(p + 1, p + 1)``: [X y]' W [X y].
    n_levels, n_columns : list of int
        Levels and columns per level of each grouping factor block.
    pair_index : dict
        ``pair_index[(i, j)]``: for each row, its position among the level pairs of
        ``pairs[(i, j)]`` (structure, shared by :func:`reweighted` copies).
    cache : dict
        Quantities derived from the Z-blocks' values (sparsity patterns with their products,
        contiguous copies), built on first use by the factorization and shared by copies with
        a new response; nothing that depends on [X y] may go here. A reweighted copy starts
        with a fresh cache (its Z-block values differ) marked ``"reweighted"``: it skips the
        precomputed Gram patterns, whose set-up costs more than one factorization.
    """

    diag: list[np.ndarray]
    pairs: dict[tuple[int, int], PairBlock]
    xy_re: list[np.ndarray]
    xy: np.ndarray
    n_levels: list[int]
    n_columns: list[int]
    pair_index: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, compare=False,
                                                          repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_blocks(self) -> int:
        """Number of random-effects blocks (grouping factors)."""
        return len(self.diag)

    @property
    def p(self) -> int:
        """Number of fixed-effects columns."""
        return int(self.xy.shape[0] - 1)


def _grouped_outer(codes: np.ndarray, left: np.ndarray, right: np.ndarray,
                   n_groups: int) -> np.ndarray:
    """Per group g, sum over its rows of left[r]' right[r]: shape (n_groups, kl, kr)."""
    kl, kr = left.shape[1], right.shape[1]
    out = np.empty((n_groups, kl, kr))
    symmetric = left is right  # then only the lower triangle is summed
    for a in range(kl):
        for b in range(a + 1 if symmetric else kr):
            out[:, a, b] = np.bincount(codes, weights=left[:, a] * right[:, b],
                                       minlength=n_groups)
            if symmetric and b < a:
                out[:, b, a] = out[:, a, b]
    return out


def xy_cross_products(codes: list[np.ndarray], Z: list[np.ndarray], n_levels: list[int],
                      Xy: np.ndarray, sqrt_weights: np.ndarray | None = None,
                      ) -> tuple[list[np.ndarray], np.ndarray]:
    """The [X y] parts of A: ``xy_re`` stacks and ``xy`` (rows scaled by ``sqrt_weights``)."""
    if sqrt_weights is not None:
        Z = [z * sqrt_weights[:, None] for z in Z]
        Xy = Xy * sqrt_weights[:, None]
    return _xy_blocks(codes, Z, n_levels, Xy)


def _xy_blocks(codes: list[np.ndarray], Z: list[np.ndarray], n_levels: list[int],
               Xy: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    xy_re = [_grouped_outer(c, Xy, z, nl) for c, z, nl in zip(codes, Z, n_levels, strict=True)]
    return xy_re, Xy.T @ Xy


def cross_products(codes: list[np.ndarray], Z: list[np.ndarray], n_levels: list[int],
                   Xy: np.ndarray, sqrt_weights: np.ndarray | None = None) -> CrossProducts:
    """Accumulate every block of A in one pass over the rows.

    Parameters
    ----------
    codes : list of (n,) int arrays
        Level code of each row, one array per grouping-factor block.
    Z : list of (n, k_i) arrays
        The block's model-matrix columns (several terms on one factor already merged).
    n_levels : list of int
    Xy : (n, p + 1) array
        The fixed-effects matrix with the response as its last column.
    sqrt_weights : (n,) array or None
        Square roots of prior weights; rows of Z and [X y] are scaled by them.
    """
    Zw = Z if sqrt_weights is None else [z * sqrt_weights[:, None] for z in Z]
    Xyw = Xy if sqrt_weights is None else Xy * sqrt_weights[:, None]
    diag = [_grouped_outer(c, z, z, nl) for c, z, nl in zip(codes, Zw, n_levels, strict=True)]
    pairs: dict[tuple[int, int], PairBlock] = {}
    pair_index: dict[tuple[int, int], np.ndarray] = {}
    for i in range(len(codes)):
        for j in range(i):
            key = codes[i] * n_levels[j] + codes[j]
            uniq, inv = np.unique(key, return_inverse=True)
            pair_index[(i, j)] = inv.ravel()
            data = _grouped_outer(pair_index[(i, j)], Zw[i], Zw[j], len(uniq))
            shape = (n_levels[i] * Zw[i].shape[1], n_levels[j] * Zw[j].shape[1])
            pairs[(i, j)] = make_pair_block(uniq // n_levels[j], uniq % n_levels[j], data,
                                            shape)
    xy_re, xy = _xy_blocks(codes, Zw, n_levels, Xyw)
    return CrossProducts(diag=diag, pairs=pairs, xy_re=xy_re, xy=xy, n_levels=list(n_levels),
                         n_columns=[z.shape[1] for z in Z], pair_index=pair_index)


def reweighted(A: CrossProducts, codes: list[np.ndarray], Z: list[np.ndarray], Xy: np.ndarray,
               sqrt_weights: np.ndarray | None = None,
               weights: np.ndarray | None = None) -> CrossProducts:
    """A with the values recomputed for new row weights (and a new [X y]) on A's structure.

    Parameters
    ----------
    A : CrossProducts
        Built by :func:`cross_products` on the same ``codes`` and ``Z``; its level pairs and
        row-to-pair map are reused (a row whose weight becomes 0 keeps its pair, with value 0).
    codes, Z : list of arrays
        As given to :func:`cross_products`.
    Xy : (n, p + 1) array
        The new [X y] (the number of columns may differ from A's; zero columns give the
        random-effects blocks alone).
    sqrt_weights : (n,) array, optional
        Square roots of new non-negative weights.
    weights : (n,) array, optional
        Instead of ``sqrt_weights``: weights of any sign (an observed information that is
        negative for some rows; the factorization then fails where the sum is not positive
        definite).
    """
    if weights is None:
        assert sqrt_weights is not None
        left = [z * sqrt_weights[:, None] for z in Z]
        right = left
        xy_left = xy_right = Xy * sqrt_weights[:, None]
    else:
        left = [z * weights[:, None] for z in Z]
        right = Z
        xy_left, xy_right = Xy * weights[:, None], Xy
    diag = [_grouped_outer(c, a, b, nl)
            for c, a, b, nl in zip(codes, left, right, A.n_levels, strict=True)]
    pairs = {key: replace(pair, data=_grouped_outer(A.pair_index[key], left[key[0]],
                                                    right[key[1]], pair.data.shape[0]))
             for key, pair in A.pairs.items()}
    xy_re = [_grouped_outer(c, xy_left, z, nl)
             for c, z, nl in zip(codes, right, A.n_levels, strict=True)]
    return CrossProducts(diag=diag, pairs=pairs, xy_re=xy_re, xy=xy_left.T @ xy_right,
                         n_levels=A.n_levels, n_columns=A.n_columns, pair_index=A.pair_index,
                         cache={"reweighted": True})
