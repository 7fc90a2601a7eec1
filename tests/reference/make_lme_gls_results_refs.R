# The results surface of nlme's lme and gls fits (fitted values and residuals of each type and
# level, predictions at levels 0 and 1 on new data, intervals(), coef(), summary numbers and
# anova tables): the reference for tests/test_lme_gls_results.py. Run from the repository root:
# Rscript tests/reference/make_lme_gls_results_refs.R (nlme 3.1-162, R 4.2.2).
suppressMessages({library(nlme); library(jsonlite)})
Orthodont <- as.data.frame(nlme::Orthodont)
BodyWeight <- as.data.frame(nlme::BodyWeight)
num <- function(x) unname(as.numeric(x))
tab <- function(a) lapply(split(as.data.frame(a), seq_len(nrow(a))), function(r) as.list(r))
interval_rows <- function(a) {
  a <- as.matrix(a)
  setNames(lapply(seq_len(nrow(a)), function(i) num(a[i, ])), rownames(a))
}
intervals_list <- function(iv) {
  out <- list()
  for (nm in names(iv)) {
    x <- iv[[nm]]
    out[[nm]] <- if (is.list(x) && !is.matrix(x)) lapply(x, interval_rows)
                 else if (is.matrix(x)) interval_rows(x) else num(x)
  }
  out
}
common <- function(m) {
  s <- summary(m)
  cb <- if (inherits(m, "lme")) s$corFixed else s$corBeta
  list(logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"), AIC = AIC(m), BIC = BIC(m),
       sigma = m$sigma, fixef = as.list(coef(s)[, 1]),
       tTable = list(names = rownames(s$tTable), colnames = colnames(s$tTable),
                     values = unname(lapply(seq_len(nrow(s$tTable)),
                                            function(i) num(s$tTable[i, ])))),
       corFixed = unname(lapply(seq_len(nrow(cb)), function(i) num(cb[i, ]))),
       resid_quantiles = num(quantile(residuals(m, type = "pearson"))),
       intervals = intervals_list(intervals(m)),
       # nlme's apVar differentiates with relative steps of eps^(1/3) (6e-6), whose rounding
       # noise moves the intervals of parameters near 0 by up to 5%; the same fit with steps
       # of 1e-4 gives the Hessian to ~1e-6, the reference the tests hold ours to
       intervals_fine = intervals_list(intervals(update(m, control = if (inherits(m, "lme"))
         lmeControl(.relStep = 1e-4) else glsControl(.relStep = 1e-4)))),
       printed = capture.output(print(s)),
       printed_intervals = capture.output(print(intervals(m))))
}
lme_cases <- list(
  slope = quote(lme(distance ~ age, Orthodont, random = ~ age | Subject)),
  ar1 = quote(lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject,
                  correlation = corAR1())),
  varident_ml = quote(lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject,
                          weights = varIdent(form = ~ 1 | Sex), method = "ML")),
  bodyweight = quote(lme(weight ~ Time * Diet, BodyWeight, random = ~ Time | Rat,
                         weights = varPower(form = ~ Time),
                         correlation = corCAR1(form = ~ Time | Rat)))
)
new_ortho <- data.frame(age = c(8, 14, 11), Subject = c("M01", "F02", "Z99"),
                        Sex = c("Male", "Female", "Male"))
new_bw <- data.frame(Time = c(1, 30, 64), Rat = c("1", "10", "99"), Diet = c("1", "2", "3"))
lme_out <- lapply(names(lme_cases), function(id) {
  m <- eval(lme_cases[[id]])
  nd <- if (id == "bodyweight") new_bw else new_ortho
  p <- predict(m, nd, level = 0:1)
  c(list(id = id, call = deparse(lme_cases[[id]], width.cutoff = 500L),
         fitted0 = num(fitted(m, level = 0)), fitted1 = num(fitted(m, level = 1)),
         resid = lapply(c(response = "response", pearson = "pearson",
                          normalized = "normalized"), function(tp)
           list(level0 = num(residuals(m, level = 0, type = tp)),
                level1 = num(residuals(m, level = 1, type = tp)))),
         newdata = nd, predict0 = num(predict(m, nd, level = 0)),
         predict1 = num(predict(m, nd, level = 1)),
         predict01 = list(level0 = num(p$predict.fixed), level1 = num(p[[ncol(p)]])),
         ranef = lapply(as.list(ranef(m)), num), ranef_rows = rownames(ranef(m)),
         coef = lapply(as.list(coef(m)), num),
         sd = num(VarCorr(m)[, "StdDev"]),
         n_groups = num(m$dims$ngrps[1])),
    common(m))
})
names(lme_out) <- names(lme_cases)
# nested grouping factors: levels 0, 1 (Block) and 2 (Variety within Block)
Oats <- as.data.frame(nlme::Oats)
nested_call <- quote(lme(yield ~ nitro, Oats, random = ~ 1 | Block/Variety))
m <- eval(nested_call)
new_oats <- data.frame(nitro = c(0.2, 0.4), Block = c("I", "II"),
                       Variety = c("Victory", "Unknown"))
