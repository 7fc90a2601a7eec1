#!/usr/bin/env Rscript
## Reference fits of generalized linear mixed models (GLMMs) from R's lme4 (glmer, glmer.nb)
## and glmmTMB, for the GLMM tests of `multilevel` (issue 7).
##
## Usage (from anywhere; paths are relative to this script's folder):
##     Rscript tests/reference/make_glmm_refs.R
##
## Writes
##   glmm/<id>.json              one JSON per case (fields: see README.md, section "glmm/")
##   glmm/cases.json             id, dataset, engine, call, family, link, nAGQ, notes of each case
##   data/<dataset>.csv          the data frame each case was fitted to
##   data/<dataset>.levels.json  each factor's level order (+ column types, provenance)
##
## Numbers are written as in make_lme4_refs.R: the shortest of 15/16/17 significant digits,
## each checked against its exact bits by verify_roundtrip.py (needs python3).
##
## Needs: lme4, glmmTMB, mlmRev, jsonlite (Debian: r-cran-lme4 r-cran-glmmtmb r-cran-mlmrev
## r-cran-jsonlite).

suppressPackageStartupMessages({
    library(lme4)
    library(glmmTMB)
    library(mlmRev)
    library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()
out_dir <- file.path(here, "glmm")
data_dir <- file.path(here, "data")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

R_VERSION <- R.version.string
VERSIONS <- list(R = R_VERSION,
                 lme4 = as.character(packageVersion("lme4")),
                 glmmTMB = as.character(packageVersion("glmmTMB")),
                 TMB = as.character(packageVersion("TMB")),
                 Matrix = as.character(packageVersion("Matrix")),
                 mlmRev = as.character(packageVersion("mlmRev")),
                 jsonlite = as.character(packageVersion("jsonlite")))
source(file.path(here, "ref_helpers.R"))  # number formatting, data set writing

## ---------------------------------------------------------------------------------
## Simulated data sets (each with its own seed; the generating code goes into the JSON)
## ---------------------------------------------------------------------------------
## Gamma, log link: 30 groups x 10 rows; shape 4 (coefficient of variation 0.5).
make_gamma_sim <- function() {
    set.seed(20260701)
    G <- 30L; n_per <- 10L
    g <- factor(rep(sprintf("g%02d", seq_len(G)), each = n_per), levels = sprintf("g%02d", seq_len(G)))
    x <- rnorm(G * n_per)
    b <- rnorm(G, 0, 0.5)
    mu <- exp(1 + 0.5 * x + b[as.integer(g)])
    y <- rgamma(G * n_per, shape = 4, rate = 4 / mu)
    data.frame(g = g, x = x, y = y)
}

## Inverse Gaussian, log link: 30 groups x 10 rows; dispersion phi = 0.2 (variance phi mu^3).
## Draws by the transformation of Michael, Schucany & Haas (1976, The American Statistician
## 30(2), 88-90), so that no extra package is needed.
make_invgauss_sim <- function() {
    set.seed(20260702)
    G <- 30L; n_per <- 10L
    g <- factor(rep(sprintf("g%02d", seq_len(G)), each = n_per), levels = sprintf("g%02d", seq_len(G)))
    x <- rnorm(G * n_per)
    b <- rnorm(G, 0, 0.4)
    mu <- exp(0.5 + 0.3 * x + b[as.integer(g)])
    lambda <- 1 / 0.2
    v <- rnorm(G * n_per)^2
    r <- mu + mu^2 * v / (2 * lambda) - mu / (2 * lambda) * sqrt(4 * mu * lambda * v + mu^2 * v^2)
    u <- runif(G * n_per)
    y <- ifelse(u <= mu / (mu + r), r, mu^2 / r)
    data.frame(g = g, x = x, y = y)
}

## Poisson rates with an exposure: 40 clinics x 8 rows.
make_rates_sim <- function() {
    set.seed(20260703)
    G <- 40L; n_per <- 8L
    g <- factor(rep(sprintf("c%02d", seq_len(G)), each = n_per), levels = sprintf("c%02d", seq_len(G)))
    x <- rnorm(G * n_per)
    exposure <- runif(G * n_per, 0.5, 5)
    b <- rnorm(G, 0, 0.4)
    y <- rpois(G * n_per, exposure * exp(-1 + 0.4 * x + b[as.integer(g)]))
    data.frame(g = g, x = x, exposure = exposure, y = y)
}

## Negative binomial NB2 (variance mu + mu^2 / size), size 2: 50 groups x 6 rows.
make_nb_sim <- function() {
    set.seed(20260704)
    G <- 50L; n_per <- 6L
    g <- factor(rep(sprintf("g%02d", seq_len(G)), each = n_per), levels = sprintf("g%02d", seq_len(G)))
    x <- rnorm(G * n_per)
    b <- rnorm(G, 0, 0.6)
    y <- rnbinom(G * n_per, size = 2, mu = exp(1 + 0.5 * x + b[as.integer(g)]))
    data.frame(g = g, x = x, y = y)
}

sim_code <- function(f) paste(deparse(f, width.cutoff = 500L), collapse = "\n")

contraception_rev <- mlmRev::Contraception[, c("district", "use", "age", "urban")]
contraception_rev$use <- factor(as.character(contraception_rev$use), levels = c("Y", "N"))

datasets <- list(
    cbpp = list(df = lme4::cbpp, source = "lme4::cbpp"),
    grouseticks = list(df = lme4::grouseticks, source = "lme4::grouseticks",
                       notes = "cHEIGHT is HEIGHT centred (as shipped by lme4); INDEX has one level per row (observation-level random effect)."),
    Contraception = list(df = mlmRev::Contraception, source = "mlmRev::Contraception",
                         notes = "use and urban have levels N, Y; livch levels 0, 1, 2, 3+ (unordered); age is centred (as shipped)."),
    contraception_rev = list(df = contraception_rev,
                             source = "mlmRev::Contraception columns district, use, age, urban; use re-levelled",
                             notes = "use <- factor(as.character(use), levels = c('Y', 'N')): level order NOT alphabetical, so 'success' (the second level) is N, the woman does NOT use contraception."),
    VerbAgg = list(df = lme4::VerbAgg, source = "lme4::VerbAgg",
                   notes = "item levels in lme4's order (not alphabetical; see levels); resp is an ordered factor (unused here); r2 levels N, Y."),
    gamma_sim = list(df = make_gamma_sim(), source = "simulated in make_glmm_refs.R (make_gamma_sim, seed 20260701)",
                     notes = "30 groups x 10 rows; x ~ N(0,1); b_g ~ N(0, 0.5); y ~ Gamma(shape 4, mean exp(1 + 0.5 x + b_g))"),
    invgauss_sim = list(df = make_invgauss_sim(), source = "simulated in make_glmm_refs.R (make_invgauss_sim, seed 20260702)",
                        notes = "30 groups x 10 rows; x ~ N(0,1); b_g ~ N(0, 0.4); y ~ inverse Gaussian(mean exp(0.5 + 0.3 x + b_g), dispersion 0.2)"),
    rates_sim = list(df = make_rates_sim(), source = "simulated in make_glmm_refs.R (make_rates_sim, seed 20260703)",
                     notes = "40 clinics x 8 rows; x ~ N(0,1); exposure ~ U(0.5, 5); b_g ~ N(0, 0.4); y ~ Poisson(exposure exp(-1 + 0.4 x + b_g))"),
    nb_sim = list(df = make_nb_sim(), source = "simulated in make_glmm_refs.R (make_nb_sim, seed 20260704)",
                  notes = "50 groups x 6 rows; x ~ N(0,1); b_g ~ N(0, 0.6); y ~ NB2(mean exp(1 + 0.5 x + b_g), size 2)")
)
SIMULATIONS <- list(
    gamma_sim = list(seed = 20260701L, code = sim_code(make_gamma_sim)),
    invgauss_sim = list(seed = 20260702L, code = sim_code(make_invgauss_sim)),
    rates_sim = list(seed = 20260703L, code = sim_code(make_rates_sim)),
    nb_sim = list(seed = 20260704L, code = sim_code(make_nb_sim)))

write_all_datasets <- function() {
    for (nm in names(datasets)) {
        ds <- datasets[[nm]]
        write_dataset(nm, ds$df, ds$source, ds$notes)
    }
}

## ---------------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------------
## engine: glmer / glmer.nb / glmmTMB.  quad: the scalar random-effect term's grouping
## variable when the model has only that one (then the exact marginal log-likelihood at the
## estimates is computed by numerical integration), else NULL.
CBPP <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
cases <- list(
    list(id = "cbpp_nagq0", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 0)",
         formula = CBPP, nagq = 0L, quad = "herd",
         notes = "nAGQ = 0: beta estimated inside PIRLS, only theta by the optimizer. logLik is the Laplace approximation at those estimates."),
    list(id = "cbpp_nagq5", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 5)",
         formula = CBPP, nagq = 5L, quad = "herd",
         notes = "Adaptive Gauss-Hermite quadrature, 5 nodes. lme4's logLik omits the saturated-model term (see logLik_complete)."),
    list(id = "cbpp_prop_weights", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         call = "glmer(incidence/size ~ period + (1 | herd), data = cbpp, family = binomial, weights = size)",
         formula = "incidence/size ~ period + (1 | herd)", nagq = 1L, quad = "herd",
         notes = "Proportions with the number of trials as prior weights: the same model as the shared cbpp_laplace (cbind form); lme4 gives the same fit."),
    list(id = "cbpp_probit", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial(link = \"probit\"))",
         formula = CBPP, nagq = 1L, quad = "herd", notes = "Probit link."),
    list(id = "cbpp_cloglog", engine = "glmer", dataset = "cbpp", data_name = "cbpp",
         call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial(link = \"cloglog\"))",
         formula = CBPP, nagq = 1L, quad = "herd", notes = "Complementary log-log link."),
    list(id = "grouseticks_poisson", engine = "glmer", dataset = "grouseticks", data_name = "grouseticks",
         call = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), data = grouseticks, family = poisson)",
         formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", nagq = 1L, quad = NULL,
         notes = "Poisson with three random intercepts: INDEX is observation-level (403 levels for 403 rows, overdispersion), BROOD nested in LOCATION. The model of lme4's ?grouseticks (Elston et al. 2001, Parasitology 122, 563-569)."),
    list(id = "rates_offset_poisson", engine = "glmer", dataset = "rates_sim", data_name = "rates",
         call = "glmer(y ~ x + offset(log(exposure)) + (1 | g), data = rates, family = poisson)",
         formula = "y ~ x + offset(log(exposure)) + (1 | g)", nagq = 1L, quad = "g",
         notes = "Poisson rates: offset log(exposure) in the formula (so predict(newdata) includes it)."),
    list(id = "contraception_slope", engine = "glmer", dataset = "Contraception", data_name = "Contraception",
         call = "glmer(use ~ age + I(age^2) + urban + livch + (urban | district), data = Contraception, family = binomial, control = glmerControl(optimizer = \"bobyqa\"))",
         control = "glmerControl(optimizer = \"bobyqa\"): with lme4's default (bobyqa then Nelder_Mead) the fit stops with \"Model failed to converge with max|grad| = 0.00314 (tol = 0.002)\" at logLik -1180.30537; bobyqa alone passes the gradient check at the same logLik. Both warn \"Model is nearly unidentifiable: very large eigenvalue\" (I(age^2) is on a scale of hundreds).",
         formula = "use ~ age + I(age^2) + urban + livch + (urban | district)", nagq = 1L, quad = NULL,
         notes = "Binary two-level factor response (use: N, Y; success = Y, the second level), 60 districts, correlated random intercept and urban slope."),
    list(id = "contraception_intercept", engine = "glmer", dataset = "Contraception", data_name = "Contraception",
         call = "glmer(use ~ age + urban + (1 | district), data = Contraception, family = binomial)",
         formula = "use ~ age + urban + (1 | district)", nagq = 1L, quad = "district",
         notes = "Two-level factor response in alphabetical level order (N, Y): success = Y. Compare with contraception_rev_levels."),
    list(id = "contraception_rev_levels", engine = "glmer", dataset = "contraception_rev", data_name = "d",
         call = "glmer(use ~ age + urban + (1 | district), data = d, family = binomial)",
         formula = "use ~ age + urban + (1 | district)", nagq = 1L, quad = "district",
         notes = "use with levels Y, N (NOT alphabetical; see data/contraception_rev.levels.json): success = N, the second level. Same fit as contraception_intercept with fixed effects and conditional modes negated (to optimizer tolerance), same logLik."),
    list(id = "verbagg", engine = "glmer", dataset = "VerbAgg", data_name = "VerbAgg",
         call = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = VerbAgg, family = binomial)",
         formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", nagq = 1L, quad = NULL,
         notes = "Binary factor response (r2: N, Y), 7584 rows, 316 persons crossed with 24 items; the speed benchmark of issue 7 (timing = median of 3 fits)."),
    list(id = "gamma_log_lme4", engine = "glmer", dataset = "gamma_sim", data_name = "gsim",
         call = "glmer(y ~ x + (1 | g), data = gsim, family = Gamma(link = \"log\"))",
         formula = "y ~ x + (1 | g)", control = "glmerControl() defaults. lme4 warns that the model failed to converge (max|grad| above 0.002); glmerControl(optimizer = \"bobyqa\") did not remove the warning (Gamma: same logLik -528.8888; inverse Gaussian: lower logLik -343.5682), so the default fit is kept with its warning.",
         nagq = 1L, quad = NULL,
         notes = "lme4's Gamma GLMM. Its logLik comes from Gamma()$aic, which plugs in the dispersion deviance / n (not its ML estimate), and sigma(m) is lme4's own scale estimate; theta is relative to sigma. Compare the dispersion-estimated likelihood with gamma_log_glmmtmb."),
    list(id = "gamma_log_glmmtmb", engine = "glmmTMB", dataset = "gamma_sim", data_name = "gsim",
         call = "glmmTMB(y ~ x + (1 | g), data = gsim, family = Gamma(link = \"log\"))",
         formula = "y ~ x + (1 | g)", nagq = 1L, quad = "g",
         notes = "glmmTMB: Laplace approximation with the Gamma dispersion estimated by maximum likelihood jointly with beta and the random-effect SD. sigma is glmmTMB's Gamma sigma = coefficient of variation = 1/sqrt(shape) (dispersion phi = sigma^2)."),
    list(id = "invgauss_log_lme4", engine = "glmer", dataset = "invgauss_sim", data_name = "igsim",
         call = "glmer(y ~ x + (1 | g), data = igsim, family = inverse.gaussian(link = \"log\"))",
         formula = "y ~ x + (1 | g)", control = "glmerControl() defaults. lme4 warns that the model failed to converge (max|grad| above 0.002); glmerControl(optimizer = \"bobyqa\") did not remove the warning (Gamma: same logLik -528.8888; inverse Gaussian: lower logLik -343.5682), so the default fit is kept with its warning.",
         nagq = 1L, quad = NULL,
         notes = "lme4's inverse Gaussian GLMM (log link). As for Gamma, its logLik uses inverse.gaussian()$aic, which plugs in the dispersion deviance / n. glmmTMB 1.1.5 has no inverse Gaussian family (\"Family not implemented\"), so there is no glmmTMB counterpart."),
    list(id = "nb2_glmmtmb", engine = "glmmTMB", dataset = "nb_sim", data_name = "nbsim",
         call = "glmmTMB(y ~ x + (1 | g), data = nbsim, family = nbinom2)",
         formula = "y ~ x + (1 | g)", nagq = 1L, quad = "g",
         notes = "Negative binomial NB2 (variance mu + mu^2/size), size estimated by ML with everything else (Laplace). nb_size = sigma(m)."),
    list(id = "nb2_glmernb", engine = "glmer.nb", dataset = "nb_sim", data_name = "nbsim",
         call = "glmer.nb(y ~ x + (1 | g), data = nbsim)",
         formula = "y ~ x + (1 | g)", nagq = 1L, quad = "g",
         notes = "lme4's glmer.nb on the same data as nb2_glmmtmb: alternates a glmer fit at fixed size with a 1-d optimisation of size. nb_size = getME(m, 'glmer.nb.theta').")
)

