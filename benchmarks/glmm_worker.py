"""Run one Python library's timed GLMM fits of one case in this interpreter; print JSON.

``benchmarks/glmm_bench.py`` starts this script in a fresh subprocess for every
(case, library, thread setting), with the interpreter that has the library installed::

    python benchmarks/glmm_worker.py LIBRARY CASE [--repeats N] [--budget SECONDS]
    python benchmarks/glmm_worker.py LIBRARY --check     # availability / version only

The result is one JSON line on stdout (anything the library prints goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import sys
from typing import Any

LIBRARIES: tuple[str, ...] = ("multilevel", "mixedlm")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", choices=LIBRARIES)
    parser.add_argument("case", nargs="?")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=None, help="stop repeating after S s")
    parser.add_argument("--check", action="store_true", help="only report availability")
    args = parser.parse_args(argv)

    out: dict[str, Any]
    with contextlib.redirect_stdout(sys.stderr):
        adapter = importlib.import_module(f"adapters.{args.library}_glmm_adapter")
        ok, info = adapter.available()
        out = {"library": args.library, "available": ok, "info": info}
        out["python"] = platform.python_version()
        if ok and not args.check:
            if not args.case:
                parser.error("CASE is required unless --check is given")
            out["version"] = info
            try:
                out.update(adapter.time_case(args.case, args.repeats, args.budget))
            except Exception as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
