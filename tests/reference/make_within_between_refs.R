## Mundlak and Hausman tests of whether level-1 regressors correlate with the random intercept.
## Run: Rscript tests/reference/make_within_between_refs.R  (writes within_between/tests.json)
## R 4.2.2, lme4 1.1-31. The Mundlak test is lme4's LRT of the ML fits without and with the
## school means; the Hausman statistic is computed here from lme4's random-intercept (REML) fit
## and the within (fixed-effects) OLS estimator, d' (V_FE - V_RE)^-1 d.
suppressMessages({library(lme4); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
d <- mlmRev::Hsb82
d$ses_between <- ave(d$ses, d$school)
m0 <- lmer(mAch ~ ses + (1 | school), d, REML = FALSE)
m1 <- lmer(mAch ~ ses + ses_between + (1 | school), d, REML = FALSE)
a <- anova(m0, m1)
## Hausman: within estimator
yw <- d$mAch - ave(d$mAch, d$school); xw <- d$ses - ave(d$ses, d$school)
fe <- lm(yw ~ 0 + xw)
G <- nlevels(droplevels(d$school)); n <- nrow(d)
s2 <- sum(residuals(fe)^2) / (n - G - 1)
v_fe <- s2 / sum(xw^2)
re <- lmer(mAch ~ ses + (1 | school), d)
b_re <- fixef(re)[["ses"]]; v_re <- as.matrix(vcov(re))["ses", "ses"]
h <- (coef(fe)[[1]] - b_re)^2 / (v_fe - v_re)
out <- list(R_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  mundlak = list(call0 = "lmer(mAch ~ ses + (1 | school), Hsb82, REML = FALSE)",
                 call1 = "lmer(mAch ~ ses + ses_between + (1 | school), Hsb82, REML = FALSE), ses_between = ave(ses, school)",
                 chisq = a$Chisq[2], df = a$Df[2], p_value = a[["Pr(>Chisq)"]][2],
                 coef_between = fixef(m1)[["ses_between"]]),
  hausman = list(b_fe = coef(fe)[[1]], v_fe = v_fe, b_re = b_re, v_re = v_re,
                 statistic = h, df = 1, p_value = pchisq(h, 1, lower.tail = FALSE)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "within_between", "tests.json"))
cat("ok\n")
