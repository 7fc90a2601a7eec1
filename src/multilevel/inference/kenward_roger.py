"""Kenward-Roger adjusted covariance and denominator df (Kenward & Roger 1997), as R's
pbkrtest (Halekoh & Hojsgaard 2014), for REML fits.

The marginal covariance is linear in the variance parameters phi: V = sum_r phi_r G_r, with
one G per element (a <= b) of each random-effects term's covariance, G = Z_t (I x S_ab) Z_t',
and G = I for sigma^2. With P_r = -X'V^-1 G_r V^-1 X, Q_rs = X'V^-1 G_r V^-1 G_s V^-1 X, the
covariance W of phi-hat (the inverse of the expected REML information
1/2 tr(Pt G_r Pt G_s), Pt = V^-1 - V^-1 X Phi X' V^-1) and Phi = (X'V^-1 X)^-1:

    Phi_A = Phi + 2 Phi [ sum_rs W_rs (Q_rs - P_r Phi P_s) ] Phi,

and the F statistic's scale and denominator df follow Kenward & Roger's moment matching.

Cost: nothing of size n x n is formed. With K = Z Lambda and C = K'K + I (q x q), V^-1 is
applied through the Woodbury identity, V^-1 B = sigma^-2 (B - K C^-1 K'B); every trace and
product then reduces to q x q and q x p matrices: O(n q k + q^3) time and O(q^2) memory, with q
the number of random effects (a few thousand is fine; tens of thousands is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from multilevel.errors import MultilevelError, public_api
from multilevel.inference.arguments import check_linear
from multilevel.results.lmm_result import LinearMixedModelResult


@dataclass(frozen=True)
class KRQuantities:
    """Phi (vcov), the adjusted Phi_A, the P_r matrices and W."""

    Phi: np.ndarray
    Phi_A: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray


def _z_matrix(fit: LinearMixedModelResult) -> sp.csr_matrix:
    """The sparse Z (n x q), columns in the blocks' order (as Lambda's)."""
    model = fit.model
    n = model.nobs
    parts = []
    for b, blk in enumerate(model.blocks):
        nl, k = model.A.n_levels[b], blk.k
        rows = np.repeat(np.arange(n), k)
        cols = (blk.codes[:, None] * k + np.arange(k)[None, :]).ravel()
        parts.append(sp.csr_matrix((blk.Z.ravel(), (rows, cols)), shape=(n, nl * k)))
    return sp.hstack(parts).tocsr()


def _lambda_matrix(fit: LinearMixedModelResult) -> sp.csr_matrix:
    model = fit.model
    templates = model.layout.templates(fit.theta)
    blocks = [sp.kron(sp.identity(nl, format="csr"), sp.csr_matrix(T), format="csr")
              for nl, T in zip(model.A.n_levels, templates, strict=True)]
    return sp.block_diag(blocks, format="csr")


def _structure_matrices(fit: LinearMixedModelResult) -> list[sp.csr_matrix]:
    """E_r (q x q) with G_r = Z E_r Z', one per covariance element of each term."""
    model = fit.model
    q = sum(nl * blk.k for nl, blk in zip(model.A.n_levels, model.blocks, strict=True))
    starts = np.cumsum([0] + [nl * blk.k for nl, blk in zip(model.A.n_levels, model.blocks,
                                                             strict=True)])
    out = []
    for term in model.layout.terms:
        b = term.block
        blk = model.blocks[b]
        nl = model.A.n_levels[b]
        k = blk.k
        cols, rows = np.triu_indices(term.k)
        for r, c in zip(rows, cols, strict=True):
            S = np.zeros((k, k))
            i, j = term.block_offset + r, term.block_offset + c
            S[i, j] = S[j, i] = 1.0
            E = sp.kron(sp.identity(nl), sp.csr_matrix(S), format="csr")
            pad = sp.block_diag([sp.csr_matrix((starts[b], starts[b])), E,
                                 sp.csr_matrix((q - starts[b + 1], q - starts[b + 1]))],
                                format="csr")
            out.append(pad)
    return out


