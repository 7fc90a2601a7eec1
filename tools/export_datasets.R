#!/usr/bin/env Rscript
## Export the data sets shipped in `multilevel.datasets` from the R packages that define them.
##
## Run from the repository root:
##     Rscript tools/export_datasets.R [OUTDIR]
## OUTDIR defaults to src/multilevel/datasets/data.  For each data set NAME this writes
##   NAME.csv (or NAME.csv.gz when the plain CSV would exceed ~1 MB) and NAME.json.
##
## CSV format: write.csv(row.names = FALSE); factors written as their level labels (quoted);
## doubles written with 15 significant digits when those read back to the same double, and
## with 17 otherwise (17 digits always round-trip under a correctly rounded parser such as
## Python's float()).  16 digits are never used: R's own parser (as.numeric) can be off by
## one ulp for 16-17 digit input, so it cannot certify a 16-digit string (Hsb82$cses has a
## value whose 16-digit form R reads back exactly but a correctly rounded parser does not).
## Integers are written as integers; NA as NA.  nlme's groupedData objects (Machines, Oxboys, Orthodont, Orange) are
## converted with as.data.frame() first; factor levels, and whether a factor is ordered, are
## kept exactly as R has them and recorded in NAME.json.
##
## Produced with R 4.2.2, lme4 1.1-31, nlme 3.1-162, mlmRev 1.0-8 (Debian packages
## r-base-core r-cran-lme4 r-cran-nlme r-cran-mlmrev).

