"""A fit as one long table, one row per estimate: broom.mixed's ``tidy`` for every model kind.

The columns are broom.mixed's, in Python spelling: effect, group, [level], term, estimate,
std_error, statistic, df, p_value, [conf_low, conf_high]. Three kinds of rows:

- ``"fixed"``: the coefficient table (``coef_table``); z tests have no df (NaN, where the fit
  reports an infinite df);
- ``"ran_pars"``: the random effects' standard deviations and correlations per grouping
  factor, and the residual SD (group ``"Residual"``), read off ``varcorr``;
- ``"ran_vals"``: each group level's conditional mode with its conditional SD (``ranef`` and
  ``ranef_condvar``), the interval mode +- z SD as broom.mixed.

Term names follow broom.mixed for each R class the kind mirrors: lme4's fits (``lmer``,
``glmer``) and brms's name SDs ``sd__(Intercept)``, correlations ``cor__(Intercept).Days``
(earlier term first) and the residual ``sd__Observation``; nlme's fits (``lme``, ``gls``,
``nlme``) ``sd_(Intercept)``, ``cor_age.(Intercept)`` (later term first) and
``sd_Observation``, the order broom.mixed's ``tidy.lme`` writes them in.

Nothing here imports a model kind's package: a fit is recognised by what it answers (a
Bayesian fit by its ``draws``; nlme's kinds by their ``intervals``), so a new kind gets
``tidy`` by answering the common vocabulary.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import ArgumentError, MultilevelError, NotApplicableError

EFFECTS = ("fixed", "ran_pars", "ran_vals")
CONF_METHODS = ("wald", "profile", "boot")
NUMBERS = ["estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"]


# -- arguments -----------------------------------------------------------------------------------
def _effects(effects: Any) -> list[str]:
    chosen = [effects] if isinstance(effects, str) else effects
    if not isinstance(chosen, Iterable) or isinstance(chosen, dict):
        raise ArgumentError(f"effects must be one of {', '.join(map(repr, EFFECTS))} or a list "
                            f"of them, got {type(effects).__name__} {effects!r:.60}")
    chosen = list(chosen)
    # an entry that is not a string (an array, a Series) is not compared with the names
    bad = [e for e in chosen if not isinstance(e, str) or e not in EFFECTS]
    if bad or not chosen:
        raise ArgumentError(f"effects must be one of {', '.join(map(repr, EFFECTS))} or a list "
                            f"of them, got {effects!r:.60}")
    return list(dict.fromkeys(chosen))


def _conf_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, int | float | np.floating) \
            or not 0 < float(level) < 1:
        raise ArgumentError(f"conf_level must be a number strictly between 0 and 1 (e.g. 0.95), "
                            f"got {level!r:.60}")
    return float(level)


def _kind(fit: Any) -> str:
    """The naming family of a fit: ``"bayes"`` (brms), ``"nlme"`` (lme, gls, nlme) or
    ``"lme4"`` (lmer, glmer)."""
    kind = getattr(type(fit), "kind", None)
    families = {"bayes": "bayes", "lme": "nlme", "gls": "nlme", "nlme": "nlme",
                "lmer": "lme4", "glmer": "lme4", "moments": "lme4"}
    if kind not in families:
        raise ArgumentError(f"tidy() takes a fitted model (lmer, glmer, lme, gls, nlme or "
                            f"bayes), got {type(fit).__name__}")
    return families[kind]


def _is_residual(group: Any) -> bool:
    return str(group) == "Residual"


def _blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


# -- term names ----------------------------------------------------------------------------------
def sd_term(kind: str, term: str) -> str:
    """broom.mixed's name of a random-effect SD (``sd__Days`` / nlme's ``sd_Days``)."""
    return f"sd_{term}" if kind == "nlme" else f"sd__{term}"


def cor_term(kind: str, first: str, second: str) -> str:
    """broom.mixed's name of the correlation of two terms of one block, ``first`` written
    before ``second`` in the formula: ``cor__first.second`` / nlme's ``cor_second.first``."""
    return f"cor_{second}.{first}" if kind == "nlme" else f"cor__{first}.{second}"


def residual_term(kind: str) -> str:
    """broom.mixed's name of the residual SD."""
    return "sd_Observation" if kind == "nlme" else "sd__Observation"


def _r_intercept(term: str) -> str:
    # brms writes the intercept "Intercept"; broom.mixed (fix.intercept) gives R's name back
    return re.sub(r"(?<![A-Za-z0-9.(])Intercept(?![A-Za-z0-9.)])", "(Intercept)", term)


