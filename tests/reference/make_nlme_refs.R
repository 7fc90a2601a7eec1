# nlme fits of self-starting models, the reference for multilevel.nlme (tests/test_nlme.py),
# beside the shared Orange fit (tests/reference/nlme/orange_nlme_shared.json, copied unchanged
# from the project's shared reference set). Run from the repository root:
# Rscript tests/reference/make_nlme_refs.R (nlme 3.1-162, R 4.2.2).
suppressMessages({library(nlme); library(jsonlite)})
d <- as.data.frame(Loblolly)
d$Seed <- factor(as.character(d$Seed), levels = levels(Loblolly$Seed), ordered = TRUE)
write.csv(d[, c("Seed", "age", "height")], "tests/reference/data/Loblolly.csv", row.names = FALSE)
meta <- list(dataset = "Loblolly", source = "datasets::Loblolly", nrow = nrow(d),
             columns = c("Seed", "age", "height"),
             column_types = list(Seed = "factor", age = "double", height = "double"),
             levels = list(Seed = levels(d$Seed)), ordered = list(Seed = TRUE))
writeLines(toJSON(meta, auto_unbox = TRUE, pretty = TRUE), "tests/reference/data/Loblolly.levels.json")
one <- function(m, call) list(call = call, logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
                              AIC = AIC(m), BIC = BIC(m), fixef = as.list(fixef(m)),
                              se = as.list(sqrt(diag(vcov(m)))), sigma = m$sigma,
                              sd = unname(as.numeric(VarCorr(m)[, "StdDev"])),
                              ranef = lapply(as.list(ranef(m)), unname), groups = rownames(ranef(m)))
c1 <- "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3))"
c2 <- "nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 + lrc ~ 1, random = Asym + lrc ~ 1 | Seed, start = c(Asym = 103, R0 = -8.5, lrc = -3.3), method = 'REML')"
out <- list(versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))),
            loblolly_asym = one(eval(parse(text = c1)), c1),
            loblolly_asym_lrc_reml = one(eval(parse(text = c2)), c2))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/nlme/loblolly.json")
