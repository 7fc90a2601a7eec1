"""The printed summary against lme4's own print-out, table by table.

Expected blocks are copied from R 4.2.2 / lme4 1.1-31 output of
``print(summary(m))`` for the calls named in each case (run on this project's machine; the
header lines, which name lme4's class and the data, are left out). lme4's own layout (no df,
no p-values) is ``summary(ddf=None)``; the default is lmerTest's (Satterthwaite df and
p-values), checked against lmerTest's printout at the end.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import multilevel as ml

REF_DIR = Path(__file__).parent / "reference"

CASES = {
    # m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    "sleepstudy": (("sleepstudy", "Reaction ~ Days + (Days | Subject)", True), """\
Scaled residuals: 
    Min      1Q  Median      3Q     Max 
-3.9536 -0.4634  0.0231  0.4634  5.1793 

Random effects:
 Groups   Name        Variance Std.Dev. Corr
 Subject  (Intercept) 612.10   24.741       
          Days         35.07    5.922   0.07
 Residual             654.94   25.592       
Number of obs: 180, groups:  Subject, 18

Fixed effects:
            Estimate Std. Error t value
(Intercept)  251.405      6.825  36.838
Days          10.467      1.546   6.771

Correlation of Fixed Effects:
     (Intr)
Days -0.138
"""),
    # m <- lmer(diameter ~ 1 + (1|plate) + (1|sample), Penicillin, REML = FALSE)
    "penicillin_ml": (("Penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", False), """\
     AIC      BIC   logLik deviance df.resid 
   340.2    352.1   -166.1    332.2      140 

Scaled residuals: 
     Min       1Q   Median       3Q      Max 
-2.08031 -0.67227  0.06412  0.58356  2.97933 

Random effects:
 Groups   Name        Variance Std.Dev.
 plate    (Intercept) 0.7150   0.8456  
 sample   (Intercept) 3.1352   1.7706  
 Residual             0.3024   0.5499  
Number of obs: 144, groups:  plate, 24; sample, 6

Fixed effects:
            Estimate Std. Error t value
(Intercept)  22.9722     0.7446   30.85
"""),
    # m <- lmer(score ~ Machine + (0 + Machine | Worker), nlme::Machines); the correlations
    # only (its estimates agree with lme4's to ~1e-4, which shows in the last printed digit of
    # some variance components and t values)
    "machines": (("Machines", "score ~ Machine + (0 + Machine | Worker)", True), """\
Correlation of Fixed Effects:
         (Intr) MachnB
MachineB  0.463       
MachineC -0.374  0.301
"""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_summary_blocks_match_lme4(case):
    (dataset, formula, reml), expected = CASES[case]
    text = ml.lmer(formula, ml.datasets.load(dataset), reml=reml).summary(ddf=None)
    assert expected in text, f"\n--- ours ---\n{text}\n--- lme4 ---\n{expected}"


def test_r_format_matches_r():
    from multilevel.results.summary import r_format

    # R: format(c(612.1002, 35.0717, 654.94), digits = 4) -> "612.10" " 35.07" "654.94"
    assert r_format([612.1002, 35.0717, 654.94]) == ["612.10", " 35.07", "654.94"]
    # R: format(c(0.5, 12), digits = 4) -> " 0.5" "12.0"
    assert r_format([0.5, 12.0]) == [" 0.5", "12.0"]


# print(summary(m)) for m <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
# (lmerTest 3.1-3; R wraps the first line after "[" at width 80, joined here)
LMERTEST_SLEEPSTUDY = """\
Fixed effects:
            Estimate Std. Error      df t value Pr(>|t|)    