# -- fixed effects ---------------------------------------------------------------------------------
def _coef_table(fit: Any, options: dict[str, Any]) -> pd.DataFrame:
    accepted = inspect.signature(fit.coef_table).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    bad = [k for k in options if k not in accepted and not takes_any]
    if bad:
        takes = [k for k in accepted if accepted[k].kind is not accepted[k].VAR_KEYWORD]
        raise ArgumentError(
            f"tidy option {bad[0]!r} does not apply to a {type(fit).__name__}: its coef_table "
            f"takes {', '.join(map(repr, takes)) if takes else 'no options'}; leave it out")
    return fit.coef_table(**options)


def _fixed(fit: Any, kind: str, conf_int: bool, level: float, conf_method: str,
           options: dict[str, Any]) -> pd.DataFrame:
    if kind == "bayes":
        return _bayes_fixed(fit, level)
    ct = _coef_table(fit, options)
    est = ct["estimate"].to_numpy(dtype=float)
    se = ct["std_error"].to_numpy(dtype=float)
    df = ct["df"].to_numpy(dtype=float) if "df" in ct else np.full(est.size, np.nan)
    df = np.where(np.isfinite(df), df, np.nan)  # a z test has no df
    out = pd.DataFrame({"effect": "fixed", "group": np.nan, "term": [str(t) for t in ct.index],
                        "estimate": est, "std_error": se,
                        "statistic": ct["statistic"].to_numpy(dtype=float),
                        "df": df, "p_value": ct["p_value"].to_numpy(dtype=float)})
    if conf_int:
        limits = None
        if conf_method != "wald":
            limits = _confint(fit, conf_method, level).reindex(out["term"])
        elif kind == "nlme" and not options:
            limits = _nlme_fixed_intervals(fit, level)
        if limits is None:
            # t quantiles where the test has df, normal ones for z tests
            q = np.where(np.isnan(df), stats.norm.ppf(0.5 + level / 2),
                         stats.t.ppf(0.5 + level / 2, np.where(np.isnan(df), 1.0, df)))
            limits = pd.DataFrame({"lower": est - q * se, "upper": est + q * se})
        out["conf_low"] = limits["lower"].to_numpy(dtype=float)
        out["conf_high"] = limits["upper"].to_numpy(dtype=float)
    return out


def _nlme_fixed_intervals(fit: Any, level: float) -> pd.DataFrame | None:
    """nlme's ``intervals(fit, which = "fixed")``, as broom.mixed's tidy.lme takes them (for an
    ML nlme fit they use the unscaled standard errors, unlike summary's table)."""
    iv = fit.intervals(level, which="fixed")
    frame = iv.get("fixed", iv.get("coef"))
    return frame


def _confint(fit: Any, method: str, level: float) -> pd.DataFrame:
    if not callable(getattr(fit, "confint", None)):
        raise NotApplicableError(
            f"conf_method={method!r} needs a fit with confint() (lmer, glmer); a "
            f"{type(fit).__name__} has nlme's approximate intervals: leave conf_method out")
    return fit.confint(method=method, level=level)


# -- random-effect parameters ----------------------------------------------------------------------
def _varcorr_rows(fit: Any, kind: str) -> list[dict[str, Any]]:
    """One dict per SD / correlation, in broom.mixed's order: per grouping factor the lower
    triangle column by column (sd a, cor a.b, cor a.c, sd b, cor b.c, sd c), residual last."""
    vc = fit.varcorr if hasattr(fit, "varcorr") else None
    rows: list[dict[str, Any]] = []
    residual: dict[str, Any] | None = None
    if vc is None:  # gls: no random effects, the residual SD only
        return [{"group": "Residual", "term": residual_term(kind), "estimate": fit.sigma,
                 "_key": ("sigma",)}]
    for group, block in vc.groupby("group", sort=False):
        if _is_residual(group):
            residual = {"group": "Residual", "term": residual_term(kind),
                        "estimate": float(block["sd"].iloc[0]), "_key": ("sigma",)}
            continue
        sds = block[block["term2"].map(_blank)]
        cors = block[~block["term2"].map(_blank)]
        terms = [str(t) for t in sds["term1"]]
        corr = {(str(a), str(b)): float(r) for a, b, r in
                zip(cors["term1"], cors["term2"], cors["corr"], strict=True)}
        for i, a in enumerate(terms):
            rows.append({"group": str(group), "term": sd_term(kind, a),
                         "estimate": float(sds["sd"].iloc[i]), "_key": ("sd", str(group), a)})
            for b in terms[i + 1:]:
                r = corr.get((a, b), corr.get((b, a), np.nan))
                rows.append({"group": str(group), "term": cor_term(kind, a, b),
                             "estimate": r, "_key": ("cor", str(group), a, b)})
    if residual is not None:
        rows.append(residual)
    return rows


