#!/usr/bin/env Rscript
## nlme fits of the classic nonlinear mixed-model examples of Pinheiro & Bates (2000,
## "Mixed-Effects Models in S and S-PLUS", chapters 6-8), the reference for multilevel.nlme
## (issue 8): covariate-dependent fixed effects, general / diagonal / block-diagonal random
## covariance, nested grouping, model expressions, self-starting models with an expression
## as covariate, variance functions and correlation structures, ML and REML.
##
## Usage (from anywhere; paths are relative to this script's folder):
##     Rscript tests/reference/make_nlme_classic_refs.R      (R 4.2.2, nlme 3.1-162)
##
## Every fit is evaluated from its call string (`call` in the JSON), in an environment where
## each data set's name is bound to as.data.frame() of R's data set (so no groupedData
## formula is used implicitly: every call names its grouping), except micmen_sim, simulated
## here. The data sets are written to data/<name>.csv (+ .levels.json); Orange and Loblolly
## are already there (written by make_nlme_refs.R / the shared reference set) and are not
## rewritten; nlme::Ovary is written as data/Ovary_nlme.csv (data/Ovary.csv, with harmonic
## columns added, belongs to make_structures_fit_refs.R). Start values are P&B's or
## nlsList()/nls() estimates, rounded.
##
## Writes nlme/classic_<dataset>.json, one per data set: {versions, cases: {<key>: fit}}.
## Per fit: call, method, logLik, df, AIC, BIC, fixef (nlme's names, e.g. "Asym.(Intercept)"),
## se (summary()'s; for ML nlme's adjustSigma scales them by sqrt(N / (N - p))), se_vcov and
## vcov (vcov(), unscaled), tTable (Value, Std.Error, DF, t-value, p-value), sigma, reStruct
## per grouping level (outermost first: sd and corr named as VarCorr, the covariance matrix),
## ranef per level (groups in nlme's order, one array per effect), varStruct and corStruct
## parameters on the natural scale, intervals() (or the error nlme gave), fitted and residuals
## (response, pearson, normalized) at levels 0..Q for every data row (the data's row order),
## and predict() at levels 0..Q for a few new rows (the last from a group not in the data: NA
## at the group levels, written null), numIter, and the warnings nlme gave.
## Cases nlme could not fit as first tried are listed in `dropped` of the JSON.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()
out_dir <- file.path(here, "nlme")
data_dir <- file.path(here, "data")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(here, "ref_helpers.R"))  # number formatting, data set writing

VERSIONS <- list(R = R.version.string, nlme = as.character(packageVersion("nlme")),
                 jsonlite = as.character(packageVersion("jsonlite")))

## ---------------------------------------------------------------------------------
## Data sets (the environment the calls are evaluated in)
## ---------------------------------------------------------------------------------
env <- new.env()
plain <- function(x) { d <- as.data.frame(x); attr(d, "formula") <- NULL; d }
for (nm in c("Orange", "Loblolly", "Theoph", "CO2", "Soybean", "DNase", "Indometh", "Wafer",
             "Ovary"))
    assign(nm, plain(get(nm)), envir = env)
## Loblolly's Seed as make_nlme_refs.R writes it (same levels, ordered)
env$Loblolly$Seed <- factor(as.character(env$Loblolly$Seed), levels = levels(Loblolly$Seed),
                            ordered = TRUE)

## Michaelis-Menten data with a random Vm per subject (no grouped enzyme-kinetics data set
## ships with R's datasets or nlme): Puromycin's concentrations, duplicated, 10 subjects.
make_micmen_sim <- function() {
    set.seed(20261126L)
    conc <- rep(c(0.02, 0.06, 0.11, 0.22, 0.56, 1.10), each = 2)
    subj <- factor(rep(sprintf("S%02d", 1:10), each = length(conc)), levels = sprintf("S%02d", 1:10))
    Vm <- 200 + rnorm(10, sd = 25)
    K <- 0.065
    cc <- rep(conc, 10)
    rate <- Vm[as.integer(subj)] * cc / (K + cc) + rnorm(length(cc), sd = 6)
    data.frame(Subject = subj, conc = cc, rate = round(rate, 3))
}
env$micmen_sim <- make_micmen_sim()

datasets <- list(
    Theoph = list(df = env$Theoph, source = "datasets::Theoph (as.data.frame)"),
    CO2 = list(df = env$CO2, source = "datasets::CO2 (as.data.frame)"),
    Soybean = list(df = env$Soybean, source = "nlme::Soybean (as.data.frame)"),
    DNase = list(df = env$DNase, source = "datasets::DNase (as.data.frame)"),
    Indometh = list(df = env$Indometh, source = "datasets::Indometh (as.data.frame)"),
    Wafer = list(df = env$Wafer, source = "nlme::Wafer (as.data.frame)"),
    Ovary_nlme = list(df = env$Ovary, source = "nlme::Ovary (as.data.frame)",
                      notes = "bound to the name Ovary in the calls"),
    micmen_sim = list(df = env$micmen_sim,
                      source = "simulated in make_nlme_classic_refs.R (make_micmen_sim)",
                      notes = paste(deparse(make_micmen_sim), collapse = "\n")))
