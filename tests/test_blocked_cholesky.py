"""The blocked Cholesky kernels against a dense numpy factorization, on random problems of
every block-type combination: scalar or vector first block, one to three grouping factors,
nested or crossed, scalar or vector later blocks, with and without weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multilevel.linalg.blocked_cholesky import factorize, re_factor_dense, solve_fixed_and_modes
from multilevel.linalg.cross_products import cross_products


def _problem(seed: int, ks: tuple[int, ...], levels: tuple[int, ...], n: int = 120,
             p: int = 3, weighted: bool = False):
    rng = np.random.default_rng(seed)
    codes = [rng.integers(0, nl, n) for nl in levels]
    # make sure every level occurs
    for c, nl in zip(codes, levels, strict=True):
        c[:nl] = np.arange(nl)
    Z = [np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
         for k in ks]
    X = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])
    y = rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    templates = []
    for k in ks:
        T = np.tril(rng.normal(size=(k, k)))
        T[np.diag_indices(k)] = np.abs(T[np.diag_indices(k)]) + 0.2
        templates.append(T)
    return codes, Z, X, y, w, templates


def _dense(codes, Z, X, y, w, templates, levels):
    """Reference: the full matrix Lambda' [Z X y]' W [Z X y] Lambda + diag(I, 0), factored."""
    n = len(y)
    blocks = []
    lam_blocks = []
    for c, z, T, nl in zip(codes, Z, templates, levels, strict=True):
        k = z.shape[1]
        Zi = np.zeros((n, nl * k))
        for a in range(k):
            Zi[np.arange(n), c * k + a] = z[:, a]
        blocks.append(Zi)
        lam_blocks.append(np.kron(np.eye(nl), T))
    Zfull = np.hstack(blocks)
    q = Zfull.shape[1]
    from scipy.linalg import block_diag

    Lam = block_diag(*lam_blocks, np.eye(X.shape[1] + 1))
    M = np.hstack([Zfull, X, y[:, None]])
    W = np.ones(n) if w is None else w
    A = M.T @ (M * W[:, None])
    S = Lam.T @ A @ Lam
    S[:q, :q] += np.eye(q)
    return np.linalg.cholesky(S), q, Zfull, Lam


CASES = [
    (ks, levels, weighted)
    for ks, levels in [
        ((1,), (7,)), ((2,), (9,)), ((3,), (11,)),
        ((1, 1), (13, 5)), ((2, 1), (10, 4)), ((1, 2), (12, 6)), ((2, 2), (9, 5)),
        ((1, 1, 1), (15, 7, 3)), ((2, 1, 2), (10, 6, 4)), ((1, 3, 1), (14, 5, 3)),
    ]
    for weighted in (False, True)
]


@pytest.mark.parametrize(("ks", "levels", "weighted"), CASES)
def test_factor_matches_dense(ks, levels, weighted):
    for seed in range(3):
        codes, Z, X, y, w, templates = _problem(seed, ks, levels, weighted=weighted)
        A = cross_products(codes, Z, list(levels), np.column_stack([X, y]),
                           None if w is None else np.sqrt(w))
        f = factorize(A, templates)
        L, q, Zfull, Lam = _dense(codes, Z, X, y, w, templates, levels)
        d = np.diag(L)
        p = X.shape[1]
        np.testing.assert_allclose(f.logdet_re, 2 * np.log(d[:q]).sum(), rtol=1e-10)
        np.testing.assert_allclose(f.logdet_x, 2 * np.log(d[q:q + p]).sum(), rtol=1e-10)
        np.testing.assert_allclose(f.pwrss, d[-1] ** 2, rtol=1e-10)
        np.testing.assert_allclose(re_factor_dense(A, f), L[:q, :q], atol=1e-10)
        # beta and u solve the penalized least-squares problem
        beta, u = solve_fixed_and_modes(A, f)
        Lz = L[: q + p, : q + p]
        sol = np.linalg.solve(Lz.T, L[-1, : q + p])
        np.testing.assert_allclose(beta, sol[q:], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.concatenate([x.ravel() for x in u]), sol[:q],
                                   rtol=1e-8, atol=1e-10)


def test_pair_block_csr_round_trip():
    codes, Z, X, y, w, templates = _problem(1, (2, 2), (8, 5))
    A = cross_products(codes, Z, [8, 5], np.column_stack([X, y]))
    pair = A.pairs[(1, 0)]
    dense = pair.to_csr().toarray()
    expected = np.zeros(pair.shape)
    for r, c, blk in zip(pair.rows, pair.cols, pair.data, strict=True):
        expected[r * 2:(r + 1) * 2, c * 2:(c + 1) * 2] = blk
    np.testing.assert_array_equal(dense, expected)


@pytest.mark.parametrize(("ks", "levels"), list(itertools.product([(1,), (2,)], [(6,)])))
def test_not_positive_definite_is_reported(ks, levels):
    from multilevel.linalg.blocked_cholesky import NotPositiveDefinite

    codes, Z, X, y, w, templates = _problem(0, ks, levels)
    Xdup = np.column_stack([X, np.zeros(len(y))])  # exactly singular X'X
    A = cross_products(codes, Z, list(levels), np.column_stack([Xdup, y]))
    with pytest.raises(NotPositiveDefinite):
        factorize(A, templates)


def test_gram_fallback_matches_pattern(monkeypatch):
    """Scalar crossed blocks use a precomputed Gram pattern; above its size limit the sparse
    product is used instead. Both must give the same factor."""
    from multilevel.linalg import gram

    codes, Z, X, y, w, templates = _problem(3, (1, 1, 1), (15, 7, 3))
    Xy = np.column_stack([X, y])
    with_pattern = factorize(cross_products(codes, Z, [15, 7, 3], Xy), templates)
    monkeypatch.setattr(gram, "MAX_PRODUCTS", 0)
    A = cross_products(codes, Z, [15, 7, 3], Xy)
    without = factorize(A, templates)
    assert all(v is None for k, v in A.cache.items() if k[0] == "gram")
    assert without.logdet_re == pytest.approx(with_pattern.logdet_re, rel=1e-12)
    assert without.pwrss == pytest.approx(with_pattern.pwrss, rel=1e-12)
    np.testing.assert_allclose(re_factor_dense(A, without),
                               re_factor_dense(A, with_pattern), atol=1e-12)
