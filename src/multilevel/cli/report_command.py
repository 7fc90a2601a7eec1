"""The command-line side of ``multilevel report``: fit a model as ``multilevel fit`` does (the
same options, read by the same code in :mod:`multilevel.cli.main`) and write its HTML report
with :func:`multilevel.report`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import multilevel


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """``-o/--output``, ``--title`` and ``--no-plots`` (the model's options are
    ``multilevel fit``'s)."""
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.html",
                        help="where to write the report (one self-contained HTML file)")
    parser.add_argument("--title", help="the report's heading (default: the model and its "
                                        "formula)")
    parser.add_argument("--no-plots", action="store_true",
                        help="leave out the diagnostic and caterpillar plots (faster; no "
                             "matplotlib needed)")


def data_name(source: str) -> str:
    """How the report names the data: the file's name, or the built-in data set's."""
    return Path(source).name or source


def write_report(fit: Any, args: argparse.Namespace, ddf: str | None) -> str:
    """Write the report of ``fit`` to ``args.output``; the line to print."""
    options: dict[str, Any] = {"title": args.title, "data_name": data_name(args.data),
                               "plots": not args.no_plots}
    if type(fit).__name__ == "LinearMixedModelResult":
        options["ddf"] = ddf  # a glmer fit has its own z tests
    path = multilevel.report(fit, args.output, **options)
    return f"wrote {path}"
