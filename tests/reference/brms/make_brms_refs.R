## Reference posteriors and timings from brms (issue 9, Bayesian models).
##
## Fits five models with brms (4 chains, iter 2000, warmup 1000, seed 1, cores 2) on the
## package's own data sets (src/multilevel/datasets/data/*.csv) and writes one JSON per model
## into this folder: the call, versions, timings (compile only, sampling only, per chain),
## the posterior summary of every variable, prior_summary(fit, all = TRUE), and the sampler's
## diagnostics. For sleepstudy_default it also refits with seed 2 and records the seed-to-seed
## differences (brms's own Monte-Carlo noise), and the data-derived numbers of the default priors.
##
## Run from the repository root:  Rscript tests/reference/brms/make_brms_refs.R
## (several minutes: every model is compiled by rstan, about a minute each on 2 cores).
## Tests never run this; they read the JSON it writes.

suppressPackageStartupMessages({
    library(brms)
    library(rstan)
    library(posterior)
    library(jsonlite)
})
## Debian's r-cran-bh ships no headers; rstan finds Boost in the system include dir instead.
rstan_options(boost_lib = "/usr/include")

args <- commandArgs(trailingOnly = TRUE)
here <- "tests/reference/brms"
data_dir <- "src/multilevel/datasets/data"
if (!dir.exists(here)) stop("run from the repository root")
only <- if (length(args)) args else NULL

CHAINS <- 4L
ITER <- 2000L
WARMUP <- 1000L
SEED <- 1L
CORES <- 2L

## ---------------------------------------------------------------------------------
## Data: the package's CSVs, grouping columns as (unordered) factors with the level order
## recorded in the data set's JSON, so that r_<group>[<level>,...] names match ours.
## ---------------------------------------------------------------------------------
read_data <- function(name, factors) {
    d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
    meta <- fromJSON(file.path(data_dir, paste0(name, ".json")), simplifyVector = FALSE)
    for (col in meta$columns) {
        if (col$name %in% factors) {
            lev <- unlist(col$levels)
            d[[col$name]] <- factor(as.character(d[[col$name]]), levels = lev)
            stopifnot(!anyNA(d[[col$name]]))
        }
    }
    d
}
sleepstudy <- read_data("sleepstudy", "Subject")
Orange <- read_data("Orange", "Tree")
cbpp <- read_data("cbpp", c("herd", "period"))
Orthodont <- read_data("Orthodont", c("Subject", "Sex"))

## ---------------------------------------------------------------------------------
## Models: the brm() call as text (without the sampling arguments, which are added below).
## ---------------------------------------------------------------------------------
models <- list(
    sleepstudy_default = list(
        call = "brm(Reaction ~ Days + (Days | Subject), data = sleepstudy)"
    ),
    orange_nl = list(
        call = paste0(
            "brm(bf(circumference ~ Asym / (1 + exp((xmid - age) / scal)), ",
            "Asym ~ 1 + (1 | Tree), xmid ~ 1, scal ~ 1, nl = TRUE), data = Orange, ",
            "prior = c(prior(normal(200, 50), nlpar = \"Asym\"), ",
            "prior(normal(700, 200), nlpar = \"xmid\"), ",
            "prior(normal(350, 100), nlpar = \"scal\"), ",
            "prior(student_t(3, 0, 40), class = \"sd\", nlpar = \"Asym\"), ",
            "prior(student_t(3, 0, 20), class = \"sigma\")))"
        ),
        refit_if_divergent = 0.95
    ),
    cbpp_binomial = list(
        call = "brm(incidence | trials(size) ~ period + (1 | herd), family = binomial, data = cbpp)"
    ),
    orthodont_lkj = list(
        call = paste0(
            "brm(distance ~ age + Sex + (age | Subject), data = Orthodont, ",
            "prior = c(prior(normal(0, 5), class = \"b\"), prior(lkj(2), class = \"cor\"), ",
            "prior(student_t(3, 0, 5), class = \"sd\"), prior(exponential(1), class = \"sigma\")))"
        ),
        extra_if_divergent = 0.95
    ),
    cbpp_binomial_prior = list(
        call = paste0(
            "brm(incidence | trials(size) ~ period + (1 | herd), family = binomial, data = cbpp, ",
            "prior = c(prior(normal(0, 1), class = \"b\", coef = \"period2\"), ",
            "prior(student_t(3, 0, 1), class = \"sd\", group = \"herd\")))"
        )
    )
)

