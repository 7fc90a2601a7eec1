#!/usr/bin/env Rscript
## Reference GLMM fits from lme4 with its PIRLS solved tightly:
## control = glmerControl(tolPwrss = 1e-12) instead of lme4's default tolPwrss = 1e-7.
##
## Why: with the default tolerance lme4 stops the penalised iteratively re-weighted least
## squares (PIRLS) for the conditional modes early, so its Laplace / AGQ deviance function is
## off by ~5e-4 and its Hessian-based (finite-difference) standard errors by ~0.5-1%
## (cbpp Laplace: -2 logLik 184.05313 default, 184.0525637 tight; SE(Intercept) 0.23121
## default, 0.2324734 tight).  `multilevel` solves PIRLS tightly, so these fits are the ones
## to compare its estimates, standard errors and conditional modes with.
##
## Usage (from anywhere; paths are relative to this script's folder):
##     Rscript tests/reference/make_glmm_tight_refs.R
## GLMM_TIGHT_REFS_ONLY=id1,id2 runs a subset (the cases.json then lists that subset only).
##
## Cases
##   * every lme4 case (glmer, glmer.nb) of make_glmm_refs.R, same id, same call plus the
##     tight control (merged into a glmerControl() the call already has).  The case list, the
##     simulated data sets and the extraction code are taken from make_glmm_refs.R itself (its
##     top-level definitions from make_gamma_sim to run_case are evaluated in an environment
##     of their own), so the two sets cannot drift apart.  glmer.nb passes `control` on to
##     glmer and keeps it for its refits at each NB size (refitNB -> refit.merMod, which
##     reuses the tolPwrss stored in the fit's devcomp); the `tolPwrss` field of each JSON is
##     read back from the fitted model, and the script stops if it is not 1e-12.
##   * the shared cases cbpp_laplace (nAGQ = 1) and cbpp_agq25 (nAGQ = 25) of
##     /work/shared/reference (same calls, tight).
##   * poisson_crossed: a Poisson GLMM with two crossed random intercepts on simulated data
##     (data/poisson_crossed_sim.csv), fitted tight, and poisson_crossed_default_tol, the same
##     call at lme4's default tolerance (no default-tolerance counterpart exists in glmm/).
##
## Every tight case also refits the call at the default tolerance and records it compactly in
## `default_tolerance_fit`, with the differences in `tight_vs_default`.
##
## Writes
##   glmm_tight/<id>.json                one JSON per case (fields as glmm/<id>.json, plus
##                                       tolPwrss, tolPwrss_requested, default_tolerance_fit,
##                                       tight_vs_default; no timing)
##   glmm_tight/cases.json               summary of each case
##   data/poisson_crossed_sim.csv (+ .levels.json)   the one new data set (the other data sets
##                                       are written by make_glmm_refs.R; checked here against
##                                       the CSVs on disk)
##
## Needs: lme4, mlmRev, jsonlite (+ python3 for the round-trip check of the numbers).
## About 2.5 minutes on a 2-core machine (verbagg_bobyqa and contraception_slope are the slow
## ones).  Two runs gave identical files except grouseticks_poisson (estimates differ by up to
## 9e-6, logLik by 7e-9: lme4's own run-to-run noise on that flat optimum, seen for the default
## fit too) and poisson_crossed / poisson_crossed_default_tol (logLik 3e-11, Hessian-based
## SEs up to 9e-6 relative); within one R session the fits repeat exactly.