def _ran_pars(fit: Any, kind: str, conf_int: bool, level: float,
              conf_method: str) -> pd.DataFrame:
    if kind == "bayes":
        return _bayes_ran_pars(fit, level)
    rows = _varcorr_rows(fit, kind)
    keys = [r.pop("_key") for r in rows]
    out = pd.DataFrame(rows, columns=["group", "term", "estimate"])
    out.insert(0, "effect", "ran_pars")
    for col in ("std_error", "statistic", "df", "p_value"):
        out[col] = np.nan
    if conf_int:
        low = np.full(len(out), np.nan)
        high = np.full(len(out), np.nan)
        limits = _ran_pars_limits(fit, kind, level, conf_method)
        for i, key in enumerate(keys):
            if key in limits:
                low[i], high[i] = limits[key]
        out["conf_low"], out["conf_high"] = low, high
    return out


def _ran_pars_limits(fit: Any, kind: str, level: float,
                     conf_method: str) -> dict[tuple[str, ...], tuple[float, float]]:
    """Interval limits of the SDs and correlations keyed as :func:`_varcorr_rows` keys them:
    nlme's approximate intervals for nlme's kinds; for lme4's, ``confint`` by profile or
    bootstrap when asked (Wald intervals of variance parameters do not exist: NaN, as lme4)."""
    out: dict[tuple[str, ...], tuple[float, float]] = {}
    if kind == "nlme":
        if conf_method != "wald":
            _confint(fit, conf_method, level)  # raises, saying what applies
        try:
            iv = fit.intervals(level, which="var-cov")
        except NotApplicableError:  # a fit on the boundary has no approximate intervals
            return out
        for group, frame in (iv.get("reStruct") or {}).items():
            for name, row in frame.iterrows():
                m = re.fullmatch(r"(sd|cor)\((.*)\)", str(name))
                if m is None:
                    continue
                limits = (float(row["lower"]), float(row["upper"]))
                if m.group(1) == "sd":
                    out[("sd", str(group), m.group(2))] = limits
                else:
                    a, b = _split_pair(m.group(2), frame.index)
                    out[("cor", str(group), a, b)] = limits
                    out[("cor", str(group), b, a)] = limits
        if "sigma" in iv:
            out[("sigma",)] = (float(iv["sigma"]["lower"]), float(iv["sigma"]["upper"]))
        return out
    if conf_method == "wald":
        return out
    ci = _confint(fit, conf_method, level)
    for name, row in ci.iterrows():
        limits = (float(row["lower"]), float(row["upper"]))
        text = str(name)
        if text == "sigma":
            out[("sigma",)] = limits
        elif "|" in text and text[:3] in ("sd_", "cor"):
            what, group = text.rsplit("|", 1)
            if what.startswith("sd_"):
                out[("sd", group, what[3:])] = limits
            else:  # lme4's cor_later.earlier: match both orders against the terms
                for a, b in _dotted_pairs(what[4:]):
                    out[("cor", group, a, b)] = limits
                    out[("cor", group, b, a)] = limits
    return out


def _split_pair(text: str, names: Iterable[Any]) -> tuple[str, str]:
    """``(Intercept),age`` -> the two terms (a term may hold commas: match against the SDs)."""
    terms = [m.group(1) for n in names if (m := re.fullmatch(r"sd\((.*)\)", str(n)))]
    for t in terms:
        if text.startswith(t + ",") and text[len(t) + 1:] in terms:
            return t, text[len(t) + 1:]
    a, _, b = text.partition(",")
    return a, b


def _dotted_pairs(text: str) -> list[tuple[str, str]]:
    """Every split of ``a.b`` at a dot (term names may hold dots)."""
    return [(text[:i], text[i + 1:]) for i, c in enumerate(text) if c == "."]


