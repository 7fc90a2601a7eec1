"""The ``multilevel`` command: fit a model from a CSV file (a linear mixed model, or with
``--family`` a generalized one; nlme's ``gls``, ``lme`` and ``nlme`` models by their own
subcommands), run the demo, list data sets."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pandas as pd

import multilevel
from multilevel import LinearMixedModelResult, anova, compare, datasets, gls, lme, nlme, power
from multilevel.api import bayes, bayes_nlme, glmer, lmer
from multilevel.cli.bayes_command import (
    add_bayes_options,
    params_dict,
    parse_param,
    report,
    sampler_options,
    whole_number,
)
from multilevel.cli.fit_report import fit_dict, summary_text
from multilevel.cli.report_command import add_report_options, write_report
from multilevel.cli.structure_spec import parse_correlation, parse_random, parse_weights
from multilevel.errors import (
    MAX_QUOTED,
    DataError,
    InternalError,
    MissingExtraError,
    ModelComparisonError,
    MultilevelError,
    MultilevelWarning,
    shorten,
)

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"
DEMO_GLMM_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
DEMO_NLME_FORMULA = "circumference ~ SSlogis(age, Asym, xmid, scal)"
DEMO_NLME_RANDOM = "Asym ~ 1 | Tree"
DDF_CHOICES = ["satterthwaite", "kenward-roger", "between-within", "residual", "none"]

# What an error line quotes from the user's input (a header line, a formula, a file name) is
# cut to this many characters.
MAX_MESSAGE = MAX_QUOTED

# Exit statuses: a user error (bad arguments, data, formula) is 2, as argparse's own; a bug
# in multilevel is 1; an interrupt is 130, as the shell's 128 + SIGINT; a reader of the
# output that went away (``| head``) is 141, as the shell's 128 + SIGPIPE.
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class _UsageError(Exception):
    """Raised by the parser instead of printing the usage and exiting (see ``main``)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` line on stderr and status 2 (the
    usage is for ``--help``), like every other user error of the command."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _probability(text: str) -> float:
    value = _finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _method(text: str) -> str:
    value = text.upper()  # nlme spells them "ML" and "REML"; either case is taken
    if value not in ("ML", "REML"):
        raise argparse.ArgumentTypeError(f"{text!r} is not ML or REML")
    return value


def _start_values(text: str) -> dict[str, float]:
    """``Asym=192,xmid=728,scal=353`` as a mapping of parameter names to numbers."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{item.strip()!r} is not name=value (e.g. "
                                             "Asym=192,xmid=728,scal=353)")
        if name in out:
            raise argparse.ArgumentTypeError(f"{name} is given twice")
        try:
            out[name] = _finite_float(value)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{name}: {exc}") from None
    return out


def _read_file(path: Path, encoding: str) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"--data {str(path)!r} is a directory; give a CSV or parquet file")
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(f"reading parquet needs pyarrow: pip install pyarrow ({exc})"
                            ) from exc
        except Exception as exc:  # pyarrow's errors have no common public base class
            raise DataError(f"--data {str(path)!r} cannot be read as a parquet file "
                            f"({type(exc).__name__}: {exc})") from exc
    try:
        # as R's read.csv: only "NA" and empty cells are missing (pandas would also turn
        # "None", "NULL", "nan", ... into missing values, silently dropping real levels)
        return pd.read_csv(path, keep_default_na=False, na_values=["NA", ""],
                           encoding=encoding)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"--data {str(path)!r} is empty: a CSV file needs a header line "
                        "and rows") from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"--data {str(path)!r} is not {encoding} text (byte {exc.object[exc.start]:#04x} "
            f"at position {exc.start}); if it is a CSV file in another encoding, pass "
            "--encoding (e.g. --encoding latin-1); parquet files need the .parquet suffix"
        ) from exc
    except LookupError as exc:
        raise DataError(f"--encoding {encoding!r} is not an encoding Python knows") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"--data {str(path)!r} cannot be read as a CSV file ({exc})") from exc


def _read_data(source: str, encoding: str = "utf-8") -> pd.DataFrame:
    try:
        path = Path(source)
        exists = path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        exists = False
    if exists:
        return _read_file(path, encoding)
    if source.lower() in {n.lower() for n in datasets.available()}:
        return datasets.load(source)
    raise DataError(f"--data {source!r}: no such file, and no built-in data set of that "
                    "name (see 'multilevel datasets')")


_Fit = TypeVar("_Fit")


def _quietly(fit: Callable[[], _Fit]) -> tuple[_Fit, list[str]]:
    """Fit, collecting our warnings as lines for stderr instead of Python's warning format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MultilevelWarning)
        result = fit()
    return result, [f"warning: {w.message}" for w in caught
                    if issubclass(w.category, MultilevelWarning)]


def _fit_quietly(formula: str, data: pd.DataFrame, args: argparse.Namespace,
                 ) -> tuple[LinearMixedModelResult, list[str]]:
    return _quietly(lambda: lmer(formula, data, reml=not args.ml, optimizer=args.optimizer))


def _ddf(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _glmm_family(args: argparse.Namespace) -> multilevel.families.Family | None:
    """The family of ``fit --family`` (None: a linear mixed model), checked against the
    options that belong to one kind of model only."""
    if args.family is None:
        glmm_only = [flag for flag, value in (("--link", args.link), ("--nagq", args.nagq))
                     if value is not None]
        if glmm_only:
            verb = "applies" if len(glmm_only) == 1 else "apply"
            raise _UsageError(f"{' and '.join(glmm_only)} {verb} to generalized linear mixed "
                              "models: give --family too (e.g. --family binomial)")
        return None
    # flags of the linear mixed model only: refused rather than silently ignored
    if args.ml:
        raise _UsageError("--ml does not go with --family: a generalized linear mixed model "
                          "is always fitted by maximum likelihood (there is no REML); drop --ml")
    if args.ddf is not None:
        raise _UsageError(f"--ddf {args.ddf} does not go with --family: denominator degrees "
                          "of freedom belong to the linear mixed model's t tests; a "
                          "generalized linear mixed model's Wald tests are z tests, as "
                          "glmer's; drop --ddf")
    # the public name ml.families (the families module itself is a lower layer)
    family = multilevel.families.family(args.family)
    if args.link is not None:
        family = dataclasses.replace(family, link=args.link)  # the family checks the link
    if family.name == "gaussian" and family.link.name == "identity":
        raise _UsageError("--family gaussian with the identity link is the linear mixed "
                          "model: drop --family (and --link) to fit it by REML or, with --ml, "
                          "by maximum likelihood")
    return family


def _fit_model(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The model that the options of ``fit`` and ``report`` describe (a linear mixed model,
    or with ``--family`` a generalized one), with the fit's warnings as lines."""
    family = _glmm_family(args)
    data = _read_data(args.data, args.encoding)
    if family is None:
        return _fit_quietly(args.formula, data, args)
    nagq = 1 if args.nagq is None else args.nagq
    return _quietly(lambda: glmer(args.formula, data, family=family, nagq=nagq,
                                  optimizer=args.optimizer))


def _model_ddf(args: argparse.Namespace) -> dict[str, Any]:
    """``ddf=`` for a linear mixed model's tests (a generalized one has z tests only)."""
    return {} if args.family is not None else {"ddf": _ddf(args.ddf or "satterthwaite")}


def _cmd_fit(args: argparse.Namespace) -> int:
    fit, notes = _fit_model(args)
    if args.json:
        print(json.dumps(fit.to_dict(**_model_ddf(args)), indent=2, allow_nan=False))
    else:
        print(fit.summary(**_model_ddf(args)), end="")
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    fit, notes = _fit_model(args)
    print(write_report(fit, args, _model_ddf(args).get("ddf")))
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    if len(args.formulas) < 2:
        raise _UsageError("compare needs two or more formulas (got one); to fit one model "
                          "use 'multilevel fit'")
    data = _read_data(args.data, args.encoding)
    fits: list[LinearMixedModelResult] = []
    notes: list[str] = []
    for formula in args.formulas:
        fit, msgs = _fit_quietly(formula, data, args)
        fits.append(fit)
        notes += msgs
    names = [f"m{i + 1}" for i in range(len(fits))]
    for name, formula in zip(names, args.formulas, strict=True):
        print(f"{name}: {formula}")
    table = None
    if not args.aic:
        try:
            table = anova(*fits, names=names)
            print("\nLikelihood-ratio tests" + (" (refitted by ML)"
                                                 if table.attrs.get("refitted_ml") else "") + ":")
        except ModelComparisonError as exc:
            notes.append(f"note: {exc}; ranking by AIC instead")
    if table is None:
        table = compare(*fits, names=names)
        print("\nInformation criteria:")
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(table.to_string())
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_power(args: argparse.Namespace) -> int:
    data = _read_data(args.data, args.encoding)
    fit, notes = _fit_quietly(args.formula, data, args)
    result = power(fit, args.test, nsim=args.nsim, alpha=args.alpha, effect=args.effect,
                   ddf=_ddf(args.ddf), seed=args.seed, progress=not args.quiet)
    print(result)
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _structures(args: argparse.Namespace) -> dict[str, Any]:
    """The ``weights`` and ``correlation`` arguments that ``--weights`` / ``--correlation``
    describe (read as data: see :mod:`multilevel.cli.structure_spec`); absent ones left out."""
    out: dict[str, Any] = {}
    if args.weights is not None:
        out["weights"] = parse_weights(args.weights)
    if args.correlation is not None:
        out["correlation"] = parse_correlation(args.correlation)
    return out


def _print_fit(fit: Any, args: argparse.Namespace, notes: list[str]) -> int:
    if args.json:
        print(json.dumps(fit_dict(fit), indent=2, allow_nan=False))
    else:
        print(summary_text(fit), end="")
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_gls(args: argparse.Namespace) -> int:
    structures = _structures(args)  # a bad spec fails before the data are read
    data = _read_data(args.data, args.encoding)
    fit, notes = _quietly(lambda: gls(args.formula, data, method=args.method, **structures))
    return _print_fit(fit, args, notes)


def _cmd_lme(args: argparse.Namespace) -> int:
    structures = _structures(args)
    data = _read_data(args.data, args.encoding)
    fit, notes = _quietly(lambda: lme(args.formula, data, random=args.random,
                                      method=args.method, **structures))
    return _print_fit(fit, args, notes)


def _cmd_nlme(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"method": args.method, **_structures(args)}
    if args.random is not None:
        options["random"] = parse_random(args.random)
    if args.groups is not None:  # nlme's groups = ~ g; the bare name is taken too
        groups = args.groups.strip()
        options["groups"] = groups if groups.startswith("~") else f"~ {groups}"
    if args.fixed:  # one formula as nlme's fixed = a ~ 1, several as its list of formulas
        options["fixed"] = args.fixed[0] if len(args.fixed) == 1 else list(args.fixed)
    if args.start:
        start: dict[str, float] = {}
        for values in args.start:
            twice = sorted(start.keys() & values.keys())
            if twice:
                raise _UsageError(f"--start gives {twice[0]} twice")
            start.update(values)
        options["start"] = start
    data = _read_data(args.data, args.encoding)
    fit, notes = _quietly(lambda: nlme(args.model, data, **options))
    return _print_fit(fit, args, notes)


def _print_bayes(fit: Any, args: argparse.Namespace, notes: list[str]) -> int:
    out, loo_notes = report(fit, args)
    if isinstance(out, dict):
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(out, end="")
    for line in notes + loo_notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_bayes(args: argparse.Namespace) -> int:
    options = sampler_options(args)  # a bad family or link fails before the data are read
    data = _read_data(args.data, args.encoding)
    fit, notes = _quietly(lambda: bayes(args.formula, data, **options))
    return _print_bayes(fit, args, notes)


def _cmd_bayes_nlme(args: argparse.Namespace) -> int:
    options = sampler_options(args)
    params = params_dict(args.param)
    data = _read_data(args.data, args.encoding)
    fit, notes = _quietly(lambda: bayes_nlme(args.model, data, params=params or None,
                                             **options))
    return _print_bayes(fit, args, notes)


def _add_bayes_commands(sub: Any) -> None:
    """The subcommands of brms-style Bayesian fits (the ``bayes`` extra)."""
    b = sub.add_parser("bayes", help="fit a Bayesian (generalized) linear mixed model by NUTS "
                                     "(as brms's brm) and print its summary")
    b.add_argument("formula", help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    _add_data_options(b)
    add_bayes_options(b)
    b.set_defaults(func=_cmd_bayes)
    n = sub.add_parser("bayes-nlme", help="fit a Bayesian nonlinear mixed model by NUTS (as "
                                          "brms's nl = TRUE formulas)")
    n.add_argument("model", help="'response ~ expression', e.g. 'circumference ~ Asym / (1 + "
                                 "exp((xmid - age) / scal))' or with SSlogis(age, Asym, xmid, "
                                 "scal)")
    _add_data_options(n)
    n.add_argument("--param", action="append", type=parse_param, metavar="NAME=FORMULA",
                   help="a nonlinear parameter's formula, repeatable: 'Asym=1 + (1 | Tree)', "
                        "'xmid=1' (a self-starting model's parameters left out get '1')")
    add_bayes_options(n)
    n.set_defaults(func=_cmd_bayes_nlme)


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f">>> ml.lmer({DEMO_FORMULA!r}, ml.datasets.load('sleepstudy'))\n")
    fit = lmer(DEMO_FORMULA, datasets.load("sleepstudy"))
    print(fit.summary(), end="")
    print(f"\n>>> ml.glmer({DEMO_GLMM_FORMULA!r}, ml.datasets.load('cbpp'), "
          "family='binomial')\n")
    glmm = glmer(DEMO_GLMM_FORMULA, datasets.load("cbpp"), family="binomial")
    print(glmm.summary(), end="")
    # a growth curve: the Orange trees' logistic growth, each tree with its own asymptote
    print(f"\n>>> ml.nlme({DEMO_NLME_FORMULA!r}, ml.datasets.load('Orange'), "
          f"random={DEMO_NLME_RANDOM!r})\n")
    growth = nlme(DEMO_NLME_FORMULA, datasets.load("Orange"), random=DEMO_NLME_RANDOM)
    print(summary_text(growth), end="")
    if args.skip_bayes:
        return 0
    # the same linear model, Bayesian: brms's default priors, 4 chains by NUTS
    print(f"\n>>> ml.bayes({DEMO_FORMULA!r}, ml.datasets.load('sleepstudy'), seed=1)\n")
    try:
        posterior = bayes(DEMO_FORMULA, datasets.load("sleepstudy"), seed=1,
                          progress=sys.stderr.isatty())
    except MissingExtraError as exc:
        print(f"(skipped: {exc})")
        return 0
    print(posterior.summary())
    print(f"(compiled in {posterior.compile_s:.1f} s, sampled in {posterior.sampling_s:.1f} s)")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    if args.name:
        print(datasets.describe(args.name))
        return 0
    table = datasets.list()
    with pd.option_context("display.max_colwidth", 60, "display.width", 120):
        print(table.to_string(index=False))
    return 0


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="CSV (or .parquet) file, or the name of a built-in data set")
    parser.add_argument("--encoding", default="utf-8",
                        help="text encoding of a CSV file (default utf-8; e.g. latin-1)")


def _add_structure_options(parser: argparse.ArgumentParser, default_method: str) -> None:
    parser.add_argument("--weights", metavar="SPEC",
                        help="residual variance function, as its call in quotes: "
                             "\"VarIdent(form='~ 1 | Sex')\", \"VarPower(form='~ age')\", "
                             "\"VarComb(VarIdent(form='~ 1 | Sex'), VarExp(form='~ age'))\" "
                             "(read as data, never run)")
    parser.add_argument("--correlation", metavar="SPEC",
                        help="within-group correlation structure, e.g. "
                             "\"CorAR1(form='~ 1 | Subject')\", \"CorARMA(p=1, q=1)\", "
                             "\"CorExp(form='~ x + y | g', nugget=True)\"")
    parser.add_argument("--method", type=_method, default=default_method,
                        help=f"ML or REML (default {default_method}, as nlme)")
    parser.add_argument("--json", action="store_true", help="print the fit as JSON")


def _add_nlme_commands(sub: Any) -> None:
    """The subcommands of nlme's three fitting functions."""
    g = sub.add_parser("gls", help="fit a linear model with correlated or heteroscedastic "
                                   "errors (as nlme's gls) and print its summary")
    g.add_argument("formula", help="model formula without random effects, e.g. "
                                   "'distance ~ age * Sex'")
    _add_data_options(g)
    _add_structure_options(g, "REML")
    g.set_defaults(func=_cmd_gls)
    m = sub.add_parser("lme", help="fit a linear mixed model with nlme's variance functions "
                                   "and correlation structures (as nlme's lme)")
    m.add_argument("formula", help="fixed part, e.g. 'distance ~ age' (or with lme4-style "
                                   "random terms instead of --random)")
    _add_data_options(m)
    m.add_argument("--random", help="nlme's random part, e.g. '~ 1 | Subject' or "
                                    "'~ age | Subject'")
    _add_structure_options(m, "REML")
    m.set_defaults(func=_cmd_lme)
    n = sub.add_parser("nlme", help="fit a nonlinear mixed model (as nlme's nlme) and print "
                                    "its summary")
    n.add_argument("model", help="'response ~ expression' of columns and parameters, e.g. "
                                 "'circumference ~ SSlogis(age, Asym, xmid, scal)' or "
                                 "'circumference ~ Asym / (1 + exp((xmid - age) / scal))'")
    _add_data_options(n)
    n.add_argument("--fixed", action="append",
                   help="fixed part, e.g. 'Asym + xmid + scal ~ 1' (default: every parameter "
                        "~ 1); repeat it for a list of formulas, as nlme's list(...)")
    n.add_argument("--random",
                   help="parameters with random effects and their grouping factor, e.g. "
                        "'Asym ~ 1 | Tree', 'Asym ~ 1 | g1/g2', or a covariance structure "
                        "with --groups: \"PdDiag('lKa + lCl ~ 1')\", "
                        "\"PdBlocked(['Asym ~ 1', 'xmid + scal ~ 1'])\" (default: every "
                        "parameter, by --groups)")
    n.add_argument("--groups", help="the grouping factor(s) when --random names none, as "
                                    "nlme's groups: '~ Tree' or Tree, '~ g1/g2'")
    n.add_argument("--start", action="append", type=_start_values, metavar="NAME=VALUE,...",
                   help="starting values of the fixed effects, e.g. "
                        "Asym=192,xmid=728,scal=353 (default: the self-starting model's)")
    _add_structure_options(n, "ML")
    n.set_defaults(func=_cmd_nlme)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model options of ``fit`` and ``report``: REML or ML, optimizer, df of the t tests,
    and the family of a generalized linear mixed model."""
    parser.add_argument("--ml", action="store_true",
                        help="maximum likelihood instead of REML (linear mixed models)")
    parser.add_argument("--optimizer", default="bobyqa", help="bobyqa (default), cobyqa, lbfgsb")
    parser.add_argument("--ddf", choices=DDF_CHOICES, default=None,
                        help="denominator df of the t tests in the summary, the JSON "
                             "coef_table and the report (default satterthwaite, as lmerTest; "
                             "none: lme4's table without df and p-values, z tests); linear "
                             "mixed models only")
    parser.add_argument("--family", help="fit a generalized linear mixed model (as glmer) of "
                                         "this family: binomial, poisson, gamma, "
                                         "inverse_gaussian, negative_binomial (size estimated)")
    parser.add_argument("--link", help="the family's link (default: its canonical link), e.g. "
                                       "logit, probit, cloglog, cauchit, log, identity, inverse, "
                                       "sqrt, 1/mu^2")
    parser.add_argument("--nagq", type=whole_number(0),
                        help="with --family: 1 Laplace (default), 0 the fast nAGQ = 0 fit, more: "
                             "adaptive Gauss-Hermite quadrature with that many nodes (one scalar "
                             "random-effects term only)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``multilevel`` command."""
    parser = _Parser(prog="multilevel", description="Multilevel (mixed-effects) models.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a linear mixed model (or, with --family, a "
                                     "generalized linear mixed model) and print its summary")
    fit.add_argument("formula", help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    _add_data_options(fit)
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")
    _add_model_options(fit)
    fit.set_defaults(func=_cmd_fit)
    rep = sub.add_parser("report", help="fit a model as 'fit' does and write its HTML report "
                                        "(one self-contained file: tables, plots, notes)")
    rep.add_argument("formula", help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    _add_data_options(rep)
    add_report_options(rep)
    _add_model_options(rep)
    rep.set_defaults(func=_cmd_report)
    cmp = sub.add_parser("compare", help="compare models fitted to the same data "
                                         "(likelihood-ratio tests, or AIC/BIC ranking)")
    cmp.add_argument("formulas", nargs="+", help="two or more lme4 formulas")
    _add_data_options(cmp)
    cmp.add_argument("--ml", action="store_true", help="fit by maximum likelihood")
    cmp.add_argument("--aic", action="store_true",
                     help="rank by AIC/BIC with Akaike weights instead of testing")
    cmp.add_argument("--optimizer", default="bobyqa", help=argparse.SUPPRESS)
    cmp.set_defaults(func=_cmd_compare)
    pw = sub.add_parser("power", help="power of a fixed-effect test by simulation from a fit")
    pw.add_argument("formula", help="lme4 formula of the model to simulate from")
    _add_data_options(pw)
    pw.add_argument("--test", required=True, help="the fixed effect tested, e.g. Days")
    pw.add_argument("--effect", type=_finite_float,
                    help="simulate with this coefficient value")
    pw.add_argument("--nsim", type=whole_number(1), default=1000,
                    help="simulations (default 1000)")
    pw.add_argument("--alpha", type=_probability, default=0.05, help="significance level")
    pw.add_argument("--ddf", default="satterthwaite",
                    choices=DDF_CHOICES)
    pw.add_argument("--seed", type=whole_number(0), help="random seed (0 or more)")
    pw.add_argument("--ml", action="store_true", help="fit by maximum likelihood")
    pw.add_argument("--quiet", action="store_true", help="no progress bar")
    pw.add_argument("--optimizer", default="bobyqa", help=argparse.SUPPRESS)
    pw.set_defaults(func=_cmd_power)
    _add_nlme_commands(sub)
    _add_bayes_commands(sub)
    demo = sub.add_parser("demo", help="fit the sleepstudy (linear), cbpp (binomial) and "
                                       "Orange (nonlinear growth curve) examples, then "
                                       "sleepstudy again as a Bayesian model, and print "
                                       "their summaries")
    demo.add_argument("--skip-bayes", action="store_true",
                      help="leave out the Bayesian example (its sampler compiles for "
                           "10-30 s on first use)")
    demo.set_defaults(func=_cmd_demo)
    ds = sub.add_parser("datasets", help="list the built-in data sets (or describe one)")
    ds.add_argument("name", nargs="?", help="describe this data set")
    ds.set_defaults(func=_cmd_datasets)
    return parser


def _error(prefix: str, message: str) -> None:
    print(f"{prefix}: {shorten(message, MAX_MESSAGE)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status.

    Every failure is one line on stderr: ``error: ...`` and status 2 for a user error (a bad
    command line, an unreadable file, bad data or formula, any ``multilevel.errors`` type);
    ``internal error: ...`` and status 1 for a bug in multilevel (an ``InternalError`` or any
    other exception; set ``MULTILEVEL_TRACEBACK=1`` to see the traceback); status 130 on
    Ctrl-C; status 141 and nothing on stderr when the reader of stdout goes away (``| head``).
    Quoted input is cut to ``MAX_MESSAGE`` characters. Warnings other than the fit's
    own (printed as ``warning:`` lines) are shown only when the command succeeds.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            args = build_parser().parse_args(argv)
            code = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        except SystemExit as exc:  # --help and --version print and exit 0
            return exc.code if isinstance(exc.code, int) else 0
        except _UsageError as exc:
            _error("error", str(exc))
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            _error("error", "interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # the reader stopped reading: not an error, as for cat or ls
            _discard_stdout()
            return EXIT_BROKEN_PIPE
        except InternalError as exc:
            return _internal_error(exc)
        except MultilevelError as exc:
            _error("error", str(exc))
            return EXIT_USER_ERROR
        except Exception as exc:  # the command's boundary: anything else is our bug
            return _internal_error(exc)
    for w in caught:
        if not issubclass(w.category, MultilevelWarning):
            _error("warning", f"{w.category.__name__}: {w.message}")
    return code


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush of what is left
    in its buffer does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured, replaced)
        pass


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("MULTILEVEL_TRACEBACK"):
        raise exc
    text = str(exc) if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
    _error("internal error", f"{text} -- this is a bug in multilevel; please report it with "
                             "the command line (MULTILEVEL_TRACEBACK=1 shows the traceback)")
    return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