## ---------------------------------------------------------------------------------
## Extraction helpers
## ---------------------------------------------------------------------------------
capture <- function(expr) {
    warns <- character(0); msgs <- character(0)
    val <- withCallingHandlers(
        tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "capture_error")),
        warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
    list(value = val, warnings = warns, messages = msgs,
         error = if (inherits(val, "capture_error")) val$msg else NULL)
}

## varcomp rows from a list of covariance matrices (one per grouping term), lme4's order
varcomp_from_cov <- function(covs) {
    rows <- list()
    for (grp in names(covs)) {
        S <- as.matrix(covs[[grp]])
        nm <- colnames(S); sds <- sqrt(diag(S))
        for (i in seq_along(nm))
            rows[[length(rows) + 1L]] <- list(group = grp, term1 = nm[i], term2 = NULL, variance = S[i, i],
                                              covariance = NULL, sd = sds[i], corr = NULL)
        if (length(nm) > 1L) for (j in 1:(length(nm) - 1L)) for (i in (j + 1L):length(nm))
            rows[[length(rows) + 1L]] <- list(group = grp, term1 = nm[j], term2 = nm[i], variance = NULL,
                                              covariance = S[i, j], sd = NULL,
                                              corr = S[i, j] / (sds[i] * sds[j]))
    }
    rows
}

