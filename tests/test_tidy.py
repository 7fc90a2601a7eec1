"""fit.tidy() against broom.mixed 0.2.9.4 (tests/reference/tidy/*.json, made by
tests/reference/make_tidy_refs.R): the rows' names exactly (effect, group, level, term, in
broom.mixed's order), the numbers within 1e-4 relative (fixed effects, SDs, correlations,
conditional modes and SDs, tests, Wald intervals); nlme's approximate intervals of the variance
parameters and lme4's profile intervals within 1e-3, the tolerance their own tests hold them to
(tests/test_lme_gls_results.py, tests/test_profile.py). A Bayesian fit's rows are checked
against its posterior draws (broom.mixed's tidy.brmsfit: mean, SD, quantiles).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, NotApplicableError

from reference_data import REF, load_data

TIDY = REF / "tidy"
NAMES = ["effect", "group", "level", "term"]


def _ref(case: str, table: str) -> pd.DataFrame:
    data = json.loads((TIDY / f"{case}.json").read_text())["tables"][table]
    return pd.DataFrame({k: [np.nan if v is None else v for v in vals]
                         for k, vals in data.items()})


def _compare(ours: pd.DataFrame, ref: pd.DataFrame, rel: float = 1e-4,
             rel_conf: float | None = None, rel_p: float | None = None) -> None:
    assert len(ours) == len(ref)
    for col in NAMES:
        if col in ref:
            theirs = [None if pd.isna(v) else str(v) for v in ref[col]]
            assert [None if pd.isna(v) else str(v) for v in ours[col]] == theirs, col
    for col in ("estimate", "std_error", "statistic", "df", "p_value", "conf_low",
                "conf_high"):
        if col not in ref:
            continue
        tol = rel_conf if rel_conf is not None and col.startswith("conf") else \
            rel_p if rel_p is not None and col == "p_value" else rel
        expected = ref[col].to_numpy(dtype=float)
        got = ours[col].to_numpy(dtype=float)
        known = ~np.isnan(expected)
        # where broom.mixed has no number we have none either, except nlme's residual SD
        # interval, which nlme's intervals() gives and broom.mixed leaves out
        assert got[known] == pytest.approx(expected[known], rel=tol, abs=1e-12), col


@pytest.fixture(scope="module")
def sleepstudy() -> ml.LinearMixedModelResult:
    return ml.lmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"))


@pytest.fixture(scope="module")
def cbpp() -> ml.GeneralizedLinearMixedModelResult:
    return ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    load_data("cbpp"), family="binomial")


@pytest.fixture(scope="module")
def orthodont():
    return ml.lme("distance ~ age", load_data("Orthodont"), random="~ age | Subject")


def test_lmer_fixed_satterthwaite(sleepstudy):
    ours = sleepstudy.tidy()
    assert list(ours.columns) == ["effect", "group", "term", "estimate", "std_error",
                                  "statistic", "df", "p_value", "conf_low", "conf_high"]
    _compare(ours, _ref("sleepstudy_lmer", "fixed"))
    _compare(sleepstudy.tidy(conf_level=0.9), _ref("sleepstudy_lmer", "fixed_90"))


def test_lmer_ran_pars_and_ran_vals(sleepstudy):
    ours = sleepstudy.tidy("ran_pars")
    _compare(ours, _ref("sleepstudy_lmer", "ran_pars"))
    assert ours[["conf_low", "conf_high"]].isna().all().all()  # Wald: none, as lme4
    vals = sleepstudy.tidy("ran_vals")
    assert list(vals.columns[:4]) == NAMES
    _compare(vals, _ref("sleepstudy_lmer", "ran_vals"))


def test_lmer_several_effects_without_intervals(sleepstudy):
    ours = sleepstudy.tidy(["fixed", "ran_pars"], conf_int=False)
    assert "conf_low" not in ours and "level" not in ours
    _compare(ours, _ref("sleepstudy_lmer", "all"))


def test_lmer_profile_intervals(sleepstudy):
    ours = sleepstudy.tidy("ran_pars", conf_method="profile")
    _compare(ours, _ref("sleepstudy_lmer", "ran_pars_profile"), rel_conf=1e-3)


def test_three_correlated_terms_in_broom_order():
    data = load_data("sleepstudy")
    data["D2"] = data["Days"] ** 2 / 10
    fit = ml.lmer("Reaction ~ Days + (Days + D2 | Subject)", data)
    _compare(fit.tidy("ran_pars"), _ref("sleepstudy_three_terms", "ran_pars"), rel=1e-3)


def test_crossed_factors():
    fit = ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", load_data("Penicillin"))
    _compare(fit.tidy("ran_pars"), _ref("penicillin_crossed", "ran_pars"))
    _compare(fit.tidy("ran_vals"), _ref("penicillin_crossed", "ran_vals"))


def test_glmer(cbpp):
    ours = cbpp.tidy()
    assert ours["df"].isna().all()  # z tests: no df (glmer reports none)
    # z agrees to ~1e-5; a normal tail p-value moves by z^2 times that (z ~ 3.5): 1e-3
    _compare(ours, _ref("cbpp_glmer", "fixed"), rel_p=1e-3)
    ran = cbpp.tidy("ran_pars")
    assert "Residual" not in set(ran["group"])  # binomial: no residual SD
    _compare(ran, _ref("cbpp_glmer", "ran_pars"))
    _compare(cbpp.tidy("ran_vals"), _ref("cbpp_glmer", "ran_vals"))


def test_lme(orthodont):
    _compare(orthodont.tidy(), _ref("orthodont_lme", "fixed"))
    ran = orthodont.tidy("ran_pars")
    _compare(ran, _ref("orthodont_lme", "ran_pars"), rel_conf=1e-3)
    # nlme's intervals() give the residual SD's interval (broom.mixed leaves it out)
    sigma = orthodont.intervals()["sigma"]
    assert ran.iloc[-1][["conf_low", "conf_high"]].tolist() == pytest.approx(
        [sigma["lower"], sigma["upper"]])
    vals = orthodont.tidy("ran_vals", conf_int=False)
    _compare(vals, _ref("orthodont_lme", "ran_vals"))
    # nlme's ranef carries no SD; ours are the conditional SDs of the linear mixed model
    assert (vals["std_error"] > 0).all()


def test_gls_and_nlme_follow_the_same_layout():
    orth = load_data("Orthodont")
    g = ml.gls("distance ~ age", orth)
    t = g.tidy(["fixed", "ran_pars"])
    assert t["term"].tolist() == ["(Intercept)", "age", "sd_Observation"]
    assert t["estimate"].tolist() == pytest.approx([*g.fixef, g.sigma], rel=1e-12)
    iv = g.intervals()
    assert t.loc[:1, "conf_low"].to_numpy() == pytest.approx(iv["coef"]["lower"].to_numpy())
    with pytest.raises(NotApplicableError, match="ran_vals"):
        g.tidy("ran_vals")
    n = ml.nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))", load_data("Orange"),
                fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree",
                start={"Asym": 170, "xmid": 700, "scal": 350})
    t = n.tidy(["fixed", "ran_pars", "ran_vals"])
    fixed = t[t["effect"] == "fixed"]
    assert fixed["term"].tolist() == ["Asym", "xmid", "scal"]
    assert fixed["estimate"].to_numpy() == pytest.approx(n.fixef.to_numpy(), rel=1e-12)
    assert fixed["df"].to_numpy() == pytest.approx(n.coef_table()["df"].to_numpy())
    pars = t[t["effect"] == "ran_pars"]
    assert pars["term"].tolist() == ["sd_Asym", "sd_Observation"]
    assert pars["estimate"].to_numpy() == pytest.approx(n.varcorr["sd"].to_numpy())
    vals = t[t["effect"] == "ran_vals"]
    assert vals["estimate"].to_numpy() == pytest.approx(n.ranef["Tree"]["Asym"].to_numpy())


def test_arguments_are_checked(sleepstudy):
    with pytest.raises(ArgumentError, match="effects"):
        sleepstudy.tidy("random")
    with pytest.raises(ArgumentError, match="conf_level"):
        sleepstudy.tidy(conf_level=95)
    with pytest.raises(ArgumentError, match="conf_method"):
        sleepstudy.tidy(conf_method="hpd")
    with pytest.raises(ArgumentError, match="'nonsense'"):
        sleepstudy.tidy(nonsense=1)
    kr = sleepstudy.tidy(ddf="kenward-roger")
    assert kr["df"].to_numpy() == pytest.approx(
        sleepstudy.coef_table(ddf="kenward-roger")["df"].to_numpy())


# -- a Bayesian fit: broom.mixed's tidy.brmsfit layout, read off the draws ----------------------
@pytest.fixture(scope="module")
def bayes_fit():
    pytest.importorskip("jax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: the sampler says so
        return ml.bayes("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"),
                        chains=2, draws=200, warmup=200, seed=1, progress=False)


def test_bayes_tidy(bayes_fit):
    t = bayes_fit.tidy(["fixed", "ran_pars", "ran_vals"], conf_level=0.9)
    fixed = t[t["effect"] == "fixed"]
    assert fixed["term"].tolist() == ["(Intercept)", "Days"]
    days = bayes_fit.draws("b_Days").ravel()
    row = fixed.iloc[1]
    assert row["estimate"] == pytest.approx(days.mean(), rel=1e-12)
    assert row["std_error"] == pytest.approx(days.std(ddof=1), rel=1e-12)
    assert [row["conf_low"], row["conf_high"]] == pytest.approx(
        np.quantile(days, [0.05, 0.95]), rel=1e-12)
    assert np.isnan(row["statistic"]) and np.isnan(row["p_value"])
    pars = t[t["effect"] == "ran_pars"]
    assert pars["term"].tolist() == ["sd__(Intercept)", "sd__Days", "cor__(Intercept).Days",
                                     "sd__Observation"]
    assert pars["group"].tolist() == ["Subject"] * 3 + ["Residual"]
    assert pars["estimate"].iloc[3] == pytest.approx(bayes_fit.sigma, rel=1e-12)
    vals = t[t["effect"] == "ran_vals"]
    ranef = bayes_fit.ranef["Subject"]
    assert len(vals) == ranef.size
    first = vals[vals["term"] == "(Intercept)"]
    assert first["level"].tolist() == [str(v) for v in ranef.index]
    assert first["estimate"].to_numpy() == pytest.approx(ranef.iloc[:, 0].to_numpy())
    assert first["std_error"].to_numpy() == pytest.approx(
        np.sqrt(bayes_fit.ranef_condvar["Subject"].iloc[:, 0].to_numpy()))