suppressPackageStartupMessages({
    library(lme4)
    library(mlmRev)
    library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()
out_dir <- file.path(here, "glmm_tight")
data_dir <- file.path(here, "data")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

R_VERSION <- R.version.string
VERSIONS <- list(R = R_VERSION,
                 lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")),
                 mlmRev = as.character(packageVersion("mlmRev")),
                 jsonlite = as.character(packageVersion("jsonlite")))
source(file.path(here, "ref_helpers.R"))  # number formatting, data set writing

TOL_TIGHT <- 1e-12
TOL_DEFAULT <- glmerControl()$tolPwrss   # 1e-7 in lme4 1.1-31

## ---------------------------------------------------------------------------------
## The cases, data sets and extraction code of make_glmm_refs.R
## ---------------------------------------------------------------------------------
G <- new.env(parent = globalenv())
local({
    ex <- parse(file.path(here, "make_glmm_refs.R"), keep.source = FALSE)
    lhs <- vapply(ex, function(e)
        if (is.call(e) && identical(e[[1]], as.name("<-")) && is.name(e[[2]])) as.character(e[[2]]) else "", "")
    from <- match("make_gamma_sim", lhs); to <- match("run_case", lhs)
    if (is.na(from) || is.na(to) || to < from)
        stop("make_glmm_refs.R no longer defines make_gamma_sim ... run_case in that order; update this script")
    for (i in from:to) eval(ex[[i]], G)
})
needed <- c("cases", "datasets", "SIMULATIONS", "sim_code", "capture", "run_case", "extract_glmer")
if (!all(ok <- vapply(needed, exists, TRUE, envir = G, inherits = FALSE)))
    stop("make_glmm_refs.R no longer defines: ", paste(needed[!ok], collapse = ", "))
G$timing_block <- function(expr_text, env, n = 3L) NULL   # no timings in this set
capture <- G$capture

## ---------------------------------------------------------------------------------
## The new simulated data set: Poisson, two crossed random intercepts
## ---------------------------------------------------------------------------------
## 30 levels of a fully crossed with 20 levels of b: each of the 600 cells has 2 rows, and 300
## cells drawn at random get a third (1500 rows, unbalanced).  x ~ N(0,1);
## u_a ~ N(0, 0.5), u_b ~ N(0, 0.3); y ~ Poisson(exp(1 + 0.4 x + u_a + u_b)).
make_poisson_crossed_sim <- function() {
    set.seed(20260705)
    A <- 30L; B <- 20L
    cells <- expand.grid(b = seq_len(B), a = seq_len(A))
    extra <- sample(nrow(cells), 300L)
    idx <- sort(c(rep(seq_len(nrow(cells)), 2L), extra))
    a <- factor(sprintf("a%02d", cells$a[idx]), levels = sprintf("a%02d", seq_len(A)))
    b <- factor(sprintf("b%02d", cells$b[idx]), levels = sprintf("b%02d", seq_len(B)))
    n <- length(idx)
    x <- rnorm(n)
    u_a <- rnorm(A, 0, 0.5)
    u_b <- rnorm(B, 0, 0.3)
    y <- rpois(n, exp(1 + 0.4 * x + u_a[as.integer(a)] + u_b[as.integer(b)]))
    data.frame(a = a, b = b, x = x, y = y)
}

G$datasets$poisson_crossed_sim <- list(
    df = make_poisson_crossed_sim(),
    source = "simulated in make_glmm_tight_refs.R (make_poisson_crossed_sim, seed 20260705)",
    notes = paste0("a (30 levels) fully crossed with b (20 levels): every one of the 600 cells has 2 rows and 300 ",
                   "random cells a third (1500 rows); x ~ N(0,1); u_a ~ N(0, 0.5); u_b ~ N(0, 0.3); ",
                   "y ~ Poisson(exp(1 + 0.4 x + u_a + u_b))"))
G$SIMULATIONS$poisson_crossed_sim <- list(seed = 20260705L, code = G$sim_code(make_poisson_crossed_sim))

## only the new data set is written here (format_all() calls write_all_datasets())
write_all_datasets <- function() {
    ds <- G$datasets$poisson_crossed_sim
    write_dataset("poisson_crossed_sim", ds$df, ds$source, ds$notes)
}

## The other data sets are written by make_glmm_refs.R: check that the data fitted here are
## the ones on disk (to 1e-14 relative; R's own CSV parser can be 1 ulp off).
check_on_disk <- function(name) {
    f <- file.path(data_dir, paste0(name, ".csv"))
    if (!file.exists(f)) stop("data/", name, ".csv missing: run make_glmm_refs.R first")
    disk <- read.csv(f, stringsAsFactors = FALSE)
    mem <- G$datasets[[name]]$df
    same <- ncol(disk) == ncol(mem) && nrow(disk) == nrow(mem) && all(mapply(function(d, m) {
        if (is.factor(m) || is.character(m)) identical(as.character(d), as.character(m))
        else isTRUE(all.equal(as.numeric(d), as.numeric(m), tolerance = 1e-14))
    }, disk, mem))
    if (!same) stop("data/", name, ".csv differs from the data set built by make_glmm_refs.R")
}

## ---------------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------------
## the call with tolPwrss = 1e-12 put first in its glmerControl(), or a control argument added
tight_call <- function(call) {
    out <- if (grepl("glmerControl(", call, fixed = TRUE)) {
        sub("glmerControl(", sprintf("glmerControl(tolPwrss = %g, ", TOL_TIGHT), call, fixed = TRUE)
    } else {
        sub("\\)$", sprintf(", control = glmerControl(tolPwrss = %g))", TOL_TIGHT), call)
    }
    ctl <- match.call(glmer, parse(text = out)[[1]])$control
    if (is.null(ctl) || !identical(eval(ctl)$tolPwrss, TOL_TIGHT)) stop("could not add tolPwrss to: ", call)
    out
}

TIGHT_NOTE <- "TIGHT PIRLS: control = glmerControl(tolPwrss = 1e-12) (lme4's default is 1e-7). "

## what the runs showed (lme4 1.1-31, R 4.2.2), added to the case notes
OBSERVED <- list(
    gamma_log_lme4 = paste0(
        "At the default tolerance (glmm/gamma_log_lme4) lme4 warns of non-convergence and its finite-difference ",
        "Hessian is wrong: SEs about 30 times too small (0.0039 for the intercept). With the tight PIRLS the fit ",
        "passes lme4's convergence checks and the SEs are sensible (0.12); see tight_vs_default. "),
    invgauss_log_lme4 = paste0(
        "At the default tolerance (glmm/invgauss_log_lme4) lme4 warns of non-convergence and of a nearly ",
        "unidentifiable model, and its Hessian-based SEs are about 80 times too small (0.0012 for the intercept). ",
        "With the tight PIRLS the fit passes lme4's convergence checks and the SEs are sensible (0.097). "),
    verbagg = paste0(
        "With the tight PIRLS the default optimizer chain (bobyqa, then Nelder_Mead) stops with lme4's warning ",
        "max|grad| = 0.0025 (tol 0.002), while the default-tolerance fit passed the check. verbagg_bobyqa ",
        "refits with bobyqa run to rhoend = 1e-10: logLik higher by about 1.6e-6, no warning, intercept ",
        "0.19905 vs 0.19965 here; prefer that case for tight comparisons of the estimates. "))

lme4_cases <- Filter(function(cs) cs$engine %in% c("glmer", "glmer.nb"), G$cases)
tight_cases <- lapply(lme4_cases, function(cs) {
    cs$default_call <- cs$call
    cs$call <- tight_call(cs$call)
    cs$control <- paste0(sprintf("tolPwrss = %g added to the call's control. ", TOL_TIGHT),
                         if (is.null(cs$control)) "Otherwise glmerControl() defaults (optimizer c(\"bobyqa\", \"Nelder_Mead\"))."
                         else paste0("Control note of the default-tolerance case in glmm/: ", cs$control))
    cs$notes <- paste0(TIGHT_NOTE, "Same call as the case of this id in glmm/ (make_glmm_refs.R) otherwise. ",
                       if (cs$engine == "glmer.nb") paste0(
                           "glmer.nb takes the control itself (passed on to glmer, and kept by its refits ",
                           "at each NB size: the fitted devcomp's tolPwrss is 1e-12); no fallback to ",
                           "glmer(family = negative.binomial(theta)) was needed. The NB size is still ",
                           "optimised by glmer.nb's own optimize() on log(size) with its default tol = 5e-5. ")
                       else "",
                       OBSERVED[[cs$id]], cs$notes)
    cs$glmm_ref <- paste0("glmm/", cs$id, ".json")
    cs
})

CBPP <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CROSSED <- "y ~ x + (1 | a) + (1 | b)"
CROSSED_CALL <- "glmer(y ~ x + (1 | a) + (1 | b), data = pxsim, family = poisson)"
extra_cases <- list(
    list(id = "cbpp_laplace", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         default_call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)",
         formula = CBPP, nagq = 1L, quad = "herd", shared_ref = "/work/shared/reference/refs/cbpp_laplace.json",
         notes = paste0(TIGHT_NOTE, "The shared case cbpp_laplace (Laplace, nAGQ = 1) with the tight control.")),
    list(id = "cbpp_agq25", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         default_call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 25)",
         formula = CBPP, nagq = 25L, quad = "herd", shared_ref = "/work/shared/reference/refs/cbpp_agq25.json",
         notes = paste0(TIGHT_NOTE, "The shared case cbpp_agq25 (adaptive Gauss-Hermite, 25 nodes) with the tight control. ",
                        "lme4's logLik omits the saturated-model term for nAGQ > 1 (see logLik_complete)."))  ,
    list(id = "verbagg_bobyqa", engine = "glmer", dataset = "VerbAgg", data_name = "VerbAgg",
         default_call = paste0("glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = VerbAgg, ",
                               "family = binomial, control = glmerControl(optimizer = \"bobyqa\", ",
                               "optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))"),
         formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", nagq = 1L, quad = NULL,
         glmm_ref = "glmm/verbagg.json (default optimizer and tolerance)",
         control = "tolPwrss = 1e-12 added to glmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)) (bobyqa only, no Nelder_Mead stage).",
         notes = paste0(TIGHT_NOTE, "(New case, not in glmm/.) verbagg's model with bobyqa alone run to ",
                        "rhoend = 1e-10, because the tight fit with lme4's default optimizers stops with a ",
                        "max|grad| warning (see verbagg). Its default_tolerance_fit uses the same optimizer ",
                        "settings with tolPwrss = 1e-7.")),
    list(id = "poisson_crossed", engine = "glmer", dataset = "poisson_crossed_sim", data_name = "pxsim",
         default_call = CROSSED_CALL, formula = CROSSED, nagq = 1L, quad = NULL,
         notes = paste0(TIGHT_NOTE, "(New case, not in glmm/.) Poisson GLMM with two crossed random intercepts ",
                        "(a: 30 levels, b: 20 levels, every a x b cell observed 2 or 3 times; 1500 rows). ",
                        "The same call at the default tolerance is poisson_crossed_default_tol.")),
    list(id = "poisson_crossed_default_tol", engine = "glmer", dataset = "poisson_crossed_sim", data_name = "pxsim",
         call = CROSSED_CALL, formula = CROSSED, nagq = 1L, quad = NULL, tolerance = "default",
         control = "glmerControl() defaults (tolPwrss = 1e-7; optimizer c(\"bobyqa\", \"Nelder_Mead\"))",
         notes = paste0("DEFAULT lme4 tolerance (tolPwrss = 1e-7), kept for comparison: this case has no counterpart ",
                        "in glmm/. Same model and data as poisson_crossed (the tight fit)."))
)
extra_cases <- lapply(extra_cases, function(cs) {
    if (is.null(cs$tolerance)) {
        cs$call <- tight_call(cs$default_call)
        if (is.null(cs$control))
            cs$control <- sprintf("tolPwrss = %g added to the call; otherwise glmerControl() defaults.", TOL_TIGHT)
    }
    cs
})
cases <- c(tight_cases, extra_cases)
for (i in seq_along(cases)) if (is.null(cases[[i]]$tolerance)) cases[[i]]$tolerance <- "tight"

