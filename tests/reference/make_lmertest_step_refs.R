## lmerTest::step on sleepstudy with an added pure-noise covariate.
## Run: Rscript tests/reference/make_lmertest_step_refs.R  (writes lmertest_step/step.json and
## data/sleepstudy_noise.csv). R 4.2.2, lme4 1.1-31, lmerTest 3.1-3.
suppressMessages({library(lmerTest); library(jsonlite)})
here <- local({a <- commandArgs(FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)]); dirname(normalizePath(f))})
set.seed(20261125)
d <- sleepstudy
d$noise <- round(rnorm(nrow(d)), 6)
write.csv(d, file.path(here, "data", "sleepstudy_noise.csv"), row.names = FALSE)
m <- lmer(Reaction ~ Days + noise + (Days | Subject), d)
s <- step(m)
r <- as.data.frame(s$random); f <- as.data.frame(s$fixed)
out <- list(R_version = R.version.string, lmerTest_version = as.character(packageVersion("lmerTest")),
  call = "step(lmer(Reaction ~ Days + noise + (Days | Subject), d)); d = sleepstudy + noise (seed 20261125)",
  random = list(rows = I(rownames(r)), table = lapply(as.list(r), unname)),
  fixed = list(rows = I(rownames(f)), table = lapply(as.list(f), unname)),
  final = deparse1(formula(get_model(s))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(here, "lmertest_step", "step.json"))
print(s)
