## One brms fit of one Bayesian benchmark case, timed; prints one JSON line (issue 9).
##
## benchmarks/bayes_bench.py starts this script in a fresh R process per case:
##
##     Rscript benchmarks/bayes_bench.R CASE [--draws N] [--warmup N]
##     Rscript benchmarks/bayes_bench.R --check        # versions only
##
## CASE is sleepstudy, orange or cbpp (the calls of tests/reference/brms/make_brms_refs.R).
## Timing as in make_brms_refs.R: compile_s = brm(..., chains = 0) (rstan compiles the model;
## rstan keeps no compiled model between R processes, so every process compiles), sampling_s
## = update(fit0, recompile = FALSE, chains = 4, ...), total_s = their sum. process_s also counts
## loading brms (from the script's first line to the end of sampling). The posterior summary
## (posterior::summarise_draws) is computed after the clock stops.

t_start <- Sys.time()
suppressPackageStartupMessages({
    library(brms)
    library(rstan)
    library(posterior)
    library(jsonlite)
})
rstan_options(boost_lib = "/usr/include")  # Debian's r-cran-bh ships no Boost headers
t_loaded <- Sys.time()

args <- commandArgs(trailingOnly = TRUE)
data_dir <- "src/multilevel/datasets/data"
if (!dir.exists(data_dir)) stop("run from the repository root")

versions <- list(brms = as.character(packageVersion("brms")),
                 rstan = as.character(packageVersion("rstan")),
                 posterior = as.character(packageVersion("posterior")),
                 r = R.version.string)
if (length(args) && args[1] == "--check") {
    cat(toJSON(list(available = TRUE, versions = versions), auto_unbox = TRUE), "\n")
    quit(status = 0)
}

flag <- function(name, default) {
    at <- match(name, args)
    if (is.na(at)) default else as.integer(args[at + 1])
}
case_id <- args[1]
DRAWS <- flag("--draws", 1000L)
WARMUP <- flag("--warmup", 1000L)
CHAINS <- 4L
CORES <- 2L
SEED <- 1L

read_data <- function(name, factors) {
    d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
    meta <- fromJSON(file.path(data_dir, paste0(name, ".json")), simplifyVector = FALSE)
    for (col in meta$columns) {
        if (col$name %in% factors)
            d[[col$name]] <- factor(as.character(d[[col$name]]), levels = unlist(col$levels))
    }
    d
}

calls <- list(
    sleepstudy = "brm(Reaction ~ Days + (Days | Subject), data = read_data('sleepstudy', 'Subject'))",
    orange = paste0(
        "brm(bf(circumference ~ Asym / (1 + exp((xmid - age) / scal)), ",
        "Asym ~ 1 + (1 | Tree), xmid ~ 1, scal ~ 1, nl = TRUE), ",
        "data = read_data('Orange', 'Tree'), ",
        "prior = c(prior(normal(200, 50), nlpar = 'Asym'), ",
        "prior(normal(700, 200), nlpar = 'xmid'), ",
        "prior(normal(350, 100), nlpar = 'scal'), ",
        "prior(student_t(3, 0, 40), class = 'sd', nlpar = 'Asym'), ",
        "prior(student_t(3, 0, 20), class = 'sigma')))"),
    cbpp = paste0("brm(incidence | trials(size) ~ period + (1 | herd), family = binomial, ",
                  "data = read_data('cbpp', c('herd', 'period')))")
)
if (is.null(calls[[case_id]])) stop("unknown case ", case_id, "; known: ", paste(names(calls), collapse = ", "))

loadavg <- function() strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3]
load_start <- loadavg()

cl <- str2lang(calls[[case_id]])
cl$chains <- 0L
cl$seed <- SEED
cl$refresh <- 0L
compile_s <- unname(system.time(fit0 <- suppressWarnings(eval(cl)))["elapsed"])
load_sampling <- loadavg()
sampling_s <- unname(system.time(fit <- suppressWarnings(
    update(fit0, recompile = FALSE, chains = CHAINS, iter = WARMUP + DRAWS, warmup = WARMUP,
           seed = SEED, cores = CORES, refresh = 0)))["elapsed"])
t_end <- Sys.time()

s <- summarise_draws(as_draws_df(fit), rhat, ess_bulk, ess_tail)
s <- s[!(s$variable %in% c("lp__", "lprior") | grepl("^(z|L)_", s$variable)), ]
scalar <- !grepl("^r_", s$variable)
np <- nuts_params(fit)
chain_s <- get_elapsed_time(fit$fit)

out <- c(list(
    library = "brms", case = case_id, available = TRUE,
    chains = CHAINS, draws = DRAWS, warmup = WARMUP, cores = CORES,
    load_s = as.numeric(difftime(t_loaded, t_start, units = "secs")),
    compile_s = compile_s, sampling_s = sampling_s, total_s = compile_s + sampling_s,
    process_s = as.numeric(difftime(t_end, t_start, units = "secs")),
    chain_warmup_s = unname(chain_s[, "warmup"]), chain_sample_s = unname(chain_s[, "sample"]),
    min_ess_bulk = min(s$ess_bulk[scalar]),
    min_ess_bulk_variable = s$variable[scalar][which.min(s$ess_bulk[scalar])],
    min_ess_bulk_all = min(s$ess_bulk),
    min_ess_tail = min(s$ess_tail[scalar]),
    max_rhat = max(s$rhat[scalar]),
    divergences = sum(np$Value[np$Parameter == "divergent__"]),
    loadavg_start = load_start, loadavg_sampling = load_sampling,
    loadavg_end = loadavg()), versions)
cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
