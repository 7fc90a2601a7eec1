## Kenward-Roger t and F tables (lmerTest with ddf = "Kenward-Roger", via pbkrtest).
## Run: Rscript tests/reference/make_kr_refs.R  (writes pbkrtest/kr.json)
## R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2.
suppressMessages({library(lmerTest); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
cases <- list(
  list(id = "hsb", dataset = "Hsb82", formula = "mAch ~ meanses * cses + (cses | school)",
       call = "lmer(mAch ~ meanses * cses + (cses | school), data = mlmRev::Hsb82)"),
  list(id = "orthodont", dataset = "Orthodont", formula = "distance ~ age * Sex + (1 | Subject)",
       call = "lmer(distance ~ age * Sex + (1 | Subject), data = as.data.frame(nlme::Orthodont))"),
  list(id = "machines", dataset = "Machines", formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
       call = "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), data = as.data.frame(nlme::Machines))")
)
out <- list()
for (cs in cases) {
  m <- eval(parse(text = cs$call))
  ct <- summary(m, ddf = "Kenward-Roger")$coefficients
  a <- anova(m, type = 3, ddf = "Kenward-Roger")
  out[[cs$id]] <- c(cs, list(coef_names = I(rownames(ct)), se = unname(ct[, "Std. Error"]),
                             df = unname(ct[, "df"]), terms = I(rownames(a)),
                             F = unname(a[["F value"]]), DenDF = unname(a[["DenDF"]]),
                             p = unname(a[["Pr(>F)"]])))
}
writeLines(toJSON(list(R_version = R.version.string,
                       pbkrtest_version = as.character(packageVersion("pbkrtest")),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "pbkrtest", "kr.json"))
cat("wrote", length(out), "\n")