ranef_rows <- function(rr) {
    lapply(seq_len(nrow(rr)), function(i)
        list(group = as.character(rr$grpvar[i]), term = as.character(rr$term[i]),
             level = as.character(rr$grp[i]), condval = rr$condval[i], condsd = rr$condsd[i],
             condvar = rr$condsd[i]^2))
}

head_sum <- function(v, scale) list(scale = scale, n = length(v), sum = sum(v),
                                    sum_sq = sum(v^2), first5 = I(unname(v[1:5])),
                                    last = unname(v[length(v)]))

## Per-row log density of the response given the linear predictor, for the exact
## marginal likelihood (families whose dispersion is known or estimated by the engine).
row_logdens <- function(m, engine, y, n_trials, fam, link) {
    linkinv <- make.link(link)$linkinv
    switch(fam,
           binomial = { k <- round(y * n_trials); function(eta) dbinom(k, n_trials, linkinv(eta), log = TRUE) },
           poisson = function(eta) dpois(y, linkinv(eta), log = TRUE),
           nbinom2 = { s <- sigma(m); function(eta) dnbinom(y, size = s, mu = linkinv(eta), log = TRUE) },
           nb_lme4 = { s <- getME(m, "glmer.nb.theta"); function(eta) dnbinom(y, size = s, mu = linkinv(eta), log = TRUE) },
           Gamma = { s2 <- sigma(m)^2; function(eta) dgamma(y, shape = 1 / s2, scale = linkinv(eta) * s2, log = TRUE) },
           NULL)
}

