#!/usr/bin/env Rscript
## Reference fits from R's lme4 for the linear mixed model (LMM) tests of `multilevel`.
##
## Usage (from anywhere; paths are relative to this script's folder):
##     Rscript tests/reference/make_lme4_refs.R
##
## Writes
##   lme4_extra/<id>.json        one JSON per case (same fields as lme4_shared/*.json)
##   lme4_extra/cases.json       id, dataset, call, formula, REML flag, notes of every case
##   data/<dataset>.csv          the data frame each case was fitted to
##   data/<dataset>.levels.json  each factor's level order (+ column types, provenance)
##
## Numbers (CSV and JSON) are written with the shortest of 15/16/17 significant digits
## that R's parser maps back to the same double.  Every number written is then checked
## against its exact bit pattern (C99 hex float, "%a") by verify_roundtrip.py with
## Python's correctly-rounded float(); the result is stored as `roundtrip_verified` in
## each levels JSON and as `numbers_roundtrip_verified` in each case JSON.
##
## Needs: lme4, nlme, mlmRev, jsonlite (Debian: r-cran-lme4 r-cran-nlme r-cran-mlmrev
## r-cran-jsonlite), and python3 for the round-trip check.

suppressPackageStartupMessages({
    library(lme4)
    library(nlme)
    library(mlmRev)
    library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()
out_dir <- file.path(here, "lme4_extra")
data_dir <- file.path(here, "data")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

R_VERSION <- R.version.string
LME4_VERSION <- as.character(packageVersion("lme4"))

source(file.path(here, "ref_helpers.R"))  # number formatting, data set writing

## The simulated data set with thousands of groups.
make_sim <- function() {
    set.seed(20261125)
    G <- 3000L; n_per <- 5L
    g <- factor(rep(sprintf("g%04d", seq_len(G)), each = n_per),
                levels = sprintf("g%04d", seq_len(G)))
    x <- rnorm(G * n_per)
    b <- rnorm(G, 0, 1)
    cc <- rnorm(G, 0, 0.5)
    e <- rnorm(G * n_per, 0, 0.5)
    y <- 2 + 0.5 * x + b[as.integer(g)] + 0.3 * x * cc[as.integer(g)] + e
    data.frame(g = g, x = x, y = y)
}
SIM_CODE <- paste(deparse(make_sim, width.cutoff = 500L), collapse = "\n")

sleepstudy_w <- lme4::sleepstudy
sleepstudy_w$w <- 1 + (sleepstudy_w$Days %% 3)
sleepstudy_o <- lme4::sleepstudy
sleepstudy_o$Dayf <- factor(pmin(sleepstudy_o$Days, 4), ordered = TRUE)
chick <- as.data.frame(datasets::ChickWeight)
chick$Chick <- factor(as.character(chick$Chick))
chick$Diet <- factor(as.character(chick$Diet))

datasets <- list(
    sleepstudy = list(df = lme4::sleepstudy, source = "lme4::sleepstudy"),
    sleepstudy_w = list(df = sleepstudy_w,
                        source = "lme4::sleepstudy plus w = 1 + (Days %% 3)",
                        notes = "d <- sleepstudy; d$w <- 1 + (d$Days %% 3)   (w in 1..3, stored as double)"),
    Penicillin = list(df = lme4::Penicillin, source = "lme4::Penicillin"),
    Pastes = list(df = lme4::Pastes, source = "lme4::Pastes"),
    Machines = list(df = as.data.frame(nlme::Machines), source = "as.data.frame(nlme::Machines)",
                    notes = "Worker is an ordered factor in nlme (levels ordered by mean score); only used as a grouping factor."),
    Orthodont = list(df = as.data.frame(nlme::Orthodont), source = "as.data.frame(nlme::Orthodont)",
                     notes = "Subject is an ordered factor in nlme; Sex levels are Male, Female (Male is the reference level)."),
    Oxboys = list(df = as.data.frame(nlme::Oxboys), source = "as.data.frame(nlme::Oxboys)",
                  notes = "Subject and Occasion are ordered factors in nlme."),
    Hsb82 = list(df = mlmRev::Hsb82, source = "mlmRev::Hsb82",
                 notes = "school is an ordered factor (160 levels); only used as a grouping factor."),
    Chem97 = list(df = mlmRev::Chem97, source = "mlmRev::Chem97"),
    sleepstudy_o = list(df = sleepstudy_o,
                        source = "lme4::sleepstudy plus Dayf = factor(pmin(Days, 4), ordered = TRUE)",
                        notes = "An ordered factor as a fixed effect: R codes it with polynomial contrasts (contr.poly)."),
    Oats = list(df = as.data.frame(nlme::Oats), source = "as.data.frame(nlme::Oats)"),
    ergoStool = list(df = as.data.frame(nlme::ergoStool), source = "as.data.frame(nlme::ergoStool)"),
    Pixel = list(df = as.data.frame(nlme::Pixel), source = "as.data.frame(nlme::Pixel)"),
    ChickWeight = list(df = chick, source = "datasets::ChickWeight, Chick and Diet as unordered factors",
                       notes = "Chick <- factor(as.character(Chick)) (levels sorted as strings); Diet <- factor(as.character(Diet))."),
    BodyWeight = list(df = as.data.frame(nlme::BodyWeight), source = "as.data.frame(nlme::BodyWeight)"),
    Gasoline = list(df = as.data.frame(nlme::Gasoline), source = "as.data.frame(nlme::Gasoline)"),
    Assay = list(df = as.data.frame(nlme::Assay), source = "as.data.frame(nlme::Assay)"),
    many_groups_sim = list(df = make_sim(),
                           source = "simulated in make_lme4_refs.R (function make_sim)",
                           notes = paste0("set.seed(20261125); 3000 groups g0001..g3000, 5 rows each; ",
                                          "x ~ N(0,1); b_g ~ N(0,1); c_g ~ N(0,0.5); e ~ N(0,0.5); ",
                                          "y = 2 + 0.5 x + b_g + 0.3 x c_g + e (draws in the order x, b, c, e)"))
)

write_all_datasets <- function() {
    for (nm in names(datasets)) {
        ds <- datasets[[nm]]
        write_dataset(nm, ds$df, ds$source, ds$notes)
    }
}

## ---------------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------------
## data_name: the name the call uses for its data; new_level_vars: grouping variables
## set to the level "NEW" in the allow.new.levels prediction.
cases <- list(
    list(id = "pastes_nested", dataset = "Pastes", data_name = "Pastes",
         call = "lmer(strength ~ 1 + (1 | batch/cask), data = Pastes)",
         formula = "strength ~ 1 + (1 | batch/cask)", reml = TRUE,
         new_level_vars = "batch",
         notes = "Nested via '/': expands to (1 | batch) + (1 | batch:cask); lme4 names the groups 'cask:batch' and 'batch'."),
    list(id = "pastes_interaction", dataset = "Pastes", data_name = "Pastes",
         call = "lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), data = Pastes)",
         formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)", reml = TRUE,
         new_level_vars = "batch",
         notes = "Same model as pastes_nested written with ':'; group named 'batch:cask'."),
    list(id = "machines_factor_slopes", dataset = "Machines", data_name = "Machines",
         call = "lmer(score ~ Machine + (0 + Machine | Worker), data = Machines)",
         formula = "score ~ Machine + (0 + Machine | Worker)", reml = TRUE,
         new_level_vars = "Worker",
         notes = "Three-term vector random effect from a factor inside the bar (one indicator column per Machine level)."),
    list(id = "machines_two_terms", dataset = "Machines", data_name = "Machines",
         call = "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), data = Machines)",
         formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", reml = TRUE,
         new_level_vars = "Worker", notes = ""),
    list(id = "orthodont_slopes_ml", dataset = "Orthodont", data_name = "Orthodont",
         call = "lmer(distance ~ age * Sex + (age | Subject), data = Orthodont, REML = FALSE)",
         formula = "distance ~ age * Sex + (age | Subject)", reml = FALSE,
         new_level_vars = "Subject",
         notes = "Orthodont <- as.data.frame(nlme::Orthodont); factor levels as nlme has them."),
    list(id = "orthodont_uncorr", dataset = "Orthodont", data_name = "Orthodont",
         call = "lmer(distance ~ age + Sex + (age || Subject), data = Orthodont)",
         formula = "distance ~ age + Sex + (age || Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Double bar: (1 | Subject) + (0 + age | Subject); lme4 names the second group 'Subject.1'."),
    list(id = "oxboys_quadratic", dataset = "Oxboys", data_name = "Oxboys",
         call = "lmer(height ~ age + I(age^2) + (age + I(age^2) | Subject), data = Oxboys)",
         formula = "height ~ age + I(age^2) + (age + I(age^2) | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Three-term correlated vector random effect."),
    list(id = "sleepstudy_weights", dataset = "sleepstudy_w", data_name = "d",
         call = "lmer(Reaction ~ Days + (Days | Subject), data = d, weights = w)",
         formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Prior weights w = 1 + (Days %% 3) (residual variance sigma^2 / w)."),
    list(id = "sleepstudy_offset", dataset = "sleepstudy_w", data_name = "d",
         call = "lmer(Reaction ~ Days + (Days | Subject), data = d, offset = 2 * Days)",
         formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "offset = 2 * Days given as lmer's offset argument (evaluated in data); the column w of d is not used."),
    list(id = "sleepstudy_intercept_slope_sep", dataset = "sleepstudy", data_name = "sleepstudy",
         call = "lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), data = sleepstudy, REML = FALSE)",
         formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", reml = FALSE,
         new_level_vars = "Subject",
         notes = "Two separate terms on the same grouping factor; lme4 names the second group 'Subject.1'."),
    list(id = "hsb_random_slope", dataset = "Hsb82", data_name = "Hsb82",
         call = "lmer(mAch ~ meanses * cses + (cses | school), data = Hsb82)",
         formula = "mAch ~ meanses * cses + (cses | school)", reml = TRUE,
         new_level_vars = "school", notes = "160 schools."),
    list(id = "chem97_nested", dataset = "Chem97", data_name = "Chem97",
         call = "lmer(score ~ gcsecnt + (1 | school) + (1 | lea), data = Chem97, REML = FALSE)",
         formula = "score ~ gcsecnt + (1 | school) + (1 | lea)", reml = FALSE,
         new_level_vars = c("school", "lea"),
         notes = "2410 schools within 131 LEAs (school labels are unique across LEAs, so (1 | school) is the nested term)."),
    list(id = "many_groups_sim", dataset = "many_groups_sim", data_name = "sim",
         call = "lmer(y ~ x + (x | g), data = sim, REML = FALSE)",
         formula = "y ~ x + (x | g)", reml = FALSE,
         new_level_vars = "g",
         notes = "Simulated: 3000 groups x 5 rows; see `simulation` and data/many_groups_sim.levels.json."),
    list(id = "penicillin_ml", dataset = "Penicillin", data_name = "Penicillin",
         call = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin, REML = FALSE)",
         formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", reml = FALSE,
         new_level_vars = c("plate", "sample"), notes = "Fully crossed random effects, ML."),
    list(id = "dyestuff_poly", dataset = "sleepstudy", data_name = "sleepstudy",
         call = "lmer(Reaction ~ poly(Days, 2) + (1 | Subject), data = sleepstudy)",
         formula = "Reaction ~ poly(Days, 2) + (1 | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Fixed-effects transform check (orthogonal polynomial); despite the id it uses sleepstudy. See fixed_predvars for poly's coefs and model_matrix for the full X."),
    list(id = "sleepstudy_center", dataset = "sleepstudy", data_name = "sleepstudy",
         call = "lmer(Reaction ~ scale(Days) + (1 | Subject), data = sleepstudy)",
         formula = "Reaction ~ scale(Days) + (1 | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Fixed-effects transform check (scale()); see fixed_predvars for the center/scale used and model_matrix for the full X."),
    list(id = "sleepstudy_ordered", dataset = "sleepstudy_o", data_name = "d",
         call = "lmer(Reaction ~ Dayf + (1 | Subject), data = d)",
         formula = "Reaction ~ Dayf + (1 | Subject)", reml = TRUE,
         new_level_vars = "Subject",
         notes = "Ordered factor fixed effect: polynomial contrasts Dayf.L, Dayf.Q, Dayf.C, Dayf^4."),
    list(id = "oats_nested", dataset = "Oats", data_name = "Oats",
         call = "lmer(yield ~ nitro + (1 | Block/Variety), data = Oats)",
         formula = "yield ~ nitro + (1 | Block/Variety)", reml = TRUE,
         new_level_vars = "Block", notes = "Split plot: varieties within blocks."),
    list(id = "ergostool", dataset = "ergoStool", data_name = "ergoStool",
         call = "lmer(effort ~ Type + (1 | Subject), data = ergoStool)",
         formula = "effort ~ Type + (1 | Subject)", reml = TRUE,
         new_level_vars = "Subject", notes = ""),
    list(id = "pixel", dataset = "Pixel", data_name = "Pixel",
         call = "lmer(pixel ~ day + I(day^2) + (day | Dog) + (1 | Side:Dog), data = Pixel)",
         formula = "pixel ~ day + I(day^2) + (day | Dog) + (1 | Side:Dog)", reml = TRUE,
         new_level_vars = "Dog", notes = "Random slope per dog plus a side-within-dog intercept."),
    list(id = "chickweight_slopes", dataset = "ChickWeight", data_name = "ChickWeight",
         call = "lmer(weight ~ Time * Diet + (Time | Chick), data = ChickWeight)",
         formula = "weight ~ Time * Diet + (Time | Chick)", reml = TRUE,
         new_level_vars = "Chick", notes = "Unbalanced growth curves."),
    list(id = "bodyweight_restarted", dataset = "BodyWeight", data_name = "BodyWeight",
         call = "{ m0 <- lmer(weight ~ Time * Diet + (Time | Rat), data = BodyWeight); update(m0, start = getME(m0, \"theta\")) }",
         formula = "weight ~ Time * Diet + (Time | Rat)", reml = TRUE,
         new_level_vars = "Rat",
         notes = "lme4's first fit stops short (Model failed to converge with max|grad| = 0.0148); the reference is the refit started from its theta, which converges."),
    list(id = "gasoline", dataset = "Gasoline", data_name = "Gasoline",
         call = "lmer(yield ~ endpoint + vapor + (1 | Sample), data = Gasoline)",
         formula = "yield ~ endpoint + vapor + (1 | Sample)", reml = TRUE,
         new_level_vars = "Sample", notes = ""),
    list(id = "assay_crossed", dataset = "Assay", data_name = "Assay",
         call = "lmer(logDens ~ sample * dilut + (1 | Block) + (1 | Block:sample) + (1 | Block:dilut), data = Assay)",
         formula = "logDens ~ sample * dilut + (1 | Block) + (1 | Block:sample) + (1 | Block:dilut)", reml = TRUE,
         new_level_vars = "Block", notes = "Three intercept terms, two of them interactions with the block.")
)

## ---------------------------------------------------------------------------------
## Extraction helpers
## ---------------------------------------------------------------------------------
capture <- function(expr) {
    warns <- character(0); msgs <- character(0)
    val <- withCallingHandlers(
        tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "capture_error")),
        warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
    list(value = val, warnings = warns, messages = msgs,
         error = if (inherits(val, "capture_error")) val$msg else NULL)
}

