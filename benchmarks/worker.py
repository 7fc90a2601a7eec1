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


def _adapter(library: str) -> Any:
    return importlib.import_module(f"adapters.{library}_adapter")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", choices=("multilevel", "mixedlm"))
    parser.add_argument("model", nargs="?")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=None, help="stop repeating after S s")
    parser.add_argument("--check", action="store_true", help="only report availability")
    args = parser.parse_args(argv)

    out: dict[str, Any]
    with contextlib.redirect_stdout(sys.stderr):
        adapter = _adapter(args.library)
        ok, info = adapter.available()
        out = {"library": args.library, "available": ok, "info": info}
        out["python"] = platform.python_version()
        if ok and not args.check:
            if not args.model:
                parser.error("MODEL is required unless --check is given")
            out["version"] = info
            try:
                out.update(adapter.time_model(args.model, args.repeats, args.budget))
            except Exception as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
