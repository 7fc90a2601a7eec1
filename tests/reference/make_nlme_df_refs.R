## Between-within ("containment") denominator df of nlme::lme fixed-effects t tests.
## Run: Rscript tests/reference/make_nlme_df_refs.R   (writes nlme_df/between_within.json)
## R 4.2.2, nlme 3.1-162 (Debian r-cran-nlme).
suppressMessages({library(nlme); library(lme4); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
cases <- list(
  list(id = "orthodont", dataset = "Orthodont", formula = "distance ~ age * Sex + (1 | Subject)",
       call = "lme(distance ~ age * Sex, random = ~ 1 | Subject, data = Orthodont)"),
  list(id = "sleepstudy_slope", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
       call = "lme(Reaction ~ Days, random = ~ Days | Subject, data = sleepstudy)"),
  list(id = "hsb", dataset = "Hsb82", formula = "mAch ~ meanses * cses + (cses | school)",
       call = "lme(mAch ~ meanses * cses, random = ~ cses | school, data = mlmRev::Hsb82)"),
  list(id = "oats_nested", dataset = "Oats", formula = "yield ~ nitro + Variety + (1 | Block/Variety)",
       call = "lme(yield ~ nitro + Variety, random = ~ 1 | Block/Variety, data = Oats)")
)
out <- list()
for (cs in cases) {
  m <- eval(parse(text = cs$call))
  tt <- summary(m)$tTable
  out[[cs$id]] <- c(cs, list(terms = I(rownames(tt)), df = unname(tt[, "DF"])))
}
writeLines(toJSON(list(R_version = R.version.string, nlme_version = as.character(packageVersion("nlme")),
                       cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "nlme_df", "between_within.json"))
cat("wrote", length(out), "cases\n")
