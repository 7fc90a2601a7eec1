"""The tiled Cholesky factor of a large item block (multilevel.linalg.tiled_cholesky) and the
crossed-model path that uses it: the same numbers as one dense LAPACK factorization.

The tiled path takes over at ``TILED_ORDER`` (8,192) levels; these tests lower that
threshold and the tile order so small models run through it and can be compared with the
one-array path on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

import multilevel as ml
import multilevel.linalg.blocked_cholesky as bc
import multilevel.linalg.tiled_cholesky as tc
from fit_helpers import crossed_ratings
from multilevel.linalg.gram import compressed_gram
from multilevel.linalg.tiled_cholesky import NotPositiveDefiniteTile, TiledLower


def _spd(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, n // 2))
    return B @ B.T + n * np.eye(n)


def _filled(M: np.ndarray, tile: int) -> TiledLower:
    T = TiledLower(M.shape[0], tile)
    r, c = np.tril_indices(M.shape[0])
    T.assemble(np.zeros(M.shape[0]), T.locate(r, c), M[r, c])
    return T


@pytest.mark.parametrize(("n", "tile"), [(301, 64), (256, 64), (50, 128)])
def test_factor_logdet_and_solves_equal_lapack(n: int, tile: int) -> None:
    M = _spd(n)
    T = _filled(M, tile)
    logdet = T.cholesky()
    L = np.linalg.cholesky(M)
    np.testing.assert_allclose(T.toarray(), L, rtol=0, atol=1e-10)
    assert logdet == pytest.approx(2.0 * np.log(np.diag(L)).sum(), rel=1e-13)
    np.testing.assert_allclose(T.diagonal(), np.diag(L), rtol=1e-13)
    B = np.random.default_rng(1).standard_normal((n, 3))
    np.testing.assert_allclose(T.solve_lower(B), sla.solve_triangular(L, B, lower=True),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(T.solve_upper(B), sla.solve_triangular(L.T, B, lower=False),
                               rtol=1e-10, atol=1e-12)
    v = B[:, 0]  # a vector right-hand side keeps its shape
    assert T.solve_lower(v).shape == (n,)


def test_assembly_of_sparse_cells_plus_diagonal_and_reuse() -> None:
    rng = np.random.default_rng(2)
    n = 150
    full = sp.random(n, n, density=0.05, random_state=3).toarray()
    full = full + full.T
    r, c = np.nonzero(np.tril(full))
    T = TiledLower(n, 40)
    located = T.locate(r, c)
    d = rng.uniform(1, 2, n) + np.abs(full).sum(axis=1)  # diagonally dominant: positive definite
    T.assemble(d, located, full[r, c])
    np.testing.assert_array_equal(np.tril(T.toarray()), np.tril(full + np.diag(d)))
    T.cholesky()
    # a second assembly into the same tiles forgets the factor completely
    T.assemble(d, located, full[r, c])
    np.testing.assert_array_equal(np.tril(T.toarray()), np.tril(full + np.diag(d)))
    assert T.nbytes == TiledLower.bytes_for(n, 40)


def test_not_positive_definite_tile_raises() -> None:
    M = _spd(100)
    M[70, 70] = -1.0
    with pytest.raises(NotPositiveDefiniteTile):
        _filled(M, 32).cholesky()


def test_progress_reaches_one() -> None:
    seen: list[float] = []
    _filled(_spd(200), 64).cholesky(progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_compressed_gram_equals_dense_product() -> None:
    rng = np.random.default_rng(4)
    P = sp.random(60, 400, density=0.05, random_state=5, format="csr")
    P.data[:] = rng.integers(1, 4, P.nnz)
    w = rng.uniform(0.1, 1.0, 400)
    g = compressed_gram(P, chunk=50)  # several chunks
    dense = np.tril((P @ sp.diags(w) @ P.T).toarray())
    built = np.zeros_like(dense)
    built[g.rows, g.cols] = g.G @ w
    np.testing.assert_allclose(built, dense, rtol=1e-13, atol=1e-13)
    assert np.all(g.rows >= g.cols) and len(set(zip(g.rows, g.cols, strict=True))) == len(g.rows)


def test_chol_dense_through_tiles_equals_lapack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "TILED_ORDER", 100)
    monkeypatch.setattr(tc, "TILE", 48)
    M = _spd(230)
    expected = np.linalg.cholesky(M)
    np.testing.assert_allclose(bc._chol_dense(M.copy()), expected, rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def crossed() -> pd.DataFrame:
    """Users x items with power-law item popularity (the shape of the benchmark)."""
    return crossed_ratings(11, 6000, 600, 260)


def _tiny_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "TILED_ORDER", 64)
    original = TiledLower.__init__

    def small(self: TiledLower, n: int, tile: int = 37) -> None:
        original(self, n, tile)

    monkeypatch.setattr(TiledLower, "__init__", small)


def test_crossed_model_objective_and_fit_equal_the_one_array_path(
        crossed: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    formula = "y ~ x + (1 | user) + (1 | item)"
    dense = ml.lmer(formula, crossed)
    _tiny_tiles(monkeypatch)
    tiled = ml.lmer(formula, crossed)
    assert isinstance(tiled._factor.dense_diag[1], TiledLower)
    assert not isinstance(dense._factor.dense_diag[1], TiledLower)
    for theta in ([0.7, 0.4], [1.3, 0.05], [0.2, 2.0]):
        t = np.array(theta)
        assert tiled.model.objective(t) == pytest.approx(dense.model.objective(t), rel=1e-12)
        assert tiled.model.objective(t, reml=False) == pytest.approx(
            dense.model.objective(t, reml=False), rel=1e-12)
    np.testing.assert_allclose(tiled.theta, dense.theta, rtol=1e-6)
    np.testing.assert_allclose(tiled.fixef, dense.fixef, rtol=1e-8)
    assert tiled.loglik == pytest.approx(dense.loglik, rel=1e-12)
    for name in ("user", "item"):
        np.testing.assert_allclose(tiled.ranef[name].to_numpy(), dense.ranef[name].to_numpy(),
                                   rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(tiled.fitted(), dense.fitted(), rtol=1e-8, atol=1e-8)
    # conditional variances assemble the tiles into the dense factor
    np.testing.assert_allclose(tiled.ranef_condvar["item"], dense.ranef_condvar["item"],
                               rtol=1e-6)


def test_large_own_transpose_product_avoids_syrk_and_equals_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(6).standard_normal((90, 40))
    expected = X @ X.T
    monkeypatch.setattr(bc, "TILED_ORDER", 50)
    np.testing.assert_allclose(bc._times_own_transpose(X), expected, rtol=1e-13, atol=1e-12)
