# Helpers shared by lme4_bench.R (lmer) and glmm_bench.R (glmer), which source this file from
# the folder they are in.

# Command-line options "--key value" in pairs over `defaults` (a named list of strings).
parse_key_values <- function(args, defaults) {
  out <- defaults
  i <- 1
  while (i <= length(args)) {
    key <- sub("^--", "", args[[i]])
    if (i + 1 > length(args)) stop("missing value for ", args[[i]])
    out[[key]] <- args[[i + 1]]
    i <- i + 2
  }
  out
}

# R's factor() order of the labels, but numeric order for numeric labels.
default_levels <- function(lab) {
  num <- suppressWarnings(as.numeric(lab))
  if (all(!is.na(num))) unique(lab[order(num)]) else sort(unique(lab))
}

# Read a CSV file and make the `factors` columns factors: levels from `levels` (a named list)
# where given, else default_levels().  With check_labels, a label outside its levels is an error.
read_data <- function(path, factors, levels = list(), check_labels = FALSE) {
  df <- read.csv(path, stringsAsFactors = FALSE)
  for (f in factors) {
    lab <- as.character(df[[f]])
    lev <- levels[[f]]
    if (is.null(lev)) lev <- default_levels(lab)
    if (check_labels && any(!lab %in% lev)) stop("column ", f, " has labels outside its levels")
    df[[f]] <- factor(lab, levels = lev)
  }
  df
}

# A field of /proc/self/status (kB) in MiB, NA where it cannot be read.
status_mib <- function(field) {
  lines <- tryCatch(readLines("/proc/self/status"), error = function(e) character())
  line <- grep(paste0("^", field, ":"), lines, value = TRUE)
  if (!length(line)) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", line[[1]])) / 1024
}

# Reset the process's peak-RSS mark (VmHWM); FALSE where the kernel does not allow it.
reset_peak <- function() {
  tryCatch({
    cat("5", file = "/proc/self/clear_refs")
    TRUE
  }, error = function(e) FALSE, warning = function(w) FALSE)
}

# Time up to `repeats` calls of fit_once() (at least one; stop once they took `budget` seconds
# in total).  Before each call the previous fit is dropped, R's gc() statistics and the peak-RSS
# mark are reset.  Returns the last fit and, per call, the wall time, CPU time (user + system),
# the peak RSS during the call (VmHWM), that peak minus the RSS just before it, and R's gc()
# "max used" (Mb, Ncells + Vcells); hwm_ok says whether every reset of the peak mark worked.
time_fits <- function(fit_once, repeats, budget) {
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
    fit <- fit_once()
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
  list(fit = fit, times = times, cpu = cpu, peaks = peaks, incr = incr, gc_max = gc_max,
       hwm_ok = hwm_ok)
}
