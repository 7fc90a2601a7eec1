"""The printed summary against lme4's own print-out, table by table.

Expected blocks are copied from R 4.2.2 / lme4 1.1-31 output of
``print(summary(m))`` for the calls named in each case (run on this project's machine; the
header lines, which name lme4's class and the data, are left out).
"""

from __future__ import annotations

import pytest

import multilevel as ml

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
    text = ml.lmer(formula, ml.datasets.load(dataset), reml=reml).summary()
    assert expected in text, f"\n--- ours ---\n{text}\n--- lme4 ---\n{expected}"


def test_r_format_matches_r():
    from multilevel.results.summary import r_format

    # R: format(c(612.1002, 35.0717, 654.94), digits = 4) -> "612.10" " 35.07" "654.94"
    assert r_format([612.1002, 35.0717, 654.94]) == ["612.10", " 35.07", "654.94"]
    # R: format(c(0.5, 12), digits = 4) -> " 0.5" "12.0"
    assert r_format([0.5, 12.0]) == [" 0.5", "12.0"]
