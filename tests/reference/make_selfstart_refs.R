## Reference numbers for multilevel.nonlinear.selfstart (tests/test_selfstart.py).
## Run from the repository root:  Rscript tests/reference/make_selfstart_refs.R
## Writes tests/reference/selfstart/refs.json with, for each of R's self-starting models:
##   "points":  model value and R's "gradient" attribute at a few parameter points;
##   "examples": the data (x, y; Dose for SSfol) of R's classic help-page examples,
##               getInitial()'s starting values and nls()'s estimates from those starts.
## Uses only base R (stats, datasets); the JSON writer is below so that no package is needed.

options(digits = 17)

to_json <- function(v, indent = "") {
  ind2 <- paste0(indent, "  ")
  if (is.list(v)) {
    nm <- names(v)
    items <- vapply(seq_along(v), function(i) to_json(v[[i]], ind2), "")
    if (is.null(nm)) {
      return(paste0("[\n", ind2, paste(items, collapse = paste0(",\n", ind2)), "\n", indent, "]"))
    }
    return(paste0("{\n", paste0(ind2, '"', nm, '": ', items, collapse = ",\n"), "\n", indent, "}"))
  }
  if (is.character(v)) {
    s <- paste0('"', v, '"')
    return(if (length(v) == 1L) s else paste0("[", paste(s, collapse = ", "), "]"))
  }
  s <- ifelse(is.na(v), "null", trimws(formatC(as.numeric(v), digits = 17, format = "g")))
  if (length(v) == 1L && is.null(attr(v, "keep_array"))) s else paste0("[", paste(s, collapse = ", "), "]")
}

x_grid <- c(0.5, 1, 2.5, 4, 7.5, 12)

points <- list(
  SSlogis = list(list(Asym = 200, xmid = 700, scal = 350), list(Asym = 2.3, xmid = 1.5, scal = 1.1)),
  SSfpl = list(list(A = -0.01, B = 2.4, xmid = 1.5, scal = 1.04), list(A = 10, B = 90, xmid = 3, scal = 0.5)),
  SSasymp = list(list(Asym = 94, R0 = -8.3, lrc = -3.2), list(Asym = 1.5, R0 = 3, lrc = 0.2)),
  SSasympOff = list(list(Asym = 38, lrc = -4.4, c0 = 51), list(Asym = 2, lrc = -0.3, c0 = 0.25)),
  SSasympOrig = list(list(Asym = 94, lrc = -3.2), list(Asym = 5, lrc = 0.4)),
  SSmicmen = list(list(Vm = 212, K = 0.064), list(Vm = 5, K = 3)),
  SSgompertz = list(list(Asym = 4.6, b2 = 2.3, b3 = 0.72), list(Asym = 10, b2 = 0.5, b3 = 1.2)),
  SSweibull = list(list(Asym = 160, Drop = 115, lrc = -5.9, pwr = 2.4), list(Asym = 3, Drop = 2, lrc = 0.1, pwr = 0.7)),
  SSbiexp = list(list(A1 = 2.03, lrc1 = 0.58, A2 = 0.55, lrc2 = -1.18), list(A1 = 1, lrc1 = -0.5, A2 = 3, lrc2 = -2)),
  SSfol = list(list(lKe = -2.4, lKa = 0.58, lCl = -3.2), list(lKe = -1, lKa = 1.5, lCl = -2))
)

point_refs <- list()
for (model in names(points)) {
  fun <- get(model)
  argn <- names(formals(fun))
  out <- list()
  for (p in points[[model]]) {
    env <- list2env(p)
    env$input <- x_grid
    env$x <- x_grid
    dose <- 4.02
    env$Dose <- rep(dose, length(x_grid))
    ## call with parameter *names* so that R attaches the gradient attribute
    cl <- as.call(c(as.name(model), lapply(argn, as.name)))
    val <- eval(cl, env)
    g <- attr(val, "gradient")
    entry <- list(params = lapply(p, function(z) z), x = x_grid, value = as.vector(val),
                  gradient = lapply(seq_len(nrow(g)), function(i) as.vector(g[i, ])))
    if (model == "SSfol") entry$dose <- rep(dose, length(x_grid))
    out[[length(out) + 1L]] <- entry
  }
  point_refs[[model]] <- out
}

example <- function(label, call, formula, data, xexpr, yexpr, doseexpr = NULL) {
  init <- getInitial(formula, data = data)
  ## a tight tolerance where nls reaches it; nls's default (1e-5 relative offset) otherwise
  fit <- tryCatch(nls(formula, data = data, start = init, control = nls.control(tol = 1e-8, maxiter = 200)),
                  error = function(e) nls(formula, data = data, start = init))
  ex <- list(label = label, call = call,
             x = as.numeric(eval(xexpr, data)), y = as.numeric(eval(yexpr, data)))
  if (!is.null(doseexpr)) ex$dose <- as.numeric(eval(doseexpr, data))
  ex$initial <- as.list(init)
  ex$estimate <- as.list(coef(fit))
  ex$rss <- sum(resid(fit)^2)
  ex
}

