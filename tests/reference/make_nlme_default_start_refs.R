# nlme fits of self-starting models WITHOUT start=: nlme then fits nlsList per group and starts
# from the median of the per-group estimates (nlme.nlsList), which matters at nlme's default
# pnlsTol. Reference for tests/test_nlme_classic.py (test_self_starting_models_start_as_nlme).
# Run from the repository root: Rscript tests/reference/make_nlme_default_start_refs.R
# (nlme 3.1-162, R 4.2.2).
suppressMessages({library(nlme); library(jsonlite)})
one <- function(m, call) list(call = call, logLik = as.numeric(logLik(m)),
                              fixef = as.list(fixef(m)),
                              sd = as.list(as.numeric(VarCorr(m)[, "StdDev"])))
calls <- c(
  orange = "nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange, random = Asym ~ 1)",
  loblolly = "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, random = Asym + lrc ~ 1)",
  theoph = "nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph, random = pdDiag(lKa + lCl ~ 1))")
out <- list(versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
for (k in names(calls)) out[[k]] <- one(eval(parse(text = calls[[k]])), calls[[k]])
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/nlme/default_start.json")
