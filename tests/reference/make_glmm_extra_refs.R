#!/usr/bin/env Rscript
## Four more classic GLMM data sets as reference fits, lme4 with its PIRLS solved tightly
## (control = glmerControl(tolPwrss = 1e-12), as in make_glmm_tight_refs.R).
##
## Usage (from anywhere; paths are relative to this script's folder):
##     Rscript tests/reference/make_glmm_extra_refs.R
## GLMM_EXTRA_REFS_ONLY=id1,id2 runs a subset (the cases.json then lists that subset only).
##
## Cases (every call with control = glmerControl(tolPwrss = 1e-12) added)
##   bacteria     glmer(y ~ trt + I(week > 2) + (1 | ID), family = binomial, data = MASS::bacteria)
##   epil         glmer(y ~ lbase*trt + lage + V4 + (1 | subject), family = poisson, data = MASS::epil)
##   salamanders  glmer(count ~ spp * mined + (1 | site), family = poisson, data = glmmTMB::Salamanders)
##   guimmun      glmer(immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural +
##                      pcInd81 + (1 | mom) + (1 | comm), family = binomial, data = mlmRev::guImmun)
## The extraction (run_case, extract_glmer, capture) is taken from make_glmm_refs.R itself, as
## make_glmm_tight_refs.R does, so the JSON fields are those of glmm/<id>.json (no timing),
## plus tolPwrss_requested and tolPwrss (read back from the fit; the script stops if it is not
## 1e-12).  lme4's convergence warnings are kept in fit_warnings and convergence.
##
## Writes
##   glmm_extra/<id>.json, glmm_extra/cases.json
##   data/{bacteria, epil, Salamanders, guImmun}.csv (+ .levels.json): only the columns the
##   model uses plus its grouping columns, in the package's column order, factor levels in
##   R's order (Salamanders$site is an ordered factor, as shipped).
##
## Needs: lme4, MASS, glmmTMB (for its Salamanders data only), mlmRev, jsonlite (+ python3
## for the round-trip check).  About a minute; guimmun alone takes ~30 s.

