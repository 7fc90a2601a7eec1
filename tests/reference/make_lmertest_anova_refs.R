## lmerTest type-III F tables (Satterthwaite) for models whose terms are not contained in one
## another (so type III is the test that all of a term's coefficients are zero).
## Run: Rscript tests/reference/make_lmertest_anova_refs.R  (writes lmertest_anova/anova.json)
## R 4.2.2, lme4 1.1-31, lmerTest 3.1-3.
suppressMessages({library(lmerTest); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
cases <- list(
  list(id = "machines", dataset = "Machines", formula = "score ~ Machine + (1 | Worker)",
       call = "lmer(score ~ Machine + (1 | Worker), data = as.data.frame(nlme::Machines))"),
  list(id = "sleepstudy", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
       call = "lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)"),
  list(id = "hsb", dataset = "Hsb82", formula = "mAch ~ meanses + cses + sector + (cses | school)",
       call = "lmer(mAch ~ meanses + cses + sector + (cses | school), data = mlmRev::Hsb82)")
)
out <- list()
for (cs in cases) {
  m <- eval(parse(text = cs$call))
  a <- anova(m, type = 3, ddf = "Satterthwaite")
  out[[cs$id]] <- c(cs, list(terms = I(rownames(a)), table = lapply(as.list(as.data.frame(a)), unname)))
}
writeLines(toJSON(list(R_version = R.version.string,
                       lmerTest_version = as.character(packageVersion("lmerTest")),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "lmertest_anova", "anova.json"))
cat("wrote", length(out), "\n")

## Models with terms contained in interactions (type III needs lmerTest's orthogonalized
## contrasts). Written to lmertest_anova/anova_marginal.json.
cases2 <- list(
  list(id = "orthodont_interaction", dataset = "Orthodont", formula = "distance ~ age * Sex + (1 | Subject)",
       call = "lmer(distance ~ age * Sex + (1 | Subject), data = as.data.frame(nlme::Orthodont))"),
  list(id = "assay_factorial", dataset = "Assay", formula = "logDens ~ sample * dilut + (1 | Block)",
       call = "lmer(logDens ~ sample * dilut + (1 | Block), data = as.data.frame(nlme::Assay))"),
  list(id = "oats_covariate", dataset = "Oats", formula = "yield ~ nitro * Variety + (1 | Block)",
       call = "lmer(yield ~ nitro * Variety + (1 | Block), data = as.data.frame(nlme::Oats))")
)
out2 <- list()
for (cs in cases2) {
  m <- eval(parse(text = cs$call))
  a <- anova(m, type = 3, ddf = "Satterthwaite")
  out2[[cs$id]] <- c(cs, list(terms = I(rownames(a)), table = lapply(as.list(as.data.frame(a)), unname)))
}
writeLines(toJSON(list(R_version = R.version.string,
                       lmerTest_version = as.character(packageVersion("lmerTest")),
                       cases = out2), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "lmertest_anova", "anova_marginal.json"))
cat("wrote", length(out2), "marginal cases\n")
