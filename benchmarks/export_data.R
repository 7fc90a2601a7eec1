#!/usr/bin/env Rscript
# Export the benchmark data sets from R packages to compressed CSV files.
#
# Writes benchmarks/data/InstEval.csv.gz (lme4::InstEval),
# benchmarks/data/Chem97.csv.gz (mlmRev::Chem97) and
# benchmarks/data/sleepstudy.csv.gz (lme4::sleepstudy), benchmarks/data/Hsb82.csv.gz and
# benchmarks/data/ScotsSec.csv.gz (mlmRev).  Factor columns are written
# as their labels, so Python readers must treat them as categorical/strings.
#
# Usage (from the repository root or anywhere):
#   Rscript benchmarks/export_data.R [output_dir]

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) >= 1) {
  out_dir <- args[[1]]
} else {
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  script_dir <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
  out_dir <- file.path(script_dir, "data")
}
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

write_gz <- function(df, name) {
  path <- file.path(out_dir, paste0(name, ".csv.gz"))
  for (col in names(df)) {
    if (is.factor(df[[col]])) df[[col]] <- as.character(df[[col]])
  }
  con <- gzfile(path, "w", compression = 9)
  write.csv(df, con, row.names = FALSE, quote = TRUE)
  close(con)
  cat(sprintf("wrote %s (%d rows, %.0f KiB)\n", path, nrow(df), file.size(path) / 1024))
}

data("InstEval", package = "lme4")
write_gz(InstEval, "InstEval")

data("Chem97", package = "mlmRev")
write_gz(Chem97, "Chem97")

data("sleepstudy", package = "lme4")
write_gz(sleepstudy, "sleepstudy")

data("Hsb82", package = "mlmRev")
write_gz(Hsb82, "Hsb82")

data("ScotsSec", package = "mlmRev")
write_gz(ScotsSec, "ScotsSec")