write_all_datasets <- function() {
    for (nm in names(datasets)) {
        ds <- datasets[[nm]]
        write_dataset(nm, ds$df, ds$source, ds$notes)
    }
}

## ---------------------------------------------------------------------------------
## Cases: data set -> key -> call
## ---------------------------------------------------------------------------------
cases <- list(
  Orange = list(
    asym_ml = "nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange, fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree, start = c(Asym = 192, xmid = 728, scal = 353))",
    asym_reml = "nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange, fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree, start = c(Asym = 192, xmid = 728, scal = 353), method = 'REML')",
    asym_xmid = "nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange, fixed = Asym + xmid + scal ~ 1, random = Asym + xmid ~ 1 | Tree, start = c(Asym = 192, xmid = 728, scal = 353))",
    expression = "nlme(circumference ~ Asym/(1 + exp((xmid - age)/scal)), data = Orange, fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree, start = c(Asym = 192, xmid = 728, scal = 353))",
    asym_ar1 = "nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange, fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree, start = c(Asym = 192, xmid = 728, scal = 353), correlation = corAR1())"
  ),
  Loblolly = list(
    asym_lrc_reml = "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym + lrc ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3), method = 'REML')",
    asym_lrc_ml = "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym + lrc ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3))",
    asym_varpower_age = "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3), weights = varPower(form = ~ age))",
    asym_varpower_age_reml = "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3), weights = varPower(form = ~ age), method = 'REML')"
  ),
  Theoph = list(
    fol_diag = "nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph, fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1), groups = ~ Subject, start = c(lKe = -2.43, lKa = 0.48, lCl = -3.21))",
    fol_diag_reml = "nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph, fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1), groups = ~ Subject, start = c(lKe = -2.43, lKa = 0.48, lCl = -3.21), method = 'REML')"
  ),
  CO2 = list(
    asympoff_type_treatment = "nlme(uptake ~ SSasympOff(conc, Asym, lrc, c0), data = CO2, fixed = list(Asym ~ Type * Treatment, lrc + c0 ~ 1), random = Asym ~ 1 | Plant, start = c(Asym = c(42, -11, -4, -8), lrc = -4.6, c0 = 46))"
  ),
  Soybean = list(
    logis_varpower = "nlme(weight ~ SSlogis(Time, Asym, xmid, scal), data = Soybean, fixed = list(Asym ~ Year * Variety, xmid ~ Year + Variety, scal ~ Year), random = Asym ~ 1 | Plot, start = c(17, 0, 0, 0, 0, 0, 52, 0, 0, 0, 7.5, 0, 0), weights = varPower())",
    logis_diag_varpower = "nlme(weight ~ SSlogis(Time, Asym, xmid, scal), data = Soybean, fixed = list(Asym ~ Year * Variety, xmid ~ Year + Variety, scal ~ Year), random = pdDiag(Asym + xmid ~ 1), groups = ~ Plot, start = c(17, 0, 0, 0, 0, 0, 52, 0, 0, 0, 7.5, 0, 0), weights = varPower())",
    logis_varident = "nlme(weight ~ SSlogis(Time, Asym, xmid, scal), data = Soybean, fixed = list(Asym ~ Variety, xmid + scal ~ 1), random = Asym ~ 1 | Plot, start = c(19, 2, 55, 8.4), weights = varIdent(form = ~ 1 | Year))",
    logis_blocked = "nlme(weight ~ SSlogis(Time, Asym, xmid, scal), data = Soybean, fixed = Asym + xmid + scal ~ 1, random = pdBlocked(list(Asym ~ 1, xmid + scal ~ 1)), groups = ~ Plot, start = c(Asym = 19, xmid = 55, scal = 8.4))",
    logis_blocked_reml = "nlme(weight ~ SSlogis(Time, Asym, xmid, scal), data = Soybean, fixed = Asym + xmid + scal ~ 1, random = pdBlocked(list(Asym ~ 1, xmid + scal ~ 1)), groups = ~ Plot, start = c(Asym = 19, xmid = 55, scal = 8.4), method = 'REML')"
  ),
  DNase = list(
    fpl_logconc = "nlme(density ~ SSfpl(log(conc), A, B, xmid, scal), data = DNase, fixed = A + B + xmid + scal ~ 1, random = B + xmid ~ 1 | Run, start = c(A = 0.03, B = 2.36, xmid = 1.42, scal = 1.01))"
  ),
  Indometh = list(
    biexp_diag = "nlme(conc ~ SSbiexp(time, A1, lrc1, A2, lrc2), data = Indometh, fixed = A1 + lrc1 + A2 + lrc2 ~ 1, random = pdDiag(A1 + lrc1 + A2 ~ 1), groups = ~ Subject, start = c(A1 = 2.77, lrc1 = 0.89, A2 = 0.61, lrc2 = -1.09))"
  ),
  micmen_sim = list(
    micmen_vm = "nlme(rate ~ SSmicmen(conc, Vm, K), data = micmen_sim, fixed = Vm + K ~ 1, random = Vm ~ 1 | Subject, start = c(Vm = 200, K = 0.065))"
  ),
  Wafer = list(
    nested_slash = "nlme(current ~ A + B * cos(4.5679 * voltage) + C * sin(4.5679 * voltage), data = Wafer, fixed = list(A ~ voltage + I(voltage^2), B + C ~ 1), random = A ~ 1 | Wafer/Site, start = c(-4.26, 5.62, 1.26, -0.096, 0.104))",
    nested_list_reml = "nlme(current ~ A + B * cos(4.5679 * voltage) + C * sin(4.5679 * voltage), data = Wafer, fixed = list(A ~ voltage + I(voltage^2), B + C ~ 1), random = list(Wafer = A ~ 1, Site = A ~ 1), start = c(-4.26, 5.62, 1.26, -0.096, 0.104), method = 'REML')"
  ),
  Ovary = list(
    sin_diag = "nlme(follicles ~ A + B * sin(2 * pi * w * Time) + C * cos(2 * pi * w * Time), data = Ovary, fixed = A + B + C + w ~ 1, random = pdDiag(A + B ~ 1), groups = ~ Mare, start = c(12.18, -3.30, -0.86, 1))",
    sin_diag_ar1 = "nlme(follicles ~ A + B * sin(2 * pi * w * Time) + C * cos(2 * pi * w * Time), data = Ovary, fixed = A + B + C + w ~ 1, random = pdDiag(A + B ~ 1), groups = ~ Mare, start = c(12.18, -3.30, -0.86, 1), correlation = corAR1(0.311))"
  )
)

