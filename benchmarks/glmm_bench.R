#!/usr/bin/env Rscript
# Time lme4::glmer() fits for the GLMM benchmarks (benchmarks/glmm_bench.py).
#
# Usage:
#   Rscript benchmarks/glmm_bench.R --data FILE.csv[.gz] --formula "y ~ x + (1|g)" \
#       --family binomial|poisson [--levels FILE.levels.json] [--factors a,b,c] \
#       [--repeats N] [--budget SECONDS] [--warmup cbpp|none] [--evaluate ESTIMATES.json]
#
# glmer() runs with its defaults: nAGQ = 1 (Laplace), glmerControl() (bobyqa, then
# Nelder-Mead), canonical link.
#
# The data are read before timing.  Factor columns take their levels from the level file (an
# R data set's export in tests/reference/data) or, without one, R's factor() order of their
# labels (numeric order for integer labels).  Each repetition times the glmer() call only,
# as a user experiences it (formula processing, model matrices, optimisation); with --budget
# the repetitions stop (after at least one) once the fits took that many seconds in total.
# An untimed warm-up fit of lme4's own cbpp model is done first, so that lazily loaded code
# is not charged to the first timed fit.  Warnings of the timed fits are collected, not
# printed.
#
# --evaluate: a JSON object {"library": {"theta": [...], "beta": [...]}, ...} of other
# libraries' estimates.  After the timed fits (untimed), lme4's Laplace deviance function
# (glFormula -> mkGlmerDevfun -> updateGlmerDevfun, taking c(theta, beta)) is evaluated at
# lme4's own estimates and at each of these, and -deviance/2 is reported under
# "laplace_loglik_by_lme4": every library's optimum measured on one yardstick.  The inner
# PIRLS runs with tolPwrss = 1e-12 for this, not glmer's default 1e-7: with the default, the
# conditional modes stop short enough to lower the log-likelihood by 0.35 on the 100,000-row
# binary case (1e-4 on VerbAgg), more than the optima differ.  A fresh deviance function is
# made for each point, so that no point starts PIRLS where another left it.  theta in lme4's
# order, beta in the order of the fixed-effect columns; estimates of another length give null.
#
# Peak memory as in lme4_bench.R: VmHWM after resetting it through /proc/self/clear_refs.
#
# Output: one JSON object on stdout.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
  source(file.path(dirname(script[[1]]), "bench_common.R"))
})

parse_args <- function(args) {
  defaults <- list(levels = "", factors = "", evaluate = "", repeats = "5", budget = "Inf",
                   warmup = "cbpp")
  out <- parse_key_values(args, defaults)
  for (req in c("data", "formula", "family")) {
    if (is.null(out[[req]])) stop("--", req, " is required")
  }
  out
}

# -deviance/2 of lme4's Laplace deviance function (tight PIRLS) at the estimates `own` and at
# each of the file `path`'s; a fresh deviance function for each point.
evaluate_estimates <- function(form, df, fam, own, path) {
  glmod <- glFormula(form, data = df, family = fam)
  control <- glmerControl(tolPwrss = 1e-12)
  laplace_loglik <- function(par) {
    devfun <- do.call(mkGlmerDevfun, c(glmod, list(control = control)))
    devfun <- updateGlmerDevfun(devfun, glmod$reTrms, nAGQ = 1)
    -devfun(par) / 2
  }
  out <- list(lme4 = laplace_loglik(own))
  if (!nzchar(path)) return(out)
  est <- fromJSON(path)
  for (lib in names(est)) {
    par <- c(est[[lib]]$theta, est[[lib]]$beta)
    out[[lib]] <- if (length(par) == length(own)) laplace_loglik(par) else NA_real_
  }
  out
}

main <- function() {
  a <- parse_args(commandArgs(trailingOnly = TRUE))
  factors <- if (nzchar(a$factors)) strsplit(a$factors, ",")[[1]] else character()
  repeats <- max(1L, as.integer(a$repeats))
  budget <- as.numeric(a$budget)
  form <- as.formula(a$formula)
  fam <- get(a$family, mode = "function", envir = asNamespace("stats"))()

  if (a$warmup == "cbpp") {
    invisible(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                    data = lme4::cbpp, family = binomial))
  }

  levels_by_column <- if (nzchar(a$levels)) fromJSON(a$levels)$levels else list()
  df <- read_data(a$data, factors, levels_by_column, check_labels = TRUE)

  warns <- character(0)
  glmer_collecting_warnings <- function() {
    withCallingHandlers(
      glmer(form, data = df, family = fam),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
  }
  r <- time_fits(glmer_collecting_warnings, repeats, budget)
  fit <- r$fit

  conv_messages <- fit@optinfo$conv$lme4$messages
  own <- c(unname(getME(fit, "theta")), unname(fixef(fit)))
  laplace <- evaluate_estimates(form, df, fam, own, a$evaluate)
  out <- list(
    library = "lme4",
    version = as.character(packageVersion("lme4")),
    r_version = paste(R.version$major, R.version$minor, sep = "."),
    matrix_version = as.character(packageVersion("Matrix")),
    blas = sessionInfo()$BLAS,
    formula = a$formula,
    family = a$family,
    spelling = "as lme4",
    times = I(r$times),
    median = median(r$times),
    cpu_times = I(r$cpu),
    peak_rss_mib = max(r$peaks),
    fit_increment_mib = max(r$incr),
    hwm_reset = r$hwm_ok,
    r_gc_max_used_mb = max(r$gc_max),
    loglik = as.numeric(logLik(fit)),
    fixef = as.list(fixef(fit)),
    theta = I(unname(getME(fit, "theta"))),
    converged = is.null(conv_messages),
    convergence_messages = I(as.character(conv_messages)),
    warnings = I(unique(warns)),
    n_warnings = length(warns),
    laplace_loglik_by_lme4 = laplace
  )
  cat(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null"), "\n", sep = "")
}

main()