(Intercept)  251.405      6.825  17.000  36.838  < 2e-16 ***
Days          10.467      1.546  17.000   6.771 3.26e-06 ***
---
Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1
"""


@pytest.fixture(scope="module")
def sleepstudy_fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


def test_default_summary_is_lmertests(sleepstudy_fit):
    text = sleepstudy_fit.summary()
    assert text.startswith("Linear mixed model fit by REML. t-tests use Satterthwaite's "
                           "method [lmerModLmerTest]\n")
    assert LMERTEST_SLEEPSTUDY in text, text
    assert str(sleepstudy_fit) == text


def test_summary_ddf_chooses_the_method(sleepstudy_fit):
    kr = sleepstudy_fit.summary(ddf="kenward-roger")
    assert kr.startswith("Linear mixed model fit by REML. t-tests use Kenward-Roger's method")
    # pbkrtest gives the same df (17) as Satterthwaite on this balanced design
    # (tests/reference/lme4_shared/sleepstudy_reml.json, "kenward_roger")
    assert LMERTEST_SLEEPSTUDY.splitlines()[2] in kr
    residual = sleepstudy_fit.summary(ddf="residual")
    assert "t-tests use residual degrees of freedom" in residual
    # n - p = 180 - 2
    assert "178.000" in residual
    plain = sleepstudy_fit.summary(ddf=None)
    assert plain.startswith("Linear mixed model fit by REML\n")
    assert "Pr(>|t|)" not in plain and "Signif. codes" not in plain


def test_summary_unknown_ddf_is_a_typed_error(sleepstudy_fit):
    with pytest.raises(ml.errors.MultilevelError, match="banana"):
        sleepstudy_fit.summary(ddf="banana")


def test_format_pvalues_matches_printcoefmat():
    from multilevel.results.summary import format_pvalues

    # lmerTest's sleepstudy p-values 1.1715581e-17 and 3.2638245e-06 (sleepstudy_reml.json)
    # print as "< 2e-16" and "3.26e-06" (the printout above)
    assert format_pvalues([1.1715581112082594e-17, 3.2638244699273775e-06]) == [
        "< 2e-16", "3.26e-06"]


def test_no_stars_without_a_p_below_one_tenth():
    """printCoefmat adds the star column and the legend only when some p < 0.1."""
    import pandas as pd

    from multilevel.results.summary import coefmat_lines

    table = pd.DataFrame({"Estimate": [1.5], "Std. Error": [2.0], "df": [10.0],
                          "t value": [0.75], "Pr(>|t|)": [0.47]}, index=["x"])
    lines = coefmat_lines(table, cs_ind=[0, 1, 2], tst_ind=3, has_p=True)
    assert len(lines) == 2 and not any("Signif" in line for line in lines)
    assert lines[1].split() == ["x", "1.5", "2.0", "10.0", "0.75", "0.47"]


def test_ml_summary_matches_lmertest_printout():
    """Everything from the information criteria to the correlation block, character for
    character, against lmerTest 3.1-3's printout (tests/reference/make_hardening_refs.R:
    print(summary(lmerTest::lmer(Reaction ~ Days + noise + (1 | Subject), noise,
    REML = FALSE)))): ML layout, 4-decimal columns, '<2e-16' p-values and a p-value above
    0.1 with a blank star."""
    ref = (REF_DIR / "hardening" / "lmertest_summary_noise_ml.txt").read_text()
    body = ref[ref.index("     AIC"):ref.index("\nCorrelation of Fixed Effects")]
    noise = pd.read_csv(REF_DIR / "data" / "sleepstudy_noise.csv", dtype={"Subject": str})
    noise["Subject"] = pd.Categorical(noise["Subject"])
    fit = ml.lmer("Reaction ~ Days + noise + (1 | Subject)", noise, reml=False)
    assert body in fit.summary()


def test_summary_without_computable_df_says_why(monkeypatch):
    """When Satterthwaite's df cannot be computed for a fit (the deviance cannot be evaluated
    next to the estimates: simulated here by a factorization that fails, as on a degenerate
    fit), coef_table() refuses with a NumericalError, while summary() and to_dict() fall back
    to the table without df (as lmerTest falls back to lme4's summary) and say why."""
    from multilevel.inference import satterthwaite
    from multilevel.linalg.blocked_cholesky import NotPositiveDefinite

    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))

    def fails(*args, **kwargs):
        raise NotPositiveDefinite

    monkeypatch.setattr(satterthwaite, "profiled_terms", fails)
    with pytest.raises(ml.errors.NumericalError, match="Satterthwaite df cannot be computed"):
        fit.coef_table()
    text = fit.summary()
    assert text.startswith("Linear mixed model fit by REML\n")
    assert " ".join(text.split("Fixed effects:\n")[1].split()[:3]) == "Estimate Std. Error"
    assert "t value" in text and "Pr(>|t|)" not in text
    assert "Satterthwaite df cannot be computed" in text
    out = fit.to_dict()
    assert out["ddf"] is None and "Satterthwaite" in out["ddf_note"]
    assert "Satterthwaite df cannot be computed" in fit._repr_html_()