## Exact marginal log-likelihood at the estimates for a model whose only random effect is
## one scalar intercept term: each group's integral over its random effect by
## stats::integrate on (bhat - 30 condsd, bhat + 30 condsd), rel.tol 1e-11.
marginal_quadrature <- function(logdens, eta_fixed, group, sd_re, re) {
    bh <- setNames(re$condval, re$grp); bs <- setNames(re$condsd, re$grp)
    total <- 0
    for (lev in levels(group)) {
        rows <- which(group == lev)
        if (!length(rows)) next
        lf <- function(b) vapply(b, function(bb) sum(logdens(eta_fixed + bb)[rows]), 0) + dnorm(b, 0, sd_re, log = TRUE)
        b0 <- bh[[lev]]; w <- 30 * max(bs[[lev]], 1e-8)
        c0 <- lf(b0)
        val <- integrate(function(b) exp(lf(b) - c0), b0 - w, b0 + w, rel.tol = 1e-11,
                         subdivisions = 2000L)$value
        total <- total + c0 + log(val)
    }
    total
}

## Laplace approximation at the estimates for the same one-scalar-term models, two ways:
## with the observed curvature of each group's log integrand at its mode (the textbook
## Laplace approximation, which glmmTMB computes), and with the expected (Fisher)
## curvature sum(w_i) + 1/sd^2 that PIRLS works with.  For a canonical link the two agree.
laplace_variants <- function(logdens, eta_fixed, group, sd_re, fam, link, n_trials, nb_size) {
    lk <- make.link(link)
    fisher_w <- function(eta, rows) {
        mu <- lk$linkinv(eta); d <- lk$mu.eta(eta)
        switch(fam, binomial = n_trials[rows] * d^2 / (mu * (1 - mu)), poisson = d^2 / mu,
               nbinom2 = , nb_lme4 = d^2 / (mu + mu^2 / nb_size), rep(NA_real_, length(eta)))
    }
    obs <- 0; expd <- 0
    for (lev in levels(group)) {
        rows <- which(group == lev)
        if (!length(rows)) next
        h <- function(b) sum(logdens(eta_fixed + b)[rows]) + dnorm(b, 0, sd_re, log = TRUE)
        bh <- optimize(function(b) -h(b), c(-20, 20) * max(sd_re, 1e-3), tol = 1e-12)$minimum
        bh <- optim(bh, function(b) -h(b), method = "BFGS", control = list(reltol = 1e-14))$par
        st <- 1e-4
        curv <- -(h(bh + st) - 2 * h(bh) + h(bh - st)) / st^2
        cexp <- sum(fisher_w(eta_fixed[rows] + bh, rows)) + 1 / sd_re^2
        base <- h(bh) + 0.5 * log(2 * pi)
        obs <- obs + base - 0.5 * log(curv)
        expd <- expd + base - 0.5 * log(cexp)
    }
    list(laplace_observed_curvature = obs, laplace_expected_curvature = expd,
         note = paste0("EXTRA (computed here): Laplace approximations of the marginal log-likelihood at the reported ",
                       "estimates, each group's mode found by optimize/BFGS; observed = -h''(bhat) by central ",
                       "differences (step 1e-4), expected = sum of the working (Fisher) weights at bhat + 1/sd^2. ",
                       "They differ only for non-canonical links; lme4's logLik equals the expected-curvature one ",
                       "when its conditional modes are at the same bhat (see the README)."))
}

