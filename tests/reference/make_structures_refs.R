## nlme's residual variance functions and correlation structures, evaluated on small data sets,
## for tests/test_residual_structures.py (multilevel.structures).
##
## Run from the repository root:  Rscript tests/reference/make_structures_refs.R
## Writes tests/reference/structures/refs.json: the data used (columns in row order) and, per
## case, the nlme call, nlme's coef(unconstrained = TRUE / FALSE) and
##   variance functions: varWeights() (1/sd multipliers) and logLik() (sum(log(varWeights)));
##   correlation structures: corMatrix() (one matrix per group, in group order of appearance),
##   corFactor() (per group, the inverse of the lower Cholesky factor, column-major) and
##   logDet() (nlme's value: -sum over groups of log|L^-1| = sum of log|R_g| / 2).
## Produced with R 4.2.2 and nlme 3.1-162; numbers written with 17 significant digits.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})

## Orthodont, subjects M01, M02, F01, F02 (16 rows, 4 per subject, ages 8..14).
orth <- as.data.frame(Orthodont)
orth <- orth[orth$Subject %in% c("M01", "M02", "F01", "F02"), ]
orth$Subject <- as.character(orth$Subject)
orth$Sex <- as.character(orth$Sex)
orth$occ <- as.integer(orth$age / 2 - 3)          # occasion 1..4
## the same with the second visit of M02 and the first and third of F01 dropped
orth_gap <- orth[-c(6, 9, 11), ]

## BodyWeight, rats 1, 2, 9, 10, 13, 14 (diets 1, 2, 3); Time in days 1, 8, ..., 64 (gaps).
bw <- as.data.frame(BodyWeight)
bw <- bw[bw$Rat %in% c("1", "2", "9", "10", "13", "14"), ]
bw$Rat <- as.character(bw$Rat)
bw$Diet <- as.character(bw$Diet)
bw$tcont <- bw$Time / 7                            # continuous (non-integer) time, weeks

## a tiny spatial set: two groups of four points in the plane
sp <- data.frame(g = rep(c("a", "b"), each = 4),
                 x = c(0, 1, 0.5, 2.5, 0, 1.5, 3, 0.2),
                 y = c(0, 0.3, 1.2, 2, 1, 0, 2.2, 2.9))

cols <- function(d) lapply(d, function(v) if (is.factor(v)) as.character(v) else v)
data_out <- list(orth = cols(orth), orth_gap = cols(orth_gap), bw = cols(bw), sp = cols(sp))

var_case <- function(call, data_name) {
    obj <- Initialize(eval(parse(text = call)), data = get(data_name))
    ## Initialize() leaves some classes' weights at 1 (varConstPower); setting the
    ## coefficients recomputes varWeights and logLik from them
    if (length(coef(obj)) > 0) coef(obj) <- coef(obj)
    list(call = call, data = data_name,
         coef_unconstrained = unname(as.numeric(coef(obj, unconstrained = TRUE))),
         coef_constrained = unname(as.numeric(coef(obj, unconstrained = FALSE))),
         var_weights = unname(as.numeric(varWeights(obj))),
         loglik = as.numeric(logLik(obj)))
}

cor_case <- function(call, data_name) {
    obj <- Initialize(eval(parse(text = call)), data = get(data_name))
    m <- corMatrix(obj)
    if (!is.list(m)) m <- list(m)
    f <- corFactor(obj)
    lens <- vapply(m, nrow, 1)
    ## the ARMA process's true autocorrelations, from stats::ARMAacf: nlme's corARMA differs
    ## from them at lags 2..q when q > p >= 1 (see the test)
    acf <- NULL
    if (inherits(obj, "corARMA")) {
        p <- attr(obj, "p"); q <- attr(obj, "q"); v <- coef(obj, unconstrained = FALSE)
        acf <- unname(as.numeric(ARMAacf(ar = v[seq_len(p)], ma = v[p + seq_len(q)],
                                         lag.max = attr(obj, "maxLag"))))
    }
    idx <- rep(seq_along(lens), lens^2)
    list(call = call, data = data_name, class = class(obj)[1],
         coef_unconstrained = unname(as.numeric(coef(obj, unconstrained = TRUE))),
         coef_constrained = unname(as.numeric(coef(obj, unconstrained = FALSE))),
         cor_matrix = lapply(unname(m), function(a) unname(as.numeric(a))),
         sizes = unname(lens),
         cor_factor = lapply(split(as.numeric(f), idx), unname),
         log_det = as.numeric(logDet(obj)), armaacf = acf)
}