Orange.1 <- as.data.frame(subset(Orange, Tree == 1))
Chick.1 <- as.data.frame(subset(ChickWeight, Chick == 1))
Chick.6 <- as.data.frame(subset(ChickWeight, (Chick == 6) & (Time > 0)))
Lob.329 <- as.data.frame(Loblolly[Loblolly$Seed == "329", ])
DNase.1 <- as.data.frame(subset(DNase, Run == 1))
PurTrt <- Puromycin[Puromycin$state == "treated", ]
Indo.1 <- as.data.frame(Indometh[Indometh$Subject == 1, ])
Theoph.1 <- as.data.frame(Theoph[Theoph$Subject == 1, ])
CO2.Qn1 <- as.data.frame(CO2[CO2$Plant == "Qn1", ])

examples <- list(
  example("Orange tree 1", "getInitial(circumference ~ SSlogis(age, Asym, xmid, scal), data = subset(Orange, Tree == 1))",
          circumference ~ SSlogis(age, Asym, xmid, scal), Orange.1, quote(age), quote(circumference)),
  example("ChickWeight chick 1", "getInitial(weight ~ SSlogis(Time, Asym, xmid, scal), data = subset(ChickWeight, Chick == 1))",
          weight ~ SSlogis(Time, Asym, xmid, scal), Chick.1, quote(Time), quote(weight)),
  example("DNase run 1", "getInitial(density ~ SSfpl(log(conc), A, B, xmid, scal), data = subset(DNase, Run == 1))",
          density ~ SSfpl(log(conc), A, B, xmid, scal), DNase.1, quote(log(conc)), quote(density)),
  example("Loblolly seed 329", "getInitial(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly[Loblolly$Seed == '329', ])",
          height ~ SSasymp(age, Asym, R0, lrc), Lob.329, quote(age), quote(height)),
  example("CO2 plant Qn1", "getInitial(uptake ~ SSasympOff(conc, Asym, lrc, c0), data = CO2[CO2$Plant == 'Qn1', ])",
          uptake ~ SSasympOff(conc, Asym, lrc, c0), CO2.Qn1, quote(conc), quote(uptake)),
  example("Loblolly seed 329", "getInitial(height ~ SSasympOrig(age, Asym, lrc), data = Loblolly[Loblolly$Seed == '329', ])",
          height ~ SSasympOrig(age, Asym, lrc), Lob.329, quote(age), quote(height)),
  example("Puromycin treated", "getInitial(rate ~ SSmicmen(conc, Vm, K), data = Puromycin[Puromycin$state == 'treated', ])",
          rate ~ SSmicmen(conc, Vm, K), PurTrt, quote(conc), quote(rate)),
  example("DNase run 1", "getInitial(density ~ SSgompertz(log(conc), Asym, b2, b3), data = subset(DNase, Run == 1))",
          density ~ SSgompertz(log(conc), Asym, b2, b3), DNase.1, quote(log(conc)), quote(density)),
  example("ChickWeight chick 6", "getInitial(weight ~ SSweibull(Time, Asym, Drop, lrc, pwr), data = subset(ChickWeight, Chick == 6 & Time > 0))",
          weight ~ SSweibull(Time, Asym, Drop, lrc, pwr), Chick.6, quote(Time), quote(weight)),
  example("Indometh subject 1", "getInitial(conc ~ SSbiexp(time, A1, lrc1, A2, lrc2), data = Indometh[Indometh$Subject == 1, ])",
          conc ~ SSbiexp(time, A1, lrc1, A2, lrc2), Indo.1, quote(time), quote(conc)),
  example("Theoph subject 1", "getInitial(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph[Theoph$Subject == 1, ])",
          conc ~ SSfol(Dose, Time, lKe, lKa, lCl), Theoph.1, quote(Time), quote(conc), quote(Dose))
)
models <- c("SSlogis", "SSlogis", "SSfpl", "SSasymp", "SSasympOff", "SSasympOrig", "SSmicmen",
            "SSgompertz", "SSweibull", "SSbiexp", "SSfol")
for (i in seq_along(examples)) examples[[i]] <- c(list(model = models[i]), examples[[i]])

out <- list(generated_by = "tests/reference/make_selfstart_refs.R",
            r_version = R.version.string,
            points = point_refs, examples = examples)
dir.create("tests/reference/selfstart", showWarnings = FALSE, recursive = TRUE)
writeLines(to_json(out), "tests/reference/selfstart/refs.json")
cat("wrote tests/reference/selfstart/refs.json\n")
