"""Blocked Cholesky factor L of  Lambda' A Lambda + diag(I, 0)  for the linear mixed model.

With A = [Z X y]' W [Z X y] stored by blocks (see :mod:`multilevel.linalg.cross_products`) and
Lambda block diagonal (one lower-triangular ``k_i x k_i`` template repeated over the levels of
each grouping factor, identity on [X y]), the factor has the same block layout:

* the first grouping factor's diagonal block stays block diagonal (no fill-in): a stack of
  small Cholesky factors;
* the first block column below it keeps the sparsity pattern of A (columns scaled per level);
* later grouping-factor diagonal blocks, and blocks right of the first column, are dense;
* the [X y] block row is dense, and its last diagonal element r gives the penalized residual
  sum of squares r^2.

The profiled log-likelihood needs only log|L_Z|^2, log|L_X|^2 and r^2 (Bates et al. 2015,
JSS 67(1), eqs. 34-42; Bates, Alday & Kokandakar 2025, arXiv:2505.11674): no beta or u is
solved during optimization. :func:`solve_fixed_and_modes` recovers them at the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf

from multilevel.linalg.cross_products import CrossProducts, PairBlock
from multilevel.linalg.gram import CompressedGram, GramPattern, compressed_gram, gram_pattern
from multilevel.linalg.tiled_cholesky import NotPositiveDefiniteTile, TiledLower


@dataclass
class BlockedFactor:
    """The blocked Cholesky factor for one value of theta.

    Attributes
    ----------
    first_diag : numpy.ndarray, shape (levels_0, k_0, k_0)
        Lower Cholesky factors of the first block's diagonal blocks.
    first_col : dict of int -> scipy.sparse.csr_matrix or numpy.ndarray
        ``first_col[i]`` = L[i][0] for random-effects blocks i >= 1 (dense when A is a
        reweighted copy and the block is mostly filled: crossed factors seen together in
        most level pairs, where sparse products only add overhead).
    dense_diag : dict of int -> numpy.ndarray
        ``dense_diag[j]`` = L[j][j] (dense, lower) for j >= 1; a
        :class:`~multilevel.linalg.tiled_cholesky.TiledLower` for the second of two random
        intercepts with ``TILED_ORDER`` levels or more.
    dense_off : dict of (int, int) -> numpy.ndarray
        ``dense_off[(i, j)]`` = L[i][j] for 1 <= j < i.
    xy_rows : list of numpy.ndarray
        ``xy_rows[j]`` = L[[X y]][j], shape (p + 1, q_j).
    xy_diag : numpy.ndarray, shape (p + 1, p + 1)
        Lower Cholesky factor of the [X y] diagonal block.
    logdet_re : float
        log |L_Z|^2 (sum over the random-effects diagonal blocks).
    logdet_x : float
        log |L_X|^2.
    pwrss : float
        Penalized weighted residual sum of squares r^2.
    """

    first_diag: np.ndarray
    first_col: dict[int, sp.csr_matrix | np.ndarray]
    dense_diag: dict[int, np.ndarray | TiledLower]
    dense_off: dict[tuple[int, int], np.ndarray]
    xy_rows: list[np.ndarray]
    xy_diag: np.ndarray
    logdet_re: float
    logdet_x: float
    pwrss: float


class NotPositiveDefinite(ArithmeticError):
    """A diagonal block was not positive definite (theta outside the feasible region, or
    X'X singular). Internal: the model layer turns it into an infinite objective during
    optimization and into a :class:`~multilevel.errors.NumericalError` that names the data's
    scale elsewhere."""

    def __init__(self, message: str = "a diagonal block of the blocked Cholesky factor is not "
                 "positive definite (the cross-products lost precision, or X'X is singular)",
                 ) -> None:
        super().__init__(message)


def _chol_stack(M: np.ndarray) -> np.ndarray:
    if M.shape[1] == 1:
        if np.any(M <= 0):
            raise NotPositiveDefinite
        return np.sqrt(M)
    try:
        return np.linalg.cholesky(M)
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefinite from exc


def _inv_lower_stack(L: np.ndarray) -> np.ndarray:
    if L.shape[1] == 1:
        return 1.0 / L
    return np.linalg.inv(L)


# Order from which _chol_dense factors its (temporary) argument in place.
IN_PLACE_ORDER = 256


def _chol_dense(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of M (only its lower triangle is read). LAPACK's dpotrf called
    directly: scipy.linalg.cholesky's checks and wrappers cost more than the factorization of
    the small blocks of small models (~40 of ~150 microseconds an evaluation)."""
    if M.shape[0] >= TILED_ORDER:
        return _chol_dense_tiled(M)
    if M.shape[0] >= IN_PLACE_ORDER and M.flags.c_contiguous:
        # every caller's M is a temporary: factor it in place. A C-ordered M is the
        # Fortran-ordered M' (the same symmetric matrix), whose upper factor U = L' is what
        # LAPACK writes there -- no copy of an order-q array per evaluation
        U, info = dpotrf(M.T, lower=0, clean=1, overwrite_a=1)
        if info != 0:
            raise NotPositiveDefinite
        return U.T
    L, info = dpotrf(M, lower=1, clean=1)
    if info != 0:
        raise NotPositiveDefinite
    return L


def _chol_dense_tiled(M: np.ndarray) -> np.ndarray:
    """:func:`_chol_dense` for a large M, through tiles (OpenBLAS's threaded dpotrf crashes on
    one array of order 16,000 or more; see :mod:`multilevel.linalg.tiled_cholesky`). M, a
    temporary of every caller, is overwritten with the factor (zeros above the diagonal)."""
    T = TiledLower.from_dense(M)
    try:
        T.cholesky()
    except NotPositiveDefiniteTile as exc:
        raise NotPositiveDefinite from exc
    return T.toarray(out=M)


def _block_diag_dense(stack: np.ndarray) -> np.ndarray:
    """Dense matrix with the ``(levels, k, k)`` stack on its diagonal."""
    nl, k, _ = stack.shape
    out = np.zeros((nl * k, nl * k))
    if k == 1:
        out[np.diag_indices(nl)] = stack[:, 0, 0]
        return out
    base = np.arange(nl)[:, None, None] * k
    rows = base + np.arange(k)[None, :, None]
    cols = base + np.arange(k)[None, None, :]
    out[rows, cols] = stack
    return out


def _stack_to_dense_row(stack: np.ndarray) -> np.ndarray:
    """A ``(levels, r, k)`` stack as the dense ``(r, levels * k)`` matrix it represents."""
    nl, r, k = stack.shape
    return stack.transpose(1, 0, 2).reshape(r, nl * k)


def _sandwich(T_left: np.ndarray, stack: np.ndarray, T_right: np.ndarray) -> np.ndarray:
    """T_left' @ B @ T_right for every block B of a stack."""
    if T_left.shape == (1, 1) and T_right.shape == (1, 1):
        return stack * (T_left[0, 0] * T_right[0, 0])
    return np.matmul(np.matmul(T_left.T, stack), T_right)


def _first_block_2x2(A: CrossProducts, T0: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Closed-form factor of the first block for 2 x 2 terms, level by level:
    T0 = [[t0, 0], [t1, t2]], M = T0' B T0 + I = [[l11, 0], [l21, l22]] [[l11, l21], [0, l22]],
    and the two columns x00, x01 (each (p + 1, levels)) of the [X y] row against it."""
    if "first2" not in A.cache:  # rows b00, b10, b11 of B; Z'Z does not change on refits
        B = A.diag[0]
        A.cache["first2"] = np.vstack([B[:, 0, 0], B[:, 1, 0], B[:, 1, 1]])
    b = A.cache["first2"]
    X0 = np.ascontiguousarray(A.xy_re[0][:, :, 0].T)
    X1 = np.ascontiguousarray(A.xy_re[0][:, :, 1].T)
    t0, t1, t2 = T0[0, 0].item(), T0[1, 0].item(), T0[1, 1].item()
    a = np.array([t0 * t0, 2.0 * t0 * t1, t1 * t1]) @ b + 1.0
    if a.min() <= 0.0:
        raise NotPositiveDefinite
    l11 = np.sqrt(a)
    l21 = (np.array([t2 * t0, t2 * t1]) @ b[1:]) / l11
    c = t2 * t2 * b[2] + 1.0 - l21 * l21
    if c.min() <= 0.0:
        raise NotPositiveDefinite
    l22 = np.sqrt(c)
    x00 = (t0 * X0 + t1 * X1) / l11
    x01 = (t2 * X1 - l21 * x00) / l22
    return l11, l21, l22, x00, x01, 2.0 * float(np.log(l11 * l22).sum())


def _first_block(A: CrossProducts, T0: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Factor the first (block-diagonal) block: the stack L0 of its Cholesky factors, the
    [X y] row against it as a (levels, p + 1, k0) stack, and its log-determinant.

    Scalar and 2 x 2 blocks (random intercepts; intercept and slope) use closed forms on
    vectors over the levels, which is most of the cost of small models."""
    k = T0.shape[0]
    B = A.diag[0]
    if k == 1:
        t = T0[0, 0]
        l11 = np.sqrt(t * t * B[:, 0, 0] + 1.0)
        x0 = A.xy_re[0] * (t / l11)[:, None, None]
        return l11[:, None, None], x0, 2.0 * float(np.log(l11).sum())
    if k == 2:
        l11, l21, l22, x00, x01, logdet = _first_block_2x2(A, T0)
        L0 = np.zeros((len(l11), 2, 2))
        L0[:, 0, 0] = l11
        L0[:, 1, 0] = l21
        L0[:, 1, 1] = l22
        return L0, np.stack([x00.T, x01.T], axis=2), logdet
    M0 = _sandwich(T0, B, T0) + np.eye(k)
    L0 = _chol_stack(M0)
    x0 = np.matmul(np.matmul(A.xy_re[0], T0), np.swapaxes(_inv_lower_stack(L0), 1, 2))
    return L0, x0, 2.0 * float(np.log(np.diagonal(L0, axis1=1, axis2=2)).sum())


# A first-column block of a reweighted A with more than this share of its entries filled is
# kept dense (see BlockedFactor.first_col).
DENSE_SHARE = 0.3


def _dense_pair(pair: PairBlock, data: np.ndarray) -> np.ndarray:
    """The pair block with values ``data`` as a dense array."""
    out = np.zeros(pair.shape)
    rows = np.repeat(np.arange(pair.shape[0]), np.diff(pair.indptr))
    out[rows, pair.indices] = data.ravel()[pair.perm]
    return out


def _gram(A: CrossProducts, i: int, j: int) -> GramPattern | None:
    """The cached :class:`GramPattern` of blocks i and j against the first block, when all
    three are scalar (None otherwise, or when the pattern would be too large)."""
    key = ("gram", i, j)
    if key not in A.cache:
        scalar = (A.n_columns[0] == A.n_columns[i] == A.n_columns[j] == 1
                  and "reweighted" not in A.cache)
        A.cache[key] = (gram_pattern(A.pairs[(i, 0)].to_csr(), A.pairs[(j, 0)].to_csr(),
                                     symmetric=i == j) if scalar else None)
    return A.cache[key]


def _times_own_transpose(X: np.ndarray) -> np.ndarray:
    """``X @ X.T``. From ``TILED_ORDER`` rows through a general product with a copied
    transpose: numpy hands ``X @ X.T`` to OpenBLAS's threaded syrk, which crashes the process
    on outputs of order 16,000 or more on this machine (see
    :mod:`multilevel.linalg.tiled_cholesky`); the general product does not (measured at 17,000)."""
    if X.shape[0] < TILED_ORDER:
        return X @ X.T
    return X @ np.ascontiguousarray(X.T)


def _subtract_first_col_product(A: CrossProducts, out: np.ndarray, i: int, j: int,
                                first_col: dict[int, sp.csr_matrix | np.ndarray],
                                templates: list[np.ndarray],
                                l0: np.ndarray) -> None:
    """out -= L[i][0] L[j][0]' (only the lower triangle when i == j; Cholesky reads no more)."""
    pattern = _gram(A, i, j)
    if pattern is None:
        left = first_col[i]
        product = (_times_own_transpose(left) if i == j and isinstance(left, np.ndarray)
                   else left @ first_col[j].T)
        out -= product if isinstance(product, np.ndarray) else product.toarray()
        return
    scale = (templates[i][0, 0] * templates[j][0, 0] * templates[0][0, 0] ** 2)
    out -= scale * pattern.block(1.0 / (l0 * l0))


def factorize(A: CrossProducts, templates: list[np.ndarray]) -> BlockedFactor:
    """Blocked Cholesky factor of Lambda' A Lambda + diag(I, 0).

    Parameters
    ----------
    A : CrossProducts
    templates : list of (k_i, k_i) lower-triangular arrays
        The repeated diagonal block of Lambda for each random-effects block.

    Raises
    ------
    NotPositiveDefinite
    """
    if _two_scalar(A):
        two = _factor_two_scalar(A, templates, keep=True)
        if two is not None:
            return two
    m = A.n_blocks
    T0 = templates[0]
    L0, x0, logdet_re = _first_block(A, T0)
    first_col: dict[int, sp.csr_matrix | np.ndarray] = {}
    L0inv_t = np.swapaxes(_inv_lower_stack(L0), 1, 2) if m > 1 else L0
    l0 = L0[:, 0, 0]
    for i in range(1, m):
        pair = A.pairs[(i, 0)]
        data = np.matmul(_sandwich(templates[i], pair.data, T0), L0inv_t[pair.cols])
        first_col[i] = (_dense_pair(pair, data) if "reweighted" in A.cache
                        and data.size > DENSE_SHARE * pair.shape[0] * pair.shape[1]
                        else pair.to_csr(data))

    xy_rows: list[np.ndarray] = [_stack_to_dense_row(x0)] if m > 1 else []
    dense_diag: dict[int, np.ndarray | TiledLower] = {}
    dense_off: dict[tuple[int, int], np.ndarray] = {}
    for j in range(1, m):
        Tj = templates[j]
        D = _block_diag_dense(_sandwich(Tj, A.diag[j], Tj))
        D[np.diag_indices_from(D)] += 1.0
        _subtract_first_col_product(A, D, j, j, first_col, templates, l0)
        for k in range(1, j):
            D -= _times_own_transpose(dense_off[(j, k)])
        Lj = _chol_dense(D)
        dense_diag[j] = Lj
        logdet_re += 2.0 * float(np.log(np.diag(Lj)).sum())
        for i in range(j + 1, m):
            pair = A.pairs[(i, j)]
            B = pair.to_csr(_sandwich(templates[i], pair.data, Tj)).toarray()
            _subtract_first_col_product(A, B, i, j, first_col, templates, l0)
            for k in range(1, j):
                B -= dense_off[(i, k)] @ dense_off[(j, k)].T
            dense_off[(i, j)] = sla.solve_triangular(Lj, B.T, lower=True,
                                                     check_finite=False).T
        R = _stack_to_dense_row(np.matmul(A.xy_re[j], Tj))
        R -= (first_col[j] @ xy_rows[0].T).T
        for k in range(1, j):
            R -= xy_rows[k] @ dense_off[(j, k)].T
        xy_rows.append(sla.solve_triangular(Lj, R.T, lower=True, check_finite=False).T)

    if m == 1:
        xy_rows = [_stack_to_dense_row(x0)]
    if A.xy.shape[0] == 0:  # no [X y]: the random-effects factor alone (its log-determinant)
        return BlockedFactor(
            first_diag=L0, first_col=first_col, dense_diag=dense_diag, dense_off=dense_off,
            xy_rows=xy_rows, xy_diag=A.xy, logdet_re=logdet_re, logdet_x=0.0, pwrss=0.0)
    D = A.xy - np.einsum("lak,lbk->ab", x0, x0)
    for j in range(1, m):
        D -= xy_rows[j] @ xy_rows[j].T
    Lxy = _chol_dense(D) if D.shape[0] > 8 else _chol_small(D)
    p = A.p
    dxy = np.diag(Lxy)
    return BlockedFactor(
        first_diag=L0, first_col=first_col, dense_diag=dense_diag, dense_off=dense_off,
        xy_rows=xy_rows, xy_diag=Lxy, logdet_re=logdet_re,
        logdet_x=2.0 * float(np.log(dxy[:p]).sum()), pwrss=float(dxy[p] ** 2))


def profiled_terms(A: CrossProducts, templates: list[np.ndarray]) -> tuple[float, float, float]:
    """``(logdet_re, logdet_x, pwrss)`` -- all the objective needs -- without keeping the
    factor. With one grouping factor this skips the bookkeeping of :func:`factorize`, which
    is a large share of an evaluation for small models."""
    if _two_scalar(A):
        f = _factor_two_scalar(A, templates, keep=False)
        if f is not None:
            return f.logdet_re, f.logdet_x, f.pwrss
    if A.n_blocks > 1:
        f = factorize(A, templates)
        return f.logdet_re, f.logdet_x, f.pwrss
    if A.n_columns[0] == 2:
        _, _, _, x00, x01, logdet_re = _first_block_2x2(A, templates[0])
        D = A.xy - x00 @ x00.T - x01 @ x01.T
    else:
        _, x0, logdet_re = _first_block(A, templates[0])
        D = A.xy - np.einsum("lak,lbk->ab", x0, x0)
    d = np.diag(_chol_dense(D) if D.shape[0] > 8 else _chol_small(D))
    return logdet_re, 2.0 * float(np.log(d[:-1]).sum()), float(d[-1] ** 2)


# Levels of the second of two random intercepts from which its dense block is held in tiles
# (:mod:`multilevel.linalg.tiled_cholesky`) and assembled from its non-zero cells only. Below
# this the one-array path is as fast; from 16,000 the one-array LAPACK call crashes (see there).
TILED_ORDER = 8192


def _two_scalar(A: CrossProducts) -> bool:
    """Two random intercepts (crossed or nested, ``(1 | a) + (1 | b)``) of a linear model."""
    return (A.n_blocks == 2 and A.n_columns == [1, 1] and A.xy.shape[0] > 0
            and "reweighted" not in A.cache)


@dataclass
class _TiledSchur:
    """What the tiled path keeps between evaluations: the non-zero cells of the second
    block's Gram product, where they fall among the tiles, and the tiles themselves."""

    gram: CompressedGram
    located: list[tuple[int, int, np.ndarray, np.ndarray]]
    tiles: TiledLower


def _tiled_schur(A: CrossProducts) -> _TiledSchur:
    """The cached workspace of the tiled path (built on first use; a factor kept by
    :func:`factorize` takes its tiles away, and the next evaluation builds new ones)."""
    ws: _TiledSchur | None = A.cache.get("tiled")
    if ws is None:
        gram = A.cache.get("tiled_gram")
        if gram is None:
            gram = A.cache["tiled_gram"] = compressed_gram(A.pairs[(1, 0)].to_csr())
        tiles = TiledLower(A.n_levels[1])
        located = A.cache.get("tiled_cells")
        if located is None:
            located = A.cache["tiled_cells"] = tiles.locate(gram.rows, gram.cols)
        ws = A.cache["tiled"] = _TiledSchur(gram=gram, located=located, tiles=tiles)
    return ws


def _factor_two_scalar(A: CrossProducts, templates: list[np.ndarray], keep: bool,
                       ) -> BlockedFactor | None:
    """The factor of two scalar random-effects terms, the same arithmetic as
    :func:`factorize` on vectors: the first block column L[1][0] stays a vector over the level
    pairs (no sparse matrix is built), and its product with the [X y] row is a sum by rows.
    Small models of this kind spent most of an evaluation building scipy.sparse objects.

    The second block is one dense array below ``TILED_ORDER`` levels, tiles from there.
    With ``keep`` False only the three numbers of the objective are filled in. Returns None
    when the one-array path has no Gram pattern (too many products): the caller then uses
    :func:`factorize`."""
    t0 = float(templates[0][0, 0])
    t1 = float(templates[1][0, 0])
    pair = A.pairs[(1, 0)]
    n1 = A.n_levels[1]
    tiled = n1 >= TILED_ORDER
    pattern = None if tiled else _gram(A, 1, 1)
    if not tiled and pattern is None:
        return None
    l0 = np.sqrt(t0 * t0 * A.diag[0][:, 0, 0] + 1.0)
    logdet_re = 2.0 * float(np.log(l0).sum())
    x0 = A.xy_re[0][:, :, 0] * (t0 / l0)[:, None]  # (levels_0, p + 1): L[[X y]][0]'
    diag1 = t1 * t1 * A.diag[1][:, 0, 0] + 1.0
    L1: np.ndarray | TiledLower
    if tiled:
        ws = _tiled_schur(A)
        products = ws.gram.G @ (1.0 / (l0 * l0))
        ws.tiles.assemble(diag1, ws.located, (-(t1 * t1 * t0 * t0)) * products)
        try:
            logdet_re += ws.tiles.cholesky(A.cache.get("tile_progress"))
        except NotPositiveDefiniteTile as exc:
            raise NotPositiveDefinite from exc
        L1 = ws.tiles
        if keep:  # the factor owns these tiles now
            del A.cache["tiled"]
    else:
        assert pattern is not None
        D = np.zeros((n1, n1))
        D[np.diag_indices(n1)] = diag1
        D -= (t1 * t1 * t0 * t0) * pattern.block(1.0 / (l0 * l0))
        L1 = _chol_dense(D)
        logdet_re += 2.0 * float(np.log(np.diag(L1)).sum())
    c = pair.data[:, 0, 0] * (t1 * t0 / l0[pair.cols])  # L[1][0] at the level pairs
    weighted = x0[pair.cols] * c[:, None]
    R = A.xy_re[1][:, :, 0] * t1  # (levels_1, p + 1): the [X y] row against block 1, transposed
    for a in range(R.shape[1]):
        R[:, a] -= np.bincount(pair.rows, weights=weighted[:, a], minlength=n1)
    x1 = _solve_lower(L1, R)
    D = A.xy - x0.T @ x0 - x1.T @ x1
    Lxy = _chol_dense(D) if D.shape[0] > 8 else _chol_small(D)
    d = np.diag(Lxy)
    return BlockedFactor(
        first_diag=l0[:, None, None] if keep else np.empty((0, 1, 1)),
        first_col={1: pair.to_csr(c)} if keep else {},
        dense_diag={1: L1} if keep else {}, dense_off={},
        xy_rows=[x0.T, x1.T] if keep else [], xy_diag=Lxy, logdet_re=logdet_re,
        logdet_x=2.0 * float(np.log(d[:-1]).sum()), pwrss=float(d[-1] ** 2))


def as_dense(L: np.ndarray | TiledLower) -> np.ndarray:
    """A factor block as one dense array (a tiled one assembled: O(q^2) memory)."""
    return L.toarray() if isinstance(L, TiledLower) else L


def _solve_lower(L: np.ndarray | TiledLower, B: np.ndarray) -> np.ndarray:
    """``L^{-1} B`` for a dense or tiled lower-triangular factor."""
    if isinstance(L, TiledLower):
        return L.solve_lower(B)
    return sla.solve_triangular(L, B, lower=True, check_finite=False)


def _solve_upper(L: np.ndarray | TiledLower, B: np.ndarray) -> np.ndarray:
    """``L^{-T} B`` for a dense or tiled lower-triangular factor."""
    if isinstance(L, TiledLower):
        return L.solve_upper(B)
    return sla.solve_triangular(L.T, B, lower=False, check_finite=False)


def _chol_small(D: np.ndarray) -> np.ndarray:
    # numpy's Cholesky for the [X y] block of a few columns, as before the direct LAPACK
    # calls: its rounding differs from scipy's LAPACK in the last bits, and ill-conditioned
    # fits (Orthodont's random slopes by ML) follow those bits to another point of a flat
    # optimum, beyond the lme4 reference tests' tolerance
    try:
        return np.linalg.cholesky(D)
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefinite from exc


def solve_fixed_and_modes(A: CrossProducts, f: BlockedFactor,
                          ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Fixed effects beta and spherical conditional modes u (one (levels_j, k_j) array per
    block) from the factor at the optimum."""
    p = A.p
    Lxx = f.xy_diag[:p, :p]
    beta = (sla.solve_triangular(Lxx.T, f.xy_diag[p, :p], lower=False, check_finite=False)
            if p else np.empty(0))
    m = A.n_blocks
    # right-hand side in each block: l_yZ - L_XZ' beta
    c = [row[p] - row[:p].T @ beta for row in f.xy_rows]
    u: list[np.ndarray] = [np.empty(0)] * m
    for j in range(m - 1, 0, -1):
        rhs = c[j].copy()
        for i in range(j + 1, m):
            rhs -= f.dense_off[(i, j)].T @ u[i]
        u[j] = _solve_upper(f.dense_diag[j], rhs)
    rhs = c[0].copy()
    for i in range(1, m):
        rhs -= f.first_col[i].T @ u[i]
    k0 = A.n_columns[0]
    u[0] = _back_substitute_stack(f.first_diag, rhs.reshape(-1, k0)).reshape(-1)
    return beta, [uj.reshape(A.n_levels[j], A.n_columns[j]) for j, uj in enumerate(u)]


def _back_substitute_stack(L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve L_l' x_l = rhs_l for every level l (L a (levels, k, k) stack of lower factors,
    rhs (levels, k)): by columns from the last, vectorized over the levels (a batched
    general solve costs several times more for the small k of random-effects terms)."""
    k = L.shape[1]
    x = np.empty_like(rhs)
    for a in range(k - 1, -1, -1):
        acc = rhs[:, a].copy()
        for b in range(a + 1, k):
            acc -= L[:, b, a] * x[:, b]
        x[:, a] = acc / L[:, a, a]
    return x


def re_factor_dense(A: CrossProducts, f: BlockedFactor) -> np.ndarray:
    """The random-effects part L_Z of the factor as one dense lower-triangular matrix
    (for conditional variances; size q x q, so only for moderate q)."""
    q_sizes = [nl * k for nl, k in zip(A.n_levels, A.n_columns, strict=True)]
    offs = np.concatenate([[0], np.cumsum(q_sizes)])
    L = np.zeros((offs[-1], offs[-1]))
    L[: offs[1], : offs[1]] = _block_diag_dense(f.first_diag)
    for i, blk in f.first_col.items():
        L[offs[i]: offs[i + 1], : offs[1]] = blk if isinstance(blk, np.ndarray) else (
            blk.toarray())
    for j, blk in f.dense_diag.items():
        L[offs[j]: offs[j + 1], offs[j]: offs[j + 1]] = as_dense(blk)
    for (i, j), blk in f.dense_off.items():
        L[offs[i]: offs[i + 1], offs[j]: offs[j + 1]] = blk
    return L