response_parts <- function(m, engine) {
    if (engine == "glmmTMB") {
        y <- model.response(model.frame(m))
        list(y = as.numeric(y), n = rep(1, length(y)))
    } else list(y = m@resp$y, n = m@resp$weights)
}

family_name <- function(m, engine) {
    f <- family(m)$family
    if (engine == "glmer.nb") "negative_binomial_nb2" else f
}

extract_glmer <- function(m, cs) {
    V <- as.matrix(vcov(m)); fe <- fixef(m); ll <- logLik(m); oi <- m@optinfo
    th <- getME(m, "theta"); fam <- family(m)
    rr <- as.data.frame(ranef(m, condVar = TRUE))
    nagq <- m@devcomp$dims[["nAGQ"]]
    use_sc <- as.logical(m@devcomp$dims[["useSc"]])
    list(
        family = family_name(m, cs$engine), link = fam$link, family_print = fam$family,
        nAGQ = nagq,
        fixef = named_list(fe), fixef_names = I(names(fe)),
        fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
        vcov_fixef = unname(V),
        model_matrix_colnames = I(colnames(getME(m, "X"))),
        varcomp = varcomp_from_cov(lapply(VarCorr(m), function(S) { attr(S, "stddev") <- NULL; attr(S, "correlation") <- NULL; unclass(S) })),
        varcomp_note = if (use_sc) "variances on the response scale as VarCorr() reports them (theta times sigma)" else "variances of the random effects on the link scale (sigma = 1)",
        sigma = if (use_sc) sigma(m) else NULL,
        sigma_note = if (use_sc) "lme4's sigma(m) for a family with a scale parameter (its own estimate, see case notes)" else NULL,
        nb_size = if (cs$engine == "glmer.nb") getME(m, "glmer.nb.theta") else NULL,
        theta = named_list(th), theta_names = I(names(th)),
        theta_note = "lme4's relative covariance factor (column-wise lower triangle per term); for families without a scale it is the random-effect SD / Cholesky factor itself",
        cnms = lapply(getME(m, "cnms"), I),
        logLik = as.numeric(ll), logLik_df = as.integer(attr(ll, "df")),
        logLik_omits_saturated_term = nagq > 1,
        logLik_note = if (nagq > 1) "lme4's logLik for nAGQ > 1 leaves out the saturated-model log-likelihood; logLik_complete adds it back"
                      else if (nagq == 0) "Laplace approximation at the nAGQ = 0 estimates (complete, includes every constant)"
                      else "Laplace approximation (complete, includes every constant)",
        deviance = -2 * as.numeric(ll),
        deviance_note = "-2 * logLik (as summary() shows it)",
        deviance_fn = deviance(m),
        deviance_fn_note = "lme4 deviance() for GLMMs: for nAGQ <= 1 the sum of squared deviance residuals, NOT -2 logLik",
        AIC = AIC(m), BIC = BIC(m), df_resid = as.integer(df.residual(m)),
        nobs = as.integer(nobs(m)), ngrps = as.list(ngrps(m)), singular = isSingular(m),
        convergence = list(optimizer = oi$optimizer, optimizer_code = oi$conv$opt,
                           optimizer_message = if (is.null(oi$message)) NULL else oi$message,
                           lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
                           optinfo_warnings = I(as.character(unlist(oi$warnings))),
                           feval = oi$feval,
                           max_abs_grad = if (!is.null(oi$derivs$gradient)) max(abs(oi$derivs$gradient)) else NULL,
                           control = if (is.null(cs$control)) "glmerControl() defaults (optimizer c(\"bobyqa\", \"Nelder_Mead\"))" else cs$control),
        devcomp_cmp = as.list(getME(m, "devcomp")$cmp),
        ranef = ranef_rows(rr), ranef_n = nrow(rr),
        fitted = head_sum(fitted(m), "response (mu)"),
        fitted_link = head_sum(predict(m, type = "link"), "linear predictor (eta), offset included"),
        residuals = list(deviance = head_sum(residuals(m, type = "deviance"), "deviance"),
                         pearson = head_sum(residuals(m, type = "pearson"), "pearson"),
                         response = head_sum(residuals(m, type = "response"), "response"),
                         working = head_sum(residuals(m, type = "working"), "working")),
        weights = if (!all(weights(m) == 1)) head_sum(weights(m), "prior weights") else NULL,
        offset = if (any(getME(m, "offset") != 0)) head_sum(getME(m, "offset"), "offset") else NULL,
        eta_fixed = predict(m, re.form = NA, type = "link"))
}

