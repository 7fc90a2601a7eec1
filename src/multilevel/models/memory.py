"""How much memory a fit needs, and whether this machine has it.

Every grouping factor after the first (largest) one is factored as a dense block (see
:mod:`multilevel.linalg.blocked_cholesky`), so two crossed factors with many levels each need
memory quadratic in the levels of the second (from ``TILED_ORDER`` levels of the second of two
random intercepts, its lower triangle in tiles: 4 bytes per level squared, see
:mod:`multilevel.linalg.tiled_cholesky`). :func:`check_fit_memory` estimates the peak a fit
allocates, refuses up front with :class:`~multilevel.errors.ModelTooLargeError` when that is
more than the memory available, and names the estimate, the memory available and what to do.

What a fit holds at its peak (q_j: random effects of block j >= 1, n rows, P_ij products of the
Gram pattern of blocks i and j, see :mod:`multilevel.linalg.gram`):

* the factor's dense blocks L[j][j] and L[i][j]: 8 (sum_j q_j^2 + sum_{i>j} q_i q_j) bytes;
* while a diagonal block is factored, three more q_j x q_j arrays: the block being assembled,
  the Gram product ``G @ w`` and its scaled copy (LAPACK's Cholesky writes the factor into a
  fourth, counted above);
* the Gram patterns, kept between evaluations: 12 bytes per product and 4 per row of G
  (q_i q_j rows); while one is built, its coordinate lists and their concatenation, about
  40 bytes per product;
* the rows: X, Z, y, the centred and weighted copies of [X y] and the level codes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from multilevel.errors import ModelTooLargeError
from multilevel.linalg.blocked_cholesky import TILED_ORDER
from multilevel.linalg.cross_products import CrossProducts
from multilevel.linalg.gram import MAX_PRODUCTS
from multilevel.linalg.tiled_cholesky import TiledLower

# The memory a fit may use when the machine's available memory cannot be read (not Linux,
# no sysconf): beyond this a fit would exhaust a typical machine's memory.
MAX_DENSE_BYTES = 8 * 2**30
# Bytes per double.
_F8 = 8
# Arrays of n rows alive at once while the design and the cross-products are built: X, each
# term's Z, y, the offset-free response, the centred [X y], its weighted copy and the codes
# (measured: about 6 copies of the widest row layout).
_ROW_COPIES = 6
# Copies of a dense q_j x q_j block alive while it is factored (see the module docstring).
_DENSE_COPIES = 4
# Bytes per Gram product while the pattern is built (int64 cell, int32 column, float64 value,
# each twice -- the chunks and their concatenation), and once it is kept (value + column).
_GRAM_BUILD_BYTES = 40
_GRAM_KEPT_BYTES = 12
# Bytes per cell of the tiled path's pattern: its coordinates (two int64) and its place among
# the tiles (position and offset, two int64).
_TILED_CELL_BYTES = 32
# Bytes per product while the tiled path's pattern finds its distinct cells (np.unique's sort
# and inverse, two int64).
_UNIQUE_BYTES = 16


def available_memory_bytes() -> int | None:
    """Memory this process can still allocate without swapping, in bytes, or None if unknown.

    Linux: ``MemAvailable`` from /proc/meminfo (free memory plus reclaimable caches). Other
    systems with ``sysconf``: free physical pages. Otherwise None.
    """
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def gram_products(A: CrossProducts, i: int, j: int) -> int:
    """Products the Gram pattern of blocks i and j against the first block would hold (0
    when the blocks are not all scalar, so no pattern is built)."""
    if not A.n_columns[0] == A.n_columns[i] == A.n_columns[j] == 1:
        return 0
    ci = np.bincount(A.pairs[(i, 0)].cols, minlength=A.n_levels[0]).astype(np.int64)
    cj = ci if i == j else np.bincount(A.pairs[(j, 0)].cols,
                                       minlength=A.n_levels[0]).astype(np.int64)
    total = int(ci @ cj)
    return total // 2 if i == j else total


def estimate_fit_bytes(A: CrossProducts, n_rows: int, row_width: int) -> int:
    """Estimated peak memory of fitting a model with cross-products ``A``, in bytes, over what
    the caller's data already use.

    Parameters
    ----------
    A : CrossProducts
        The model's cross-products (only their sizes and pair patterns are read).
    n_rows : int
        Observations.
    row_width : int
        Columns of X, Z and y together (p + sum of k_j + 1).
    """
    q = [nl * k for nl, k in zip(A.n_levels, A.n_columns, strict=True)]
    later = q[1:]
    rows = _F8 * _ROW_COPIES * n_rows * row_width
    if len(q) == 2 and A.n_columns == [1, 1] and q[1] >= TILED_ORDER:
        # the tiled path: the lower triangle in tiles, the compressed Gram pattern of the
        # cells that occur (at most every product, at most every lower cell) and their places
        # among the tiles; while the pattern is built, its coordinate lists and their sort
        products = gram_products(A, 1, 1)
        cells = min(products, q[1] * (q[1] + 1) // 2)
        return int(rows + TiledLower.bytes_for(q[1]) + _GRAM_KEPT_BYTES * products
                   + _TILED_CELL_BYTES * cells
                   + (_GRAM_BUILD_BYTES + _UNIQUE_BYTES) * products)
    factor = _F8 * (sum(x * x for x in later)
                    + sum(later[a] * later[b] for a in range(len(later)) for b in range(a)))
    largest = max((x * x for x in later), default=0)
    gram_kept = 0
    gram_build = 0
    sparse_fallback = 0
    for a in range(1, len(q)):
        for b in range(1, a + 1):
            products = gram_products(A, a, b)
            if 0 < products <= MAX_PRODUCTS:
                gram_kept += _GRAM_KEPT_BYTES * products + 4 * q[a] * q[b]
                gram_build = max(gram_build, _GRAM_BUILD_BYTES * products)
            else:
                # no pattern: a sparse product, then its dense copy (12 + 8 bytes per cell)
                sparse_fallback = max(sparse_fallback, 20 * q[a] * q[b])
    transient = max(_F8 * (_DENSE_COPIES - 1) * largest + sparse_fallback, gram_build)
    return int(rows + factor + gram_kept + transient)


def check_fit_memory(A: CrossProducts, n_rows: int, row_width: int,
                     factor_names: Sequence[str]) -> int:
    """Refuse, before fitting, a model whose estimated peak memory is more than the memory
    available (or than ``MAX_DENSE_BYTES`` where that cannot be read); returns the estimate.

    Raises
    ------
    ModelTooLargeError
        Naming the estimate, the memory available, the grouping factors factored densely and
        what to do.
    """
    need = estimate_fit_bytes(A, n_rows, row_width)
    available = available_memory_bytes()
    limit = MAX_DENSE_BYTES if available is None else available
    if need <= limit:
        return need
    q = [nl * k for nl, k in zip(A.n_levels, A.n_columns, strict=True)]
    names = ", ".join(f"{name} ({size} random effects)"
                      for name, size in zip(factor_names[1:], q[1:], strict=True))
    where = ("available on this machine" if available is not None
             else "allowed (the machine's free memory could not be read)")
    dense = f"; the grouping factors after the largest one ({names}) are factored as dense " \
        "blocks" if names else ""
    intercepts = all(k == 1 for k in A.n_columns)
    instead = (" ml.lmer_moments fits crossed random intercepts in O(rows) and memory linear "
               "in the levels (moment estimates; docs/moments.md); or fit" if intercepts
               else " Fit")
    raise ModelTooLargeError(
        f"fitting this model would need about {describe_bytes(need)} of memory, more than the "
        f"{describe_bytes(limit)} {where}{dense}.{instead} a subset of the rows, merge or drop "
        "levels of the second-largest grouping factor, or free memory and try again")


def describe_bytes(nbytes: int) -> str:
    """A byte count for a message, in GiB, MiB or KiB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes / 2**10:.1f} KiB"
