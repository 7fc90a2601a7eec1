# nlme's gls and lme with a combination of variance functions (varComb) and with nested
# correlation groups (form = ~ 1 | a/b): the reference for tests/test_structures_hardening.py.
# Run from the repository root: Rscript tests/reference/make_structures_hardening_refs.R
# (nlme 3.1-162, R 4.2.2). Writes tests/reference/gls/hardening.json. The data are those
# already under tests/reference/data/ (Orthodont, Dialyzer, Oats, Pixel: as.data.frame of
# nlme's data sets, the same rows in the same order).
suppressMessages({library(nlme); library(jsonlite)})

# intervals(fit) as lists of named (lower, est., upper) columns; a part the model lacks is NULL
interval_part <- function(x) {
  if (is.null(x)) return(NULL)
  x <- as.matrix(x)
  if (ncol(x) == 1) x <- t(x)  # the residual SD is a named vector
  list(names = I(if (is.null(rownames(x))) "" else rownames(x)),
       lower = I(unname(x[, "lower"])), est = I(unname(x[, "est."])),
       upper = I(unname(x[, "upper"])))
}

structs <- function(ms) list(
  variance = if (is.null(ms$varStruct)) list() else
    as.list(coef(ms$varStruct, unconstrained = FALSE)),
  correlation = if (is.null(ms$corStruct)) list() else
    as.list(coef(ms$corStruct, unconstrained = FALSE)))

one_fit <- function(id, call, with_intervals) {
  m <- eval(call)
  out <- c(list(id = id, call = deparse(call, width.cutoff = 500L),
                logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
                sigma = m$sigma, fixef = as.list(if (inherits(m, "lme")) fixef(m) else coef(m)),
                se = as.list(sqrt(diag(vcov(m))))),
           structs(m$modelStruct))
  if (inherits(m, "lme")) {
    # the random effects' SDs of each level, outermost first
    out$re_sd <- lapply(m$modelStruct$reStruct, function(pd)
      unname(sqrt(diag(as.matrix(pd)))) * m$sigma)
    out$re_sd <- unname(rev(out$re_sd))
  }
  if (with_intervals) {
    # nlme's apVar differentiates with relative steps of eps^(1/3), whose rounding noise
    # moves the bounds by up to a few percent; the same fit with steps of 1e-4 gives the
    # Hessian to ~1e-6 (as make_lme_gls_results_refs.R): the reference for ours
    iv <- intervals(update(m, control = if (inherits(m, "lme"))
      lmeControl(.relStep = 1e-4) else glsControl(.relStep = 1e-4)))
    out$printed_intervals <- I(capture.output(print(iv)))
    out$intervals <- list(varStruct = interval_part(iv$varStruct),
                          corStruct = interval_part(iv$corStruct),
                          sigma = interval_part(iv$sigma))
    # the printed summary, line by line (the variance function's paragraph is compared)
    out$summary <- I(capture.output(print(summary(m))))
  }
  out
}

varcomb <- quote(varComb(varIdent(form = ~ 1 | Sex), varPower(form = ~ age)))
cases <- list(
  # issue: summary() / intervals() of a varComb fit
  orthodont_varcomb_gls = list(
    call = bquote(gls(distance ~ age, Orthodont, weights = .(varcomb))), intervals = TRUE),
  orthodont_varcomb_lme = list(
    call = bquote(lme(distance ~ age, Orthodont, random = ~ 1 | Subject,
                      weights = .(varcomb))), intervals = TRUE),
  dialyzer_varcomb_gls = list(
    call = quote(gls(rate ~ (pressure + I(pressure^2) + I(pressure^3) + I(pressure^4)) * QB,
                     Dialyzer, weights = varComb(varIdent(form = ~ 1 | QB),
                                                 varPower(form = ~ pressure)))),
    intervals = TRUE),
  # nested correlation groups: the innermost group is the combination of the columns
  oats_compsymm_nested_gls = list(
    call = quote(gls(yield ~ nitro, Oats, correlation = corCompSymm(form = ~ 1 | Block/Variety))),
    intervals = FALSE),
  pixel_ar1_nested_gls = list(
    call = quote(gls(pixel ~ day + I(day^2), Pixel, correlation = corAR1(form = ~ 1 | Dog/Side))),
    intervals = FALSE),
  oats_compsymm_nested_lme = list(
    call = quote(lme(yield ~ nitro, Oats, random = ~ 1 | Block,
                     correlation = corCompSymm(form = ~ 1 | Block/Variety))),
    intervals = FALSE),
  # random = ~ day | Dog/Side with this correlation stops in nlme (nlminb: singular
  # convergence); the random slope only at the Dog level fits
  pixel_ar1_nested_lme = list(
    call = quote(lme(pixel ~ day + I(day^2), Pixel, random = list(Dog = ~ day, Side = ~ 1),
                     correlation = corAR1(form = ~ 1 | Dog/Side))),
    intervals = FALSE),
  # the same with a CAR(1) in the days within Dog/Side
  pixel_car1_nested_lme = list(
    call = quote(lme(pixel ~ day + I(day^2), Pixel, random = list(Dog = ~ day, Side = ~ 1),
                     correlation = corCAR1(form = ~ day | Dog/Side))),
    intervals = FALSE),
  # no group in the correlation's form: nlme's default, the innermost level Dog/Side
  pixel_ar1_default_nested_lme = list(
    call = quote(lme(pixel ~ day + I(day^2), Pixel, random = ~ 1 | Dog/Side,
                     correlation = corAR1())),
    intervals = FALSE),
  # nlme with nested random effects and the AR(1) within the innermost level Type/Plant
  co2_ar1_nested_nlme = list(
    call = quote(nlme(uptake ~ SSasympOff(conc, Asym, lrc, c0), CO2,
                      fixed = Asym + lrc + c0 ~ 1, random = Asym ~ 1 | Type/Plant,
                      correlation = corAR1(form = ~ 1 | Type/Plant),
                      start = c(Asym = 32, lrc = -4.6, c0 = 49))),
    intervals = FALSE)
)

out <- lapply(names(cases), function(id) one_fit(id, cases[[id]]$call, cases[[id]]$intervals))
names(out) <- names(cases)
writeLines(toJSON(list(versions = list(R = R.version.string,
                                       nlme = as.character(packageVersion("nlme"))),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE,
                  null = "null"),
           "tests/reference/gls/hardening.json")