extract_glmmtmb <- function(m, cs) {
    V <- as.matrix(vcov(m)$cond); fe <- fixef(m)$cond; ll <- logLik(m); fam <- family(m)
    rr <- as.data.frame(ranef(m, condVar = TRUE))
    rr <- rr[rr$component == "cond", , drop = FALSE]
    vc <- VarCorr(m)$cond
    fit <- m$fit
    list(
        family = fam$family, link = fam$link, family_print = fam$family, nAGQ = 1L,
        fixef = named_list(fe), fixef_names = I(names(fe)),
        fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
        vcov_fixef = unname(V),
        model_matrix_colnames = I(colnames(getME(m, "X"))),
        varcomp = varcomp_from_cov(lapply(vc, function(S) { attr(S, "stddev") <- NULL; attr(S, "correlation") <- NULL; unclass(S) })),
        varcomp_note = "variances of the random effects on the link scale (glmmTMB does not scale them by sigma)",
        sigma = if (fam$family %in% c("Gamma", "gaussian")) sigma(m) else NULL,
        sigma_note = if (fam$family == "Gamma") "glmmTMB's Gamma sigma: coefficient of variation 1/sqrt(shape); dispersion phi = sigma^2 (Var y = phi mu^2)" else NULL,
        nb_size = if (grepl("nbinom2", fam$family)) sigma(m) else NULL,
        theta = NULL, theta_names = NULL,
        glmmTMB_theta = I(unname(getME(m, "theta"))),
        theta_note = "glmmTMB parameterises the random-effect SD on the log scale (glmmTMB_theta = log SD here); the lme4-style theta is the SD in varcomp",
        cnms = NULL,
        logLik = as.numeric(ll), logLik_df = as.integer(attr(ll, "df")),
        logLik_omits_saturated_term = FALSE,
        logLik_note = "Laplace approximation (TMB), complete",
        deviance = -2 * as.numeric(ll), deviance_note = "-2 * logLik",
        deviance_fn = NULL, deviance_fn_note = NULL,
        AIC = AIC(m), BIC = BIC(m), df_resid = as.integer(df.residual(m)),
        nobs = as.integer(nobs(m)), ngrps = as.list(vapply(m$modelInfo$reTrms$cond$flist, nlevels, 1L)), singular = NULL,
        convergence = list(optimizer = "nlminb (glmmTMB default)", optimizer_code = fit$convergence,
                           optimizer_message = fit$message, pdHess = m$sdr$pdHess,
                           feval = unname(fit$evaluations[["function"]]),
                           max_abs_grad = max(abs(m$sdr$gradient.fixed)),
                           control = "glmmTMBControl() defaults"),
        devcomp_cmp = NULL,
        ranef = ranef_rows(rr), ranef_n = nrow(rr),
        fitted = head_sum(fitted(m), "response (mu)"),
        fitted_link = head_sum(predict(m, type = "link"), "linear predictor (eta)"),
        residuals = list(pearson = head_sum(residuals(m, type = "pearson"), "pearson"),
                         response = head_sum(residuals(m, type = "response"), "response")),
        weights = NULL, offset = NULL,
        eta_fixed = predict(m, re.form = NA, type = "link"))
}

