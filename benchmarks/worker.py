"""Run one library's timed fits of one model in this interpreter and print JSON.

``benchmarks/run.py`` starts this script in a fresh subprocess for every
(library, model) pair, with the interpreter that has that library installed::

    python benchmarks/worker.py LIBRARY MODEL [--repeats N] [--budget SECONDS]
    python benchmarks/worker.py LIBRARY --check     # availability / version only

The result is printed as a single JSON line on stdout (anything the library
prints goes to stderr instead).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return serve(
        argv,
        description=__doc__.splitlines()[0],
        libraries=("multilevel", "mixedlm"),
        target="model",
        adapter_suffix="_adapter",
        timer="time_model",
    )


def serve(
    argv: list[str] | None,
    description: str,
    libraries: tuple[str, ...],
    target: str,
    adapter_suffix: str,
    timer: str,
) -> int:
    """A worker's command line: ``LIBRARY [TARGET] [--repeats N] [--budget S] [--check]``.

    The library's adapter is the module ``adapters.<library><adapter_suffix>``; without
    ``--check`` its function ``timer(target, repeats, budget)`` times the fits.  Prints one
    JSON line (what the library prints goes to stderr).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("library", choices=libraries)
    parser.add_argument(target, nargs="?")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=None, help="stop repeating after S s")
    parser.add_argument("--check", action="store_true", help="only report availability")
    args = parser.parse_args(argv)

    out: dict[str, Any]
    with contextlib.redirect_stdout(sys.stderr):
        adapter = importlib.import_module(f"adapters.{args.library}{adapter_suffix}")
        ok, info = adapter.available()
        out = {"library": args.library, "available": ok, "info": info}
        out["python"] = platform.python_version()
        if ok and not args.check:
            what = getattr(args, target)
            if not what:
                parser.error(f"{target.upper()} is required unless --check is given")
            out["version"] = info
            try:
                out.update(getattr(adapter, timer)(what, args.repeats, args.budget))
            except Exception as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
