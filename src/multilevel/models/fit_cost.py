"""What one evaluation of a large linear mixed model costs, told to the user before the fit,
and a progress bar while it runs.

A model whose grouping factors after the first have many thousand levels factors a dense
block of that order at every evaluation of the objective (see
:mod:`multilevel.linalg.tiled_cholesky`): 20,000 items crossed with users cost 2.0 GiB and
half a minute per evaluation on a 2-core machine, and a fit takes about twenty evaluations.
Such a fit announces the block's order, its memory and the estimated time per evaluation
before the first one, and shows a progress bar that advances per evaluation (the factorization
in between reports its share done), so that nobody waits for minutes without a word. The time
is estimated from the block's flops (q^3 / 3 for each dense block) and this machine's measured
speed of a dense matrix product (:func:`multilevel.linalg.tiled_cholesky.measured_flops`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from multilevel.linalg.cross_products import CrossProducts
from multilevel.linalg.tiled_cholesky import TiledLower, measured_flops
from multilevel.models.memory import describe_bytes

# Newton's method from a moment-based start (multilevel.optim.newton): typical evaluations of
# a fit with two random intercepts, derivative check included (measured: 16-23 on 200,000-row
# copies, 17 on the 2 M-row benchmark).
TYPICAL_EVALUATIONS = 20


@dataclass(frozen=True)
class EvaluationCost:
    """The dense work of one evaluation.

    Attributes
    ----------
    orders : tuple of int
        Order of each dense block (grouping factors after the first).
    names : tuple of str
        Their grouping factors.
    factor_bytes : int
        Memory of the dense blocks (tiles of the lower triangle where they are tiled).
    seconds : float
        Estimated time of one evaluation on this machine.
    """

    orders: tuple[int, ...]
    names: tuple[str, ...]
    factor_bytes: int
    seconds: float

    def notice(self, first: str) -> str:
        """The message printed before the fit."""
        blocks = ", ".join(f"{name} ({order:,} levels)"
                           for name, order in zip(self.names, self.orders, strict=True))
        size = describe_bytes(self.factor_bytes)
        return (f"multilevel: {blocks} crossed with {first} is factored as a dense block at "
                f"every evaluation: {size}, about {self.seconds:.0f} s per "
                f"evaluation on this machine (estimated), about {TYPICAL_EVALUATIONS} "
                "evaluations. ml.lmer_moments fits random intercepts in O(rows) instead.")


def evaluation_cost(A: CrossProducts, names: Sequence[str]) -> EvaluationCost:
    """Estimate the cost of one evaluation from the block sizes (no allocation)."""
    orders = tuple(nl * k for nl, k in zip(A.n_levels[1:], A.n_columns[1:], strict=True))
    nbytes = sum(TiledLower.bytes_for(q) for q in orders)
    flops = sum(q**3 / 3.0 for q in orders)
    return EvaluationCost(orders=orders, names=tuple(names[1:]), factor_bytes=int(nbytes),
                          seconds=flops / measured_flops())


class EvaluationProgress:
    """A progress bar over the evaluations of one fit (tqdm on stderr), with the running
    factorization's share done as its postfix. Use as a context manager; call
    :meth:`evaluated` after each evaluation and pass :meth:`factoring` to the factorization."""

    def __init__(self, cost: EvaluationCost, first: str) -> None:
        from tqdm.auto import tqdm

        print(cost.notice(first), file=sys.stderr, flush=True)
        self._bar: Any = tqdm(desc="lmer", unit="evaluation", total=None, leave=False,
                              file=sys.stderr)
        self.best = float("inf")

    def evaluated(self, value: float) -> None:
        """One evaluation done with objective ``value``."""
        self.best = min(self.best, value)
        self._bar.set_postfix_str(f"best {self.best:.6f}", refresh=False)
        self._bar.update(1)

    @property
    def factoring(self) -> Callable[[float], None]:
        """Callback for the factorization's fraction done."""
        def report(fraction: float) -> None:
            self._bar.set_postfix_str(f"factor {fraction:.0%}, best {self.best:.6f}")
        return report

    def __enter__(self) -> EvaluationProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.close()