predict_block <- function(m, data, engine) {
    nd5 <- data[1:5, , drop = FALSE]
    p <- capture(list(
        link_re_form_NULL = unname(predict(m, newdata = nd5, re.form = NULL, type = "link")),
        link_re_form_NA = unname(predict(m, newdata = nd5, re.form = NA, type = "link")),
        response_re_form_NULL = unname(predict(m, newdata = nd5, re.form = NULL, type = "response")),
        response_re_form_NA = unname(predict(m, newdata = nd5, re.form = NA, type = "response"))))
    if (!is.null(p$error)) return(list(error = p$error))
    c(lapply(p$value, I), list(description = "predict(m, newdata = data[1:5, ], re.form = NULL / NA, type = 'link' / 'response')",
                               warnings = chr(p$warnings)))
}

timing_block <- function(expr_text, env, n = 3L) {
    ex <- parse(text = expr_text)[[1]]
    one <- function() unname(system.time(suppressWarnings(suppressMessages(eval(ex, env))))["elapsed"])
    all <- vapply(seq_len(n), function(i) one(), 0)
    list(median_s = median(all), n_repeats = n, all_s = I(all),
         method = paste0("median of system.time()[['elapsed']] over ", n, " fits of the case call, after the ",
                         "untimed extraction fit, on the machine that ran make_glmm_refs.R (",
                         parallel::detectCores(), " cores); time both sides on one machine before comparing"))
}

quad_family <- function(cs, fam) {
    if (cs$engine == "glmer.nb") "nb_lme4" else if (grepl("nbinom2", fam)) "nbinom2" else fam
}