suppressPackageStartupMessages({
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else file.path("src", "multilevel", "datasets", "data")
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
max_plain_bytes <- 1e6

## ---- metadata written from the R help pages --------------------------------------------------
## Each entry: package, title, description, reference, and a one-sentence description per column.
meta <- list(
  sleepstudy = list(
    package = "lme4",
    title = "Reaction times in a sleep deprivation study",
    description = paste(
      "Average reaction time per day (ms) for 18 subjects in a sleep deprivation study",
      "(the most sleep-deprived group, 3 hours time-in-bed, for the first 10 days).",
      "Days 0-1 were adaptation and training, day 2 was baseline; sleep deprivation started",
      "after day 2."),
    reference = paste(
      "Belenky, G., Wesensten, N. J., Thorne, D. R., Thomas, M. L., Sing, H. C.,",
      "Redmond, D. P., Russo, M. B. and Balkin, T. J. (2003) Patterns of performance",
      "degradation and restoration during sleep restriction and subsequent recovery: a sleep",
      "dose-response study. Journal of Sleep Research 12, 1-12."),
    columns = list(
      Reaction = "Average reaction time (ms) on that day.",
      Days = "Number of days of sleep deprivation (0 to 9).",
      Subject = "Subject number on which the observation was made.")),
  Dyestuff = list(
    package = "lme4",
    title = "Yield of dyestuff by batch",
    description = paste(
      "Yield of dyestuff (Naphthalene Black 12B) from 5 different preparations from each of",
      "6 different batches of an intermediate product (H-acid)."),
    reference = paste(
      "Davies, O. L. and Goldsmith, P. L. (eds) (1972) Statistical Methods in Research and",
      "Production, 4th ed., Oliver and Boyd, section 6.4."),
    columns = list(
      Batch = "Batch of the intermediate product from which the preparation was created.",
      Yield = "Yield of dyestuff from the preparation (grams of standard colour).")),
  Dyestuff2 = list(
    package = "lme4",
    title = "Simulated yield of dyestuff by batch",
    description = paste(
      "Constructed data with the same structure as Dyestuff (5 preparations from each of",
      "6 batches) but with a large residual variance relative to the batch variance, so that",
      "the between-batch mean square is less than the within-batch mean square."),
    reference = paste(
      "Box, G. E. P. and Tiao, G. C. (1973) Bayesian Inference in Statistical Analysis,",
      "Addison-Wesley, section 5.1.2."),
    columns = list(
      Batch = "Batch of the intermediate product from which the preparation was created.",
      Yield = "Yield of dyestuff from the preparation (grams of standard colour).")),
  Penicillin = list(
    package = "lme4",
    title = "Variation in penicillin testing",
    description = paste(
      "Six samples of penicillin were tested using the B. subtilis plate method on each of",
      "24 plates; the response is the diameter (mm) of the zone of inhibition of growth of",
      "the organism."),
    reference = paste(
      "Davies, O. L. and Goldsmith, P. L. (eds) (1972) Statistical Methods in Research and",
      "Production, 4th ed., Oliver and Boyd, section 6.6."),
    columns = list(
      diameter = "Diameter (mm) of the zone of inhibition of the growth of the organism.",
      plate = "Assay plate, with levels a to x.",
      sample = "Penicillin sample, with levels A to F.")),
  Pastes = list(
    package = "lme4",
    title = "Paste strength by batch and cask",
    description = paste(
      "Strength of a chemical paste product, whose quality depends on the delivery batch and",
      "the cask within the delivery: 3 casks from each of 10 batches, two assays per cask."),
    reference = paste(
      "Davies, O. L. and Goldsmith, P. L. (eds) (1972) Statistical Methods in Research and",
      "Production, 4th ed., Oliver and Boyd, section 6.5."),
    columns = list(
      strength = "Paste strength.",
      batch = "Delivery batch from which the sample was taken, with levels A to J.",
      cask = "Cask within the delivery batch from which the sample was chosen (a to c).",
      sample = "The sample of paste whose strength was assayed (batch:cask, A:a to J:c).")),
  Machines = list(
    package = "nlme",
    title = "Productivity scores for machines and workers",
    description = paste(
      "An experiment comparing three brands of machines used in an industrial process: six",
      "workers chosen at random each operated each machine three times, and an overall",
      "productivity score was recorded."),
    reference = paste(
      "Milliken, G. A. and Johnson, D. E. (1992) Analysis of Messy Data, Volume I: Designed",
      "Experiments, Chapman and Hall, London; Pinheiro, J. C. and Bates, D. M. (2000)",
      "Mixed-Effects Models in S and S-PLUS, Springer, New York (Appendix A.14)."),
    columns = list(
      Worker = "Ordered factor giving the unique identifier of the worker.",
      Machine = "Machine brand, with levels A, B and C.",
      score = "Productivity score, taking into account the number and quality of components.")),
  Oxboys = list(
    package = "nlme",
    title = "Heights of boys in Oxford",
    description = paste(
      "Heights of 26 boys from Oxford, England, each measured on nine occasions, versus a",
      "standardized age."),
    reference = paste(
      "Goldstein, H. (1987) Multilevel Models in Educational and Social Research, Griffin,",
      "London; Pinheiro, J. C. and Bates, D. M. (2000) Mixed-Effects Models in S and S-PLUS,",
      "Springer, New York (Appendix A.19)."),
    columns = list(
      Subject = "Ordered factor giving a unique identifier for each boy.",
      age = "Standardized age (dimensionless).",
      height = "Height of the boy (cm).",
      Occasion = "Ordered factor counting the measurement occasion (1 to 9), age made discrete.")),
  Orthodont = list(
    package = "nlme",
    title = "Growth curve data on an orthodontic measurement",
    description = paste(
      "The distance from the pituitary to the pterygomaxillary fissure, measured every two",
      "years on x-ray images, for 27 children (16 boys, 11 girls) from age 8 until age 14."),
    reference = paste(
      "Potthoff, R. F. and Roy, S. N. (1964) A generalized multivariate analysis of variance",
      "model useful especially for growth curve problems. Biometrika 51, 313-326;",
      "Pinheiro, J. C. and Bates, D. M. (2000) Mixed-Effects Models in S and S-PLUS,",
      "Springer, New York (Appendix A.17)."),
    columns = list(
      distance = "Distance from the pituitary to the pterygomaxillary fissure (mm).",
      age = "Age of the subject (years).",
      Subject = "Ordered factor for the subject (M01-M16, F01-F11), ordered by increasing average distance within sex.",
      Sex = "Sex of the subject, with levels Male and Female.")),
  Orange = list(
    package = "datasets",
    title = "Growth of orange trees",
    description = "Trunk circumference of five orange trees measured on seven occasions.",
    reference = paste(
      "Draper, N. R. and Smith, H. (1998) Applied Regression Analysis, 3rd ed., Wiley",
      "(exercise 24.N); Pinheiro, J. C. and Bates, D. M. (2000) Mixed-Effects Models in S and",
      "S-PLUS, Springer."),
    columns = list(
      Tree = "Ordered factor for the tree measured, ordered by increasing maximum diameter.",
      age = "Age of the tree (days since 1968-12-31).",
      circumference = "Trunk circumference (mm), probably at breast height.")),
  cbpp = list(
    package = "lme4",
    title = "Contagious bovine pleuropneumonia",
    description = paste(
      "Serological incidence of contagious bovine pleuropneumonia (CBPP) in zebu cattle in a",
      "follow-up survey of 15 commercial herds in the Boji district of Ethiopia, with blood",
      "samples collected quarterly; some data are missing (lost to follow-up)."),
    reference = paste(
      "Lesnoff, M., Laval, G., Bonnet, P., Abdicho, S., Workalemahu, A., Kifle, D.,",
      "Peyraud, A., Lancelot, R. and Thiaucourt, F. (2004) Within-herd spread of contagious",
      "bovine pleuropneumonia in Ethiopian highlands. Preventive Veterinary Medicine 64,",
      "27-40."),
    columns = list(
      herd = "Herd identifier (1 to 15).",
      incidence = "Number of new serological cases in the herd during the period.",
      size = "Herd size at the beginning of the period.",
      period = "Time period, with levels 1 to 4.")),
  Hsb82 = list(
    package = "mlmRev",
    title = "High School and Beyond - 1982",
    description = paste(
      "Mathematics achievement of 7185 students in 160 schools from the 1982 study",
      "'High School and Beyond'; one row per student."),
    reference = paste(
      "Raudenbush, S. W. and Bryk, A. S. (2002) Hierarchical Linear Models: Applications and",
      "Data Analysis Methods, 2nd ed., Sage (chapter 4)."),
    columns = list(
      school = "Ordered factor designating the school the student attends.",
      minrty = "Whether the student belongs to a minority group (No, Yes).",
      sx = "Sex of the student, with levels Male and Female.",
      ses = "Socio-economic status score of the student.",
      mAch = "Mathematics achievement score.",
      meanses = "Mean ses of the student's school.",
      sector = "Sector of the school, with levels Public and Catholic.",
      cses = "ses centred at the school mean (ses - meanses).")),
  Exam = list(
    package = "mlmRev",
    title = "Exam scores from inner London",
    description = "Exam scores of 4059 students from 65 schools in Inner London.",
    reference = paste(
      "Goldstein, H., Rasbash, J., et al. (1993) A multilevel analysis of school examination",
      "results. Oxford Review of Education 19, 425-433."),
    columns = list(
      school = "School identifier.",
      normexam = "Normalized exam score.",
      schgend = "School gender, with levels mixed, boys and girls.",
      schavg = "School average of the intake score.",
      vr = "Student's verbal reasoning score band at intake (bottom 25%, mid 50%, top 25%).",
      intake = "Band of the student's intake score (bottom 25%, mid 50%, top 25%).",
      standLRT = "Standardised London Reading Test score.",
      sex = "Sex of the student, with levels F and M.",
      type = "School type, with levels Mxd (mixed) and Sngl (single sex).",
      student = "Student identifier within school.")),
  Chem97 = list(
    package = "mlmRev",
    title = "Scores on A-level Chemistry in 1997",
    description = paste(
      "Scores on the 1997 A-level Chemistry examination in Britain for 31022 students grouped",
      "into schools within local education authorities, with demographic and pre-test",
      "information."),
    reference = paste(
      "Yang, M., Fielding, A. and Goldstein, H. (2002) Multilevel ordinal models for",
      "examination grades (submitted to Statistical Modelling)."),
    columns = list(
      lea = "Local Education Authority identifier.",
      school = "School identifier.",
      student = "Student identifier.",
      score = "Point score on A-level Chemistry in 1997.",
      gender = "Gender of the student, with levels M and F.",
      age = "Age in months, centred at 222 months (18.5 years).",
      gcsescore = "Average GCSE score of the student.",
      gcsecnt = "Average GCSE score of the student, centred at its mean.")),
  InstEval = list(
    package = "lme4",
    title = "University lecture/instructor evaluations by students at ETH",
    description = paste(
      "Anonymized university lecture evaluations by students at ETH Zurich; each row is one",
      "student's rating of one lecture (of one lecturer, in one past semester).  A medium-sized",
      "example of a partially crossed mixed-effects model."),
    reference = "Data provided with the lme4 package (ETH Zurich, anonymized by the lme4 authors).",
    columns = list(
      s = "Student identifier (2972 students).",
      d = "Lecturer (professor) identifier (1128 lecturers, codes between 1 and 2160).",
      studage = "Ordered factor: the student's semester number of enrolment (2 < 4 < 6 < 8).",
      lectage = "Ordered factor: how many semesters back the rated lecture took place (1 to 6).",
      service = "Whether the lecture was held for a department other than the lecturer's own (0, 1).",
      dept = "Department of the lecture (random code, 14 levels).",
      y = "Rating of the lecture, from 1 (poor) to 5 (very good)."))
)

## ---- helpers ---------------------------------------------------------------------------------
pkg_version <- function(pkg) utils::packageDescription(pkg)$Version

get_dataset <- function(name, pkg) {
  env <- new.env()
  data(list = name, package = pkg, envir = env)
  env[[name]]
}

## 15 significant digits where they read back to the same double, else 17 (see the header).
format_double <- function(x) {
  out <- rep(NA_character_, length(x))
  ok <- !is.na(x)
  s15 <- sprintf("%.15g", x[ok])
  s17 <- sprintf("%.17g", x[ok])
  out[ok] <- ifelse(as.numeric(s15) == x[ok], s15, s17)
  out
}

column_type <- function(v) {
  if (is.ordered(v)) "ordered factor"
  else if (is.factor(v)) "factor"
  else if (is.integer(v)) "integer"
  else if (is.double(v)) "numeric"
  else stop("unsupported column type: ", class(v)[1])
}

export_one <- function(name, m) {
  obj <- get_dataset(name, m$package)
  r_class <- class(obj)
  df <- as.data.frame(obj)          # drops the nlme groupedData classes, keeps the columns
  class(df) <- "data.frame"
  stopifnot(identical(names(m$columns), names(df)))
  types <- vapply(df, column_type, "")
  out <- df
  for (col in names(df)) {
    v <- df[[col]]
    out[[col]] <- if (is.factor(v)) as.character(v)
                  else if (is.integer(v)) as.character(v)
                  else format_double(v)
  }
  quote_cols <- which(types %in% c("factor", "ordered factor"))
  if (length(quote_cols) == 0) quote_cols <- FALSE
  tmp <- tempfile(fileext = ".csv")
  write.csv(out, tmp, row.names = FALSE, quote = quote_cols, na = "NA")
  if (file.size(tmp) > max_plain_bytes) {
    file_name <- paste0(name, ".csv.gz")
    con <- gzfile(file.path(outdir, file_name), "w", compression = 9)
    write.csv(out, con, row.names = FALSE, quote = quote_cols, na = "NA")
    close(con)
    unlink(file.path(outdir, paste0(name, ".csv")))
  } else {
    file_name <- paste0(name, ".csv")
    file.copy(tmp, file.path(outdir, file_name), overwrite = TRUE)
    unlink(file.path(outdir, paste0(name, ".csv.gz")))
  }
  unlink(tmp)
  columns <- lapply(names(df), function(col) {
    v <- df[[col]]
    entry <- list(name = col, type = unname(types[[col]]), description = m$columns[[col]])
    if (is.factor(v)) entry$levels <- I(levels(v))
    entry$n_missing <- sum(is.na(v))
    entry
  })
  notes <- if (!identical(r_class, "data.frame"))
    paste0("R class c(", paste0('"', r_class, '"', collapse = ", "),
           "); converted with as.data.frame() before export.") else NULL
  info <- list(
    name = name,
    title = m$title,
    source = paste0(m$package, "::", name),
    package = m$package,
    package_version = pkg_version(m$package),
    r_version = paste(R.version$major, R.version$minor, sep = "."),
    r_class = I(r_class),
    file = file_name,
    nrow = nrow(df),
    ncol = ncol(df),
    description = m$description,
    reference = m$reference,
    columns = columns,
    notes = notes
  )
  writeLines(toJSON(info, auto_unbox = TRUE, pretty = TRUE, null = "null", digits = NA),
             file.path(outdir, paste0(name, ".json")), useBytes = TRUE)
  cat(sprintf("%-10s %6d rows %2d cols -> %s\n", name, nrow(df), ncol(df), file_name))
}

for (name in names(meta)) export_one(name, meta[[name]])
