## Inference on GLMMs from R: performance's ICC / Nakagawa R2 on the latent scale and its
## overdispersion check, lme4's likelihood-ratio anova and profile / Wald intervals of glmer
## fits. Every case records its R call; the data are the committed CSVs in data/ (read back
## with their factor levels), so the fits are those of make_glmm_refs.R.
## Run: Rscript tests/reference/make_glmm_inference_refs.R   (writes glmm_inference/refs.json)
## R 4.2.2, lme4 1.1-31, performance 0.10.2, insight 0.19.0 (Debian r-cran-performance).
suppressMessages({library(lme4); library(performance); library(insight); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})

load_data <- function(name) {
    meta <- fromJSON(file.path(here, "data", paste0(name, ".levels.json")))
    raw <- read.csv(file.path(here, "data", paste0(name, ".csv")), colClasses = "character",
                    na.strings = "NA")
    for (col in meta$columns) {
        kind <- meta$column_types[[col]]
        if (!is.null(meta$levels[[col]])) {
            raw[[col]] <- factor(raw[[col]], levels = meta$levels[[col]],
                                 ordered = isTRUE(meta$ordered[[col]]))
        } else if (kind %in% c("double", "integer")) {
            raw[[col]] <- as.numeric(raw[[col]])
        }
    }
    raw
}
cbpp <- load_data("cbpp")
grouseticks <- load_data("grouseticks")
nbsim <- load_data("nb_sim")
Contraception <- load_data("Contraception")

fits <- list(
    cbpp_logit = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)",
    cbpp_probit = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial(link = \"probit\"))",
    cbpp_cloglog = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial(link = \"cloglog\"))",
    cbpp_null = "glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), data = cbpp, family = binomial)",
    contraception_slope = "glmer(use ~ age + urban + (urban | district), data = Contraception, family = binomial)",
    grouseticks_olre = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), data = grouseticks, family = poisson)",
    grouseticks_two = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = grouseticks, family = poisson)",
    grouseticks_one = "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), data = grouseticks, family = poisson)",
    nb_glmernb = "glmer.nb(y ~ x + (1 | g), data = nbsim)"
)
models <- lapply(fits, function(call) suppressWarnings(eval(parse(text = call))))

num <- function(x) unname(as.numeric(x))
variance_cases <- c("cbpp_logit", "cbpp_probit", "cbpp_cloglog", "contraception_slope",
                    "grouseticks_olre", "grouseticks_two", "nb_glmernb")
variance <- list()
for (id in variance_cases) {
    m <- models[[id]]
    w <- character(0)
    withCallingHandlers({
        i <- icc(m); r <- r2_nakagawa(m); v <- get_variance(m)
    }, warning = function(cond) { w <<- c(w, conditionMessage(cond)); invokeRestart("muffleWarning") })
    nm <- null_model(m)
    variance[[id]] <- list(call = fits[[id]],
        icc_adjusted = num(i$ICC_adjusted), icc_unadjusted = num(i$ICC_unadjusted),
        r2_marginal = num(r$R2_marginal), r2_conditional = num(r$R2_conditional),
        var_fixed = num(v$var.fixed), var_random = num(v$var.random),
        var_residual = num(v$var.residual), var_distribution = num(v$var.distribution),
        var_dispersion = num(v$var.dispersion),
        null_model_intercept = num(fixef(nm)[1]), warnings = I(w))
}

overdispersion <- list()
for (id in c("cbpp_logit", "grouseticks_olre", "grouseticks_two", "nb_glmernb")) {
    o <- check_overdispersion(models[[id]])
    overdispersion[[id]] <- list(call = fits[[id]], chisq = num(o$chisq_statistic),
        ratio = num(o$dispersion_ratio), df = num(o$residual_df), p_value = num(o$p_value))
}

lrt <- function(small, large) {
    a <- anova(models[[small]], models[[large]])
    list(models = I(c(small, large)), calls = I(c(fits[[small]], fits[[large]])),
         npar = num(a$npar), AIC = num(a$AIC), BIC = num(a$BIC), logLik = num(a$logLik),
         deviance = num(a$deviance), chisq = num(a$Chisq[2]), df = num(a$Df[2]),
         p_value = num(a[["Pr(>Chisq)"]][2]))
}
anova_cases <- list(cbpp_period = lrt("cbpp_null", "cbpp_logit"),
                    grouseticks_olre = lrt("grouseticks_two", "grouseticks_olre"),
                    grouseticks_location = lrt("grouseticks_one", "grouseticks_two"))

intervals <- function(ci) lapply(setNames(seq_len(nrow(ci)), rownames(ci)),
                                 function(k) list(lower = num(ci[k, 1]), upper = num(ci[k, 2])))
confint_cases <- list()
for (id in c("cbpp_logit", "cbpp_probit")) {
    m <- models[[id]]
    confint_cases[[id]] <- list(call = fits[[id]], level = 0.95,
        profile = intervals(suppressWarnings(confint(m, method = "profile", oldNames = FALSE))),
        wald = intervals(confint(m, method = "Wald", oldNames = FALSE)))
}

out <- list(R_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            performance_version = as.character(packageVersion("performance")),
            insight_version = as.character(packageVersion("insight")),
            notes = paste("variance: performance::icc / r2_nakagawa / insight::get_variance",
                          "(var_residual = var_distribution + var_dispersion; var_dispersion is",
                          "the variance of observation-level random effects; for log links",
                          "var_distribution = log1p(V(mu) / mu^2) at mu = exp(intercept of the",
                          "null model with the same random terms), null_model_intercept).",
                          "overdispersion: performance::check_overdispersion (Pearson chi2,",
                          "df = nobs - npar). anova: lme4 anova(small, large). confint: lme4",
                          "confint.merMod profile and Wald, level 0.95."),
            variance = variance, overdispersion = overdispersion, anova = anova_cases,
            confint = confint_cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(here, "glmm_inference", "refs.json"))
cat("wrote glmm_inference/refs.json\n")
