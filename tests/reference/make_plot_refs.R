# What lme4's diagnostic plots draw, for ml.plot (tests/test_plots_diagnostics.py).
# Run from the repository root: Rscript tests/reference/make_plot_refs.R (R 4.2.2, lme4).
# - caterpillar: lme4's dotplot(ranef(fit, condVar = TRUE)) orders each group's levels by the
#   mean of its first term (lme4:::asDf0, reorder(..., sort = TRUE)) and draws the segments
#   x -+ 1.96 * sqrt(condVar) (lme4:::dotplot.ranef.mer); recorded here in that order.
# - qq: qqnorm() of the scaled Pearson residuals (plot(fit)'s standardized residuals), sorted.
suppressMessages({library(lme4); library(jsonlite)})
fits <- list(
  sleepstudy = lmer(Reaction ~ Days + (Days | Subject), sleepstudy),
  cbpp = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
               family = binomial),
  penicillin = lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
)
caterpillar <- function(m) {
  re <- ranef(m, condVar = TRUE)
  lapply(setNames(names(re), names(re)), function(g) {
    x <- re[[g]]
    pv <- attr(x, "postVar")
    ord <- order(x[[1]])  # reorder(..., FUN = mean) on one value per level
    lapply(setNames(seq_along(x), colnames(x)), function(j) {
      sd <- sqrt(pv[j, j, ])
      list(levels = rownames(x)[ord], mode = x[[j]][ord], condsd = sd[ord],
           lower = (x[[j]] - 1.96 * sd)[ord], upper = (x[[j]] + 1.96 * sd)[ord])
    })
  })
}
qq <- function(m) {
  q <- qqnorm(residuals(m, type = "pearson", scaled = TRUE), plot.it = FALSE)
  o <- order(q$y)
  list(x = q$x[o], y = q$y[o])
}
out <- lapply(fits, function(m) list(caterpillar = caterpillar(m), qq = qq(m)))
writeLines(toJSON(list(versions = list(R = R.version.string,
                                       lme4 = as.character(packageVersion("lme4"))),
                       fits = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/plots/lme4_plots.json")