run_case <- function(cs) {
    ds <- datasets[[cs$dataset]]$df
    env <- new.env(parent = globalenv())
    assign(cs$data_name, ds, envir = env)
    fit <- capture(eval(parse(text = cs$call)[[1]], env))
    base <- list(id = cs$id, dataset = cs$dataset, data_file = paste0("data/", cs$dataset, ".csv"),
                 engine = cs$engine, engine_package = if (cs$engine == "glmmTMB") "glmmTMB" else "lme4",
                 versions = VERSIONS, call = cs$call, data_name_in_call = cs$data_name,
                 formula = cs$formula, reml = FALSE, nagq_requested = cs$nagq, case_notes = cs$notes)
    if (!is.null(fit$error))
        return(c(base, list(status = "error", error = fit$error,
                            fit_warnings = I(fit$warnings), fit_messages = I(fit$messages))))
    m <- fit$value
    ex <- capture({
        out <- if (cs$engine == "glmmTMB") extract_glmmtmb(m, cs) else extract_glmer(m, cs)
        out$predict <- predict_block(m, ds, cs$engine)
        eta_fixed <- out$eta_fixed; out$eta_fixed <- NULL
        rp <- response_parts(m, cs$engine)
        if (out$family == "binomial") {
            k <- round(rp$y * rp$n)
            out$saturated_loglik <- sum(dbinom(k, rp$n, k / rp$n, log = TRUE))
        } else if (out$family == "poisson") {
            out$saturated_loglik <- sum(dpois(rp$y, rp$y, log = TRUE))
        }
        out$logLik_complete <- if (isTRUE(out$logLik_omits_saturated_term)) out$logLik + out$saturated_loglik else out$logLik
        if (!is.null(cs$quad)) {
            ld <- row_logdens(m, cs$engine, rp$y, rp$n, quad_family(cs, out$family), out$link)
            sd_re <- out$varcomp[[1]]$sd
            re <- as.data.frame(ranef(m, condVar = TRUE))
            if (cs$engine == "glmmTMB") re <- re[re$component == "cond", , drop = FALSE]
            re$grp <- as.character(re$grp)
            out$marginal_quadrature <- list(
                logLik_marginal_quadrature = marginal_quadrature(ld, eta_fixed, ds[[cs$quad]], sd_re, re),
                note = paste0("EXTRA (computed here, not by the engine): the exact marginal log-likelihood at the ",
                              "reported estimates (beta, random-effect SD", if (!is.null(out$sigma) || !is.null(out$nb_size)) ", dispersion / size" else "",
                              "), each group's integral by stats::integrate over (bhat +- 30 condsd), rel.tol 1e-11. ",
                              "For nAGQ <= 1 the engine's logLik is the Laplace approximation of this; for nAGQ > 1 ",
                              "lme4's logLik + saturated_loglik approximates it."))
            qf <- quad_family(cs, out$family)
            if (qf %in% c("binomial", "poisson", "nbinom2", "nb_lme4"))
                out$laplace_check <- laplace_variants(ld, eta_fixed, ds[[cs$quad]], sd_re, qf, out$link,
                                                      rp$n, if (is.null(out$nb_size)) NA else out$nb_size)
        }
        out
    })
    if (!is.null(ex$error)) stop("extraction failed for ", cs$id, ": ", ex$error)
    res <- c(base, list(status = "ok", error = NULL, fit_warnings = I(fit$warnings),
                        fit_messages = I(fit$messages)), ex$value)
    res$extract_warnings <- I(ex$warnings)
    if (!is.null(SIMULATIONS[[cs$dataset]])) res$simulation <- SIMULATIONS[[cs$dataset]]
    res$timing <- timing_block(cs$call, env, n = 3L)
    res
}

only <- Sys.getenv("GLMM_REFS_ONLY")
if (nzchar(only)) cases <- Filter(function(cs) cs$id %in% strsplit(only, ",")[[1]], cases)

results <- list()
for (cs in cases) {
    cat(sprintf("%-26s ", cs$id))
    r <- run_case(cs)
    results[[cs$id]] <- r
    cat(r$status, if (r$status == "ok") sprintf(" logLik %.10g", r$logLik) else r$error,
        if (length(r$fit_warnings)) paste0(" warnings: ", paste(r$fit_warnings, collapse = " | ")) else "",
        if (length(r$fit_messages)) paste0(" messages: ", paste(r$fit_messages, collapse = " | ")) else "", "\n")
}

write_verified_outputs(results)

case_index <- lapply(cases, function(cs) list(
    id = cs$id, dataset = cs$dataset, engine = cs$engine, call = cs$call, formula = cs$formula,
    family = results[[cs$id]]$family, link = results[[cs$id]]$link, nagq = cs$nagq,
    logLik = results[[cs$id]]$logLik, notes = cs$notes, status = results[[cs$id]]$status,
    fit_warnings = I(results[[cs$id]]$fit_warnings)))
writeLines(toJSON(case_index, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null", digits = NA),
           file.path(out_dir, "cases.json"))

cat("R:", R_VERSION, " lme4:", VERSIONS$lme4, " glmmTMB:", VERSIONS$glmmTMB, "\n")
cat("wrote", length(results), "cases to", out_dir, "and", length(written_datasets), "data sets to", data_dir, "\n")
