"""The random-effects side of every mixed model (lme4's ``merPredD``).

A :class:`Predictor` holds what the random effects contribute to the linear predictor
eta = X beta + Z Lambda(theta) u + offset, whatever the response: the random-effects blocks
(terms merged by grouping factor), the theta layout, and the operations every model kind needs
-- the cross-products A = [Z X y]' W [Z X y] for any weights (structure built once, values
recomputed by :meth:`Predictor.reweighted`), the blocked Cholesky factor at theta, and
Z Lambda u. The linear model builds A once; the GLMM reweights it at every PIRLS step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multilevel.covariance.relative_factor import ThetaLayout, theta_layout
from multilevel.data.design import ModelDesign
from multilevel.linalg.blocked_cholesky import BlockedFactor, factorize
from multilevel.linalg.cross_products import CrossProducts, cross_products, reweighted


@dataclass(frozen=True)
class ReBlock:
    """The random-effects terms sharing one grouping factor, merged for the factorization.

    Attributes
    ----------
    terms : tuple of int
        Indices of the terms (in lme4 order) in this block.
    codes : numpy.ndarray
        Level code of each row.
    Z : numpy.ndarray, shape (n, k)
        The terms' model matrices side by side.
    """

    terms: tuple[int, ...]
    codes: np.ndarray
    Z: np.ndarray

    @property
    def k(self) -> int:
        """Columns per level."""
        return int(self.Z.shape[1])


def make_blocks(design: ModelDesign) -> list[ReBlock]:
    """Merge terms by grouping factor; order blocks by number of random effects, largest
    first, so that the first (never filled-in) block is the biggest."""
    by_name: dict[str, list[int]] = {}
    for i, t in enumerate(design.terms):
        by_name.setdefault(t.factor.name, []).append(i)
    blocks = []
    for idx in by_name.values():
        first = design.terms[idx[0]]
        Z = np.hstack([design.terms[i].Z for i in idx])
        blocks.append(ReBlock(terms=tuple(idx), codes=first.factor.codes, Z=Z))
    sizes = [design.terms[b.terms[0]].n_levels * b.k for b in blocks]
    order = sorted(range(len(blocks)), key=lambda i: -sizes[i])
    return [blocks[i] for i in order]


class Predictor:
    """Random-effects blocks, theta layout and the linear algebra over them.

    Parameters
    ----------
    design : ModelDesign

    Attributes
    ----------
    blocks : list of ReBlock
    layout : ThetaLayout
    n_levels : list of int
        Levels of each block's grouping factor.
    """

    def __init__(self, design: ModelDesign) -> None:
        self.blocks = make_blocks(design)
        term_block = {t: b for b, blk in enumerate(self.blocks) for t in blk.terms}
        terms = design.terms
        self.layout: ThetaLayout = theta_layout(
            [t.factor.name for t in terms], [t.columns for t in terms],
            [term_block[i] for i in range(len(terms))], len(self.blocks))
        self.n_levels = [terms[b.terms[0]].n_levels for b in self.blocks]
        self.group_names = [terms[b.terms[0]].factor.name for b in self.blocks]

    @property
    def n_random(self) -> int:
        """Number of random effects q (levels times columns, over the blocks)."""
        return sum(nl * b.k for nl, b in zip(self.n_levels, self.blocks, strict=True))

    def cross_products(self, Xy: np.ndarray, sqrt_w: np.ndarray | None) -> CrossProducts:
        """A for [X y] and row weights (square roots; None for none), structure included."""
        return cross_products([b.codes for b in self.blocks], [b.Z for b in self.blocks],
                              self.n_levels, Xy, sqrt_w)

    def reweighted(self, A: CrossProducts, Xy: np.ndarray, sqrt_w: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> CrossProducts:
        """A's values for new weights (square roots, or signed ``weights``) and [X y], on A's
        structure (see :func:`~multilevel.linalg.cross_products.reweighted`)."""
        return reweighted(A, [b.codes for b in self.blocks], [b.Z for b in self.blocks], Xy,
                          sqrt_w, weights)

    def factor(self, A: CrossProducts, theta: np.ndarray) -> BlockedFactor:
        """The blocked Cholesky factor of Lambda' A Lambda + diag(I, 0) at ``theta``
        (raises :class:`~multilevel.linalg.blocked_cholesky.NotPositiveDefinite`)."""
        return factorize(A, self.layout.templates(theta))

    def effects(self, theta: np.ndarray, u: list[np.ndarray]) -> list[np.ndarray]:
        """b = Lambda u per block, each ``(levels, k)``, from spherical modes u."""
        return [uj @ T.T for uj, T in zip(u, self.layout.templates(theta), strict=True)]

    def z_times(self, b: list[np.ndarray]) -> np.ndarray:
        """Z b: each row's random-effects contribution to the linear predictor."""
        out = np.zeros(self.blocks[0].Z.shape[0])
        for blk, bj in zip(self.blocks, b, strict=True):
            for a in range(blk.k):  # column by column: no (n, k) gathered copy
                out += blk.Z[:, a] * np.ascontiguousarray(bj[:, a])[blk.codes]
        return out
