"""Run ``multilevel``'s timed gls / lme / nlme fits of one or more cases in this interpreter;
print JSON.

``benchmarks/nlme_bench.py`` starts this script in a fresh subprocess for every (group of
cases, thread setting)::

    python benchmarks/nlme_worker.py multilevel CASES [--repeats N] [--budget SECONDS]
    python benchmarks/nlme_worker.py multilevel --check     # availability / version only

``CASES`` is a comma-separated list of case ids (``nlme_cases.py``).  The result is one JSON
line on stdout (anything the library prints goes to stderr).
"""

from __future__ import annotations

import worker

LIBRARIES: tuple[str, ...] = ("multilevel",)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return worker.serve(
        argv,
        description=__doc__.splitlines()[0],
        libraries=LIBRARIES,
        target="case",
        adapter_suffix="_nlme_adapter",
        timer="time_case",
    )


if __name__ == "__main__":
    raise SystemExit(main())
