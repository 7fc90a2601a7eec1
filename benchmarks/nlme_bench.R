# Time nlme's gls(), lme() and nlme() on the benchmark cases of benchmarks/nlme_cases.py.
#
# Usage: Rscript benchmarks/nlme_bench.R --cases CASES.json [--budget SECONDS]
#
# CASES.json (written by nlme_bench.py) is a list of objects with case_id, data (CSV path),
# levels (.levels.json path or ""), factors (column names), r_call (evaluated with nlme attached
# and the data frame bound to `data`), repeats, and warmup (TRUE: one untimed fit, not timed).
# Each case's data are read and its factors made before timing; the warm-up cases are fitted
# once, untimed, first (so lazily loaded code is not charged to a timed fit). Only the call is
# timed; logLik, coefficients, sigma and the structures' parameters are read after the clock.
# Peak memory as in lme4_bench.R (bench_common.R's time_fits).
#
# Output: one JSON object on stdout: versions and, per case, the timing record or its error.

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
  source(file.path(dirname(script[[1]]), "bench_common.R"))
})

# The case's data: factors in the level file's order (ordered where R's data set has them
# ordered), else numeric-looking labels in numeric order.
case_data <- function(case) {
  meta <- if (nzchar(case$levels)) fromJSON(case$levels) else list(levels = list())
  df <- read_data(case$data, as.character(case$factors), meta$levels, check_labels = TRUE)
  for (f in names(meta$ordered)) {
    if (isTRUE(meta$ordered[[f]]) && f %in% names(df)) {
      df[[f]] <- factor(df[[f]], levels = levels(df[[f]]), ordered = TRUE)
    }
  }
  df
}

struct_coef <- function(s) {
  if (is.null(s)) return(I(numeric(0)))
  I(unname(as.numeric(coef(s, unconstrained = FALSE))))
}

summary_of <- function(fit) {
  fe <- if (inherits(fit, "gls")) coef(fit) else fixef(fit)
  ms <- fit$modelStruct
  list(loglik = as.numeric(logLik(fit)), fixef = as.list(fe), sigma = fit$sigma,
       variance_parameters = struct_coef(ms$varStruct),
       correlation_parameters = struct_coef(ms$corStruct))
}

time_case <- function(case, budget) {
  data <- case_data(case)
  expr <- parse(text = case$r_call)[[1]]
  warns <- character(0)
  fit_once <- function() {
    withCallingHandlers(
      eval(expr, list(data = data), globalenv()),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
  }
  r <- tryCatch(time_fits(fit_once, max(1L, as.integer(case$repeats)), budget),
                error = function(e) e)
  if (inherits(r, "error")) return(list(error = conditionMessage(r)))
  c(list(times = I(r$times), median = median(r$times), cpu_times = I(r$cpu),
         peak_rss_mib = max(r$peaks), fit_increment_mib = max(r$incr), hwm_reset = r$hwm_ok,
         r_gc_max_used_mb = max(r$gc_max), warnings = I(unique(warns)),
         n_warnings = length(warns)),
    summary_of(r$fit))
}

main <- function() {
  a <- parse_key_values(commandArgs(trailingOnly = TRUE), list(budget = "Inf"))
  if (is.null(a$cases)) stop("--cases is required")
  budget <- as.numeric(a$budget)
  cases <- fromJSON(a$cases, simplifyVector = FALSE)
  for (case in cases) {
    if (isTRUE(case$warmup)) {
      data <- case_data(case)
      try(suppressWarnings(eval(parse(text = case$r_call)[[1]], list(data = data), globalenv())),
          silent = TRUE)
    }
  }
  out <- list()
  for (case in cases) {
    if (isTRUE(case$warmup)) next
    out[[case$case_id]] <- time_case(case, budget)
  }
  res <- list(library = "nlme", version = as.character(packageVersion("nlme")),
              r_version = paste(R.version$major, R.version$minor, sep = "."),
              blas = sessionInfo()$BLAS, cases = out)
  cat(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", na = "null"), "\n", sep = "")
}

main()