only <- Sys.getenv("GLMM_TIGHT_REFS_ONLY")
if (nzchar(only)) cases <- Filter(function(cs) cs$id %in% strsplit(only, ",")[[1]], cases)

## ---------------------------------------------------------------------------------
## Fitting
## ---------------------------------------------------------------------------------
## compact record of the fit at the default tolerance
default_fit <- function(cs) {
    env <- new.env(parent = globalenv())
    assign(cs$data_name, G$datasets[[cs$dataset]]$df, envir = env)
    fit <- capture(eval(parse(text = cs$default_call)[[1]], env))
    if (!is.null(fit$error)) return(list(call = cs$default_call, status = "error", error = fit$error))
    m <- fit$value
    V <- as.matrix(vcov(m)); fe <- fixef(m); ll <- as.numeric(logLik(m)); oi <- m@optinfo
    nagq <- m@devcomp$dims[["nAGQ"]]
    sat <- NULL
    if (nagq > 1) {
        y <- m@resp$y; n <- m@resp$weights
        sat <- switch(family(m)$family,
                      binomial = { k <- round(y * n); sum(dbinom(k, n, k / n, log = TRUE)) },
                      poisson = sum(dpois(y, y, log = TRUE)), NULL)
    }
    list(call = cs$default_call, status = "ok", tolPwrss = m@devcomp$cmp[["tolPwrss"]],
         logLik = ll, logLik_complete = if (nagq > 1 && !is.null(sat)) ll + sat else ll,
         deviance = -2 * ll,
         fixef = named_list(fe),
         fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
         theta = named_list(getME(m, "theta")),
         sigma = if (as.logical(m@devcomp$dims[["useSc"]])) sigma(m) else NULL,
         nb_size = if (cs$engine == "glmer.nb") getME(m, "glmer.nb.theta") else NULL,
         fit_warnings = I(fit$warnings), fit_messages = I(fit$messages),
         lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
         optimizer = oi$optimizer, feval = oi$feval,
         glmm_ref = cs$glmm_ref, shared_ref = cs$shared_ref)
}

