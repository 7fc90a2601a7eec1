# nlme's gls and lme with every residual variance function and correlation structure on the
# classic nlme data sets (Pinheiro & Bates 2000): the reference for
# tests/test_structures_fit_reference.py. Run from the repository root:
# Rscript tests/reference/make_structures_fit_refs.R (nlme 3.1-162, R 4.2.2).
# Writes tests/reference/gls/classic.json, tests/reference/lme/classic.json and the data sets
# it fits that were not there yet (Ovary, Dialyzer, Wheat2) under tests/reference/data/.
suppressMessages({library(nlme); library(jsonlite)})

# ---- data: doubles with 17 significant digits (exact under a correctly rounded parser) ----
write_data <- function(name, df, source, notes = NULL) {
  cols <- lapply(df, function(col) {
    s <- if (is.factor(col)) paste0("\"", as.character(col), "\"") else sprintf("%.17g", col)
    s[is.na(col)] <- "NA"
    s
  })
  lines <- c(paste0("\"", names(df), "\"", collapse = ","), do.call(paste, c(unname(cols), sep = ",")))
  writeLines(lines, file.path("tests/reference/data", paste0(name, ".csv")))
  facs <- names(df)[vapply(df, is.factor, TRUE)]
  type <- function(col) if (is.ordered(col)) "ordered factor" else if (is.factor(col)) "factor" else "double"
  meta <- list(dataset = name, source = source, nrow = nrow(df), columns = I(names(df)),
               column_types = lapply(df, type),
               levels = setNames(lapply(facs, function(f) I(levels(df[[f]]))), facs),
               ordered = setNames(lapply(facs, function(f) is.ordered(df[[f]])), facs),
               csv_format = "factors as their quoted labels; doubles with 17 significant digits",
               notes = notes)
  writeLines(toJSON(meta, auto_unbox = TRUE, pretty = TRUE, null = "null"),
             file.path("tests/reference/data", paste0(name, ".levels.json")))
}
ovary <- as.data.frame(Ovary)
# the harmonic terms as columns too: multilevel's formulas do not take sin()/cos() (yet)
ovary$sin2piTime <- sin(2 * pi * ovary$Time)
ovary$cos2piTime <- cos(2 * pi * ovary$Time)
write_data("Ovary", ovary, "as.data.frame(nlme::Ovary) plus sin(2*pi*Time), cos(2*pi*Time)",
           "sin2piTime and cos2piTime are R's sin(2 * pi * Time) and cos(2 * pi * Time)")
write_data("Dialyzer", as.data.frame(Dialyzer), "as.data.frame(nlme::Dialyzer)")
write_data("Wheat2", as.data.frame(Wheat2), "as.data.frame(nlme::Wheat2)")
pixel <- as.data.frame(Pixel)
pixel$DogSide <- factor(paste(pixel$Dog, pixel$Side, sep = "/"))
write_data("PixelDogSide", pixel, "as.data.frame(nlme::Pixel) plus DogSide = Dog/Side",
           "DogSide labels the Dog/Side groups (nlme's ~ 1 | Dog/Side)")

gls_cases <- list(
  ovary_ar1 = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                        correlation = corAR1(form = ~ 1 | Mare))),
  ovary_arma11_ml = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                              correlation = corARMA(form = ~ 1 | Mare, p = 1, q = 1),
                              method = "ML")),
  ovary_arma20 = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                           correlation = corARMA(form = ~ 1 | Mare, p = 2))),
  ovary_car1 = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                         correlation = corCAR1(form = ~ Time | Mare))),
  dialyzer_varpower = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                weights = varPower(form = ~ pressure))),
  dialyzer_varexp_ml = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                 weights = varExp(form = ~ pressure), method = "ML")),
  # varConstPower(form = ~ pressure) sends the constant to 0 here: the fitted-value one is
  # interior
  dialyzer_varconstpower_fitted = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                            weights = varConstPower())),
  dialyzer_varcomb = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                               weights = varComb(varIdent(form = ~ 1 | QB),
                                                 varPower(form = ~ pressure)))),
  dialyzer_varpower_strata_ar1 = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                           weights = varPower(form = ~ pressure | QB),
                                           correlation = corAR1(form = ~ 1 | Subject))),
  dialyzer_varpower_fitted = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                       weights = varPower())),
  dialyzer_varexp_fitted_ml = quote(gls(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                        weights = varExp(), method = "ML")),
  bodyweight_varfixed = quote(gls(weight ~ Time * Diet, BodyWeight, weights = varFixed(~ Time))),
  bodyweight_compsymm_ml = quote(gls(weight ~ Time * Diet, BodyWeight,
                                     correlation = corCompSymm(form = ~ 1 | Rat), method = "ML")),
  orthodont_corsymm_varident = quote(gls(distance ~ age * Sex, Orthodont,
                                         correlation = corSymm(form = ~ 1 | Subject),
                                         weights = varIdent(form = ~ 1 | age))),
  wheat2_exp = quote(gls(yield ~ variety - 1, Wheat2,
                         correlation = corExp(form = ~ latitude + longitude))),
  wheat2_exp_nugget_ml = quote(gls(yield ~ variety - 1, Wheat2,
                                   correlation = corExp(form = ~ latitude + longitude,
                                                        nugget = TRUE), method = "ML")),
  ovary_exp_nugget = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                               correlation = corExp(form = ~ Time | Mare, nugget = TRUE))),
  wheat2_gaus_nugget = quote(gls(yield ~ variety - 1, Wheat2,
                                 correlation = corGaus(form = ~ latitude + longitude,
                                                       nugget = TRUE))),
  # Wheat2's spatial likelihoods also rise towards degenerate ranges (range -> Inf, nugget ->
  # 0); from P&B's starting values (section 5.3) nlme stops at an interior local optimum
  # (multilevel goes on to the higher degenerate one: the test checks it is not lower; so on
  # Ovary's spherical fit, whose likelihood has several local optima)
  wheat2_spher_nugget = quote(gls(yield ~ variety - 1, Wheat2,
                                  correlation = corSpher(c(28, 0.2), form = ~ latitude + longitude,
                                                         nugget = TRUE))),
  ovary_spher_nugget = quote(gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                                 correlation = corSpher(form = ~ Time | Mare, nugget = TRUE))),
  orthodont_spher_nugget = quote(gls(distance ~ age * Sex, Orthodont,
                                     correlation = corSpher(form = ~ age | Subject,
                                                            nugget = TRUE))),
  orthodont_lin_nugget = quote(gls(distance ~ age * Sex, Orthodont,
                                   correlation = corLin(form = ~ age | Subject, nugget = TRUE))),
  wheat2_ratio_nugget = quote(gls(yield ~ variety - 1, Wheat2,
                                  correlation = corRatio(c(12.5, 0.2),
                                                         form = ~ latitude + longitude,
                                                         nugget = TRUE)))
)

