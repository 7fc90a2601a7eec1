#!/usr/bin/env Rscript
# Time lme4::lmer() fits for the benchmark harness.
#
# Usage:
#   Rscript benchmarks/lme4_bench.R --data FILE.csv.gz --formula "y ~ x + (1|g)" \
#       [--reml TRUE|FALSE] [--factors a,b,c] [--repeats N] [--budget SECONDS]
#       [--warmup FILE.csv.gz|none]
#
# The data are read (and the listed columns made factors) before timing.  Each
# repetition times the lmer() call only, as a user experiences it (formula
# processing, model matrices, optimisation); with --budget the repetitions stop
# (after at least one) once the fits took that many seconds in total.  An untimed warm-up fit (by
# default lme4's sleepstudy) is done first so that lazily loaded code is not
# charged to the first timed fit.
#
# Peak memory: before each fit the process's peak-RSS mark is reset by writing
# "5" to /proc/self/clear_refs; after the fit VmHWM in /proc/self/status is the
# peak resident memory during the fit.  R's own gc() "max used" (Mb, R heap
# only, not lme4's C++ allocations) is reported too.
#
# Output: one JSON object on stdout.

suppressPackageStartupMessages(library(lme4))
local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
  source(file.path(dirname(script[[1]]), "bench_common.R"))
})

parse_args <- function(args) {
  defaults <- list(reml = "TRUE", factors = "", repeats = "5", warmup = "", budget = "Inf")
  out <- parse_key_values(args, defaults)
  if (is.null(out$data) || is.null(out$formula)) stop("--data and --formula are required")
  out
}

json_num <- function(x) {
  if (length(x) == 0) return("[]")
  s <- ifelse(is.na(x), "null", formatC(x, digits = 17, format = "g"))
  s <- gsub(" ", "", s)
  s
}

json_str <- function(x) paste0("\"", gsub("\"", "\\\\\"", x), "\"")

main <- function() {
  a <- parse_args(commandArgs(trailingOnly = TRUE))
  factors <- if (nzchar(a$factors)) strsplit(a$factors, ",")[[1]] else character()
  reml <- as.logical(a$reml)
  repeats <- max(1L, as.integer(a$repeats))
  budget <- as.numeric(a$budget)
  form <- a$formula

  warm_path <- a$warmup
  if (!nzchar(warm_path)) {
    warm_path <- file.path(dirname(a$data), "sleepstudy.csv.gz")
  }
  if (warm_path != "none" && file.exists(warm_path)) {
    warm <- read_data(warm_path, "Subject")
    invisible(lmer(Reaction ~ Days + (Days | Subject), warm))
    rm(warm)
  }

  df <- read_data(a$data, factors)

  r <- time_fits(function() lmer(as.formula(form), data = df, REML = reml), repeats, budget)
  fit <- r$fit

  fe <- fixef(fit)
  th <- getME(fit, "theta")
  cat("{",
      "\"library\": \"lme4\",",
      sprintf("\"version\": %s,", json_str(as.character(packageVersion("lme4")))),
      sprintf("\"r_version\": %s,", json_str(paste(R.version$major, R.version$minor, sep = "."))),
      sprintf("\"matrix_version\": %s,", json_str(as.character(packageVersion("Matrix")))),
      sprintf("\"times\": [%s],", paste(json_num(r$times), collapse = ", ")),
      sprintf("\"median\": %s,", json_num(median(r$times))),
      sprintf("\"cpu_times\": [%s],", paste(json_num(r$cpu), collapse = ", ")),
      sprintf("\"peak_rss_mib\": %s,", json_num(max(r$peaks))),
      sprintf("\"fit_increment_mib\": %s,", json_num(max(r$incr))),
      sprintf("\"hwm_reset\": %s,", if (r$hwm_ok) "true" else "false"),
      sprintf("\"r_gc_max_used_mb\": %s,", json_num(max(r$gc_max))),
      sprintf("\"loglik\": %s,", json_num(as.numeric(logLik(fit)))),
      sprintf("\"fixef\": {%s},",
              paste(json_str(names(fe)), json_num(unname(fe)), sep = ": ", collapse = ", ")),
      sprintf("\"theta\": [%s],", paste(json_num(unname(th)), collapse = ", ")),
      sprintf("\"converged\": %s", if (is.null(fit@optinfo$conv$lme4$messages)) "true" else "false"),
      "}\n", sep = "")
}

main()