compare_fits <- function(r, d) {
    if (is.null(d) || d$status != "ok" || r$status != "ok") return(NULL)
    se_t <- unlist(r$fixef_se); se_d <- unlist(d$fixef_se)
    rel <- abs(se_t - se_d) / abs(se_d)
    th_t <- unlist(r$theta); th_d <- unlist(d$theta)
    list(
        deviance_tight_minus_default = r$deviance - d$deviance,
        logLik_tight_minus_default = r$logLik - d$logLik,
        logLik_complete_tight_minus_default = r$logLik_complete - d$logLik_complete,
        fixef_se_rel_diff = named_list(rel),
        max_rel_fixef_se_diff = max(rel), max_rel_fixef_se_diff_term = names(rel)[which.max(rel)],
        max_abs_fixef_diff = max(abs(unlist(r$fixef) - unlist(d$fixef))),
        max_abs_theta_diff = max(abs(th_t - th_d)),
        note = paste0("tight minus default: deviance = -2 logLik; relative SE difference = ",
                      "|SE_tight - SE_default| / SE_default (lme4's Hessian-based vcov)"))
}

for (nm in setdiff(unique(vapply(cases, `[[`, "", "dataset")), "poisson_crossed_sim")) check_on_disk(nm)

results <- list()
for (cs in cases) {
    cat(sprintf("%-28s ", cs$id))
    r <- tryCatch(G$run_case(cs), error = function(e)
        list(id = cs$id, dataset = cs$dataset, engine = cs$engine, versions = VERSIONS, call = cs$call,
             formula = cs$formula, nagq_requested = cs$nagq, case_notes = cs$notes,
             status = "error", error = conditionMessage(e)))
    r$tolerance <- cs$tolerance
    r$tolPwrss_requested <- if (cs$tolerance == "tight") TOL_TIGHT else TOL_DEFAULT
    if (r$status == "ok") {
        r$tolPwrss <- r$devcomp_cmp$tolPwrss
        if (!isTRUE(all.equal(r$tolPwrss, r$tolPwrss_requested, tolerance = 0)))
            stop(cs$id, ": the fit used tolPwrss ", r$tolPwrss, ", not ", r$tolPwrss_requested)
        ## `convergence$control` of glmm/ is written from cs$control; the text above says what was used
    }
    r$glmm_ref <- cs$glmm_ref
    r$shared_ref <- cs$shared_ref
    if (cs$tolerance == "tight") {
        d <- default_fit(cs)
        r$default_tolerance_fit <- d
        r$tight_vs_default <- compare_fits(r, d)
    }
    results[[cs$id]] <- r
    tv <- r$tight_vs_default
    cat(r$status, if (r$status == "ok") sprintf(" logLik %.10g", r$logLik) else r$error,
        if (!is.null(tv)) sprintf(" d(-2logLik) %+.3e  max rel dSE %.3e (%s)", tv$deviance_tight_minus_default,
                                  tv$max_rel_fixef_se_diff, tv$max_rel_fixef_se_diff_term) else "",
        if (length(r$fit_warnings)) paste0(" warnings: ", paste(r$fit_warnings, collapse = " | ")) else "",
        if (length(r$default_tolerance_fit$fit_warnings))
            paste0(" default-tol warnings: ", paste(r$default_tolerance_fit$fit_warnings, collapse = " | ")) else "",
        "\n")
}