# -- random-effect values --------------------------------------------------------------------------
def _ranef_frame(fit: Any) -> pd.DataFrame:
    """group, term, level, condval, condsd: the fit's own frame, the inner linear model's (lme),
    or ``ranef`` with NaN SDs (nlme's conditional modes carry none)."""
    for source in (fit, getattr(fit, "fit", None)):
        if source is not None and callable(getattr(source, "ranef_frame", None)):
            frame = source.ranef_frame()
            if len(frame) == sum(v.size for v in fit.ranef.values()):
                return frame
    rows = []
    for group, frame in fit.ranef.items():
        for term in frame.columns:
            for level, value in frame[term].items():
                rows.append({"group": str(group), "term": str(term), "level": str(level),
                             "condval": float(value), "condsd": np.nan})
    return pd.DataFrame(rows, columns=["group", "term", "level", "condval", "condsd"])


def _ran_vals(fit: Any, kind: str, conf_int: bool, level: float) -> pd.DataFrame:
    if kind == "bayes":
        return _bayes_ran_vals(fit, level)
    if not hasattr(fit, "ranef"):
        raise NotApplicableError(f"a {type(fit).__name__} has no random effects: ran_vals "
                                 "does not apply; ask for effects='fixed' or 'ran_pars'")
    frame = _ranef_frame(fit)
    out = pd.DataFrame({"effect": "ran_vals", "group": frame["group"].astype(str),
                        "level": frame["level"].astype(str), "term": frame["term"].astype(str),
                        "estimate": frame["condval"].to_numpy(dtype=float),
                        "std_error": frame["condsd"].to_numpy(dtype=float)})
    for col in ("statistic", "df", "p_value"):
        out[col] = np.nan
    if conf_int:
        z = stats.norm.ppf(0.5 + level / 2)
        out["conf_low"] = out["estimate"] - z * out["std_error"]
        out["conf_high"] = out["estimate"] + z * out["std_error"]
    return out


# -- Bayesian fits: posterior mean, SD and quantiles (broom.mixed's tidy.brmsfit) ----------------
def _summarise_draws(x: np.ndarray, level: float) -> dict[str, float]:
    x = np.asarray(x, dtype=float).ravel()
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])  # R's type 7, as quantile()
    return {"estimate": float(x.mean()), "std_error": float(x.std(ddof=1)),
            "conf_low": float(lo), "conf_high": float(hi)}


def _bayes_fixed(fit: Any, level: float) -> pd.DataFrame:
    rows = [{"effect": "fixed", "group": np.nan, "term": _r_intercept(name),
             **_summarise_draws(fit.draws(variable), level)}
            for name, variable in fit.model.fixed_variables()]
    return pd.DataFrame(rows)


def _bayes_ran_pars(fit: Any, level: float) -> pd.DataFrame:
    """brms's order: per grouping term its SDs, then its correlations; sigma last."""
    rows = []
    for block in fit.model.blocks:
        labels = [_r_intercept(block.term_label(t)) for t in range(block.k)]
        for t in range(block.k):
            rows.append({"group": block.group, "term": sd_term("bayes", labels[t]),
                         **_summarise_draws(fit.draws(block.sd_variable(block.terms[t])),
                                            level)})
        for a in range(block.k):
            for b in range(a + 1, block.k):
                draws = fit.draws(block.cor_variable(block.terms[a], block.terms[b]))
                rows.append({"group": block.group,
                             "term": cor_term("bayes", labels[a], labels[b]),
                             **_summarise_draws(draws, level)})
    if fit.model.family.extra == "sigma":
        rows.append({"group": "Residual", "term": residual_term("bayes"),
                     **_summarise_draws(fit.draws("sigma"), level)})
    out = pd.DataFrame(rows, columns=["group", "term", "estimate", "std_error", "conf_low",
                                      "conf_high"])
    out.insert(0, "effect", "ran_pars")
    return out


def _bayes_ran_vals(fit: Any, level: float) -> pd.DataFrame:
    rows = []
    for block in fit.model.blocks:
        r = fit.draws(block.r_variable)[..., block.columns]
        r = r.reshape(-1, *r.shape[2:])  # (draws, levels, terms)
        for t in range(block.k):
            term = _r_intercept(block.term_label(t))
            for i, lev in enumerate(block.levels):
                rows.append({"effect": "ran_vals", "group": block.group, "level": str(lev),
                             "term": term, **_summarise_draws(r[:, i, t], level)})
    return pd.DataFrame(rows)