varcomp_rows <- function(m) {
    vc <- as.data.frame(VarCorr(m))
    lapply(seq_len(nrow(vc)), function(i) {
        r <- vc[i, ]
        is_resid <- r$grp == "Residual"
        is_cov <- !is.na(r$var2)
        list(group = r$grp,
             term1 = if (is_resid || is.na(r$var1)) NULL else r$var1,
             term2 = if (is_cov) r$var2 else NULL,
             variance = if (is_cov) NULL else r$vcov,
             covariance = if (is_cov) r$vcov else NULL,
             sd = if (is_cov) NULL else r$sdcor,
             corr = if (is_cov) r$sdcor else NULL)
    })
}

ranef_rows <- function(m) {
    rr <- as.data.frame(ranef(m, condVar = TRUE))
    lapply(seq_len(nrow(rr)), function(i)
        list(group = as.character(rr$grpvar[i]), term = as.character(rr$term[i]),
             level = as.character(rr$grp[i]), condval = rr$condval[i], condsd = rr$condsd[i]))
}

fixed_predvars <- function(m) {
    pv <- attr(terms(m, fixed.only = TRUE), "predvars")
    if (is.null(pv)) return(NULL)
    paste(deparse(pv, width.cutoff = 500L, control = c("keepNA", "keepInteger", "digits17")),
          collapse = " ")
}

