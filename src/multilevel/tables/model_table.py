"""The side-by-side table of several fits for a paper (R's modelsummary / texreg): one column
per model; coefficients with their standard errors or intervals below, optional significance
stars; the variance components (SDs and correlations per grouping factor, the residual SD); fit
statistics. Models of different kinds sit in one table, each cell empty where its model has no
such number.

Built on the public API only (``fit.tidy``, ``aic``, ``bic``, ``loglik``, ``nobs``,
``ngroups``, :func:`multilevel.icc`, :func:`multilevel.r2`), so every kind that answers those
gets a column.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import multilevel
from multilevel.errors import ArgumentError, MultilevelError, NotApplicableError

STATS = {"aic": "AIC", "bic": "BIC", "loglik": "Log likelihood", "nobs": "Num. obs.",
         "ngroups": "Num. groups", "icc": "ICC", "r2": "R2"}
DEFAULT_STATS = ("aic", "bic", "loglik", "nobs", "ngroups", "icc")
STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
STAR_NOTE = "* p < 0.05, ** p < 0.01, *** p < 0.001"
AUTO = "auto"


@dataclass(frozen=True)
class Row:
    """One line of the table: its section (``"fixed"``, ``"random"``, ``"stats"``), its label,
    and per model the numbers of its cell (estimate; std_error, conf_low, conf_high, p_value
    for coefficients)."""

    section: str
    label: str
    cells: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """A table of fitted models, one column per model. Render it with :meth:`to_text`,
    :meth:`to_html`, :meth:`to_latex`, :meth:`to_markdown` or :meth:`to_frame`; ``str()``
    is the text and a notebook shows the HTML.

    Attributes
    ----------
    names : list of str
        The column headings.
    rows : list of Row
        Coefficients, then variance components, then statistics.
    ci : bool
        Intervals (``[low, high]``) below the coefficients instead of standard errors.
    conf_level : float
    stars : bool
    digits : int
        Decimals of coefficients, SDs, correlations, ICC and R2 (AIC, BIC and the
        log-likelihood get one, counts none).
    notes : list of str
        Lines printed under the table (the stars' key, the intervals' kind).
    """

    names: list[str]
    rows: list[Row]
    ci: bool = False
    conf_level: float = 0.95
    stars: bool = False
    digits: int = 3
    notes: list[str] = field(default_factory=list)

    # -- the cells as text -------------------------------------------------------------------------
    def _number(self, value: float, decimals: int) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return f"{value:.{decimals}f}"

    def _decimals(self, row: Row) -> int:
        if row.section != "stats":
            return self.digits
        if row.label.startswith("Num."):
            return 0
        return 1 if row.label in ("AIC", "BIC", "Log likelihood") else self.digits

    def _star(self, p: float) -> str:
        if not self.stars or p is None or math.isnan(p):
            return ""
        return next((mark for bound, mark in STAR_LEVELS if p < bound), "")

    def lines(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """Every printed line as (section, label, per model (number, stars)): a coefficient
        gives two lines, its estimate and, below it with an empty label, ``(SE)`` or
        ``[low, high]``."""
        out: list[tuple[str, str, list[tuple[str, str]]]] = []
        for row in self.rows:
            d = self._decimals(row)
            top = []
            below = []
            for name in self.names:
                cell = row.cells.get(name)
                if cell is None:
                    top.append(("", ""))
                    below.append(("", ""))
                    continue
                number = self._number(cell["estimate"], d)
                top.append((number, self._star(cell.get("p_value", math.nan)) if number else ""))
                if row.section != "fixed":
                    continue
                if self.ci:
                    lo = self._number(cell.get("conf_low", math.nan), d)
                    hi = self._number(cell.get("conf_high", math.nan), d)
                    below.append((f"[{lo}, {hi}]" if lo and hi else "", ""))
                else:
                    se = self._number(cell.get("std_error", math.nan), d)
                    below.append((f"({se})" if se else "", ""))
            out.append((row.section, row.label, top))
            if row.section == "fixed":
                out.append((row.section, "", below))
        return out

    # -- renderings --------------------------------------------------------------------------------
    def to_frame(self, numeric: bool = False) -> pd.DataFrame:
        """The table as a DataFrame, one column per model.

        ``numeric=False``: the printed cells (strings), indexed by (section, term, statistic)
        with statistic ``"estimate"`` and, for coefficients, ``"std_error"`` or
        ``"conf_int"``. ``numeric=True``: the numbers (NaN where a model has none), the
        coefficients' rows estimate, std_error, conf_low, conf_high and p_value."""
        if not isinstance(numeric, bool):
            raise ArgumentError(f"numeric must be True or False, got {numeric!r:.60}")
        index: list[tuple[str, str, str]] = []
        data: list[list[Any]] = []
        if numeric:
            for row in self.rows:
                keys = ["estimate", "std_error", "conf_low", "conf_high", "p_value"] \
                    if row.section == "fixed" else ["estimate"]
                for key in keys:
                    index.append((row.section, row.label, key))
                    data.append([row.cells.get(n, {}).get(key, math.nan) for n in self.names])
            frame = pd.DataFrame(data, columns=self.names, dtype=float)
        else:
            label = ""
            for section, text, cells in self.lines():
                second = section == "fixed" and text == ""
                label = label if second else text
                stat = ("conf_int" if self.ci else "std_error") if second else "estimate"
                index.append((section, label, stat))
                data.append([number + star for number, star in cells])
            frame = pd.DataFrame(data, columns=self.names, dtype=object)
        frame.index = pd.MultiIndex.from_tuples(index, names=["section", "term", "statistic"])
        return frame

    def to_text(self) -> str:
        """Plain text, columns aligned, rules between the parts."""
        from multilevel.tables.render import text

        return text(self)

    def to_html(self) -> str:
        """An HTML ``<table>`` (with the notes in its footer)."""
        from multilevel.tables.render import html_table

        return html_table(self)

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        """A LaTeX ``table`` with a booktabs ``tabular`` (``\\usepackage{booktabs}``): rules
        \\toprule, \\midrule, \\bottomrule, names escaped, numbers in math mode."""
        from multilevel.tables.render import latex

        return latex(self, caption, label)

    def to_markdown(self) -> str:
        """A Markdown (pipe) table, the notes below it."""
        from multilevel.tables.render import markdown

        return markdown(self)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()


