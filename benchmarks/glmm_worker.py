"""Run one Python library's timed GLMM fits of one case in this interpreter; print JSON.

``benchmarks/glmm_bench.py`` starts this script in a fresh subprocess for every
(case, library, thread setting), with the interpreter that has the library installed::

    python benchmarks/glmm_worker.py LIBRARY CASE [--repeats N] [--budget SECONDS]
    python benchmarks/glmm_worker.py LIBRARY --check     # availability / version only

The result is one JSON line on stdout (anything the library prints goes to stderr).
"""

from __future__ import annotations

import worker

LIBRARIES: tuple[str, ...] = ("multilevel", "mixedlm")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return worker.serve(
        argv,
        description=__doc__.splitlines()[0],
        libraries=LIBRARIES,
        target="case",
        adapter_suffix="_glmm_adapter",
        timer="time_case",
    )


if __name__ == "__main__":
    raise SystemExit(main())
