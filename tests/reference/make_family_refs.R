## Reference numbers for multilevel.families: links, variance functions, deviance residuals,
## starting values, log-likelihood terms and Gauss-Hermite rules, as R computes them.
## Run: Rscript tests/reference/make_family_refs.R   (from anywhere; writes families/family_refs.json)
## Numbers are written with 17 significant digits, so each parses back to the exact double.
## R 4.2.2, stats (family objects), MASS 7.3-58.2 (negative.binomial), lme4 1.1-31 (GHrule).
suppressMessages({library(MASS); library(lme4); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})

## -- links: linkfun on a grid of mu, linkinv / mu.eta / valideta on a grid of eta ------------
unit_mu <- c(1e-12, 1e-6, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-6)
pos_mu <- c(1e-6, 0.01, 0.5, 1, 2.5, 10, 1e3, 1e6)
wide_eta <- c(-800, -40, -30.5, -30, -10, -2, -0.5, 0, 0.5, 2, 10, 30, 30.5, 40, 800)
pos_eta <- c(1e-6, 0.01, 0.5, 1, 2, 10, 1e3)
link_cases <- list(
  logit = list(mu = unit_mu, eta = wide_eta),
  probit = list(mu = unit_mu, eta = wide_eta),
  cauchit = list(mu = unit_mu, eta = wide_eta),
  cloglog = list(mu = unit_mu, eta = c(-800, -40, -10, -2, 0, 0.5, 1, 2, 3, 4, 10, 700, 800)),
  log = list(mu = pos_mu, eta = c(-800, -40, -10, -1, 0, 1, 10, 300)),
  identity = list(mu = c(-3, -0.5, 0, 0.5, 2, 1e6), eta = c(-3, -0.5, 0, 0.5, 2, 1e6)),
  inverse = list(mu = pos_mu, eta = c(-10, -0.5, 1e-6, 0.5, 1, 2, 10, 1e3)),
  sqrt = list(mu = pos_mu, eta = pos_eta),
  "1/mu^2" = list(mu = pos_mu, eta = pos_eta)
)
links <- list()
for (nm in names(link_cases)) {
  lk <- make.link(nm); g <- link_cases[[nm]]
  links[[nm]] <- list(mu = g$mu, linkfun = lk$linkfun(g$mu), eta = g$eta,
                      linkinv = lk$linkinv(g$eta), mu_eta = lk$mu.eta(g$eta),
                      valideta = lk$valideta(g$eta))
}
## valideta is all-or-nothing; these eta make it FALSE (0 for inverse, <= 0 for sqrt, 1/mu^2)
invalid_eta <- list(inverse = c(1, 0, 2), sqrt = c(1, -1), "1/mu^2" = c(2, 0))
for (nm in names(invalid_eta)) links[[nm]]$invalid_eta <- invalid_eta[[nm]]
for (nm in names(invalid_eta))
  links[[nm]]$invalid_valideta <- make.link(nm)$valideta(invalid_eta[[nm]])

