## Reference numbers for PSIS-LOO, WAIC and loo_compare (issue 9, Bayesian models).
##
## 1. matrices.json: R's loo package on small log-likelihood matrices that the tests rebuild
##    exactly from the draws stored here (a normal model with an outlier, so that some Pareto
##    k are large, and a second model for loo_compare). loo() and waic() run with r_eff = 1,
##    as ArviZ's loo with reff = 1 (ArviZ takes one scalar relative efficiency, loo a vector).
## 2. sleepstudy_compare.json: brms's loo() and loo_compare() for Reaction ~ Days +
##    (Days | Subject) against Reaction ~ Days + (1 | Subject) (brms defaults, 4 chains,
##    iter 2000, seed 1), the comparison the tests repeat with our sampler.
## 3. cbpp_binomial.json: brms's loo() and waic() of the binomial model
##    incidence | trials(size) ~ period + (1 | herd) (same settings): its log-likelihood
##    includes the binomial coefficient, which ours must too for the numbers to agree.
##
## Run from the repository root:  Rscript tests/reference/loo/make_loo_refs.R [matrices]
## [sleepstudy] [cbpp] (default: all three; a few minutes: brms compiles its Stan models).
## Tests never run this.

suppressPackageStartupMessages({
    library(loo)
    library(jsonlite)
})
here <- "tests/reference/loo"
if (!dir.exists(here)) stop("run from the repository root")
args <- commandArgs(trailingOnly = TRUE)
sections <- if (length(args)) args else c("matrices", "sleepstudy", "cbpp")
summ <- function(x) {
    e <- x$estimates
    out <- lapply(rownames(e), function(r) list(estimate = e[r, "Estimate"], se = e[r, "SE"]))
    names(out) <- rownames(e)
    out
}
kcount <- function(x) as.list(table(cut(x$diagnostics$pareto_k, c(-Inf, 0.5, 0.7, 1, Inf))))

## ---- 1. fixed matrices ------------------------------------------------------------
if ("matrices" %in% sections) {
set.seed(20261126)
n <- 30L
y <- c(rnorm(n - 1L, 1, 1), 7.5)  # the last observation an outlier: large Pareto k
chains <- 2L
draws <- 500L
S <- chains * draws
## model A: y ~ N(mu, sigma), posterior draws from the conjugate normal / scaled-inv-chi2
## posterior under the flat prior; model B: mu fixed at 0
s2 <- var(y)
sigmaA <- sqrt((n - 1) * s2 / rchisq(S, n - 1))
muA <- rnorm(S, mean(y), sigmaA / sqrt(n))
sigmaB <- sqrt(sum(y^2) / rchisq(S, n))
llA <- sapply(seq_len(n), function(i) dnorm(y[i], muA, sigmaA, log = TRUE))
llB <- sapply(seq_len(n), function(i) dnorm(y[i], 0, sigmaB, log = TRUE))
looA <- loo(llA, r_eff = rep(1, n))
looB <- loo(llB, r_eff = rep(1, n))
waicA <- suppressWarnings(waic(llA))
cmp <- loo_compare(list(A = looA, B = looB))
matrices <- list(
    call = "loo(ll, r_eff = 1); waic(ll); loo_compare(list(A = loo(llA), B = loo(llB)))",
    versions = list(R = R.version.string, loo = as.character(packageVersion("loo"))),
    chains = chains, draws = draws, y = y,
    A = list(mu = muA, sigma = sigmaA, loo = summ(looA),
             pareto_k = unname(looA$diagnostics$pareto_k),
             elpd_loo_i = unname(looA$pointwise[, "elpd_loo"]),
             waic = summ(waicA)),
    B = list(sigma = sigmaB, loo = summ(looB)),
    compare = list(models = rownames(cmp), elpd_diff = unname(cmp[, "elpd_diff"]),
                   se_diff = unname(cmp[, "se_diff"]))
)
write_json(matrices, file.path(here, "matrices.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
}

## ---- 2. brms on sleepstudy --------------------------------------------------------
suppressPackageStartupMessages({
    library(brms)
    library(rstan)
})
rstan_options(boost_lib = "/usr/include")
if ("sleepstudy" %in% sections) {
sleepstudy <- read.csv("src/multilevel/datasets/data/sleepstudy.csv")
sleepstudy$Subject <- factor(sleepstudy$Subject)
fit_slope <- brm(Reaction ~ Days + (Days | Subject), data = sleepstudy, chains = 4,
                 iter = 2000, warmup = 1000, seed = 1, cores = 2, refresh = 0)
fit_int <- brm(Reaction ~ Days + (1 | Subject), data = sleepstudy, chains = 4,
               iter = 2000, warmup = 1000, seed = 1, cores = 2, refresh = 0)
loo_slope <- loo(fit_slope)
loo_int <- loo(fit_int)
cmp <- loo_compare(list(slope = loo_slope, intercept = loo_int))
sleep <- list(
    call = paste("brm(<formula>, data = sleepstudy, chains = 4, iter = 2000, warmup = 1000,",
                 "seed = 1); loo(fit); loo_compare(list(slope = ..., intercept = ...))"),
    formulas = list(slope = "Reaction ~ Days + (Days | Subject)",
                    intercept = "Reaction ~ Days + (1 | Subject)"),
    versions = list(R = R.version.string, brms = as.character(packageVersion("brms")),
                    loo = as.character(packageVersion("loo"))),
    slope = list(loo = summ(loo_slope), pareto_k_counts = kcount(loo_slope),
                 waic = summ(suppressWarnings(waic(fit_slope)))),
    intercept = list(loo = summ(loo_int), pareto_k_counts = kcount(loo_int),
                     waic = summ(suppressWarnings(waic(fit_int)))),
    compare = list(models = rownames(cmp), elpd_diff = unname(cmp[, "elpd_diff"]),
                   se_diff = unname(cmp[, "se_diff"]))
)
print(cmp)
print(loo_slope)
write_json(sleep, file.path(here, "sleepstudy_compare.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
}

## ---- 3. brms's binomial model on cbpp ---------------------------------------------
if ("cbpp" %in% sections) {
cbpp <- read.csv("src/multilevel/datasets/data/cbpp.csv")
cbpp$herd <- factor(cbpp$herd)
cbpp$period <- factor(cbpp$period)
fit_cbpp <- brm(incidence | trials(size) ~ period + (1 | herd), family = binomial, data = cbpp,
                chains = 4, iter = 2000, warmup = 1000, seed = 1, cores = 2, refresh = 0)
loo_cbpp <- loo(fit_cbpp)
cbpp_ref <- list(
    call = paste("brm(incidence | trials(size) ~ period + (1 | herd), family = binomial,",
                 "data = cbpp, chains = 4, iter = 2000, warmup = 1000, seed = 1); loo(fit);",
                 "waic(fit)"),
    versions = list(R = R.version.string, brms = as.character(packageVersion("brms")),
                    loo = as.character(packageVersion("loo"))),
    loo = summ(loo_cbpp), pareto_k_counts = kcount(loo_cbpp),
    waic = summ(suppressWarnings(waic(fit_cbpp)))
)
print(loo_cbpp)
write_json(cbpp_ref, file.path(here, "cbpp_binomial.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
}
