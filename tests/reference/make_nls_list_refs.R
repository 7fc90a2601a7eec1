# nlme's nlsList on Orange (logistic growth per tree), the reference for multilevel.nls_list
# (tests/test_nls_list.py), and the Orange data it was fitted on.
# Run from the repository root: Rscript tests/reference/make_nls_list_refs.R (nlme 3.1-162).
suppressMessages({library(nlme); library(jsonlite)})
d <- as.data.frame(Orange)
d$Tree <- factor(as.character(d$Tree), levels = levels(Orange$Tree), ordered = TRUE)
write.csv(d[, c("Tree", "age", "circumference")], "tests/reference/data/Orange.csv",
          row.names = FALSE)
meta <- list(dataset = "Orange", source = "datasets::Orange", nrow = nrow(d),
             columns = c("Tree", "age", "circumference"),
             column_types = list(Tree = "factor", age = "double", circumference = "double"),
             levels = list(Tree = levels(d$Tree)), ordered = list(Tree = TRUE))
writeLines(toJSON(meta, auto_unbox = TRUE, pretty = TRUE), "tests/reference/data/Orange.levels.json")
m <- nlsList(circumference ~ SSlogis(age, Asym, xmid, scal) | Tree, data = Orange)
s <- summary(m)
iv <- intervals(m)
pars <- c("Asym", "xmid", "scal")
pick <- function(a, col) setNames(lapply(pars, function(p) unname(a[, col, p])), pars)
out <- list(
  call = "nlsList(circumference ~ SSlogis(age, Asym, xmid, scal) | Tree, data = Orange)",
  versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))),
  groups = rownames(coef(m)),
  coef = lapply(as.list(as.data.frame(coef(m))), unname),
  rse = s$RSE,
  own_se = pick(s$coefficients, "Std. Error"),
  lower = pick(iv, "lower"), upper = pick(iv, "upper"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/nls_list/orange.json")
