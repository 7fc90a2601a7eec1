"""The second pass: the blocks of A = [Z X y]' W [Z X y] as a sum over partitions.

Every block of A is a sum over rows, so each partition computes its own blocks (with the
global level codes) and the partial results are added. Only the sizes of the levels travel:
per grouping factor a stack per level, per pair of factors the level pairs that occur, and the
small [X y] blocks.

One subtlety makes the sum exact rather than merely equal in exact arithmetic: the in-memory
model centres the columns of X (all but the intercept) and y at their weighted means before
forming the products (see :func:`multilevel.models.lmm._centering`), and that mean is known
only after the pass. Each partition therefore centres at its *own* mean and reports, beside
the centred sums, the first moments it needs to move them to another centre: for a centre
shift d,

    sum w (v - c - d)(v - c - d)' = S - d s' - s d' + W d d',   s = sum w (v - c),
    sum_{rows of level l} w (v - c - d) z' = R_l - d (sum_l w z)'.

Two partial results are moved to their common weighted mean and added (the pairwise update of
Chan, Golub & LeVeque 1979, for matrices): no large sums cancel, so the result agrees with
the in-memory cross-products to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multilevel.data.design import RANK_TOLERANCE
from multilevel.distributed.encoding import EncodedPartition
from multilevel.linalg.cross_products import CrossProducts, cross_products, make_pair_block


@dataclass
class PartialSums:
    """The sums of one partition, or of several added.

    Attributes
    ----------
    n, n_dropped, n_zero_weight : rows used; rows dropped as missing; as weight zero
    wsum, log_w : sum of the prior weights (n without weights); sum of their logs
    centred : (p + 1,) bool, the columns of [X y] that are centred (none without intercept)
    centre : (p + 1,) the point the sums below are taken about (0 where not centred)
    first : (p + 1,) sum w (v - centre)
    xy : (p + 1, p + 1) sum w (v - centre)(v - centre)'
    xy_re, zsum, diag : per block, ``(levels, p + 1, k)`` sum w (v - centre) z',
        ``(levels, k)`` sum w z, ``(levels, k, k)`` sum w z z'
    pairs : (i, j) -> (keys, data): level pair keys ``level_i * levels_j + level_j``,
        sorted, and their ``(npairs, k_i, k_j)`` sums w z_i z_j'
    z_min, z_max : per block, the smallest and largest value of each Z column
    """

    n: int
    n_dropped: int
    n_zero_weight: int
    wsum: float
    log_w: float
    centred: np.ndarray
    centre: np.ndarray
    first: np.ndarray
    xy: np.ndarray
    xy_re: list[np.ndarray]
    zsum: list[np.ndarray]
    diag: list[np.ndarray]
    pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    z_min: list[np.ndarray]
    z_max: list[np.ndarray]


def partial_sums(enc: EncodedPartition, n_levels: list[int], centred: np.ndarray,
                 ) -> PartialSums:
    """The sums of one encoded partition, centred at its own weighted mean."""
    V = np.column_stack([enc.X, enc.y]) if len(enc.y) else np.zeros((0, len(centred)))
    n = V.shape[0]
    w = np.ones(n) if enc.weights is None else enc.weights
    wsum = float(w.sum())
    centre = np.zeros(len(centred))
    if n and wsum > 0:
        centre[centred] = np.average(V[:, centred], axis=0, weights=w)
    Vc = V - centre
    k = [z.shape[1] for z in enc.Z]
    sqrt_w = None if enc.weights is None else np.sqrt(w)
    if n:
        A = cross_products(enc.codes, enc.Z, n_levels, Vc, sqrt_w)
        diag, xy_re, xy = A.diag, A.xy_re, A.xy
        pairs = {key: (blk.rows * n_levels[key[1]] + blk.cols, blk.data)
                 for key, blk in A.pairs.items()}
    else:
        diag = [np.zeros((nl, kb, kb)) for nl, kb in zip(n_levels, k, strict=True)]
        xy_re = [np.zeros((nl, V.shape[1], kb)) for nl, kb in zip(n_levels, k, strict=True)]
        xy = np.zeros((V.shape[1], V.shape[1]))
        pairs = {(i, j): (np.zeros(0, dtype=np.int64), np.zeros((0, k[i], k[j])))
                 for i in range(len(k)) for j in range(i)}
    zsum = [np.column_stack([np.bincount(c, weights=w * z[:, a], minlength=nl)
                             for a in range(z.shape[1])])
            for c, z, nl in zip(enc.codes, enc.Z, n_levels, strict=True)]
    return PartialSums(
        n=n, n_dropped=enc.n_dropped, n_zero_weight=enc.n_zero_weight, wsum=wsum,
        log_w=float(np.log(w[w > 0]).sum()) if enc.weights is not None else 0.0,
        centred=centred, centre=centre, first=(Vc * w[:, None]).sum(axis=0), xy=xy,
        xy_re=xy_re, zsum=zsum, diag=diag, pairs=pairs,
        z_min=[z.min(axis=0) if n else np.full(z.shape[1], np.inf) for z in enc.Z],
        z_max=[z.max(axis=0) if n else np.full(z.shape[1], -np.inf) for z in enc.Z])


def _shifted(P: PartialSums, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                          list[np.ndarray]]:
    """``first``, ``xy`` and ``xy_re`` of ``P`` taken about ``centre`` instead."""
    d = centre - P.centre
    if not d.any():
        return P.first, P.xy, P.xy_re
    xy = P.xy - np.outer(d, P.first) - np.outer(P.first, d) + P.wsum * np.outer(d, d)
    xy_re = [r - d[None, :, None] * zs[:, None, :] for r, zs in zip(P.xy_re, P.zsum,
                                                                     strict=True)]
    return P.first - P.wsum * d, xy, xy_re


def _merged_pairs(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                  ) -> tuple[np.ndarray, np.ndarray]:
    keys = np.concatenate([a[0], b[0]])
    data = np.concatenate([a[1], b[1]])
    uniq, inv = np.unique(keys, return_inverse=True)
    out = np.zeros((len(uniq),) + data.shape[1:])
    np.add.at(out, inv.ravel(), data)
    return uniq, out


def combine(*parts: PartialSums) -> PartialSums:
    """The sums of several partitions' rows together (moved to their common mean, added)."""
    total = parts[0]
    for P in parts[1:]:
        total = _combine_two(total, P)
    return total