# -- the function ResultSurface.tidy calls ---------------------------------------------------------
def tidy(fit: Any, effects: str | list[str] = "fixed", conf_int: bool = True,
         conf_level: float = 0.95, **options: Any) -> pd.DataFrame:
    """``fit`` in broom.mixed's long format (see the module docstring).

    Parameters
    ----------
    fit : a fitted model of any kind (lmer, glmer, lme, gls, nlme, bayes)
    effects : {"fixed", "ran_pars", "ran_vals"} or a list of them
        Which rows, in this order when several are asked.
    conf_int : bool
        Add conf_low and conf_high.
    conf_level : float
        Their level.
    **options
        ``conf_method`` (lmer, glmer): ``"wald"`` (default; variance parameters get none, as
        lme4), ``"profile"`` or ``"boot"`` (intervals for every parameter from
        ``fit.confint``). Anything else goes to the fit's ``coef_table`` (``ddf=`` for lmer
        and lme).

    Returns
    -------
    pandas.DataFrame
        Columns effect, group, (level, with ran_vals), term, estimate, std_error, statistic,
        df, p_value, (conf_low, conf_high); NaN where a number is not defined (the df of a z
        test, tests of variance parameters, Bayesian tests).
    """
    chosen = _effects(effects)
    if not isinstance(conf_int, bool | np.bool_):
        raise ArgumentError(f"conf_int must be True or False, got {conf_int!r:.60}")
    level = _conf_level(conf_level)
    conf_method = options.pop("conf_method", "wald")
    if not isinstance(conf_method, str) or conf_method.lower() not in CONF_METHODS:
        raise ArgumentError(f"conf_method must be one of {', '.join(map(repr, CONF_METHODS))}, "
                            f"got {conf_method!r:.60}")
    conf_method = conf_method.lower()
    kind = _kind(fit)
    if kind == "bayes" and options:
        raise ArgumentError(f"tidy option {next(iter(options))!r} does not apply to a "
                            "Bayesian fit (posterior summaries have no tests); leave it out")
    parts = []
    for effect in chosen:
        if effect == "fixed":
            parts.append(_fixed(fit, kind, bool(conf_int), level, conf_method, options))
        elif effect == "ran_pars":
            parts.append(_ran_pars(fit, kind, bool(conf_int), level, conf_method))
        else:
            parts.append(_ran_vals(fit, kind, bool(conf_int), level))
    columns = ["effect", "group", *(["level"] if "ran_vals" in chosen else []), "term",
               *(NUMBERS if conf_int else NUMBERS[:-2])]
    out = pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)
    for col in columns[columns.index("estimate"):]:
        out[col] = out[col].astype(float)
    return out


# -- the notebook view of kinds without their own ------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.6g}"
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value))
                       else str(value))


def _html_frame(frame: pd.DataFrame) -> str:
    keep = [c for c in frame.columns if c != "effect" and not frame[c].isna().all()]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in keep)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in keep) + "</tr>"
                   for _, row in frame.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_view(fit: Any) -> str:
    """A fit in a notebook: the printed summary's title, the fit statistics, the random-effect
    parameters and the coefficient table as HTML tables (from :func:`tidy`), and the whole
    printed summary folded below them."""
    printed = str(fit)
    title = printed.strip().splitlines()[0] if printed.strip() else type(fit).__name__
    facts = []
    for label, name in (("nobs", "nobs"), ("logLik", "loglik"), ("AIC", "aic"),
                        ("BIC", "bic")):
        value = getattr(fit, name, None)
        if isinstance(value, int | float | np.number):
            facts.append(f"{label} = {value:.2f}" if name != "nobs" else f"{label} = {value}")
    groups = getattr(fit, "ngroups", None)
    if groups is None and isinstance(getattr(fit, "ranef", None), dict):
        groups = {g: len(frame) for g, frame in fit.ranef.items()}  # nlme's result
    if isinstance(groups, dict) and groups:
        facts.append("groups: " + ", ".join(f"{k} ({v})" for k, v in groups.items()))
    parts = [f"<p><b>{html.escape(title)}</b><br>{html.escape('; '.join(facts))}</p>"]
    try:
        ran = tidy(fit, "ran_pars", conf_int=False)  # nlme's intervals need a Hessian
    except MultilevelError:  # a kind without variance parameters to show
        ran = None
    if ran is not None and len(ran):
        parts.append("<p>Random effects and residual</p>" + _html_frame(ran))
    parts.append("<p>Fixed effects</p>" + _html_frame(tidy(fit, "fixed")))
    parts.append("<details><summary>Printed summary</summary>"
                 f"<pre>{html.escape(printed)}</pre></details>")
    return "".join(parts)