# -- building the rows ---------------------------------------------------------------------------
def _fits(models: Any, names: Any) -> tuple[list[Any], list[str]]:
    if isinstance(models, Mapping):
        if names is not None:
            raise ArgumentError("names: give either a dict of models (its keys are the names) "
                                "or a list of models with names=, not both")
        names, models = [str(k) for k in models], list(models.values())
    elif hasattr(models, "tidy"):
        models = [models]
    elif isinstance(models, Iterable) and not isinstance(models, str):
        models = list(models)
    else:
        raise ArgumentError(f"models must be a fitted model, a list of them or a dict name -> "
                            f"model, got {type(models).__name__}")
    if not models:
        raise ArgumentError("models is empty: give at least one fitted model")
    for i, m in enumerate(models):
        if not callable(getattr(m, "tidy", None)):
            raise ArgumentError(f"models[{i}] is a {type(m).__name__}, not a fitted model "
                                "(the result of multilevel.lmer, glmer, lme, gls, nlme or bayes)")
    if names is None:
        names = [f"({i + 1})" for i in range(len(models))]
    elif isinstance(names, str) or not isinstance(names, Iterable):
        raise ArgumentError(f"names must be a list of {len(models)} strings, got {names!r:.60}")
    names = [str(n) for n in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ArgumentError(f"names must be {len(models)} different strings, one per model, "
                            f"got {names!r:.100}")
    return models, names


def _stats(stats: Any) -> list[str]:
    if stats is None:
        return []
    chosen = [stats] if isinstance(stats, str) else stats
    if not isinstance(chosen, Iterable):
        raise ArgumentError(f"stats must be a list of {', '.join(map(repr, STATS))}, got "
                            f"{stats!r:.60}")
    chosen = list(chosen)
    bad = [s for s in chosen if s not in STATS]
    if bad:
        raise ArgumentError(f"stats: unknown statistic {bad[0]!r}; choose from "
                            f"{', '.join(map(repr, STATS))}")
    return list(dict.fromkeys(chosen))


def _tidy_fixed(fit: Any, ddf: Any, level: float) -> pd.DataFrame:
    """The coefficients with ``ddf`` where the fit's tests take one (lmer, lme); a model
    whose tests have none (glmer's z tests, gls, nlme, bayes) keeps its own."""
    if not (isinstance(ddf, str) and ddf == AUTO):  # a Series would compare element-wise
        takes_ddf = "ddf" in inspect.signature(fit.coef_table).parameters
        if takes_ddf:
            try:
                return fit.tidy("fixed", conf_level=level, ddf=ddf)
            except NotApplicableError:  # glmer: z tests have no denominator df
                pass
    return fit.tidy("fixed", conf_level=level)


def _after(term: str, prefix: str) -> str:
    """``sd__Days`` (lme4, brms) or ``sd_Days`` (nlme) -> ``Days``."""
    return term[len(prefix) + 2:] if term.startswith(prefix + "__") else term[len(prefix) + 1:]


def _random_rows(ran: pd.DataFrame) -> list[tuple[tuple[str, ...], str, float]]:
    """(key, label, estimate) of each SD and correlation in a fit's ``tidy("ran_pars")``,
    keyed so that lmer's ``cor__a.b`` and lme's ``cor_b.a`` of one pair meet on one line."""
    out: list[tuple[tuple[str, ...], str, float]] = []
    for group, block in ran.groupby("group", sort=False):
        pairs = list(zip(block["term"].astype(str), block["estimate"].astype(float),
                         strict=True))
        if group == "Residual":
            out.extend((("residual",), "SD: Residual", est) for _, est in pairs[:1])
            continue
        order = [_after(t, "sd") for t, _ in pairs if t.startswith("sd_")]
        for term, est in pairs:
            if term.startswith("sd_"):
                name = _after(term, "sd")
                out.append((("sd", str(group), name), f"SD: {group} {name}", est))
            elif term.startswith("cor_"):
                a, b = _pair(_after(term, "cor"), order)
                out.append((("cor", str(group), a, b), f"Cor: {group} {a}, {b}", est))
    return out


def _pair(text: str, order: list[str]) -> tuple[str, str]:
    """``a.b`` split where both halves are terms of the block, earlier term first."""
    for i, c in enumerate(text):
        if c == "." and text[:i] in order and text[i + 1:] in order:
            a, b = text[:i], text[i + 1:]
            return (a, b) if order.index(a) < order.index(b) else (b, a)
    a, _, b = text.partition(".")
    return a, b


def _statistic(fit: Any, name: str) -> Any:
    """A fit statistic, NaN where the model has none (a Bayesian fit's AIC, gls's ICC)."""
    try:
        if name == "icc":
            return float(multilevel.icc(fit)["adjusted"])
        if name == "r2":
            r2 = multilevel.r2(fit)
            return {"R2 marginal": float(r2["marginal"]),
                    "R2 conditional": float(r2["conditional"])}
        if name == "ngroups":
            groups = getattr(fit, "ngroups", None)
            if groups is None and isinstance(getattr(fit, "ranef", None), dict):
                # nlme's result counts its groups in its conditional modes
                groups = {g: len(frame) for g, frame in fit.ranef.items()}
            return dict(groups or {})
        value = getattr(fit, name)
        return float(value() if callable(value) else value)
    except (MultilevelError, AttributeError, TypeError, KeyError):
        return {} if name in ("ngroups", "r2") else math.nan


def build_table(models: Any, names: Any = None, stats: Any = DEFAULT_STATS, ci: bool = False,
                stars: bool = False, digits: int = 3, ddf: Any = AUTO,
                conf_level: float = 0.95, random: bool = True) -> Table:
    """See :func:`multilevel.tables.table`."""
    fits, labels = _fits(models, names)
    chosen = _stats(stats)
    for arg, value in (("ci", ci), ("stars", stars), ("random", random)):
        if not isinstance(value, bool):
            raise ArgumentError(f"{arg} must be True or False, got {value!r:.60}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 12:
        raise ArgumentError(f"digits must be a whole number from 0 to 12, got {digits!r:.60}")
    if isinstance(conf_level, bool) or not isinstance(conf_level, int | float) \
            or not 0 < conf_level < 1:
        raise ArgumentError(f"conf_level must be strictly between 0 and 1, got "
                            f"{conf_level!r:.60}")
    fixed: dict[str, Row] = {}
    randoms: dict[tuple[str, ...], Row] = {}
    for fit, name in zip(fits, labels, strict=True):
        for _, r in _tidy_fixed(fit, ddf, float(conf_level)).iterrows():
            row = fixed.setdefault(r["term"], Row("fixed", r["term"]))
            row.cells[name] = {k: float(r[k]) for k in (
                "estimate", "std_error", "conf_low", "conf_high", "p_value")}
        if random:
            for key, label, est in _random_rows(fit.tidy("ran_pars", conf_int=False)):
                randoms.setdefault(key, Row("random", label)).cells[name] = {"estimate": est}
    # per grouping factor its SDs, then its correlations; the residual last
    groups = list(dict.fromkeys(key[1] for key in randoms if key[0] != "residual"))
    ordered = sorted(randoms.items(), key=lambda kv: (
        (len(groups), 0) if kv[0][0] == "residual" else
        (groups.index(kv[0][1]), kv[0][0] == "cor")))
    rows = [*fixed.values(), *(row for _, row in ordered)]
    for stat in chosen:
        values = [_statistic(fit, stat) for fit in fits]
        if stat in ("ngroups", "r2"):
            keys = list(dict.fromkeys(k for v in values for k in v))
            for k in keys:
                label = f"Num. groups: {k}" if stat == "ngroups" else k
                rows.append(Row("stats", label, {
                    n: {"estimate": float(v[k])} for n, v in zip(labels, values, strict=True)
                    if k in v}))
        else:
            cells = {n: {"estimate": v} for n, v in zip(labels, values, strict=True)
                     if not math.isnan(v)}
            if cells:  # a statistic none of the models has gets no line
                rows.append(Row("stats", STATS[stat], cells))
    # a Bayesian fit (it answers draws) reports posterior SDs and quantiles
    bayes = any(callable(getattr(f, "draws", None)) for f in fits)
    if ci:
        notes = [f"{100 * conf_level:g}% confidence intervals in brackets"
                 + ("; posterior quantiles for Bayesian fits" if bayes else "")]
    else:
        notes = ["Standard errors in parentheses"
                 + ("; posterior SDs for Bayesian fits" if bayes else "")]
    if stars:
        notes.append(STAR_NOTE)
    return Table(names=labels, rows=rows, ci=ci, conf_level=float(conf_level), stars=stars,
                 digits=digits, notes=notes)