suppressPackageStartupMessages({
    library(lme4)
    library(MASS)
    library(mlmRev)
    library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()
out_dir <- file.path(here, "glmm_extra")
data_dir <- file.path(here, "data")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

R_VERSION <- R.version.string
VERSIONS <- list(R = R_VERSION,
                 lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")),
                 MASS = as.character(packageVersion("MASS")),
                 glmmTMB = as.character(packageVersion("glmmTMB")),
                 mlmRev = as.character(packageVersion("mlmRev")),
                 jsonlite = as.character(packageVersion("jsonlite")))
source(file.path(here, "ref_helpers.R"))  # number formatting, data set writing

TOL_TIGHT <- 1e-12

## ---------------------------------------------------------------------------------
## The extraction code of make_glmm_refs.R (its definitions make_gamma_sim ... run_case)
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
needed <- c("datasets", "SIMULATIONS", "capture", "run_case", "extract_glmer")
if (!all(ok <- vapply(needed, exists, TRUE, envir = G, inherits = FALSE)))
    stop("make_glmm_refs.R no longer defines: ", paste(needed[!ok], collapse = ", "))
G$timing_block <- function(expr_text, env, n = 3L) NULL   # no timings in this set
G$SIMULATIONS <- list()                                   # no simulated data here

## ---------------------------------------------------------------------------------
## Data sets: the used columns (+ grouping columns) of each package's data frame
## ---------------------------------------------------------------------------------
keep <- function(df, cols) {
    out <- df[, cols, drop = FALSE]
    rownames(out) <- NULL
    out
}
G$datasets <- list(
    bacteria = list(df = keep(MASS::bacteria, c("y", "week", "ID", "trt")),
                    source = "MASS::bacteria columns y, week, ID, trt (ap, hilo dropped)",
                    notes = "y: factor n, y (success = y); trt: placebo, drug, drug+; week integer; ID: 50 children."),
    epil = list(df = keep(MASS::epil, c("y", "trt", "V4", "subject", "lbase", "lage")),
                source = "MASS::epil columns y, trt, V4, subject, lbase, lage (base, age, period dropped)",
                notes = paste0("trt: placebo, progabide; V4 integer 0/1 (fourth period); subject is an INTEGER column ",
                               "(1..59), which glmer turns into a factor for (1 | subject); lbase, lage as shipped ",
                               "(centred logs).")),
    Salamanders = list(df = keep(glmmTMB::Salamanders, c("site", "mined", "spp", "count")),
                       source = "glmmTMB::Salamanders columns site, mined, spp, count",
                       notes = paste0("site is an ORDERED factor as shipped (23 levels, R-1 < R-2 < ...), used only as ",
                                      "a grouping factor; mined levels yes, no (NOT alphabetical: the coefficient is ",
                                      "minedno); spp levels GP, PR, DM, EC-A, EC-L, DES-L, DF (not alphabetical).")),
    guImmun = list(df = keep(mlmRev::guImmun, c("immun", "kid2p", "mom25p", "ord", "ethn", "momEd", "husEd",
                                               "momWork", "rural", "pcInd81", "mom", "comm")),
                   source = "mlmRev::guImmun without the kid column (one level per row)",
                   notes = paste0("2159 children, 1595 mothers (mom) in 161 communities (comm); mom and comm levels ",
                                  "in R's order (character sort of the codes, not numeric); immun and the binary ",
                                  "covariates have levels N, Y."))
)

write_all_datasets <- function() {
    for (nm in names(G$datasets)) {
        ds <- G$datasets[[nm]]
        write_dataset(nm, ds$df, ds$source, ds$notes)
    }
}

## ---------------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------------
CTL <- sprintf("control = glmerControl(tolPwrss = %g)", TOL_TIGHT)
TIGHT_NOTE <- "TIGHT PIRLS: control = glmerControl(tolPwrss = 1e-12) (lme4's default is 1e-7). "
GUIMMUN <- paste0("immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + ",
                  "(1 | mom) + (1 | comm)")
cases <- list(
    list(id = "bacteria", dataset = "bacteria", data_name = "bacteria",
         formula = "y ~ trt + I(week > 2) + (1 | ID)",
         call = paste0("glmer(y ~ trt + I(week > 2) + (1 | ID), family = binomial, data = bacteria, ", CTL, ")"),
         quad = "ID",
         notes = paste0("Binary factor response (n, y; success = y). A logical term: R names its coefficient ",
                        "`I(week > 2)TRUE`. The model of MASS's glmmPQL example, fitted by Laplace.")),
    list(id = "epil", dataset = "epil", data_name = "epil",
         formula = "y ~ lbase*trt + lage + V4 + (1 | subject)",
         call = paste0("glmer(y ~ lbase*trt + lage + V4 + (1 | subject), family = poisson, data = epil, ", CTL, ")"),
         quad = NULL,
         notes = paste0("Seizure counts, 59 subjects x 4 periods. subject is an integer column (glmer makes it a ",
                        "factor); no marginal_quadrature because make_glmm_refs.R's integrator loops over the ",
                        "levels of a factor grouping column.")),
    list(id = "salamanders", dataset = "Salamanders", data_name = "Salamanders",
         formula = "count ~ spp * mined + (1 | site)",
         call = paste0("glmer(count ~ spp * mined + (1 | site), family = poisson, data = Salamanders, ", CTL, ")"),
         quad = "site",
         notes = paste0("Poisson counts, 644 rows, 23 sites (an ordered factor, used only for grouping); 14 fixed ",
                        "effects (spp x mined). With the tight PIRLS lme4 warns of a max|grad| just above its ",
                        "0.002 tolerance: its optimum is a little short (see convergence, fit_warnings).")),
    list(id = "guimmun", dataset = "guImmun", data_name = "guImmun",
         formula = GUIMMUN,
         call = paste0("glmer(", GUIMMUN, ", family = binomial, data = guImmun, ", CTL, ")"),
         quad = NULL,
         notes = paste0("Guatemalan child immunization (Rodriguez & Goldman): 2159 children, 1595 mothers nested in ",
                        "161 communities, mostly one or two children per mother. lme4 (~30 s) does NOT converge: ",
                        "it warns of a large max|grad| (see fit_warnings, convergence), and a fit that reaches ",
                        "a higher log-likelihood exists; compare against this case with that in mind."))
)
cases <- lapply(cases, function(cs) {
    cs$engine <- "glmer"; cs$nagq <- 1L
    cs$control <- sprintf("glmerControl(tolPwrss = %g); otherwise glmerControl() defaults (optimizer c(\"bobyqa\", \"Nelder_Mead\")).", TOL_TIGHT)
    cs$notes <- paste0(TIGHT_NOTE, cs$notes)
    cs
})

only <- Sys.getenv("GLMM_EXTRA_REFS_ONLY")
if (nzchar(only)) cases <- Filter(function(cs) cs$id %in% strsplit(only, ",")[[1]], cases)

## ---------------------------------------------------------------------------------
## Fitting
## ---------------------------------------------------------------------------------
results <- list()
for (cs in cases) {
    cat(sprintf("%-14s ", cs$id))
    t0 <- proc.time()[["elapsed"]]
    r <- G$run_case(cs)
    el <- proc.time()[["elapsed"]] - t0
    r$tolerance <- "tight"
    r$tolPwrss_requested <- TOL_TIGHT
    if (r$status == "ok") {
        r$tolPwrss <- r$devcomp_cmp$tolPwrss
        if (!isTRUE(all.equal(r$tolPwrss, TOL_TIGHT, tolerance = 0)))
            stop(cs$id, ": the fit used tolPwrss ", r$tolPwrss, ", not ", TOL_TIGHT)
    }
    results[[cs$id]] <- r
    cat(r$status, if (r$status == "ok") sprintf(" logLik %.10f  max|grad| %.3g", r$logLik,
                                                r$convergence$max_abs_grad) else r$error,
        sprintf(" (%.1f s)", el),
        if (length(r$fit_warnings)) paste0(" warnings: ", paste(r$fit_warnings, collapse = " | ")) else "",
        if (length(r$fit_messages)) paste0(" messages: ", paste(r$fit_messages, collapse = " | ")) else "",
        "\n")
}

write_verified_outputs(results)

case_index <- lapply(cases, function(cs) {
    r <- results[[cs$id]]
    list(id = cs$id, dataset = cs$dataset, engine = cs$engine, call = cs$call, formula = cs$formula,
         family = r$family, link = r$link, nagq = cs$nagq, tolerance = "tight", tolPwrss = r$tolPwrss,
         logLik = r$logLik, max_abs_grad = r$convergence$max_abs_grad,
         notes = cs$notes, status = r$status, fit_warnings = I(as.character(r$fit_warnings)))
})
writeLines(toJSON(as_json_numbers(case_index), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
                  null = "null", na = "null", digits = NA),
           file.path(out_dir, "cases.json"))

cat("R:", R_VERSION, " lme4:", VERSIONS$lme4, "\n")
cat("wrote", length(results), "cases to", out_dir, "and", length(written_datasets), "data set(s) to", data_dir, "\n")
