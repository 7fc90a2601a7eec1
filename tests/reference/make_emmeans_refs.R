# emmeans's estimated marginal means, contrasts and trends on lmer, glmer, lme and gls fits: the
# reference for multilevel.emmeans / multilevel.slopes (tests/test_emmeans.py). Run from the
# repository root: Rscript tests/reference/make_emmeans_refs.R
# (R 4.2.2, emmeans 1.8.4-1, lme4, lmerTest, pbkrtest, nlme, coda, mlmRev for the Exam data).
suppressMessages({
  library(lme4); library(nlme); library(emmeans); library(jsonlite)
  library(lmerTest); library(pbkrtest)
})
# emmeans's own default for lmer is Kenward-Roger (up to 3000 rows); ours is Satterthwaite, so
# every lmer case says which it uses
emm_options(lmerTest.limit = 1e6, pbkrtest.limit = 1e6, lmer.df = "satterthwaite")

# one row per estimate, in our column names: the grid's variables, then estimate, std_error,
# df, conf_low, conf_high, statistic, p_value (and null on the response scale)
tidy_summary <- function(x) {
  s <- tidy_table(x)
  list(table = s, L = unname(x@linfct))
}
tidy_table <- function(x) {
  s <- as.data.frame(summary(x, infer = c(TRUE, TRUE)))
  est <- attr(summary(x), "estName")
  names(s)[names(s) == est] <- "estimate"
  rename <- c(SE = "std_error", lower.CL = "conf_low", upper.CL = "conf_high",
              asymp.LCL = "conf_low", asymp.UCL = "conf_high", t.ratio = "statistic",
              z.ratio = "statistic", p.value = "p_value")
  for (old in names(rename)) names(s)[names(s) == old] <- rename[[old]]
  for (v in names(s)) if (is.factor(s[[v]])) s[[v]] <- as.character(s[[v]])
  s
}

Orthodont <- as.data.frame(nlme::Orthodont)
Orthodont$Subject <- factor(as.character(Orthodont$Subject))
Machines <- as.data.frame(nlme::Machines)
Machines$Worker <- factor(as.character(Machines$Worker))
data(Exam, package = "mlmRev")

ortho <- lmer(distance ~ age * Sex + (1 | Subject), Orthodont)
cbpp_fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                  family = binomial)
cbpp_pois <- glmer(incidence ~ period + (1 | herd), cbpp, family = poisson)
machines <- lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), Machines)
machines_lme <- lme(score ~ Machine, Machines, random = ~ 1 | Worker / Machine)
ortho_lme_ml <- lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject, method = "ML")
ortho_gls <- gls(distance ~ age * Sex, Orthodont)
ortho_lme_ar1 <- lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject,
                     correlation = corAR1())
ortho_gls_varident <- gls(distance ~ age * Sex, Orthodont, weights = varIdent(form = ~ 1 | Sex))
exam <- lmer(normexam ~ standLRT + sex + vr + (1 | school), Exam)
# sex x schgend has empty cells (no girls in boys' schools): the weights differ
exam2 <- lmer(normexam ~ standLRT + sex + vr + schgend + (1 | school), Exam)
ortho_quad <- lmer(distance ~ Sex * age + I(age^2) + (1 | Subject), Orthodont)

em <- function(...) tidy_summary(emmeans(...))
ct <- function(x, ...) tidy_summary(contrast(x, ...))

machines_kr <- emmeans(machines, ~ Machine, lmer.df = "kenward-roger")
machines_sat <- emmeans(machines, ~ Machine, lmer.df = "satterthwaite")
cbpp_resp <- emmeans(cbpp_fit, ~ period, type = "response")
ortho_sex <- emmeans(ortho, ~ Sex)
ortho_trend <- emtrends(ortho, ~ Sex, var = "age")

