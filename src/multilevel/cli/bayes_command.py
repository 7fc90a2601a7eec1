"""The command-line side of ``multilevel bayes`` and ``multilevel bayes-nlme``: their options,
and the priors and nonlinear parameters written on the command line, read as data (never run).

A prior is brms's distribution followed by optional ``:field=value`` parts::

    --prior "normal(0, 10)"                      every coefficient (class b, brms's default)
    --prior "normal(0, 10):coef=Days"            one coefficient
    --prior "exponential(1):class=sigma"
    --prior "student_t(3, 0, 20):class=sd:group=Subject"
    --prior "normal(200, 50):nlpar=Asym"         a nonlinear parameter's coefficients

Fields: ``class`` (b, Intercept, sd, cor, sigma, shape, phi), ``coef``, ``group``, ``nlpar``.
A nonlinear parameter's formula is ``NAME=FORMULA``: ``--param "Asym=1 + (1 | Tree)"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import multilevel
from multilevel.errors import ArgumentError, MultilevelError

PRIOR_FIELDS = {"class": "class_", "coef": "coef", "group": "group", "nlpar": "nlpar"}


def parse_prior(text: str) -> Any:
    """``"normal(0, 10):class=b:coef=Days"`` as ``ml.prior("normal(0, 10)", class_="b",
    coef="Days")``; an argparse type (a bad spec is a usage error naming it)."""
    spec, *parts = text.split(":")
    if not spec.strip():
        raise argparse.ArgumentTypeError(f"{text!r} has no distribution before ':' (e.g. "
                                         "'normal(0, 10):class=b')")
    fields: dict[str, str] = {}
    for part in parts:
        key, sep, value = (p.strip() for p in part.partition("="))
        if not sep or key not in PRIOR_FIELDS:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} in {text!r} is not field=value with a field among "
                f"{', '.join(PRIOR_FIELDS)} (e.g. 'normal(0, 10):class=b:coef=Days')")
        if PRIOR_FIELDS[key] in fields:
            raise argparse.ArgumentTypeError(f"{key} is given twice in {text!r}")
        fields[PRIOR_FIELDS[key]] = value.strip("'\"")
    try:
        return multilevel.prior(spec.strip(), **fields)
    except MultilevelError as exc:  # argparse shows only ArgumentTypeError's own text
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_param(text: str) -> tuple[str, str]:
    """``"Asym=1 + (1 | Tree)"`` as ``("Asym", "1 + (1 | Tree)")``."""
    name, sep, formula = (p.strip() for p in text.partition("="))
    if not sep or not name.isidentifier() or not formula:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FORMULA (e.g. "
                                         "'Asym=1 + (1 | Tree)' or 'xmid=1')")
    return name, formula


def whole_number(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (shared by the other commands)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value
    parse.__name__ = f"integer >= {low}"  # argparse names the type in its messages
    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1 (e.g. 0.95)")
    return value


def add_bayes_options(parser: argparse.ArgumentParser) -> None:
    """Family, priors, the sampler's settings and the output options."""
    parser.add_argument("--family", default="gaussian",
                        help="gaussian (default), binomial, poisson, gamma, inverse_gaussian, "
                             "negative_binomial")
    parser.add_argument("--link", help="the family's link (default: its canonical link)")
    parser.add_argument("--prior", action="append", type=parse_prior, metavar="SPEC",
                        help="a brms prior, repeatable: 'normal(0, 10)' (class b), "
                             "'normal(0, 5):coef=Days', 'exponential(1):class=sigma', "
                             "'student_t(3, 0, 20):class=sd:group=Subject', "
                             "'normal(200, 50):nlpar=Asym' (read as data, never run)")
    parser.add_argument("--chains", type=whole_number(1), default=4, help="chains (default 4)")
    parser.add_argument("--draws", type=whole_number(1), default=1000,
                        help="kept draws per chain (default 1000)")
    parser.add_argument("--warmup", type=whole_number(0), default=1000,
                        help="warmup iterations per chain (default 1000)")
    parser.add_argument("--seed", type=whole_number(0), default=1, help="random seed (default 1)")
    parser.add_argument("--target-accept", type=_probability, default=0.8,
                        help="brms's adapt_delta (default 0.8; raise it, e.g. to 0.95, when "
                             "there are divergent transitions)")
    parser.add_argument("--max-tree-depth", type=whole_number(1), default=10,
                        help="brms's max_treedepth (default 10)")
    parser.add_argument("--thin", type=whole_number(1), default=1, help=argparse.SUPPRESS)
    parser.add_argument("--loo", action="store_true",
                        help="also print PSIS-LOO (R's loo(fit)); with --json under 'loo'")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the fit as JSON")


def sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``ml.bayes`` / ``ml.bayes_nlme`` that the options give."""
    family: Any = args.family
    if args.link is not None:
        # as 'multilevel fit --link': the family is a dataclass that checks the link it is given
        family = dataclasses.replace(multilevel.families.family(args.family), link=args.link)
    return {"family": family, "priors": list(args.prior or []), "chains": args.chains,
            "draws": args.draws, "warmup": args.warmup, "seed": args.seed,
            "target_accept": args.target_accept, "max_tree_depth": args.max_tree_depth,
            "thin": args.thin, "progress": not args.quiet}


def params_dict(items: list[tuple[str, str]] | None) -> dict[str, str]:
    """``--param`` values as ``bayes_nlme``'s ``params`` (a name given twice is an error)."""
    out: dict[str, str] = {}
    for name, formula in items or []:
        if name in out:
            raise ArgumentError(f"--param gives {name} twice: give each parameter one formula")
        out[name] = formula
    return out


def json_ready(value: Any) -> Any:
    """Non-finite numbers as null (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report(fit: Any, args: argparse.Namespace) -> tuple[str | dict[str, Any], list[str]]:
    """What the command prints: the summary (and PSIS-LOO) or the JSON data, with the
    messages of the LOO warning for stderr."""
    import warnings
    notes: list[str] = []
    loo_result = None
    if args.loo:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", multilevel.errors.MultilevelWarning)
            loo_result = multilevel.loo(fit)
        notes = [f"warning: {w.message}" for w in caught]
    if args.json:
        data = dict(fit.to_dict())
        if loo_result is not None:
            data["loo"] = loo_result.to_dict()
        return json_ready(data), notes
    text = str(fit.summary()).rstrip("\n") + "\n"
    if loo_result is not None:
        text += "\n" + str(loo_result) + "\n"
    return text, notes