sampling_args_text <- function(seed, adapt_delta) {
    s <- sprintf("chains = %d, iter = %d, warmup = %d, seed = %d, cores = %d, refresh = 0",
                 CHAINS, ITER, WARMUP, seed, CORES)
    if (!is.null(adapt_delta)) s <- paste0(s, sprintf(", control = list(adapt_delta = %s)", adapt_delta))
    s
}
full_call_text <- function(call, seed, adapt_delta) {
    paste0(sub("\\)$", "", call), ", ", sampling_args_text(seed, adapt_delta), ")")
}

## Run an expression, keeping its warnings (as text) instead of printing them.
with_warnings <- function(expr) {
    w <- character(0)
    val <- withCallingHandlers(expr, warning = function(cond) {
        w <<- c(w, conditionMessage(cond))
        invokeRestart("muffleWarning")
    })
    list(value = val, warnings = w)
}

compile_model <- function(call) {
    cl <- str2lang(call)
    cl$chains <- 0L
    cl$seed <- SEED
    cl$refresh <- 0L
    t <- system.time(r <- with_warnings(eval(cl)))
    list(fit0 = r$value, compile_s = unname(t["elapsed"]), warnings = r$warnings)
}

## The same sampling straight through rstan (no brms pre/post-processing), to show how much of
## sampling_s is brms's own overhead; its draws are not used.
rstan_sampling_time <- function(fit0, seed, adapt_delta) {
    sm <- fit0$fit@stanmodel
    sdata <- standata(fit0)
    t <- system.time(suppressWarnings(
        rstan::sampling(sm, data = sdata, chains = CHAINS, iter = ITER, warmup = WARMUP,
                        seed = seed, cores = CORES, refresh = 0,
                        control = list(adapt_delta = adapt_delta))
    ))
    unname(t["elapsed"])
}

sample_model <- function(fit0, seed, adapt_delta) {
    ctrl <- if (is.null(adapt_delta)) list() else list(adapt_delta = adapt_delta)
    t <- system.time(r <- with_warnings(
        update(fit0, recompile = FALSE, chains = CHAINS, iter = ITER, warmup = WARMUP,
               seed = seed, cores = CORES, refresh = 0, control = ctrl)
    ))
    list(fit = r$value, sampling_s = unname(t["elapsed"]), warnings = r$warnings)
}

## posterior summary: one record per variable, minus lp__, lprior, z_*, L_*
## brms 2.18 samples the intercept of the centred design ("Intercept") but does not save it
## unless save_pars(all = TRUE); it is rebuilt here draw by draw exactly as brms's Stan code
## defines it: b_Intercept = Intercept - dot_product(means_X, b).
add_centred_intercept <- function(fit, dr) {
    if (!("b_Intercept" %in% variables(dr)) || isTRUE(fit$formula$nl)) return(dr)
    X <- standata(fit)$X
    if (is.null(X) || colnames(X)[1] != "Intercept") return(dr)
    cols <- colnames(X)[-1]
    b <- if (length(cols)) as.matrix(as.data.frame(dr)[, paste0("b_", cols), drop = FALSE]) else NULL
    shift <- if (length(cols)) drop(b %*% colMeans(X[, cols, drop = FALSE])) else 0
    mutate_variables(dr, Intercept = b_Intercept + shift)
}

summarise_fit <- function(fit) {
    dr <- add_centred_intercept(fit, as_draws_df(fit))
    s <- summarise_draws(dr, mean, sd,
                         ~quantile(.x, probs = c(0.025, 0.975), names = FALSE),
                         rhat, ess_bulk, ess_tail)
    names(s)[4:5] <- c("q2.5", "q97.5")
    keep <- !(s$variable %in% c("lp__", "lprior") | grepl("^(z|L)_", s$variable))
    s <- s[keep, ]
    out <- lapply(seq_len(nrow(s)), function(i) {
        list(mean = s$mean[i], sd = s$sd[i], q2.5 = s$q2.5[i], q97.5 = s$q97.5[i],
             rhat = s$rhat[i], ess_bulk = s$ess_bulk[i], ess_tail = s$ess_tail[i])
    })
    names(out) <- s$variable
    out
}