lme_cases <- list(
  bodyweight_varpower_car1 = quote(lme(weight ~ Time * Diet, BodyWeight, random = ~ Time | Rat,
                                       weights = varPower(),
                                       correlation = corCAR1(form = ~ Time))),
  bodyweight_varpower_time_ml = quote(lme(weight ~ Time * Diet, BodyWeight,
                                          random = ~ Time | Rat,
                                          weights = varPower(form = ~ Time), method = "ML")),
  bodyweight_varexp_time = quote(lme(weight ~ Time * Diet, BodyWeight, random = ~ Time | Rat,
                                     weights = varExp(form = ~ Time))),
  bodyweight_varexp_fitted_ml = quote(lme(weight ~ Time * Diet, BodyWeight,
                                          random = ~ Time | Rat, weights = varExp(),
                                          method = "ML")),
  bodyweight_exp_nugget = quote(lme(weight ~ Time * Diet, BodyWeight, random = ~ Time | Rat,
                                    correlation = corExp(form = ~ Time, nugget = TRUE))),
  dialyzer_varident = quote(lme(rate ~ (pressure + I(pressure^2)) * QB, Dialyzer,
                                random = ~ pressure | Subject,
                                weights = varIdent(form = ~ 1 | QB))),
  ovary_ar1 = quote(lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                        random = ~ 1 | Mare, correlation = corAR1())),
  ovary_arma11 = quote(lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                           random = ~ 1 | Mare, correlation = corARMA(p = 1, q = 1))),
  ovary_exp_nugget = quote(lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                               random = ~ 1 | Mare,
                               correlation = corExp(form = ~ Time, nugget = TRUE))),
  pixel_compsymm = quote(lme(pixel ~ day + I(day^2), Pixel, random = ~ day | Dog,
                             correlation = corCompSymm(form = ~ 1 | Dog/Side))),
  orthodont_corsymm = quote(lme(distance ~ age * Sex, Orthodont, random = ~ age - 1 | Subject,
                                correlation = corSymm()))
)

structs <- function(ms) list(
  variance = if (is.null(ms$varStruct)) list() else
    as.list(coef(ms$varStruct, unconstrained = FALSE)),
  correlation = if (is.null(ms$corStruct)) list() else
    as.list(coef(ms$corStruct, unconstrained = FALSE)))

one_gls <- function(id, call) {
  m <- eval(call)
  c(list(id = id, call = deparse(call, width.cutoff = 500L),
         logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
         AIC = AIC(m), BIC = BIC(m), sigma = m$sigma,
         fixef = as.list(coef(m)), se = as.list(sqrt(diag(vcov(m))))),
    structs(m$modelStruct))
}

one_lme <- function(id, call) {
  m <- eval(call)
  # the random effects' covariance from the fitted pdMatrix (VarCorr prints rounded text)
  cov_re <- as.matrix(m$modelStruct$reStruct[[1]]) * m$sigma^2
  cor_re <- cov2cor(cov_re)
  c(list(id = id, call = deparse(call, width.cutoff = 500L),
         logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
         AIC = AIC(m), BIC = BIC(m), sigma = m$sigma,
         fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
         # the random effects' SDs, then the residual SD; their correlations by columns of
         # the lower triangle
         sd = c(unname(sqrt(diag(cov_re))), m$sigma),
         corr = I(cor_re[lower.tri(cor_re)])),
    structs(m$modelStruct))
}

write_cases <- function(cases, fit, path) {
  out <- lapply(names(cases), function(id) fit(id, cases[[id]]))
  names(out) <- names(cases)
  writeLines(toJSON(list(versions = list(R = R.version.string,
                                         nlme = as.character(packageVersion("nlme"))),
                         cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE), path)
}
write_cases(gls_cases, one_gls, "tests/reference/gls/classic.json")
write_cases(lme_cases, one_lme, "tests/reference/lme/classic.json")
