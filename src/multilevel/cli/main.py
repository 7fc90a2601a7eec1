"""The ``multilevel`` command: fit a model from a CSV file, run the demo, list data sets."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from multilevel import datasets
from multilevel.api import lmer
from multilevel.errors import MultilevelError, MultilevelWarning

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"


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


def _cmd_fit(args: argparse.Namespace) -> int:
    data = _read_data(args.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MultilevelWarning)
        fit = lmer(args.formula, data, reml=not args.ml, optimizer=args.optimizer)
    if args.json:
        print(json.dumps(fit.to_dict(), indent=2))
    else:
        print(fit.summary(), end="")
    for w in caught:
        if not issubclass(w.category, MultilevelWarning):
            continue
        print(f"warning: {w.message}", file=sys.stderr)
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
    fit.set_defaults(func=_cmd_fit)
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
