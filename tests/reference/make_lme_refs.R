# nlme's lme on Orthodont with residual variance functions and correlation structures: the
# reference for multilevel.lme (tests/test_lme.py). Run from the repository root:
# Rscript tests/reference/make_lme_refs.R (nlme 3.1-162, R 4.2.2).
suppressMessages({library(nlme); library(jsonlite)})
cases <- list(
  plain = quote(lme(distance ~ age, Orthodont, random = ~ 1 | Subject)),
  ar1 = quote(lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject,
                  correlation = corAR1())),
  varident_ml = quote(lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject,
                          weights = varIdent(form = ~ 1 | Sex), method = "ML")),
  slope_car1 = quote(lme(distance ~ age, Orthodont, random = ~ age | Subject,
                         correlation = corCAR1(form = ~ age | Subject)))
)
out <- lapply(names(cases), function(id) {
  m <- eval(cases[[id]])
  ms <- m$modelStruct
  list(id = id, call = deparse(cases[[id]], width.cutoff = 500L),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"), AIC = AIC(m), BIC = BIC(m),
       fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
       sd = unname(as.numeric(VarCorr(m)[, "StdDev"])),
       variance = if (is.null(ms$varStruct)) list() else
         as.list(coef(ms$varStruct, unconstrained = FALSE)),
       correlation = if (is.null(ms$corStruct)) list() else
         as.list(coef(ms$corStruct, unconstrained = FALSE)))
})
names(out) <- names(cases)
writeLines(toJSON(list(versions = list(R = R.version.string,
                                       nlme = as.character(packageVersion("nlme"))),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/lme/orthodont.json")