diagnostics <- function(fit, summary, sampling_s) {
    np <- nuts_params(fit)  # post-warmup draws only
    max_td <- fit$fit@stan_args[[1]]$control$max_treedepth
    if (is.null(max_td)) max_td <- 10L
    min_ess <- min(vapply(summary, function(v) v$ess_bulk, 0))
    list(
        divergences = sum(np$Value[np$Parameter == "divergent__"]),
        max_treedepth = max_td,
        max_treedepth_hits = sum(np$Value[np$Parameter == "treedepth__"] >= max_td),
        min_ess_bulk = min_ess,
        ess_bulk_per_s = min_ess / sampling_s
    )
}

elapsed_per_chain <- function(fit) {
    e <- get_elapsed_time(fit$fit)
    lapply(seq_len(nrow(e)), function(i)
        list(chain = i, warmup = unname(e[i, "warmup"]), sample = unname(e[i, "sample"])))
}

prior_records <- function(fit) {
    ps <- as.data.frame(prior_summary(fit, all = TRUE))
    lapply(seq_len(nrow(ps)), function(i) {
        r <- lapply(ps[i, , drop = FALSE], function(col) as.character(col))
        names(r) <- names(ps)
        r
    })
}

run_record <- function(call, seed, adapt_delta, compile_s, s) {
    fit <- s$fit
    summ <- summarise_fit(fit)
    c(
        list(call = full_call_text(call, seed, adapt_delta),
             seed = seed,
             adapt_delta = if (is.null(adapt_delta)) 0.8 else adapt_delta,
             timing = list(compile_s = compile_s, sampling_s = s$sampling_s,
                           total_s = compile_s + s$sampling_s,
                           per_chain = elapsed_per_chain(fit)),
             warnings = I(s$warnings)),
        diagnostics(fit, summ, s$sampling_s),
        list(summary = summ)
    )
}

versions <- list(
    brms_version = as.character(packageVersion("brms")),
    rstan_version = as.character(packageVersion("rstan")),
    posterior_version = as.character(packageVersion("posterior")),
    R_version = R.version.string,
    chains = CHAINS, iter = ITER, warmup = WARMUP, cores = CORES,
    machine = sprintf("%d cores (%s), run %s", parallel::detectCores(), R.version$platform,
                      format(Sys.time(), "%Y-%m-%d %H:%M UTC", tz = "UTC"))
)

