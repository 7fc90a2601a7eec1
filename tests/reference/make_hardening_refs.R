# Reference numbers for the hardening tests (issue 6): zero prior weights, R names, and
# lmerTest's summary() printout. Run from tests/reference:  Rscript make_hardening_refs.R
# Writes hardening/zero_weights.json and hardening/lmertest_summary_*.txt.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
data(sleepstudy, package = "lme4")
ss <- sleepstudy
w <- rep(1, nrow(ss)); w[c(3, 50, 51, 120)] <- 0   # four rows with zero weight
fits <- list(
  weighted = lme4::lmer(Reaction ~ Days + (Days | Subject), ss, weights = w),
  subset = lme4::lmer(Reaction ~ Days + (Days | Subject), ss[w > 0, ]))
out <- lapply(fits, function(f) list(nobs = nobs(f), sigma = sigma(f),
  REMLcrit = unname(REMLcrit(f)), fixef = unname(fixef(f)),
  theta = unname(getME(f, "theta")), df_resid = df.residual(f)))
out$versions <- list(lme4 = as.character(packageVersion("lme4")),
                     R = R.version.string)
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "hardening/zero_weights.json")
# lmerTest's summary printouts
noise <- read.csv("data/sleepstudy_noise.csv")
noise$Subject <- factor(noise$Subject)
capture <- function(f, file) writeLines(capture.output(print(summary(f))), file)
capture(lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy),
        "hardening/lmertest_summary_sleepstudy.txt")
capture(lmerTest::lmer(Reaction ~ Days + noise + (Days | Subject), noise),
        "hardening/lmertest_summary_noise.txt")
capture(lmerTest::lmer(Reaction ~ Days + noise + (1 | Subject), noise, REML = FALSE),
        "hardening/lmertest_summary_noise_ml.txt")

# R names: dotted column names in the response, the fixed part, a random slope and a
# transform (iris, R's datasets package), written out with their R names.
write.csv(iris, "data/iris.csv", row.names = FALSE)
data(Arabidopsis, package = "lme4")
ara <- Arabidopsis[, c("total.fruits", "nutrient", "amd", "popu", "gen")]
ara$gen <- as.integer(as.character(ara$gen))
write.csv(ara, "data/arabidopsis.csv", row.names = FALSE)
named <- list(
  iris_slope = lme4::lmer(Sepal.Length ~ Petal.Length + (Petal.Length | Species), iris),
  iris_ml = lme4::lmer(Sepal.Length ~ Petal.Width + log(Sepal.Width) + (1 | Species), iris,
                       REML = FALSE),
  arabidopsis = lme4::lmer(log(total.fruits + 1) ~ nutrient + amd + (1 | popu) + (1 | gen),
                           transform(Arabidopsis, nutrient = factor(nutrient))))
ref <- lapply(named, function(f) list(formula = deparse(formula(f)), reml = isREML(f),
  objective = unname(if (isREML(f)) REMLcrit(f) else deviance(f)),
  fixef = as.list(fixef(f)), sigma = sigma(f), theta = unname(getME(f, "theta"))))
writeLines(toJSON(ref, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "hardening/r_names.json")
