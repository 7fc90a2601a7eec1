"""Inference on fitted models: denominator df (Satterthwaite, Kenward-Roger, between-within),
F tests, model comparison, intervals (profile, bootstrap), variance partition, within/between
tests, stepwise selection, power and the overdispersion check. Every tool takes a linear or a
generalized linear mixed model where it applies to it, and raises NotApplicableError saying why
where it does not (denominator df, F tests with df and Kenward-Roger for a GLMM; the
overdispersion check for a linear model). Importing it registers its ddf and interval methods
with the result classes (``coef_table(ddf=...)``, ``confint(method=...)``)."""

from multilevel.inference.between_within import between_within_df, design_column_df
from multilevel.inference.bootstrap import BootstrapResult, bootstrap
from multilevel.inference.f_tests import contrast_test, f_table
from multilevel.inference.kenward_roger import kenward_roger_df
from multilevel.inference.model_comparison import anova, compare
from multilevel.inference.overdispersion import OverdispersionTest, overdispersion
from multilevel.inference.power import (
    PowerResult,
    extend,
    extend_groups,
    power,
    power_curve,
    specify,
)
from multilevel.inference.profile import profile, profile_confint
from multilevel.inference.satterthwaite import satterthwaite_df
from multilevel.inference.stepwise import StepResult, add_random_slopes, step
from multilevel.inference.variance_partition import (
    VarianceDecomposition,
    design_effect,
    icc,
    r2,
    variance_decomposition,
)
from multilevel.inference.within_between import EndogeneityTest, center, hausman, mundlak
from multilevel.results.base import INFERENCE_HOOKS
from multilevel.results.lmm_result import register_ddf

register_ddf("satterthwaite", satterthwaite_df)
register_ddf("between-within", between_within_df)
register_ddf("kenward-roger", kenward_roger_df)
INFERENCE_HOOKS["contrast"] = contrast_test
INFERENCE_HOOKS["profile"] = profile
INFERENCE_HOOKS["between_within_columns"] = design_column_df
INFERENCE_HOOKS["bootstrap"] = bootstrap

__all__ = ["BootstrapResult", "EndogeneityTest", "OverdispersionTest", "PowerResult",
           "StepResult", "VarianceDecomposition", "add_random_slopes", "anova",
           "between_within_df", "bootstrap", "center", "compare", "contrast_test",
           "design_effect", "extend", "extend_groups", "f_table", "hausman", "icc",
           "kenward_roger_df", "mundlak", "overdispersion", "power", "power_curve", "profile",
           "profile_confint", "r2", "satterthwaite_df", "specify", "step",
           "variance_decomposition"]
