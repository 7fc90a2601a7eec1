# nlme's lmList on Orthodont, the reference for multilevel.lm_list (tests/test_lm_list.py).
# Run from the repository root: Rscript tests/reference/make_lm_list_refs.R
# (nlme 3.1-162, R 4.2.2). intervals() of an lmList with pool = FALSE fails in this nlme
# (qf() on a NULL df), so only the pooled fit's intervals are recorded.
suppressMessages({library(nlme); library(jsonlite)})
m <- lmList(distance ~ age | Subject, data = Orthodont)
s <- summary(m)
iv <- intervals(m)
out <- list(
  call = "lmList(distance ~ age | Subject, data = Orthodont)",
  versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))),
  groups = rownames(coef(m)),
  coef = lapply(as.list(as.data.frame(coef(m))), unname),
  rse = s$RSE,
  df_pooled = sum(sapply(m, df.residual)),
  se = lapply(c("(Intercept)", "age"), function(t) unname(s$coefficients[, "Std. Error", t])),
  t_value = lapply(c("(Intercept)", "age"), function(t) unname(s$coefficients[, "t value", t])),
  p_value = lapply(c("(Intercept)", "age"), function(t) unname(s$coefficients[, "Pr(>|t|)", t])),
  lower = lapply(c("(Intercept)", "age"), function(t) unname(iv[, "lower", t])),
  upper = lapply(c("(Intercept)", "age"), function(t) unname(iv[, "upper", t]))
)
names(out$se) <- names(out$t_value) <- names(out$p_value) <- names(out$lower) <-
  names(out$upper) <- c("(Intercept)", "age")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/lm_list/orthodont.json")