cases <- list(
  ortho_sex = em(ortho, ~ Sex),
  ortho_sex_kr = em(ortho, ~ Sex, lmer.df = "kenward-roger"),
  ortho_grand = em(ortho, ~ 1),
  ortho_sex_at = em(ortho, ~ Sex, at = list(age = c(8, 14))),
  ortho_sex_by_age = em(ortho, ~ Sex | age, at = list(age = c(8, 14))),
  ortho_sex_pairs = ct(ortho_sex, "pairwise"),
  ortho_sex_revpairs_by_age = ct(emmeans(ortho, ~ Sex | age, at = list(age = c(8, 14))),
                                 "revpairwise"),
  ortho_trend = tidy_summary(ortho_trend),
  ortho_trend_pairs = ct(ortho_trend, "pairwise"),
  cbpp_link = em(cbpp_fit, ~ period),
  cbpp_response = tidy_summary(cbpp_resp),
  cbpp_odds_ratios = ct(cbpp_resp, "pairwise"),
  cbpp_odds_ratios_holm = ct(cbpp_resp, "pairwise", adjust = "holm"),
  cbpp_link_pairs = ct(emmeans(cbpp_fit, ~ period), "pairwise"),
  cbpp_poisson_response = em(cbpp_pois, ~ period, type = "response"),
  cbpp_poisson_ratios = ct(emmeans(cbpp_pois, ~ period, type = "response"), "trt.vs.ctrl"),
  machines_kr = tidy_summary(machines_kr),
  machines_sat = tidy_summary(machines_sat),
  machines_kr_tukey = ct(machines_kr, "pairwise"),
  machines_kr_holm = ct(machines_kr, "pairwise", adjust = "holm"),
  machines_kr_bonferroni = ct(machines_kr, "pairwise", adjust = "bonferroni"),
  machines_kr_sidak = ct(machines_kr, "pairwise", adjust = "sidak"),
  machines_kr_none = ct(machines_kr, "pairwise", adjust = "none"),
  machines_kr_trt = ct(machines_kr, "trt.vs.ctrl"),
  machines_kr_consec_holm = ct(machines_kr, "consec", adjust = "holm"),
  machines_kr_custom = ct(machines_kr, list(A_vs_BC = c(1, -0.5, -0.5), B_vs_C = c(0, 1, -1))),
  machines_sat_tukey = ct(machines_sat, "pairwise"),
  machines_lme = em(machines_lme, ~ Machine),
  machines_lme_tukey = ct(emmeans(machines_lme, ~ Machine), "pairwise"),
  ortho_lme_ml = em(ortho_lme_ml, ~ Sex),
  ortho_gls = em(ortho_gls, ~ Sex, mode = "df.error"),
  ortho_lme_ar1 = em(ortho_lme_ar1, ~ Sex),
  ortho_lme_ar1_pairs = ct(emmeans(ortho_lme_ar1, ~ Sex | age, at = list(age = c(8, 14))),
                           "pairwise"),
  ortho_gls_varident = em(ortho_gls_varident, ~ Sex, mode = "df.error"),
  exam_vr = em(exam, ~ vr),
  exam_vr_kr = em(exam, ~ vr, lmer.df = "kenward-roger"),
  exam_sex_by_vr = em(exam, ~ sex | vr),
  exam_vr_proportional = em(exam, ~ vr, weights = "proportional"),
  exam_vr_pairs = ct(emmeans(exam, ~ vr), "pairwise", adjust = "bonferroni"),
  exam_trend = tidy_summary(emtrends(exam, ~ sex, var = "standLRT")),
  exam2_equal = em(exam2, ~ vr),
  exam2_proportional = em(exam2, ~ vr, weights = "proportional"),
  exam2_outer = em(exam2, ~ vr, weights = "outer"),
  exam2_cells = em(exam2, ~ vr, weights = "cells"),
  exam2_flat = em(exam2, ~ vr, weights = "flat"),
  # a slope of a quadratic: emtrends's forward difference over 0.001 of age's range
  ortho_quad_trend = tidy_summary(emtrends(ortho_quad, ~ Sex, var = "age")),
  ortho_quad_trend_at = tidy_summary(emtrends(ortho_quad, ~ Sex | age, var = "age",
                                              at = list(age = c(8, 14))))
)
calls <- list(
  ortho = "lmer(distance ~ age * Sex + (1 | Subject), Orthodont)",
  cbpp = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)",
  cbpp_poisson = "glmer(incidence ~ period + (1 | herd), cbpp, poisson)",
  machines = "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), Machines)",
  machines_lme = "lme(score ~ Machine, Machines, random = ~ 1 | Worker / Machine)",
  ortho_lme_ml = "lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject, method = 'ML')",
  ortho_gls = "gls(distance ~ age * Sex, Orthodont); emmeans(..., mode = 'df.error')",
  ortho_lme_ar1 = "lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject, correlation = corAR1())",
  ortho_gls_varident = paste("gls(distance ~ age * Sex, Orthodont, weights = varIdent(form = ~ 1 | Sex));",
                             "emmeans(..., mode = 'df.error')"),
  exam = "lmer(normexam ~ standLRT + sex + vr + (1 | school), mlmRev::Exam)",
  exam2 = "lmer(normexam ~ standLRT + sex + vr + schgend + (1 | school), mlmRev::Exam)",
  ortho_quad = "lmer(distance ~ Sex * age + I(age^2) + (1 | Subject), Orthodont)"
)
# the highest-density interval of posterior draws (emmeans summarises Bayesian fits with it)
hpd_x <- qchisq((1:1000) / 1001, 3)
hpd <- list(x = "qchisq((1:1000) / 1001, 3)",
            level_0.9 = as.numeric(coda::HPDinterval(coda::as.mcmc(hpd_x), 0.9)),
            level_0.5 = as.numeric(coda::HPDinterval(coda::as.mcmc(hpd_x), 0.5)))
fits <- list(ortho = ortho, cbpp = cbpp_fit, cbpp_poisson = cbpp_pois, machines = machines,
             exam = exam)
models <- lapply(names(calls), function(id) {
  out <- list(call = calls[[id]])
  if (id %in% names(fits)) {
    out$fixef <- as.list(fixef(fits[[id]]))
    out$vcov <- unname(as.matrix(vcov(fits[[id]])))
  }
  out
})
names(models) <- names(calls)
writeLines(toJSON(list(versions = list(R = R.version.string,
                                       emmeans = as.character(packageVersion("emmeans")),
                                       lme4 = as.character(packageVersion("lme4")),
                                       lmerTest = as.character(packageVersion("lmerTest")),
                                       pbkrtest = as.character(packageVersion("pbkrtest"))),
                       models = models, cases = cases, hpd = hpd),
                  auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "tests/reference/emmeans/emmeans.json")
