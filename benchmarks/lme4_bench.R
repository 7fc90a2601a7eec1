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

parse_args <- function(args) {
  out <- list(reml = "TRUE", factors = "", repeats = "5", warmup = "", budget = "Inf")
  i <- 1
  while (i <= length(args)) {
    key <- sub("^--", "", args[[i]])
    if (i + 1 > length(args)) stop("missing value for ", args[[i]])
    out[[key]] <- args[[i + 1]]
    i <- i + 2
  }
  if (is.null(out$data) || is.null(out$formula)) stop("--data and --formula are required")
  out
}

read_data <- function(path, factors) {
  df <- read.csv(path, stringsAsFactors = FALSE)
  for (f in factors) {
    lab <- as.character(df[[f]])
    num <- suppressWarnings(as.numeric(lab))
    lev <- if (all(!is.na(num))) unique(lab[order(num)]) else sort(unique(lab))
    df[[f]] <- factor(lab, levels = lev)
  }
  df
}

status_mib <- function(field) {
  lines <- tryCatch(readLines("/proc/self/status"), error = function(e) character())
  line <- grep(paste0("^", field, ":"), lines, value = TRUE)
  if (!length(line)) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", line[[1]])) / 1024
}

reset_peak <- function() {
  ok <- tryCatch({
    cat("5", file = "/proc/self/clear_refs")
    TRUE
  }, error = function(e) FALSE, warning = function(w) FALSE)
  ok
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

  times <- numeric(0)
  cpu <- numeric(0)
  peaks <- numeric(0)
  incr <- numeric(0)
  gc_max <- numeric(0)
  hwm_ok <- TRUE
  fit <- NULL
  for (i in seq_len(repeats)) {
    fit <- NULL
    invisible(gc(reset = TRUE))
    before <- status_mib("VmRSS")
    hwm_ok <- reset_peak() && hwm_ok
    p0 <- proc.time()
    t0 <- Sys.time()
    fit <- lmer(as.formula(form), data = df, REML = reml)
    t1 <- Sys.time()
    p1 <- proc.time()
    times[i] <- as.numeric(difftime(t1, t0, units = "secs"))
    cpu[i] <- sum((p1 - p0)[c("user.self", "sys.self")])
    peaks[i] <- status_mib("VmHWM")
    incr[i] <- peaks[i] - before
    g <- gc()
    gc_max[i] <- sum(g[, ncol(g)])  # "max used" (Mb) column, Ncells + Vcells
    if (sum(times) >= budget) break
  }

  fe <- fixef(fit)
  th <- getME(fit, "theta")
  cat("{",
      "\"library\": \"lme4\",",
      sprintf("\"version\": %s,", json_str(as.character(packageVersion("lme4")))),
      sprintf("\"r_version\": %s,", json_str(paste(R.version$major, R.version$minor, sep = "."))),
      sprintf("\"matrix_version\": %s,", json_str(as.character(packageVersion("Matrix")))),
      sprintf("\"times\": [%s],", paste(json_num(times), collapse = ", ")),
      sprintf("\"median\": %s,", json_num(median(times))),
      sprintf("\"cpu_times\": [%s],", paste(json_num(cpu), collapse = ", ")),
      sprintf("\"peak_rss_mib\": %s,", json_num(max(peaks))),
      sprintf("\"fit_increment_mib\": %s,", json_num(max(incr))),
      sprintf("\"hwm_reset\": %s,", if (hwm_ok) "true" else "false"),
      sprintf("\"r_gc_max_used_mb\": %s,", json_num(max(gc_max))),
      sprintf("\"loglik\": %s,", json_num(as.numeric(logLik(fit)))),
      sprintf("\"fixef\": {%s},",
              paste(json_str(names(fe)), json_num(unname(fe)), sep = ": ", collapse = ", ")),
      sprintf("\"theta\": [%s],", paste(json_num(unname(th)), collapse = ", ")),
      sprintf("\"converged\": %s", if (is.null(fit@optinfo$conv$lme4$messages)) "true" else "false"),
      "}\n", sep = "")
}

main()