p <- predict(m, new_oats, level = 0:2)
nested <- c(list(call = deparse(nested_call, width.cutoff = 500L),
                 fitted = lapply(0:2, function(l) num(fitted(m, level = l))),
                 resid = lapply(c(response = "response", pearson = "pearson",
                                  normalized = "normalized"), function(tp)
                   lapply(0:2, function(l) num(residuals(m, level = l, type = tp)))),
                 newdata = new_oats,
                 predict = list(num(p$predict.fixed), num(p$predict.Block),
                                num(p$predict.Variety)),
                 coef1 = lapply(as.list(coef(m, level = 1)), num),
                 coef1_rows = rownames(coef(m, level = 1)),
                 coef2 = lapply(as.list(coef(m, level = 2)), num),
                 coef2_rows = rownames(coef(m, level = 2))),
            common(m))
lme_out[["nested"]] <- nested
gls_cases <- list(
  ar1 = quote(gls(distance ~ age * Sex, Orthodont, correlation = corAR1(form = ~ 1 | Subject))),
  compsymm_varident_ml = quote(gls(distance ~ age * Sex, Orthodont,
                                   weights = varIdent(form = ~ 1 | Sex),
                                   correlation = corCompSymm(form = ~ 1 | Subject),
                                   method = "ML")),
  bodyweight = quote(gls(weight ~ Time * Diet, BodyWeight, weights = varPower(form = ~ Time),
                         correlation = corCAR1(form = ~ Time | Rat))),
  corsymm_varident = quote(gls(distance ~ age * Sex, Orthodont,
                               correlation = corSymm(form = ~ 1 | Subject),
                               weights = varIdent(form = ~ 1 | Sex)))
)
gls_out <- lapply(names(gls_cases), function(id) {
  m <- eval(gls_cases[[id]])
  nd <- if (id == "bodyweight") new_bw else new_ortho
  c(list(id = id, call = deparse(gls_cases[[id]], width.cutoff = 500L),
         fitted = num(fitted(m)),
         resid = lapply(c(response = "response", pearson = "pearson",
                          normalized = "normalized"), function(tp)
           num(residuals(m, type = tp))),
         newdata = nd, predict = num(predict(m, nd))),
    common(m))
})
names(gls_out) <- names(gls_cases)
# anova tables: a gls and an lme fit with the same fixed effects (REML), and ML fits with
# different fixed effects
anova_rows <- function(a) {
  a <- as.data.frame(a)
  list(df = num(a$df), AIC = num(a$AIC), BIC = num(a$BIC), logLik = num(a$logLik),
       L.Ratio = num(a$L.Ratio), p = num(a[["p-value"]]))
}
g_ar1 <- eval(gls_cases$ar1)
l_ar1 <- eval(lme_cases$ar1)
m_ml0 <- lme(distance ~ age, Orthodont, random = ~ 1 | Subject, method = "ML")
m_ml1 <- lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject, method = "ML")
Orange <- datasets::Orange  # groupedData: nlme starts from its nlsList
n_orange <- nlme(circumference ~ SSlogis(age, Asym, xmid, scal), Orange,
                 fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree)
l_orange <- lme(circumference ~ age, Orange, random = ~ 1 | Tree, method = "ML")
anovas <- list(
  lme_nlme = c(list(call = "anova(lme(circumference ~ age, Orange, ML), nlme(SSlogis, Asym ~ 1 | Tree))"),
               anova_rows(anova(l_orange, n_orange))),
  gls_lme = c(list(call = "anova(gls_ar1, lme_ar1)"), anova_rows(anova(g_ar1, l_ar1))),
  ml_fixed = c(list(call = "anova(lme(distance ~ age, ML), lme(distance ~ age * Sex, ML))"),
               anova_rows(anova(m_ml0, m_ml1)))
)
versions <- list(R = R.version.string, nlme = as.character(packageVersion("nlme")))
writeLines(toJSON(list(versions = versions, cases = lme_out, anova = anovas),
                  auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "tests/reference/lme/results.json")
writeLines(toJSON(list(versions = versions, cases = gls_out), auto_unbox = TRUE, digits = NA,
                  pretty = TRUE, na = "null"),
           "tests/reference/gls/results.json")