new_level_frame <- function(data, new_level_vars) {
    ## rows 1:2 as they are, then rows 1:2 with the grouping variables set to "NEW"
    ndn <- rbind(data[1:2, , drop = FALSE], data[1:2, , drop = FALSE])
    for (v in new_level_vars) {
        f <- ndn[[v]]
        lv <- c(levels(f), "NEW")
        f <- factor(as.character(f), levels = lv, ordered = is.ordered(f))
        f[3:4] <- "NEW"
        ndn[[v]] <- f
    }
    rownames(ndn) <- NULL
    ndn
}

## predictions that take newdata (these are what fail for ordered grouping factors)
newdata_predictions <- function(m, data, new_level_vars) {
    nd5 <- data[1:5, , drop = FALSE]
    ndn <- new_level_frame(data, new_level_vars)
    calls <- list(
        first5_re_form_NULL = function() predict(m, newdata = nd5, re.form = NULL),
        first5_re_form_NA = function() predict(m, newdata = nd5, re.form = NA),
        new_re_form_NULL = function() predict(m, newdata = ndn, re.form = NULL, allow.new.levels = TRUE),
        new_re_form_NA = function() predict(m, newdata = ndn, re.form = NA))
    lapply(calls, function(f) capture(unname(f())))
}

predict_block <- function(m, data, cs, env) {
    new_level_vars <- cs$new_level_vars
    res <- list(rows = I(1:5))
    res$newdata_first5_rows <- df_records(data[1:5, , drop = FALSE])
    nd <- newdata_predictions(m, data, new_level_vars)
    failed <- vapply(nd, function(r) !is.null(r$error), TRUE)
    errors <- unique(unlist(lapply(nd, `[[`, "error")))
    ordered_gv <- new_level_vars[vapply(new_level_vars, function(v) is.ordered(data[[v]]), TRUE)]
    refit <- NULL
    if (any(failed) && length(ordered_gv)) {
        ## lme4 (get.orig.levs) applies the default contrasts to the original grouping factor
        ## when it builds random-effects terms for newdata; for an ordered factor those are
        ## contr.poly, which fails for more than ~95 levels.  Refit with the grouping factor
        ## unordered (same level order, so the same model) and predict from that fit.
        d2 <- data
        for (v in ordered_gv) d2[[v]] <- factor(d2[[v]], levels = levels(d2[[v]]), ordered = FALSE)
        env2 <- new.env(parent = env)
        assign(cs$data_name, d2, envir = env2)
        m2 <- suppressWarnings(suppressMessages(eval(parse(text = cs$call)[[1]], env2)))
        nd2 <- newdata_predictions(m2, d2, new_level_vars)
        for (k in names(nd)) if (failed[[k]]) nd[[k]] <- nd2[[k]]
        refit <- list(
            note = paste0("predict(m, newdata = ...) fails in lme4 ", LME4_VERSION, " because ",
                          paste(ordered_gv, collapse = ", "), " is an ordered factor with too many ",
                          "levels for contr.poly (see errors_original_fit); the newdata predictions ",
                          "listed in from_refit come from the same call refitted with ",
                          paste(ordered_gv, collapse = ", "), " made unordered (same level order)."),
            grouping_vars = I(ordered_gv),
            from_refit = I(names(nd)[failed]),
            errors_original_fit = chr(errors),
            max_abs_diff_fitted = max(abs(fitted(m2) - fitted(m))),
            max_abs_diff_theta = max(abs(getME(m2, "theta") - getME(m, "theta"))))
    }
    val <- function(k) if (is.null(nd[[k]]$error)) I(nd[[k]]$value) else NULL
    res$re_form_NULL <- val("first5_re_form_NULL")
    res$re_form_NA <- val("first5_re_form_NA")
    p0 <- capture(list(no_newdata_first5 = unname(predict(m)[1:5]),
                       no_newdata_re_form_NA_first5 = unname(predict(m, re.form = NA)[1:5])))
    res$no_newdata_first5 <- I(p0$value$no_newdata_first5)
    res$no_newdata_re_form_NA_first5 <- I(p0$value$no_newdata_re_form_NA_first5)
    res$description <- paste0("re_form_NULL / re_form_NA: predict(m, newdata = data[1:5, ], re.form = NULL / NA); ",
                              "no_newdata_*: predict(m)[1:5] and predict(m, re.form = NA)[1:5]")
    res$errors <- chr(unique(unlist(lapply(nd[1:2], `[[`, "error"))))
    res$warnings <- chr(c(unlist(lapply(nd, `[[`, "warnings")), p0$warnings))
    if (cs$id == "sleepstudy_offset")
        res$note <- paste0("lme4 ", LME4_VERSION, ": predict() WITHOUT newdata includes the offset given as ",
                           "lmer's `offset =` argument (equals fitted()); predict(newdata = ...) does NOT ",
                           "add it (with + offset(2 * Days) in the formula instead it would). ",
                           "Here re_form_NULL/re_form_NA (newdata = first 5 rows) differ from ",
                           "no_newdata_first5/no_newdata_re_form_NA_first5 by exactly 2 * Days; the same ",
                           "holds for new_levels.")
    res$new_levels <- list(
        description = paste0("newdata = data rows 1, 2, then rows 1, 2 again with ",
                             paste(new_level_vars, collapse = ", "),
                             " set to the new level 'NEW'; re_form_NULL uses allow.new.levels = TRUE"),
        new_level_vars = I(new_level_vars),
        newdata_rows = df_records(new_level_frame(data, new_level_vars)),
        re_form_NULL = val("new_re_form_NULL"),
        re_form_NA = val("new_re_form_NA"),
        errors = chr(unique(unlist(lapply(nd[3:4], `[[`, "error")))))
    res["refit_unordered_grouping"] <- list(refit)
    res
}

