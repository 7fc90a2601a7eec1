# broom.mixed's tidy() of lme4, lmerTest and nlme fits: the reference for multilevel's
# fit.tidy() (tests/test_tidy.py). Run from the repository root:
#   Rscript tests/reference/make_tidy_refs.R
# (R 4.2.2, lme4, lmerTest, nlme 3.1-162, broom.mixed 0.2.9.4). Writes tests/reference/tidy/*.json:
# one object per case with the call and, per tidy() call, its columns (NA as null).
suppressMessages({library(lmerTest); library(nlme); library(broom.mixed); library(jsonlite)})

frame <- function(x) {
  x <- as.data.frame(x)
  names(x) <- gsub(".", "_", names(x), fixed = TRUE)  # std.error -> std_error, as ours
  for (col in names(x)) if (is.factor(x[[col]])) x[[col]] <- as.character(x[[col]])
  x
}

write_case <- function(name, call, tables) {
  out <- list(versions = list(R = R.version.string,
                              broom.mixed = as.character(packageVersion("broom.mixed")),
                              lme4 = as.character(packageVersion("lme4")),
                              lmerTest = as.character(packageVersion("lmerTest")),
                              nlme = as.character(packageVersion("nlme"))),
              call = call, tables = lapply(tables, frame))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", dataframe = "columns",
                    pretty = TRUE), file.path("tests/reference/tidy", paste0(name, ".json")))
}

# lmerTest: Satterthwaite df and p-values in the fixed rows; variance parameters' intervals
# by likelihood profile when asked (Wald gives none, as lme4)
ss <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
write_case("sleepstudy_lmer", "lmer(Reaction ~ Days + (Days | Subject), sleepstudy) [lmerTest]",
  list(fixed = tidy(ss, effects = "fixed", conf.int = TRUE),
       fixed_90 = tidy(ss, effects = "fixed", conf.int = TRUE, conf.level = 0.9),
       ran_pars = tidy(ss, effects = "ran_pars", conf.int = TRUE),
       ran_pars_profile = tidy(ss, effects = "ran_pars", conf.int = TRUE,
                               conf.method = "profile"),
       ran_vals = tidy(ss, effects = "ran_vals", conf.int = TRUE),
       all = tidy(ss, effects = c("fixed", "ran_pars"), conf.int = FALSE)))

# three correlated terms: the order of the SDs and correlations, and their names
d <- sleepstudy
d$D2 <- d$Days^2 / 10
ss3 <- lmer(Reaction ~ Days + (Days + D2 | Subject), d)
write_case("sleepstudy_three_terms",
  "lmer(Reaction ~ Days + (Days + D2 | Subject), sleepstudy with D2 = Days^2 / 10)",
  list(ran_pars = tidy(ss3, effects = "ran_pars")))

# crossed factors: lme4's order of the grouping factors
pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
write_case("penicillin_crossed", "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)",
  list(ran_pars = tidy(pen, effects = "ran_pars"),
       ran_vals = tidy(pen, effects = "ran_vals", conf.int = TRUE)))

# glmer with the penalized least squares solved tightly and a fine optimizer end, so that
# lme4's optimum is the true one (its default tolerances stop ~1e-4 short on cbpp)
cb <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
            control = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                                   optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10)))
write_case("cbpp_glmer",
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)",
  list(fixed = tidy(cb, effects = "fixed", conf.int = TRUE),
       ran_pars = tidy(cb, effects = "ran_pars"),
       ran_vals = tidy(cb, effects = "ran_vals", conf.int = TRUE)))

# nlme's lme; its approximate intervals with Hessian steps of 1e-4 (nlme's default steps of
# 6e-6 are rounding-noisy, see make_lme_gls_results_refs.R)
ort <- lme(distance ~ age, Orthodont, random = ~ age | Subject,
           control = lmeControl(.relStep = 1e-4))
write_case("orthodont_lme", "lme(distance ~ age, Orthodont, random = ~ age | Subject)",
  list(fixed = tidy(ort, effects = "fixed", conf.int = TRUE),
       ran_pars = tidy(ort, effects = "ran_pars", conf.int = TRUE),
       ran_vals = tidy(ort, effects = "ran_vals")))
