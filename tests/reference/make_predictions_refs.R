# Predictions with standard errors and confidence intervals from the fixed effects' covariance
# (eta = X beta, var = X V X'), the reference for multilevel.predictions
# (tests/test_predictions.py). Run from the repository root:
#   Rscript tests/reference/make_predictions_refs.R
# R 4.2.2, lme4 1.1-31, nlme 3.1-162, ggeffects 1.2.0 (Debian r-cran-ggeffects), jsonlite.
# Each case records plain R's numbers (model.matrix, vcov, qnorm) and, where ggeffects handles
# the model, ggpredict's own columns beside them (its critical value for lmer fits is a t
# quantile on insight's "wald" df, n minus every parameter; for glmer and lme the normal one).
suppressMessages({library(lme4); library(nlme); library(ggeffects); library(jsonlite)})

plain <- function(fit, newdata, rhs, link_inverse = identity, eta = NULL) {
  X <- model.matrix(rhs, newdata)
  V <- as.matrix(vcov(fit))
  beta <- if (inherits(fit, "gls")) coef(fit) else fixef(fit)
  if (is.null(eta)) eta <- drop(X %*% beta)
  se <- sqrt(rowSums((X %*% V) * X))
  z <- qnorm(0.975)
  list(eta = eta, estimate = link_inverse(eta), std_error = se,
       conf_low = link_inverse(eta - z * se), conf_high = link_inverse(eta + z * se))
}
gg <- function(g) {
  g <- as.data.frame(g)
  list(x = as.character(g$x), group = as.character(g$group), predicted = g$predicted,
       std_error = g$std.error, conf_low = g$conf.low, conf_high = g$conf.high)
}

cases <- list()

# lmer, sleepstudy: population curve over Days 0..9, and two subjects' conditional predictions
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
nd <- data.frame(Days = 0:9)
cond <- data.frame(Days = c(0, 4.5, 9, 0, 4.5, 9), Subject = factor(c(rep("308", 3), rep("335", 3))))
cases$lmer_sleepstudy <- list(
  call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
  newdata = nd, population = plain(m, nd, ~ Days),
  ggpredict = gg(ggpredict(m, terms = "Days [0:9]")),
  ggpredict_df = nobs(m) - length(fixef(m)) - length(getME(m, "theta")) - 1,
  conditional_newdata = cond,
  conditional = plain(m, cond, ~ Days, eta = unname(predict(m, cond))))

# glmer, cbpp: each period's incidence probability (response scale, interval on the link scale).
# PIRLS solved tightly (tolPwrss = 1e-12) and the optimum found to bobyqa's rhoend = 1e-12, as
# multilevel solves them: at lme4's defaults the estimates differ by ~3e-4 and vcov by ~0.5 %
# (see make_glmm_tight_refs.R); with these, by ~3e-8.
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
           control = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                                  optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
nd <- data.frame(period = factor(1:4, levels = levels(cbpp$period)))
cases$glmer_cbpp <- list(
  call = paste("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,",
               "control = glmerControl(tolPwrss = 1e-12, optimizer = \"bobyqa\",",
               "optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))"),
  newdata = data.frame(period = as.character(1:4)),
  population = plain(m, nd, ~ period, link_inverse = plogis),
  ggpredict = gg(ggpredict(m, terms = "period")))

# lme, Orthodont (REML): age x Sex grid
m <- lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject)
nd <- expand.grid(age = c(8, 10, 12, 14), Sex = factor(c("Male", "Female"),
                                                       levels = levels(Orthodont$Sex)))
cases$lme_orthodont <- list(
  call = "lme(distance ~ age * Sex, Orthodont, random = ~ 1 | Subject)",
  newdata = transform(nd, Sex = as.character(Sex)),
  population = plain(m, nd, ~ age * Sex),
  ggpredict = gg(ggpredict(m, terms = c("age [8,10,12,14]", "Sex"))))

# gls, Orthodont with compound symmetry within Subject (REML)
m <- gls(distance ~ age * Sex, Orthodont, correlation = corCompSymm(form = ~ 1 | Subject))
cases$gls_orthodont <- list(
  call = "gls(distance ~ age * Sex, Orthodont, correlation = corCompSymm(form = ~ 1 | Subject))",
  newdata = transform(nd, Sex = as.character(Sex)),
  population = plain(m, nd, ~ age * Sex))

# nlme, Orange: the delta method with SSlogis's analytic gradient in the fixed effects
m <- nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,
          fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree,
          start = c(Asym = 192, xmid = 728, scal = 353))
nd <- data.frame(age = c(118, 484, 664, 1004, 1231, 1372, 1582))
Asym <- fixef(m)[["Asym"]]; xmid <- fixef(m)[["xmid"]]; scal <- fixef(m)[["scal"]]
val <- SSlogis(nd$age, Asym, xmid, scal)  # named arguments: SSlogis then returns its gradient
G <- attr(val, "gradient")
se <- sqrt(rowSums((G %*% vcov(m)) * G))
eta <- as.numeric(val)
cases$nlme_orange <- list(
  call = paste("nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,",
               "fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1 | Tree,",
               "start = c(Asym = 192, xmid = 728, scal = 353))"),
  newdata = nd,
  population = list(estimate = eta, std_error = se, conf_low = eta - qnorm(0.975) * se,
                    conf_high = eta + qnorm(0.975) * se,
                    predict_level0 = unname(predict(m, nd, level = 0))))

writeLines(toJSON(list(versions = list(R = R.version.string,
                                       lme4 = as.character(packageVersion("lme4")),
                                       nlme = as.character(packageVersion("nlme")),
                                       ggeffects = as.character(packageVersion("ggeffects"))),
                       cases = cases),
                  auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/predictions/predictions.json")