timing_block <- function(expr_text, env) {
    ex <- parse(text = expr_text)[[1]]
    one <- function() unname(system.time(suppressWarnings(suppressMessages(eval(ex, env))))["elapsed"])
    t1 <- one()
    n <- if (t1 < 0.2) 10L else if (t1 < 2) 3L else 1L
    all <- c(t1, if (n > 1) vapply(seq_len(n - 1), function(i) one(), 0) else NULL)
    list(median_s = median(all), n_repeats = length(all), all_s = I(all),
         note = paste0("elapsed seconds of repeated R fits on the machine that ran make_lme4_refs.R (",
                       parallel::detectCores(), " cores); time both sides on one machine before comparing"))
}

run_case <- function(cs) {
    ds <- datasets[[cs$dataset]]$df
    env <- new.env(parent = globalenv())
    assign(cs$data_name, ds, envir = env)
    fit <- capture(eval(parse(text = cs$call)[[1]], env))
    base <- list(id = cs$id, dataset = cs$dataset,
                 data_file = paste0("data/", cs$dataset, ".csv"),
                 engine = "lmer", engine_package = "lme4", engine_version = LME4_VERSION,
                 R_version = R_VERSION, call = cs$call, call_used = cs$call,
                 data_name_in_call = cs$data_name,
                 formula = cs$formula, family = "gaussian", link = "identity",
                 reml = cs$reml, nagq = NULL, case_notes = cs$notes)
    if (!is.null(fit$error)) {
        return(c(base, list(status = "error", error = fit$error,
                            fit_warnings = I(fit$warnings), fit_messages = I(fit$messages))))
    }
    m <- fit$value
    ex <- capture({
        reml <- isREML(m)
        V <- as.matrix(vcov(m))
        fe <- fixef(m)
        X <- getME(m, "X")
        ll <- logLik(m)
        dc <- getME(m, "devcomp")$cmp
        oi <- m@optinfo
        th <- getME(m, "theta")
        out <- list(
            status = "ok", error = NULL,
            fit_warnings = I(fit$warnings), fit_messages = I(fit$messages),
            fixef = named_list(fe),
            fixef_names = I(names(fe)),
            fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
            vcov_fixef = unname(V),
            model_matrix_colnames = I(colnames(X)),
            model_matrix_first5 = unname(as.matrix(X[1:5, , drop = FALSE])),
            model_matrix = if (cs$id %in% c("dyestuff_poly", "sleepstudy_center")) unname(as.matrix(X)) else NULL,
            fixed_predvars = fixed_predvars(m),
            varcomp = varcomp_rows(m),
            sigma = sigma(m),
            theta = named_list(th),
            theta_names = I(names(th)),
            theta_lower = I(unname(getME(m, "lower"))),
            cnms = lapply(getME(m, "cnms"), I),
            logLik = as.numeric(ll),
            logLik_df = as.integer(attr(ll, "df")),
            logLik_note = if (reml) "REML (restricted) log-likelihood" else "log-likelihood (ML / Laplace / AGQ)",
            deviance = if (reml) NULL else deviance(m),
            deviance_note = if (reml) "REML fit: see reml_criterion; deviance_ml_at_reml_estimates = deviance(m, REML = FALSE)"
                            else "-2 * logLik (as shown by summary())",
            deviance_ml_at_reml_estimates = if (reml) deviance(m, REML = FALSE) else NULL,
            deviance_fn = NULL, deviance_fn_note = NULL,
            reml_criterion = if (reml) unname(REMLcrit(m)) else NULL,
            AIC = AIC(m), BIC = BIC(m),
            df_resid = as.integer(df.residual(m)),
            nobs = as.integer(nobs(m)),
            ngrps = as.list(ngrps(m)),
            singular = isSingular(m),
            convergence = list(optimizer = oi$optimizer,
                               optimizer_code = oi$conv$opt,
                               optimizer_message = if (is.null(oi$message)) NULL else oi$message,
                               lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
                               optinfo_warnings = I(as.character(unlist(oi$warnings))),
                               feval = oi$feval,
                               max_abs_grad = if (!is.null(oi$derivs$gradient)) max(abs(oi$derivs$gradient)) else NULL),
            devcomp_cmp = as.list(dc),
            nAGQ = NULL,
            ranef = ranef_rows(m),
            ranef_included = TRUE,
            fitted = list(scale = "response", n = length(fitted(m)), sum = sum(fitted(m)),
                          first5 = I(unname(fitted(m)[1:5]))),
            residuals = list(
                response = list(sum_sq = sum(residuals(m, type = "response")^2),
                                first5 = I(unname(residuals(m, type = "response")[1:5]))),
                pearson = list(sum_sq = sum(residuals(m, type = "pearson")^2),
                               first5 = I(unname(residuals(m, type = "pearson")[1:5])))),
            weights = if (!all(weights(m) == 1)) list(sum = sum(weights(m)), first5 = I(unname(weights(m)[1:5]))) else NULL,
            offset = if (any(getME(m, "offset") != 0)) list(sum = sum(getME(m, "offset")),
                                                           first5 = I(unname(getME(m, "offset")[1:5]))) else NULL,
            predict = predict_block(m, ds, cs, env)
        )
        out
    })
    if (!is.null(ex$error)) stop("extraction failed for ", cs$id, ": ", ex$error)
    res <- c(base, ex$value)
    res$extract_warnings <- I(ex$warnings)
    if (cs$id == "many_groups_sim") res$simulation <- list(seed = 20261125L, code = SIM_CODE)
    res$timing <- timing_block(cs$call, env)
    ## fields of the shared refs that these cases do not compute
    res["satterthwaite"] <- list(NULL)
    res["kenward_roger"] <- list(NULL)
    res["confint"] <- list(NULL)
    res
}

results <- list()
for (cs in cases) {
    cat(sprintf("%-32s ", cs$id))
    r <- run_case(cs)
    results[[cs$id]] <- r
    cat(r$status, if (length(r$fit_warnings)) paste0(" warnings: ", paste(r$fit_warnings, collapse = " | ")) else "",
        if (length(r$fit_messages)) paste0(" messages: ", paste(r$fit_messages, collapse = " | ")) else "", "\n")
}

write_verified_outputs(results)

case_index <- lapply(cases, function(cs) list(
    id = cs$id, dataset = cs$dataset, engine = "lmer", call = cs$call, formula = cs$formula,
    family = "gaussian", link = "identity", reml = cs$reml, nagq = NULL,
    notes = cs$notes, status = results[[cs$id]]$status,
    fit_warnings = I(results[[cs$id]]$fit_warnings)))
writeLines(toJSON(case_index, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null", digits = NA),
           file.path(out_dir, "cases.json"))

cat("R:", R_VERSION, " lme4:", LME4_VERSION, "\n")
cat("wrote", length(results), "cases to", out_dir, "and", length(written_datasets), "data sets to", data_dir, "\n")