write_verified_outputs(results)

case_index <- lapply(cases, function(cs) {
    r <- results[[cs$id]]
    list(id = cs$id, dataset = cs$dataset, engine = cs$engine, call = cs$call,
         default_call = cs$default_call, formula = cs$formula,
         family = r$family, link = r$link, nagq = cs$nagq, tolerance = cs$tolerance,
         tolPwrss = r$tolPwrss, logLik = r$logLik, logLik_complete = r$logLik_complete,
         default_logLik = r$default_tolerance_fit$logLik,
         deviance_tight_minus_default = r$tight_vs_default$deviance_tight_minus_default,
         max_rel_fixef_se_diff = r$tight_vs_default$max_rel_fixef_se_diff,
         glmm_ref = cs$glmm_ref, shared_ref = cs$shared_ref,
         notes = cs$notes, status = r$status, fit_warnings = I(as.character(r$fit_warnings)),
         default_fit_warnings = if (cs$tolerance == "tight") I(as.character(r$default_tolerance_fit$fit_warnings)) else NULL)
})
writeLines(toJSON(as_json_numbers(case_index), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
                  null = "null", na = "null", digits = NA),
           file.path(out_dir, "cases.json"))

cat("R:", R_VERSION, " lme4:", VERSIONS$lme4, "\n")
cat("wrote", length(results), "cases to", out_dir, "and", length(written_datasets), "data set(s) to", data_dir, "\n")
