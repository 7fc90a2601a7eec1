# nlme's gls on Orthodont with variance functions and correlation structures: the reference
# for multilevel.gls (tests/test_gls.py). Run from the repository root:
# Rscript tests/reference/make_gls_refs.R (nlme 3.1-162, R 4.2.2).
suppressMessages({library(nlme); library(jsonlite)})
cases <- list(
  plain_reml = quote(gls(distance ~ age, Orthodont)),
  plain_ml = quote(gls(distance ~ age, Orthodont, method = "ML")),
  ar1 = quote(gls(distance ~ age * Sex, Orthodont, correlation = corAR1(form = ~ 1 | Subject))),
  varident_ml = quote(gls(distance ~ age * Sex, Orthodont, weights = varIdent(form = ~ 1 | Sex),
                          method = "ML")),
  compsymm_varident = quote(gls(distance ~ age * Sex, Orthodont,
                                correlation = corCompSymm(form = ~ 1 | Subject),
                                weights = varIdent(form = ~ 1 | Sex))),
  varpower_car1 = quote(gls(distance ~ age + Sex, Orthodont, weights = varPower(form = ~ age),
                            correlation = corCAR1(form = ~ age | Subject)))
)
out <- lapply(names(cases), function(id) {
  m <- eval(cases[[id]])
  ms <- m$modelStruct
  list(id = id, call = deparse(cases[[id]], width.cutoff = 500L),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
       AIC = AIC(m), BIC = BIC(m), sigma = m$sigma,
       fixef = as.list(coef(m)), se = as.list(sqrt(diag(vcov(m)))),
       variance = if (is.null(ms$varStruct)) list() else
         as.list(coef(ms$varStruct, unconstrained = FALSE)),
       correlation = if (is.null(ms$corStruct)) list() else
         as.list(coef(ms$corStruct, unconstrained = FALSE)))
})
names(out) <- names(cases)
writeLines(toJSON(list(versions = list(R = R.version.string,
                                       nlme = as.character(packageVersion("nlme"))),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/gls/orthodont.json")