def kr_quantities(fit: LinearMixedModelResult) -> KRQuantities:
    """Phi, Phi_A, P_r and W of the Kenward-Roger adjustment for a REML fit."""
    if not fit.reml:
        raise MultilevelError("Kenward-Roger's method is only available for REML fits; refit "
                              "with reml=True (or use ddf='satterthwaite')")
    design = fit.model.design
    if design.weights is not None:
        raise MultilevelError("Kenward-Roger df are not available for weighted fits; use "
                              "ddf='satterthwaite'")
    X = design.X
    n, p = X.shape
    s2 = fit.sigma**2
    Z = _z_matrix(fit)
    K = (Z @ _lambda_matrix(fit)).tocsr()
    q = K.shape[1]
    C = (K.T @ K).toarray() + np.eye(q)
    Cf = sla.cho_factor(C, lower=True)

    def solveC(B: np.ndarray) -> np.ndarray:
        return sla.cho_solve(Cf, B)

    KtX = np.asarray(K.T @ X)
    KtZ = (K.T @ Z).toarray()
    ZtX = np.asarray(Z.T @ X)
    ZtZ = (Z.T @ Z).toarray()

    # V^-1-sandwiches: A'V^-1 B = (A'B - A'K C^-1 K'B) / s2
    S_XX = (X.T @ X - KtX.T @ solveC(KtX)) / s2
    S_ZX = (ZtX - KtZ.T @ solveC(KtX)) / s2
    S_ZZ = (ZtZ - KtZ.T @ solveC(KtZ)) / s2
    Phi = np.linalg.inv(S_XX)
    # V^-1 X (n x p), to reach the V^-2 and V^-3 products
    VX = (X - K @ solveC(KtX)) / s2
    KtVX = np.asarray(K.T @ VX)
    X_V2_X = (VX.T @ VX)
    Z_V2_X = (np.asarray(Z.T @ VX) - KtZ.T @ solveC(KtVX)) / s2
    X_V3_X = (VX.T @ VX - KtVX.T @ solveC(KtVX)) / s2  # (V^-1X)' V^-1 (V^-1X)
    # Z'V^-2 Z = (Z'Z - 2 Z'K C^-1 K'Z + Z'K C^-1 K'K C^-1 K'Z) / s2^2
    CKtZ = solveC(KtZ)
    KtK = C - np.eye(q)
    Z_V2_Z = (ZtZ - 2 * KtZ.T @ CKtZ + CKtZ.T @ KtK @ CKtZ) / s2**2
    # trace of V^-2: (n - 2 tr(C^-1 K'K) + tr((C^-1 K'K)^2)) / s2^2
    CK = solveC(KtK)
    tr_V2 = (n - 2 * np.trace(CK) + np.sum(CK * CK.T)) / s2**2

    E = _structure_matrices(fit)
    n_re = len(E)
    # P_r, and the pieces of Q_rs and of the information
    P = [-(S_ZX.T @ (Er @ S_ZX)) for Er in E] + [-X_V2_X]
    ZPZ = S_ZZ - S_ZX @ Phi @ S_ZX.T  # Z' Pt Z
    # Z' Pt^2 Z
    A1 = Z_V2_X @ Phi @ S_ZX.T
    ZP2Z = Z_V2_Z - A1 - A1.T + S_ZX @ Phi @ X_V2_X @ Phi @ S_ZX.T
    tr_P2 = tr_V2 - 2 * np.trace(Phi @ X_V3_X) + np.trace(Phi @ X_V2_X @ Phi @ X_V2_X)
    m = n_re + 1
    info = np.empty((m, m))
    EZ = [(Er @ ZPZ) for Er in E]
    for r in range(n_re):
        for s in range(r + 1):
            info[r, s] = info[s, r] = 0.5 * np.sum(EZ[r] * EZ[s].T)
        info[r, n_re] = info[n_re, r] = 0.5 * float(np.sum(E[r].multiply(ZP2Z.T)))
    info[n_re, n_re] = 0.5 * tr_P2
    W = np.linalg.pinv(info)

    def Q(r: int, s: int) -> np.ndarray:
        if r < n_re and s < n_re:
            return S_ZX.T @ (E[r] @ (S_ZZ @ (E[s] @ S_ZX)))
        if r < n_re:  # s is sigma^2: X'V^-1 G_r V^-2 X
            return S_ZX.T @ (E[r] @ Z_V2_X)
        if s < n_re:
            return Z_V2_X.T @ (E[s] @ S_ZX)
        return X_V3_X

    U = np.zeros((p, p))
    for r in range(m):
        for s in range(m):
            if W[r, s] != 0:
                U += W[r, s] * (Q(r, s) - P[r] @ Phi @ P[s])
    Phi_A = Phi + 2 * Phi @ U @ Phi
    return KRQuantities(Phi=Phi, Phi_A=(Phi_A + Phi_A.T) / 2, P=P, W=W)


def kr_test(kr: KRQuantities, L: np.ndarray) -> tuple[float, float]:
    """Kenward-Roger scale lambda and denominator df m for the hypothesis rows L."""
    L = np.atleast_2d(L)
    q = L.shape[0]
    Phi = kr.Phi
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    M = [Theta @ Phi @ Pr @ Phi for Pr in kr.P]
    tr = np.array([np.trace(Mr) for Mr in M])
    W = kr.W
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[r, s] * np.sum(M[r] * M[s].T) for r in range(len(M))
                   for s in range(len(M))))
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2) if A2 != 0 else 0.0
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    E_star = 1 / (1 - A2 / q)
    V_star = 2 / q * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
    rho = V_star / (2 * E_star**2)
    m = 4 + (q + 2) / (q * rho - 1)
    lam = m / (E_star * (m - 2))
    return lam, m


@public_api
def kenward_roger_df(fit: LinearMixedModelResult, L: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Denominator df for each contrast row, and the Kenward-Roger adjusted covariance of
    the fixed effects (for the standard errors)."""
    check_linear(fit, "Kenward-Roger's denominator df",
                 "A GLMM's Wald tests are z tests (coef_table(), ddf=None)")
    kr = kr_quantities(fit)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    df = np.array([kr_test(kr, row[None, :])[1] for row in L])
    return df, kr.Phi_A
