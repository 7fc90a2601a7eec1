"""theta <-> Lambda: the relative covariance factor of the random effects.

Each random-effects term with k columns has a k x k lower-triangular factor T (so that the
term's covariance is sigma^2 T T'); theta holds, term after term in lme4's order, the lower
triangle of each T column by column. The diagonal of T is bounded below by 0.

Terms that share a grouping factor (``(1 | g) + (0 + x | g)``) are merged into one block of
the blocked Cholesky; their templates sit on the block's diagonal with structural zeros
between them, which is how an uncorrelated term costs no correlation parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TermLayout:
    """Where one term's parameters live.

    Attributes
    ----------
    group : str
        Grouping factor name (as lme4 prints it).
    columns : tuple of str
        The term's column names.
    theta_offset : int
        Index of the term's first parameter in theta.
    block : int
        Index of the merged block (grouping factor) the term belongs to.
    block_offset : int
        Index of the term's first column within its block.
    """

    group: str
    columns: tuple[str, ...]
    theta_offset: int
    block: int
    block_offset: int

    @property
    def k(self) -> int:
        """Number of columns of the term."""
        return len(self.columns)

    @property
    def n_theta(self) -> int:
        """Number of parameters of the term (k (k + 1) / 2)."""
        return self.k * (self.k + 1) // 2


@dataclass(frozen=True)
class ThetaLayout:
    """The map from theta to the repeated Lambda template of every block.

    Attributes
    ----------
    terms : tuple of TermLayout
        In lme4's order (the order of theta).
    block_sizes : tuple of int
        Columns per level of each block.
    index : tuple of numpy.ndarray
        For each block a (k, k) int array: the theta index at each position of the template,
        or ``n_theta`` (pointing at an appended zero) for structural zeros.
    """

    terms: tuple[TermLayout, ...]
    block_sizes: tuple[int, ...]
    index: tuple[np.ndarray, ...]

    @property
    def n_theta(self) -> int:
        """Length of theta."""
        return sum(t.n_theta for t in self.terms)

    def lower_bounds(self) -> np.ndarray:
        """0 for the diagonal elements of each T, -inf for the off-diagonal ones."""
        lower = np.full(self.n_theta, -np.inf)
        for t in self.terms:
            lower[t.theta_offset + _diag_positions(t.k)] = 0.0
        return lower

    def start(self) -> np.ndarray:
        """lme4's default start: T = I for every term."""
        return np.where(np.isfinite(self.lower_bounds()), 1.0, 0.0)

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """The (k, k) lower-triangular Lambda template of every block for ``theta``."""
        padded = np.zeros(len(theta) + 1)
        padded[:-1] = theta
        return [padded[idx] for idx in self.index]

    def term_factor(self, theta: np.ndarray, term: int) -> np.ndarray:
        """The k x k factor T of one term."""
        t = self.terms[term]
        out = np.zeros((t.k, t.k))
        rows, cols = _lower_positions(t.k)
        out[rows, cols] = theta[t.theta_offset: t.theta_offset + t.n_theta]
        return out

    def names(self) -> list[str]:
        """theta's names as lme4's ``getME(m, "theta")`` gives them."""
        out: list[str] = []
        for t in self.terms:
            rows, cols = _lower_positions(t.k)
            for r, c in zip(rows, cols, strict=True):
                if r == c:
                    out.append(f"{t.group}.{t.columns[r]}")
                else:
                    out.append(f"{t.group}.{t.columns[r]}.{t.columns[c]}")
        return out


def _lower_positions(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each lower-triangle element, column by column (R's order)."""
    cols, rows = np.triu_indices(k)  # triu of the transpose, row-major == tril column-major
    return rows, cols


def _diag_positions(k: int) -> np.ndarray:
    rows, cols = _lower_positions(k)
    return np.flatnonzero(rows == cols)


def theta_layout(groups: list[str], columns: list[tuple[str, ...]],
                 blocks: list[int], n_blocks: int) -> ThetaLayout:
    """Lay out theta for terms (in lme4 order) assigned to merged blocks.

    Parameters
    ----------
    groups, columns : per term, its grouping factor name and column names
    blocks : per term, the index of its block
    n_blocks : number of blocks
    """
    terms: list[TermLayout] = []
    fill = [0] * n_blocks
    offset = 0
    for g, cols, b in zip(groups, columns, blocks, strict=True):
        terms.append(TermLayout(group=g, columns=cols, theta_offset=offset, block=b,
                                block_offset=fill[b]))
        fill[b] += len(cols)
        offset += len(cols) * (len(cols) + 1) // 2
    index = []
    for b in range(n_blocks):
        idx = np.full((fill[b], fill[b]), offset, dtype=np.int64)
        for t in terms:
            if t.block != b:
                continue
            r_idx, c_idx = _lower_positions(t.k)
            idx[t.block_offset + r_idx, t.block_offset + c_idx] = (
                t.theta_offset + np.arange(t.n_theta))
        index.append(idx)
    return ThetaLayout(terms=tuple(terms), block_sizes=tuple(fill), index=tuple(index))