## -- families: variance, dev.resids, initialize's mustart, aic, log-likelihood terms --------
mustart_of <- function(fam, y, wt) {
  env <- new.env(); env$etastart <- NULL; env$mustart <- NULL; env$y <- y; env$weights <- wt; env$nobs <- length(y)
  eval(fam$initialize, env); env$mustart
}
wt3 <- c(1, 2, 0.5, 3, 1, 4, 1, 2)
cases <- list(
  list(id = "binomial_logit", fam = binomial(), y = c(0, 1, 0, 1, 1, 0, 0, 1),
       mu = c(0.1, 0.9, 0.5, 0.3, 0.999, 1e-4, 0.7, 0.45), wt = rep(1, 8)),
  list(id = "binomial_probit_trials", fam = binomial(link = "probit"),
       y = c(0, 0.25, 0.5, 1, 0.2, 0.75, 1 / 3, 0.6),
       mu = c(0.2, 0.3, 0.5, 0.8, 0.1, 0.7, 0.4, 0.65), wt = c(4, 4, 2, 3, 5, 8, 6, 10)),
  list(id = "poisson_log", fam = poisson(), y = c(0, 1, 2, 5, 10, 0, 3, 40),
       mu = c(0.5, 1.2, 2, 4, 12, 1e-3, 3, 35), wt = wt3),
  list(id = "gaussian_identity", fam = gaussian(), y = c(-1.5, 0, 2.2, 3.1, 10, 0.5, -4, 7),
       mu = c(-1, 0.3, 2, 3, 8, 0.5, -3, 6), wt = wt3, dispersion = 2.5),
  list(id = "gamma_log", fam = Gamma(link = "log"), y = c(0.2, 1, 2.5, 4, 10, 0.05, 3, 7),
       mu = c(0.3, 1.1, 2, 5, 8, 0.1, 3, 6), wt = wt3, dispersion = 0.4),
  list(id = "inverse_gaussian", fam = inverse.gaussian(), y = c(0.2, 1, 2.5, 4, 10, 0.05, 3, 7),
       mu = c(0.3, 1.1, 2, 5, 8, 0.1, 3, 6), wt = wt3, dispersion = 0.3),
  list(id = "negbin_theta2", fam = negative.binomial(theta = 2), y = c(0, 1, 2, 5, 10, 0, 3, 40),
       mu = c(0.5, 1.2, 2, 4, 12, 1e-3, 3, 35), wt = wt3, theta = 2)
)
## the log-likelihood of each observation: the density of y with the prior weights as
## trials (binomial), frequencies (Poisson, negative binomial) or precisions (the rest)
loglik_terms <- function(cs) {
  y <- cs$y; mu <- cs$mu; wt <- cs$wt; phi <- cs$dispersion
  switch(cs$fam$family,
    binomial = dbinom(round(wt * y), round(wt), mu, log = TRUE),
    poisson = wt * dpois(y, mu, log = TRUE),
    gaussian = dnorm(y, mu, sqrt(phi / wt), log = TRUE),
    Gamma = dgamma(y, shape = wt / phi, scale = mu * phi / wt, log = TRUE),
    inverse.gaussian = {lam <- wt / phi
      0.5 * log(lam / (2 * pi * y^3)) - lam * (y - mu)^2 / (2 * mu^2 * y)},
    wt * dnbinom(y, size = cs$theta, mu = mu, log = TRUE))
}
families <- list()
for (cs in cases) {
  fam <- cs$fam
  ## R's own aic with unit weights (trials for the binomial), to tie the terms above to
  ## the log-likelihood that glm and glmer report
  ones <- rep(1, length(cs$y))
  wt_aic <- if (fam$family == "binomial") cs$wt else ones
  dev1 <- sum(fam$dev.resids(cs$y, cs$mu, wt_aic))
  families[[cs$id]] <- list(
    family = fam$family, link = fam$link, y = cs$y, mu = cs$mu, wt = cs$wt,
    dispersion = if (is.null(cs$dispersion)) NULL else cs$dispersion,
    theta = if (is.null(cs$theta)) NULL else cs$theta,
    variance = fam$variance(cs$mu), validmu = fam$validmu(cs$mu),
    dev_resids = fam$dev.resids(cs$y, cs$mu, cs$wt),
    mustart = mustart_of(fam, cs$y, cs$wt),
    loglik = loglik_terms(cs),
    aic_wt = wt_aic, aic = fam$aic(cs$y, wt_aic, cs$mu, wt_aic, dev1), aic_deviance = dev1)
}

## -- Gauss-Hermite rules of lme4 -----------------------------------------------------------
ghrules <- list()
for (k in c(1, 2, 3, 4, 5, 7, 10, 15, 25, 50, 100)) {
  r <- GHrule(k)
  ghrules[[as.character(k)]] <- list(z = unname(r[, "z"]), w = unname(r[, "w"]),
                                     ldnorm = unname(r[, "ldnorm"]))
}

out <- list(R_version = R.version.string,
            MASS_version = as.character(packageVersion("MASS")),
            lme4_version = as.character(packageVersion("lme4")),
            machine_double_eps = .Machine$double.eps,
            links = links, families = families, ghrule = ghrules)
## jsonlite writes at most 15 significant digits: numbers go in verbatim as "%.17g" text
exact <- function(x) {
  if (is.list(x)) return(lapply(x, exact))
  if (!is.numeric(x)) return(x)
  stopifnot(all(is.finite(x)))
  txt <- sprintf("%.17g", x)
  structure(if (length(x) == 1) txt else paste0("[", paste(txt, collapse = ", "), "]"),
            class = "json")
}
writeLines(toJSON(exact(out), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
                  null = "null"),
           file.path(here, "families", "family_refs.json"))
cat("wrote", length(links), "links,", length(families), "families,", length(ghrules), "rules\n")