## new rows for predict(): the first two (three) rows' groups at other covariate values,
## and a group not in the data
new_rows <- list(
  Orange = data.frame(Tree = c("1", "3", "9"), age = c(300, 900, 600)),
  Loblolly = data.frame(Seed = c("301", "331", "999"), age = c(7, 12, 18)),
  Theoph = data.frame(Subject = c("1", "5", "99"), Dose = c(4.02, 5.86, 4.5), Time = c(1.5, 6, 3)),
  CO2 = data.frame(Plant = c("Qn1", "Mc2", "Xx9"), Type = c("Quebec", "Mississippi", "Quebec"),
                   Treatment = c("nonchilled", "chilled", "chilled"), conc = c(300, 600, 800)),
  Soybean = data.frame(Plot = c("1988F1", "1990P8", "1999Z9"), Variety = c("F", "P", "P"),
                       Year = c("1988", "1990", "1989"), Time = c(30, 60, 45)),
  DNase = data.frame(Run = c("1", "10", "99"), conc = c(0.5, 3, 8)),
  Indometh = data.frame(Subject = c("1", "6", "99"), time = c(0.6, 2.5, 5)),
  micmen_sim = data.frame(Subject = c("S01", "S07", "S99"), conc = c(0.04, 0.3, 0.8)),
  Wafer = data.frame(Wafer = c("1", "5", "5", "99"), Site = c("1", "3", "99", "1"),
                     voltage = c(1.0, 1.4, 2.2, 1.8)),
  Ovary = data.frame(Mare = c("1", "7", "99"), Time = c(0.1, 0.5, 0.9))
)

## ---------------------------------------------------------------------------------
## What is recorded of a fit
## ---------------------------------------------------------------------------------
restruct_info <- function(m) {
    rs <- m$modelStruct$reStruct  # innermost level first
    out <- lapply(rev(seq_along(rs)), function(i) {
        V <- as.matrix(rs[[i]]) * m$sigma^2
        nm <- rownames(V)
        sds <- sqrt(diag(V))
        corr <- if (length(nm) > 1) cov2cor(V) else NULL
        corr_list <- structure(list(), names = character(0))
        if (length(nm) > 1) for (a in 1:(length(nm) - 1)) for (b in (a + 1):length(nm))
            corr_list[[paste(nm[a], nm[b], sep = ":")]] <- corr[a, b]
        list(level = names(rs)[i], pdClass = class(rs[[i]])[1], names = chr(nm),
             sd = named_list(setNames(sds, nm)), corr = corr_list,
             cov = unname(V))
    })
    names(out) <- rev(names(rs))
    out
}

