"""The ``multilevel`` command: fit a model from a CSV file, run the demo, list data sets."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from multilevel import LinearMixedModelResult, anova, compare, datasets, power
from multilevel.api import lmer
from multilevel.errors import ModelComparisonError, MultilevelError, MultilevelWarning

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"
DDF_CHOICES = ["satterthwaite", "kenward-roger", "between-within", "residual", "none"]


def _read_data(source: str) -> pd.DataFrame:
    path = Path(source)
    if path.exists():
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        # as R's read.csv: only "NA" and empty cells are missing (pandas would also turn
        # "None", "NULL", "nan", ... into missing values, silently dropping real levels)
        return pd.read_csv(path, keep_default_na=False, na_values=["NA", ""])
    if source.lower() in {n.lower() for n in datasets.available()}:
        return datasets.load(source)
    raise MultilevelError(f"--data {source!r}: no such file, and no built-in data set of that "
                          "name (see 'multilevel datasets')")


def _fit_quietly(formula: str, data: pd.DataFrame, args: argparse.Namespace,
                 ) -> tuple[LinearMixedModelResult, list[str]]:
    """Fit, collecting our warnings as lines for stderr instead of Python's warning format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MultilevelWarning)
        fit = lmer(formula, data, reml=not args.ml, optimizer=args.optimizer)
    return fit, [f"warning: {w.message}" for w in caught
                 if issubclass(w.category, MultilevelWarning)]


def _ddf(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _cmd_fit(args: argparse.Namespace) -> int:
    data = _read_data(args.data)
    fit, notes = _fit_quietly(args.formula, data, args)
    if args.json:
        out = fit.to_dict()
        if args.ddf:
            table = fit.coef_table(ddf=_ddf(args.ddf))
            out["coef_table_ddf"] = {"ddf": args.ddf, "table": json.loads(table.to_json())}
        print(json.dumps(out, indent=2))
    else:
        print(fit.summary(), end="")
        if args.ddf:
            table = fit.coef_table(ddf=_ddf(args.ddf))
            print(f"\nt tests with {args.ddf} denominator df:")
            print(table[["estimate", "std_error", "df", "statistic", "p_value"]].to_string())
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    data = _read_data(args.data)
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
                                                 if table.attrs["refitted_ml"] else "") + ":")
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
    data = _read_data(args.data)
    fit, notes = _fit_quietly(args.formula, data, args)
    result = power(fit, args.test, nsim=args.nsim, alpha=args.alpha, effect=args.effect,
                   ddf=_ddf(args.ddf), seed=args.seed, progress=not args.quiet)
    print(result)
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f">>> ml.lmer({DEMO_FORMULA!r}, ml.datasets.load('sleepstudy'))\n")
    fit = lmer(DEMO_FORMULA, datasets.load("sleepstudy"))
    print(fit.summary(), end="")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    if args.name:
        print(datasets.describe(args.name))
        return 0
    table = datasets.list()
    with pd.option_context("display.max_colwidth", 60, "display.width", 120):
        print(table.to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``multilevel`` command."""
    parser = argparse.ArgumentParser(prog="multilevel",
                                     description="Multilevel (mixed-effects) models.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a linear mixed model and print its summary")
    fit.add_argument("formula", help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    fit.add_argument("--data", required=True,
                     help="CSV (or .parquet) file, or the name of a built-in data set")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")
    fit.add_argument("--optimizer", default="bobyqa", help="bobyqa (default), cobyqa, lbfgsb")
    fit.add_argument("--ddf", choices=DDF_CHOICES,
                     help="also print t tests with these denominator degrees of freedom")
    fit.set_defaults(func=_cmd_fit)
    cmp = sub.add_parser("compare", help="compare models fitted to the same data "
                                         "(likelihood-ratio tests, or AIC/BIC ranking)")
    cmp.add_argument("formulas", nargs="+", help="two or more lme4 formulas")
    cmp.add_argument("--data", required=True,
                     help="CSV (or .parquet) file, or the name of a built-in data set")
    cmp.add_argument("--ml", action="store_true", help="fit by maximum likelihood")
    cmp.add_argument("--aic", action="store_true",
                     help="rank by AIC/BIC with Akaike weights instead of testing")
    cmp.add_argument("--optimizer", default="bobyqa", help=argparse.SUPPRESS)
    cmp.set_defaults(func=_cmd_compare)
    pw = sub.add_parser("power", help="power of a fixed-effect test by simulation from a fit")
    pw.add_argument("formula", help="lme4 formula of the model to simulate from")
    pw.add_argument("--data", required=True,
                    help="CSV (or .parquet) file, or the name of a built-in data set")
    pw.add_argument("--test", required=True, help="the fixed effect tested, e.g. Days")
    pw.add_argument("--effect", type=float, help="simulate with this coefficient value")
    pw.add_argument("--nsim", type=int, default=1000, help="simulations (default 1000)")
    pw.add_argument("--alpha", type=float, default=0.05, help="significance level")
    pw.add_argument("--ddf", default="satterthwaite",
                    choices=DDF_CHOICES)
    pw.add_argument("--seed", type=int, help="random seed")
    pw.add_argument("--ml", action="store_true", help="fit by maximum likelihood")
    pw.add_argument("--quiet", action="store_true", help="no progress bar")
    pw.add_argument("--optimizer", default="bobyqa", help=argparse.SUPPRESS)
    pw.set_defaults(func=_cmd_power)
    demo = sub.add_parser("demo", help="fit the sleepstudy example and print its summary")
    demo.set_defaults(func=_cmd_demo)
    ds = sub.add_parser("datasets", help="list the built-in data sets (or describe one)")
    ds.add_argument("name", nargs="?", help="describe this data set")
    ds.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (user errors print one line and return 2)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MultilevelError as exc:
        first = str(exc).splitlines()
        print(f"error: {' '.join(line.strip() for line in first)}", file=sys.stderr)
        return 2
    except (OSError, pd.errors.ParserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