def _combine_two(a: PartialSums, b: PartialSums) -> PartialSums:
    wsum = a.wsum + b.wsum
    centre = np.zeros(len(a.centred))
    if wsum > 0:
        # the exact weighted mean of both: each centre corrected by its own first moment
        centre[a.centred] = ((a.wsum * a.centre + a.first + b.wsum * b.centre + b.first)
                             / wsum)[a.centred]
    fa, xya, rea = _shifted(a, centre)
    fb, xyb, reb = _shifted(b, centre)
    return PartialSums(
        n=a.n + b.n, n_dropped=a.n_dropped + b.n_dropped,
        n_zero_weight=a.n_zero_weight + b.n_zero_weight, wsum=wsum, log_w=a.log_w + b.log_w,
        centred=a.centred, centre=centre, first=fa + fb, xy=xya + xyb,
        xy_re=[x + y for x, y in zip(rea, reb, strict=True)],
        zsum=[x + y for x, y in zip(a.zsum, b.zsum, strict=True)],
        diag=[x + y for x, y in zip(a.diag, b.diag, strict=True)],
        pairs={key: _merged_pairs(a.pairs[key], b.pairs[key]) for key in a.pairs},
        z_min=[np.minimum(x, y) for x, y in zip(a.z_min, b.z_min, strict=True)],
        z_max=[np.maximum(x, y) for x, y in zip(a.z_max, b.z_max, strict=True)])


def aliased_columns(P: PartialSums) -> np.ndarray:
    """Columns of X that are linear combinations of earlier ones, from the sums alone.

    The in-memory design declares a column aliased when its norm after projection on the
    earlier (kept) columns is below ``RANK_TOLERANCE`` of its norm (R's ``qr``); the same
    quantities are read off the Gram matrix X' W X, rebuilt about zero from the centred sums.
    """
    p = len(P.centre) - 1
    c, s = P.centre, P.first
    G = (P.xy + np.outer(c, s) + np.outer(s, c) + P.wsum * np.outer(c, c))[:p, :p]
    alias = np.zeros(p, dtype=bool)
    kept: list[int] = []
    for j in range(p):
        norm2 = G[j, j]
        if kept:
            g = G[kept, j]
            try:
                proj = float(g @ np.linalg.solve(G[np.ix_(kept, kept)], g))
            except np.linalg.LinAlgError:
                proj = norm2
            resid2 = norm2 - proj
        else:
            resid2 = norm2
        if norm2 <= 0 or np.sqrt(max(resid2, 0.0)) <= RANK_TOLERANCE * np.sqrt(norm2):
            alias[j] = True
        else:
            kept.append(j)
    return alias


def to_cross_products(P: PartialSums, keep: np.ndarray, n_levels: list[int]) -> CrossProducts:
    """The model's :class:`~multilevel.linalg.cross_products.CrossProducts` from the total
    sums (taken about the global weighted mean), X restricted to the ``keep`` columns."""
    cols = np.concatenate([np.flatnonzero(keep), [len(keep)]])
    k = [d.shape[1] for d in P.diag]
    pairs = {}
    for (i, j), (keys, data) in P.pairs.items():
        shape = (n_levels[i] * k[i], n_levels[j] * k[j])
        pairs[(i, j)] = make_pair_block(keys // n_levels[j], keys % n_levels[j], data, shape)
    return CrossProducts(diag=P.diag, pairs=pairs,
                         xy_re=[np.ascontiguousarray(r[:, cols, :]) for r in P.xy_re],
                         xy=np.ascontiguousarray(P.xy[np.ix_(cols, cols)]),
                         n_levels=list(n_levels), n_columns=k)
