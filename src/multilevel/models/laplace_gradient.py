"""The gradient of the Laplace deviance in (theta, beta), for canonical links.

The Laplace deviance of a GLMM with spherical random effects u (b = Lambda(theta) u) is

    F(theta, beta) = J(u^) + log|H|,   J(u) = -2 l(eta) + |u|^2,   H = I + Lambda' Z' W Z Lambda,

at the conditional modes u^ (dJ/du = 0: u^ = Lambda' Z' s, s = dl/deta) and the working weights W
of eta^ = X beta + Z Lambda u^ + offset. For a canonical link the observed and expected
information coincide, ds/deta = -W, and differentiating the mode condition gives

    du^/dbeta  = -H^-1 Lambda' Z' W X,
    du^/dtheta_j = H^-1 (dLambda_j' Z' s - Lambda' Z' W Z dLambda_j u^).

J's derivatives at u^ are partial ones (the envelope theorem); log|H|'s are
tr(H^-1 dH) = 2 tr(H^-1 Lambda' Z' W Z dLambda_j) + sum_i h_i w'_i deta_i, with the leverages
h_i = a_i' H^-1 a_i of the rows' random-effects vectors a_i = Lambda' z_i and w'_i = dw_i/deta_i.
With v = h * w' and x = H^-1 Lambda' Z' v:

    dF/dbeta    = -2 X's + X'v - X' W Z Lambda x
    dF/dtheta_j = -2 s' Z dLambda_j u^ + 2 sum_i w_i (dLambda_j' z_i)' H^-1 a_i
                  + v' Z dLambda_j u^ + s' Z dLambda_j x - (Z Lambda x)' W Z dLambda_j u^.

Everything needs H^-1 only where the rows have entries: the diagonal blocks of the first
grouping factor's levels and the blocks between the later factors and everything, which the
blocked Cholesky factor gives cheaply (its first block is block-diagonal; the rest is dense
and small). One gradient costs about one PIRLS iteration, where a finite-difference gradient
costs one PIRLS run per parameter and direction; the optimizer (L-BFGS-B) then needs far fewer
evaluations than BOBYQA does without derivatives.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from multilevel.linalg.blocked_cholesky import BlockedFactor, as_dense
from multilevel.linalg.cross_products import CrossProducts
from multilevel.models.pirls import Modes
from multilevel.models.predictor import Predictor
from multilevel.models.response import GLMResponse

# The dense blocks H^-1 between the later grouping factors and the first (q_rest x q_0
# doubles) are formed only up to this many entries; beyond it the gradient is not offered.
MAX_DENSE_ENTRIES = 5_000_000


def gradient_available(pred: Predictor, resp: GLMResponse) -> bool:
    """Whether :func:`laplace_gradient` applies: a canonical link, no dispersion, and dense
    blocks of a manageable size."""
    from multilevel.models.response import _CANONICAL  # the one table of canonical links
    fam = resp.family
    if fam.has_dispersion or fam.link.name != _CANONICAL.get(fam.name):
        return False
    q = [nl * b.k for nl, b in zip(pred.n_levels, pred.blocks, strict=True)]
    return sum(q[1:]) * q[0] <= MAX_DENSE_ENTRIES


class _SelectedInverse:
    """The blocks of H^-1 = (L L')^-1 the gradient reads, from the blocked factor L."""

    def __init__(self, A: CrossProducts, f: BlockedFactor) -> None:
        self.k = list(A.n_columns)
        self.nl = list(A.n_levels)
        q = [nl * k for nl, k in zip(self.nl, self.k, strict=True)]
        self.rest_offsets = np.concatenate([[0], np.cumsum(q[1:])]).astype(int)
        k0, nl0 = self.k[0], self.nl[0]
        self.L0inv = np.linalg.inv(f.first_diag)  # (levels, k0, k0), lower
        diag = np.matmul(np.swapaxes(self.L0inv, 1, 2), self.L0inv)
        self.m = A.n_blocks
        self.first_col = f.first_col
        if self.m == 1:
            self.D0 = diag
            return
        qr = int(self.rest_offsets[-1])
        Lr0 = np.vstack([blk if isinstance(blk, np.ndarray) else blk.toarray()
                         for _, blk in sorted(f.first_col.items())])
        Lrr = np.zeros((qr, qr))
        for j, tiled_or_dense in f.dense_diag.items():
            blk = as_dense(tiled_or_dense)
            o = self.rest_offsets[j - 1]
            Lrr[o:o + blk.shape[0], o:o + blk.shape[1]] = blk
        for (i, j), blk in f.dense_off.items():
            oi, oj = self.rest_offsets[i - 1], self.rest_offsets[j - 1]
            Lrr[oi:oi + blk.shape[0], oj:oj + blk.shape[1]] = blk
        self.Lr0 = Lr0
        self.Lrr_inv = sla.solve_triangular(Lrr, np.eye(qr), lower=True, check_finite=False)
        self.Srr = self.Lrr_inv.T @ self.Lrr_inv  # (H^-1) between the later factors
        if k0 == 1:  # scalar first factor: plain broadcasting, no batched products
            G = Lr0 * self.L0inv[:, 0, 0]
            SG = self.Srr @ G
            self.D0 = diag + np.einsum("rl,rl->l", G, SG)[:, None, None]
        else:
            G3 = np.einsum("rlk,lkm->rlm", Lr0.reshape(qr, nl0, k0), self.L0inv,
                           optimize=True)
            SG = self.Srr @ G3.reshape(qr, nl0 * k0)
            self.D0 = diag + np.einsum("rla,rlb->lab", G3, SG.reshape(qr, nl0, k0),
                                       optimize=True)
        self.Hr0 = -SG  # (H^-1) later factors x first factor

    def block(self, p: int, q: int, codes: list[np.ndarray]) -> np.ndarray:
        """(n, k_p, k_q): the block of H^-1 between each row's level of factor p and of q."""
        kp, kq = self.k[p], self.k[q]
        if p == 0 and q == 0:
            return self.D0[codes[0]]
        if p == 0:
            return np.swapaxes(self.block(q, 0, codes), 1, 2)
        rows = (self.rest_offsets[p - 1] + codes[p][:, None] * kp + np.arange(kp))[:, :, None]
        if q == 0:
            cols = (codes[0][:, None] * kq + np.arange(kq))[:, None, :]
            return self.Hr0[rows, cols]
        cols = (self.rest_offsets[q - 1] + codes[q][:, None] * kq + np.arange(kq))[:, None, :]
        return self.Srr[rows, cols]

    def solve(self, r: list[np.ndarray]) -> list[np.ndarray]:
        """H^-1 r for r given per block as (levels, k) arrays (forward, then back substitution
        through L's blocks)."""
        y0 = np.einsum("lab,lb->la", self.L0inv, r[0])
        if self.m == 1:
            return [np.einsum("lba,lb->la", self.L0inv, y0)]
        rr = np.concatenate([x.ravel() for x in r[1:]])
        yr = self.Lrr_inv @ (rr - self.Lr0 @ y0.ravel())
        xr = self.Lrr_inv.T @ yr
        x0 = np.einsum("lba,lb->la", self.L0inv,
                       y0 - (self.Lr0.T @ xr).reshape(y0.shape))
        out = [x0]
        for j in range(1, self.m):
            o = self.rest_offsets[j - 1]
            out.append(xr[o:self.rest_offsets[j]].reshape(self.nl[j], self.k[j]))
        return out


def laplace_gradient(pred: Predictor, X: np.ndarray, resp: GLMResponse, theta: np.ndarray,
                     modes: Modes) -> np.ndarray:
    """dF/d(theta, beta) at the modes PIRLS converged to (beta held fixed there), for a
    canonical link without dispersion (see :func:`gradient_available`)."""
    eta, mu = modes.eta, modes.mu
    wt, y = resp.prior_weights, resp.y
    link = resp.family.link
    d = link.mu_eta(eta)
    s = wt * (y - mu)  # canonical: mu'(eta) = V(mu)
    w = wt * d
    step = 1e-5 * np.maximum(1.0, np.abs(eta))
    w_prime = wt * (link.mu_eta(eta + step) - link.mu_eta(eta - step)) / (2.0 * step)
    templates = pred.layout.templates(theta)
    codes = [b.codes for b in pred.blocks]
    a = [b.Z @ T for b, T in zip(pred.blocks, templates, strict=True)]  # rows a_i' = z_i' T
    inv = _SelectedInverse(modes.re_A, modes.re_factor)
    m = len(pred.blocks)
    blocks = {(p, q): inv.block(p, q, codes) for p in range(m) for q in range(m)}

    def bilinear(left: list[np.ndarray | None], right: list[np.ndarray]) -> np.ndarray:
        out = np.zeros(eta.shape[0])
        for p in range(m):
            lp = left[p]
            if lp is None:
                continue
            for q in range(m):
                out += np.einsum("na,nab,nb->n", lp, blocks[(p, q)], right[q])
        return out

    h = bilinear(list(a), a)
    v = h * w_prime
    r = [np.stack([np.bincount(b.codes, weights=b.Z[:, c] * v, minlength=nl)
                   for c in range(b.k)], axis=1) @ T
         for b, T, nl in zip(pred.blocks, templates, pred.n_levels, strict=True)]
    x = inv.solve(r)
    z_lambda_x = pred.z_times(pred.effects(theta, x))
    grad_beta = -2.0 * X.T @ s + X.T @ v - X.T @ (w * z_lambda_x)
    grad_theta = np.zeros(theta.shape[0])
    for j in range(theta.shape[0]):
        for bi, blk in enumerate(pred.blocks):
            E = (pred.layout.index[bi] == j).astype(float)
            if not E.any():
                continue
            dz = blk.Z @ E  # rows z_i' E_j
            z_du = np.einsum("nk,nk->n", dz, modes.u[bi][blk.codes])
            z_dx = np.einsum("nk,nk->n", dz, x[bi][blk.codes])
            da: list[np.ndarray | None] = [None] * m
            da[bi] = dz  # (dLambda_j' z_i)' = z_i' E_j
            trace = float(np.dot(w, bilinear(da, a)))
            grad_theta[j] += (-2.0 * s @ z_du + 2.0 * trace + v @ z_du + s @ z_dx
                              - z_lambda_x @ (w * z_du))
    return np.concatenate([grad_theta, grad_beta])