var_calls <- list(
    c("varIdent(form = ~ 1 | Sex)", "orth"),
    c("varIdent(0.5, form = ~ 1 | Sex)", "orth"),
    c("varIdent(c(`2` = 1.7, `3` = 0.6), form = ~ 1 | Diet)", "bw"),
    c("varIdent(c(`1` = 0.8, `3` = 2.5), form = ~ 1 | Diet)", "bw"),
    c("varPower(0.7, form = ~ age)", "orth"),
    c("varPower(c(Female = 0.3, Male = -0.4), form = ~ age | Sex)", "orth"),
    c("varExp(0.05, form = ~ age)", "orth"),
    c("varExp(c(`1` = 0.1, `3` = -0.02, `2` = 0.01), form = ~ Time | Diet)", "bw"),
    c("varConstPower(const = 2.5, power = 0.6, form = ~ age)", "orth"),
    c("varConstPower(const = c(Male = 2, Female = 0.5), power = c(Male = 0.6, Female = -0.2), form = ~ age | Sex)", "orth"),
    c("varFixed(~ age)", "orth"),
    c("varComb(varIdent(0.5, form = ~ 1 | Sex), varPower(0.7, form = ~ age))", "orth"),
    c("varComb(varExp(0.05, form = ~ Time), varIdent(c(`2` = 1.7, `3` = 0.6), form = ~ 1 | Diet))", "bw"))

cor_calls <- list(
    c("corAR1(0.6, form = ~ 1 | Subject)", "orth"),
    c("corAR1(-0.45, form = ~ occ | Subject)", "orth_gap"),
    c("corAR1(0.8, form = ~ Time | Rat)", "bw"),
    c("corCAR1(0.7, form = ~ tcont | Rat)", "bw"),
    c("corCAR1(0.2, form = ~ age | Subject)", "orth"),
    c("corARMA(c(0.8, 0.4), form = ~ 1 | Subject, p = 1, q = 1)", "orth"),
    c("corARMA(c(0.2, 0.3, -0.1), form = ~ 1 | Subject, p = 1, q = 2)", "orth"),
    c("corARMA(c(0.5, -0.3), form = ~ occ | Subject, p = 2, q = 0)", "orth_gap"),
    c("corARMA(c(0.4), form = ~ 1 | Subject, p = 0, q = 1)", "orth"),
    c("corARMA(c(0.3, 0.2, 0.1, 0.5, -0.3), form = ~ 1 | Rat, p = 3, q = 2)", "bw"),
    c("corCompSymm(0.3, form = ~ 1 | Subject)", "orth"),
    c("corCompSymm(-0.2, form = ~ 1 | Subject)", "orth_gap"),
    c("corSymm(c(0.5, 0.3, 0.1, 0.4, 0.2, 0.6), form = ~ 1 | Subject)", "orth"),
    c("corSymm(c(0.5, -0.3, 0.1, 0.4, 0.2, 0.6), form = ~ occ | Subject)", "orth_gap"),
    c("corExp(1.5, form = ~ x + y | g)", "sp"),
    c("corExp(c(1.5, 0.2), form = ~ x + y | g, nugget = TRUE)", "sp"),
    c("corExp(1.5, form = ~ x + y | g, metric = 'manhattan')", "sp"),
    c("corExp(1.5, form = ~ x + y | g, metric = 'maximum')", "sp"),
    c("corGaus(1.2, form = ~ x + y | g)", "sp"),
    c("corGaus(c(1.2, 0.3), form = ~ x + y | g, nugget = TRUE)", "sp"),
    c("corLin(3, form = ~ x + y | g)", "sp"),
    c("corLin(c(3, 0.1), form = ~ x + y | g, nugget = TRUE)", "sp"),
    c("corSpher(2.8, form = ~ x + y | g)", "sp"),
    c("corSpher(c(2.8, 0.25), form = ~ x + y | g, nugget = TRUE)", "sp"),
    c("corRatio(0.9, form = ~ x + y | g)", "sp"),
    c("corRatio(c(0.9, 0.4), form = ~ x + y | g, nugget = TRUE)", "sp"),
    c("corExp(20, form = ~ Time | Rat)", "bw"))

out <- list(
    nlme_version = as.character(packageVersion("nlme")),
    r_version = R.version.string,
    data = data_out,
    variance = lapply(var_calls, function(cl) var_case(cl[1], cl[2])),
    correlation = lapply(cor_calls, function(cl) cor_case(cl[1], cl[2])))

dir.create("tests/reference/structures", showWarnings = FALSE)
write_json(out, "tests/reference/structures/refs.json", auto_unbox = TRUE,
           digits = I(17), pretty = TRUE)
