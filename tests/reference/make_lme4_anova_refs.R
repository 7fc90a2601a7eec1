## Likelihood-ratio tables of lme4::anova() for nested linear mixed models.
## Run: Rscript tests/reference/make_lme4_anova_refs.R   (writes lme4_anova/anova.json)
## R 4.2.2, lme4 1.1-31 (Debian packages r-base-core r-cran-lme4 r-cran-jsonlite).
suppressMessages({library(lme4); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
tab <- function(a) lapply(as.list(as.data.frame(unclass(a))), function(x) unname(x))
cases <- list()
add <- function(id, data_name, calls, models) {
  a <- do.call(anova, models)
  cases[[id]] <<- list(id = id, dataset = data_name, calls = calls,
                       call = paste0("anova(", paste(names(calls), collapse = ", "), ")"),
                       rows = I(rownames(a)), table = tab(a))
}
m00 <- lmer(Reaction ~ 1 + (1 | Subject), sleepstudy)
m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
m1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
m2 <- lmer(Reaction ~ 1 + (Days | Subject), sleepstudy)
add("sleepstudy_random_slope", "sleepstudy",
    list(m0 = "lmer(Reaction ~ Days + (1 | Subject), sleepstudy)",
         m1 = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"), list(m0, m1))
add("sleepstudy_fixed_days", "sleepstudy",
    list(m2 = "lmer(Reaction ~ 1 + (Days | Subject), sleepstudy)",
         m1 = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"), list(m2, m1))
add("sleepstudy_three", "sleepstudy",
    list(m00 = "lmer(Reaction ~ 1 + (1 | Subject), sleepstudy)",
         m0 = "lmer(Reaction ~ Days + (1 | Subject), sleepstudy)",
         m1 = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"), list(m00, m0, m1))
p1 <- lmer(diameter ~ 1 + (1 | plate), Penicillin, REML = FALSE)
p2 <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = FALSE)
add("penicillin_sample", "Penicillin",
    list(p1 = "lmer(diameter ~ 1 + (1 | plate), Penicillin, REML = FALSE)",
         p2 = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = FALSE)"),
    list(p1, p2))
out <- list(R_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
            note = "lme4's anova() refits REML fits by ML (refit = TRUE) and orders models by npar.",
            cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE),
           file.path(here, "lme4_anova", "anova.json"))
cat("wrote", length(cases), "anova tables\n")
