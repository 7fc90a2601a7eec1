"""Column names as R writes them, from formulaic's names.

R names a treatment-coded dummy ``SexFemale`` where formulaic writes ``Sex[T.Female]``, the
intercept ``(Intercept)`` where formulaic writes ``Intercept``, polynomial contrasts of an
ordered factor ``d.L`` where formulaic writes ``C(d, contr.poly)[.L]``, and powers
``I(age^2)`` where Python needs ``I(age ** 2)``, and ``log(Days.n)`` where formulaic needs
``log(`Days.n`)``. Users compare our output with lme4's, so we print R's names.
"""

from __future__ import annotations

import re

from multilevel.formula.identifiers import r_name

_BACKTICKED = re.compile(r"`([^`]*)`")
_POLY = re.compile(r"C\(([^,()]+), contr\.poly\)")
_CONTRAST = re.compile(r"\[T\.([^\]]*)\]")
_LEVEL = re.compile(r"\[([^\]]*)\]")
# formulaic numbers the columns of a raw polynomial from 0, R from 1 (poly(x, 2, raw = TRUE)1).
_RAW_POLY = re.compile(r"(poly\([^()]*raw=True[^()]*\))\[(\d+)\]")
_KEYWORD_ARG = re.compile(r"(?<=\w)=(?=[\w'\"\[(-])")


def r_column_name(name: str) -> str:
    """Translate one formulaic column name into the name R's ``model.matrix`` gives it."""
    if name == "Intercept":
        return "(Intercept)"
    name = _RAW_POLY.sub(lambda m: f"{m.group(1)}[{int(m.group(2)) + 1}]", name)
    name = _POLY.sub(r"\1", name)  # ordered factors: R's d.L, d.Q, d.C, d^4
    name = _CONTRAST.sub(r"\1", name)
    name = _LEVEL.sub(r"\1", name)
    name = _BACKTICKED.sub(lambda m: r_name(m.group(1)), name)
    # formulaic writes keyword arguments as Python does (raw=True); R deparses raw = TRUE.
    name = _KEYWORD_ARG.sub(" = ", name).replace("= True", "= TRUE").replace("= False",
                                                                           "= FALSE")
    return name.replace(" ** ", "^").replace("**", "^")


def r_column_names(names: list[str]) -> list[str]:
    """Translate a list of formulaic column names (see :func:`r_column_name`)."""
    return [r_column_name(n) for n in names]