ranef_info <- function(m) {
    re <- ranef(m)
    if (is.data.frame(re)) re <- setNames(list(re), names(m$groups))
    lapply(re, function(d) list(groups = chr(rownames(d)),
                                effects = lapply(as.list(d), function(v) I(unname(v)))))
}

struct_coef <- function(s) if (is.null(s)) NULL else named_list(coef(s, unconstrained = FALSE))

intervals_info <- function(m) {
    iv <- tryCatch(intervals(m, which = "all"), error = function(e) e)
    if (inherits(iv, "error")) return(list(error = conditionMessage(iv)))
    tab <- function(x) {
        x <- as.matrix(x)
        list(names = chr(rownames(x)), lower = I(unname(x[, "lower"])),
             est = I(unname(x[, "est."])), upper = I(unname(x[, "upper"])))
    }
    out <- list(fixed = tab(iv$fixed), reStruct = lapply(iv$reStruct, tab),
                sigma = named_list(iv$sigma))
    if (!is.null(iv$varStruct)) out$varStruct <- tab(iv$varStruct)
    if (!is.null(iv$corStruct)) out$corStruct <- tab(iv$corStruct)
    out
}

levels_of <- function(m) 0:(ncol(m$groups))

by_level <- function(m, f) {
    lv <- levels_of(m)
    out <- lapply(lv, function(l) I(unname(as.numeric(f(l)))))
    names(out) <- paste0("level", lv)
    out
}

one_fit <- function(call, dataset) {
    warns <- character(0)
    m <- withCallingHandlers(eval(parse(text = call), envir = env), warning = function(w) {
        warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
    })
    ll <- logLik(m)
    tt <- summary(m)$tTable
    nd <- new_rows[[dataset]]
    pr <- predict(m, newdata = nd, level = levels_of(m))
    list(call = call, method = m$method, logLik = as.numeric(ll), df = attr(ll, "df"),
         AIC = AIC(m), BIC = BIC(m), warnings = chr(warns), nobs = m$dims$N, numIter = m$numIter,
         fixef = named_list(fixef(m)),
         se = named_list(setNames(tt[, "Std.Error"], rownames(tt))),
         se_vcov = named_list(sqrt(diag(vcov(m)))), vcov = unname(as.matrix(vcov(m))),
         tTable = list(names = chr(rownames(tt)), Value = I(unname(tt[, "Value"])),
                       Std.Error = I(unname(tt[, "Std.Error"])), DF = I(unname(tt[, "DF"])),
                       t.value = I(unname(tt[, "t-value"])), p.value = I(unname(tt[, "p-value"]))),
         sigma = m$sigma,
         reStruct = restruct_info(m),
         ranef = ranef_info(m),
         varStruct = struct_coef(m$modelStruct$varStruct),
         corStruct = struct_coef(m$modelStruct$corStruct),
         intervals = intervals_info(m),
         fitted = by_level(m, function(l) fitted(m, level = l)),
         residuals = list(
             response = by_level(m, function(l) residuals(m, level = l, type = "response")),
             pearson = by_level(m, function(l) residuals(m, level = l, type = "pearson")),
             normalized = by_level(m, function(l) residuals(m, level = l, type = "normalized"))),
         predict = list(newdata = df_records(nd),
                        prediction = setNames(lapply(levels_of(m), function(l)
                            I(unname(as.numeric(pr[[ncol(pr) - length(levels_of(m)) + 1 + l]])))),
                            paste0("level", levels_of(m)))))
}

results <- list()
for (ds in names(cases)) {
    fits <- list()
    dropped <- list()
    for (key in names(cases[[ds]])) {
        call <- cases[[ds]][[key]]
        cat(ds, key, "\n")
        r <- tryCatch(one_fit(call, ds), error = function(e) e)
        if (inherits(r, "error")) {
            cat("  FAILED:", conditionMessage(r), "\n")
            dropped[[key]] <- list(call = call, error = conditionMessage(r))
        } else {
            cat(sprintf("  logLik %.6f\n", r$logLik))
            fits[[key]] <- r
        }
    }
    results[[paste0("classic_", tolower(ds))]] <- list(
        versions = VERSIONS, dataset = ds,
        data = if (ds %in% c("Orange", "Loblolly")) paste0("data/", ds, ".csv (existing)")
               else if (ds == "Ovary") "data/Ovary_nlme.csv" else paste0("data/", ds, ".csv"),
        cases = fits, dropped = dropped)
}
write_verified_outputs(results)
