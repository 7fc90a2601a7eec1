## ICC and Nakagawa R2 of performance::icc() / performance::r2_nakagawa() for lme4 fits.
## Run: Rscript tests/reference/make_performance_refs.R   (writes performance/icc_r2.json)
## R 4.2.2, lme4 1.1-31, performance 0.10.2, insight 0.19.0 (Debian r-cran-performance).
suppressMessages({library(lme4); library(performance); library(insight); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
cases <- list(
  list(id = "sleepstudy_slope", dataset = "sleepstudy",
       call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"),
  list(id = "sleepstudy_intercept", dataset = "sleepstudy",
       call = "lmer(Reaction ~ Days + (1 | Subject), sleepstudy)"),
  list(id = "penicillin_crossed", dataset = "Penicillin",
       call = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)"),
  list(id = "hsb_slope", dataset = "Hsb82",
       call = "lmer(mAch ~ meanses * cses + (cses | school), mlmRev::Hsb82)"),
  list(id = "dyestuff_intercept", dataset = "Dyestuff",
       call = "lmer(Yield ~ 1 + (1 | Batch), Dyestuff)")
)
out <- list()
for (cs in cases) {
  m <- eval(parse(text = cs$call))
  i <- icc(m); r <- r2_nakagawa(m); v <- get_variance(m)
  out[[cs$id]] <- list(id = cs$id, dataset = cs$dataset, call = cs$call,
    icc_adjusted = unname(i$ICC_adjusted), icc_unadjusted = unname(i$ICC_unadjusted),
    r2_conditional = unname(r$R2_conditional), r2_marginal = unname(r$R2_marginal),
    var_fixed = unname(v$var.fixed), var_random = unname(v$var.random),
    var_residual = unname(v$var.residual))
}
writeLines(toJSON(list(R_version = R.version.string,
                       performance_version = as.character(packageVersion("performance")),
                       insight_version = as.character(packageVersion("insight")),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "performance", "icc_r2.json"))
cat("wrote", length(out), "cases\n")