write_ref <- function(name, x) {
    path <- file.path(here, paste0(name, ".json"))
    write_json(x, path, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
    cat("wrote", path, "\n")
}

for (name in names(models)) {
    if (!is.null(only) && !(name %in% only)) next
    m <- models[[name]]
    cat("==", name, "== compiling\n")
    comp <- compile_model(m$call)
    load_before <- readLines("/proc/loadavg")
    cat("   compile", comp$compile_s, "s; sampling\n")
    s <- sample_model(comp$fit0, SEED, NULL)
    rec <- run_record(m$call, SEED, NULL, comp$compile_s, s)
    cat("   sampling", s$sampling_s, "s; divergences", rec$divergences, "\n")
    out <- list(name = name)
    extra <- list()
    if (!is.null(m$refit_if_divergent) && rec$divergences > 0) {
        ## keep the default-adapt_delta run for the record, use the refit as the reference
        extra$default_adapt_delta_run <- rec
        cat("   divergent at adapt_delta 0.8; refitting at", m$refit_if_divergent, "\n")
        s <- sample_model(comp$fit0, SEED, m$refit_if_divergent)
        rec <- run_record(m$call, SEED, m$refit_if_divergent, comp$compile_s, s)
        cat("   sampling", s$sampling_s, "s; divergences", rec$divergences, "\n")
        extra$reference_run <- sprintf("refit with control = list(adapt_delta = %s)",
                                       m$refit_if_divergent)
    } else if (!is.null(m$refit_if_divergent)) {
        extra$reference_run <- "default adapt_delta (0.8): no divergences"
    }
    if (!is.null(m$extra_if_divergent) && rec$divergences > 0) {
        ## keep the default run as the reference (as specified) and record a run at a higher
        ## adapt_delta beside it, to show how much the divergences move the posterior
        cat("   divergent at adapt_delta 0.8; extra run at", m$extra_if_divergent, "\n")
        sx <- sample_model(comp$fit0, SEED, m$extra_if_divergent)
        extra$higher_adapt_delta_run <- run_record(m$call, SEED, m$extra_if_divergent,
                                                   comp$compile_s, sx)
        cat("   sampling", sx$sampling_s, "s; divergences",
            extra$higher_adapt_delta_run$divergences, "\n")
        extra$reference_run <- "default adapt_delta (0.8), although divergent; see higher_adapt_delta_run"
    }
    rstan_s <- rstan_sampling_time(comp$fit0, SEED, rec$adapt_delta)
    rec$timing$rstan_sampling_s <- rstan_s
    rec$timing$note <- paste(
        "compile_s: brm(..., chains = 0); sampling_s: update(fit0, recompile = FALSE, <sampling args>),",
        "which includes brms's data preparation, starting 2 worker processes (cores = 2) and",
        "post-processing; rstan_sampling_s: rstan::sampling() on the same compiled model and",
        "standata() with the same chains/iter/warmup/seed/cores (draws not used); per_chain:",
        "rstan::get_elapsed_time (seconds per chain, chains run 2 at a time).",
        "The machine was shared with other jobs: load average before compiling:", load_before)
    out <- c(out, rec[c("call", "seed", "adapt_delta")], versions,
             list(compile_warnings = I(comp$warnings)),
             rec[setdiff(names(rec), c("call", "seed", "adapt_delta"))],
             list(prior_summary = prior_records(s$fit)), extra)

    if (name == "sleepstudy_default") {
        y <- sleepstudy$Reaction
        ## what brms's default priors are built from (the response's median and MAD)
        out$default_prior_data <- list(
            response = "Reaction",
            median = median(y), mad = mad(y),
            note = paste("brms 2.18 defaults (identity link): Intercept student_t(3, round(median, 1),",
                         "max(round(mad, 1), 2.5)); sd and sigma student_t(3, 0, max(round(mad, 1), 2.5));",
                         "b flat (prior string empty). For the logit link: student_t(3, 0, 2.5).")
        )
        cat("   seed 2 run\n")
        s2 <- sample_model(comp$fit0, 2L, NULL)
        summ2 <- summarise_fit(s2$fit)
        summ1 <- rec$summary
        vars <- intersect(names(summ1), names(summ2))
        dm <- vapply(vars, function(v) abs(summ1[[v]]$mean - summ2[[v]]$mean) / summ1[[v]]$sd, 0)
        dsd <- vapply(vars, function(v) abs(summ1[[v]]$sd - summ2[[v]]$sd) / summ1[[v]]$sd, 0)
        dq <- vapply(vars, function(v) max(abs(summ1[[v]]$q2.5 - summ2[[v]]$q2.5),
                                           abs(summ1[[v]]$q97.5 - summ2[[v]]$q97.5)) / summ1[[v]]$sd, 0)
        out$seed_to_seed <- list(
            description = paste("seed 1 vs seed 2, same compiled model and settings;",
                                "|mean1 - mean2| / sd1, |sd1 - sd2| / sd1, and max |q1 - q2| / sd1 over q2.5, q97.5"),
            seed2_call = full_call_text(m$call, 2L, NULL),
            seed2_sampling_s = s2$sampling_s,
            seed2_divergences = diagnostics(s2$fit, summ2, s2$sampling_s)$divergences,
            mean_max = max(dm), mean_median = median(dm), mean_argmax = vars[which.max(dm)],
            sd_rel_max = max(dsd), sd_rel_median = median(dsd),
            quantile_max = max(dq), quantile_median = median(dq)
        )
        out$seed_to_seed_sd_units <- as.list(dm)
        out$seed_to_seed_sd_rel <- as.list(dsd)
        out$seed2_summary <- summ2
    }
    write_ref(name, out)
}
