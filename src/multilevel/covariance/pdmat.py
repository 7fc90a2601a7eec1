"""nlme's positive-definite structures for the random effects of a nonlinear mixed model:
``PdSymm`` (general, the default), ``PdDiag`` (independent effects) and ``PdBlocked``
(block-diagonal: independent blocks, each general or diagonal). Each names the parameters with
a random effect as nlme's one-sided formulas do, ``"lKa + lCl ~ 1"``."""

from __future__ import annotations

from dataclasses import dataclass

from multilevel.errors import ArgumentError


def _formula(spec: object, who: str) -> str:
    if not isinstance(spec, str) or "~" not in spec:
        raise ArgumentError(f"{who} takes nlme's 'parameters ~ 1' (e.g. {who}('Asym + xmid "
                            f"~ 1')), got {spec!r:.60}")
    if "|" in spec:
        raise ArgumentError(f"{who}({spec!r}): give the grouping factor as groups='~ g' or "
                            "as the key of a dict random={'g': ...}, not inside the structure")
    return spec


@dataclass(frozen=True)
class PdSymm:
    """A general (unstructured) covariance of the random effects named in ``formula``."""

    formula: str

    def __post_init__(self) -> None:
        _formula(self.formula, "PdSymm")


@dataclass(frozen=True)
class PdDiag:
    """Independent random effects (a diagonal covariance), as nlme's ``pdDiag``."""

    formula: str

    def __post_init__(self) -> None:
        _formula(self.formula, "PdDiag")


@dataclass(frozen=True)
class PdBlocked:
    """A block-diagonal covariance, as nlme's ``pdBlocked(list(...))``: each block a
    ``PdSymm``, a ``PdDiag`` or a formula string (general)."""

    blocks: tuple[PdSymm | PdDiag, ...]

    def __init__(self, blocks: list[PdSymm | PdDiag | str] | tuple[PdSymm | PdDiag | str, ...],
                 ) -> None:
        if not isinstance(blocks, list | tuple) or not blocks:
            raise ArgumentError("PdBlocked takes a list of blocks, e.g. "
                                "PdBlocked([PdDiag('Asym ~ 1'), 'xmid + scal ~ 1'])")
        out: list[PdSymm | PdDiag] = []
        for b in blocks:
            if isinstance(b, str):
                out.append(PdSymm(b))
            elif isinstance(b, PdSymm | PdDiag):
                out.append(b)
            else:
                raise ArgumentError(f"a PdBlocked block must be PdSymm, PdDiag or a formula "
                                    f"string, got {b!r:.60}")
        object.__setattr__(self, "blocks", tuple(out))
