"""Time GLMM fits of ``multilevel.glmer`` side by side with lme4's ``glmer`` and mixedlm's.

The cases are defined in ``benchmarks/glmm_cases.py``.  Every (case, library, thread setting)
runs in a fresh process: the Python libraries through ``benchmarks/glmm_worker.py`` in the
interpreter that has them, lme4 through ``Rscript benchmarks/glmm_bench.R``.  Each library is
measured first with its default threads, then limited to one thread (``--threads``); lme4 runs
on R's single-threaded reference BLAS, so it is measured once (``--lme4-every-setting`` to
measure it under each setting).  A library that is missing, or ``multilevel`` without
``glmer``, is skipped with a note.

Besides the times, the log-likelihood each library reports is kept, and lme4's Laplace
deviance function evaluates every library's estimates (theta, beta) as well, after the timed
fits: the *logLik by lme4's Laplace* column compares the optima on one yardstick, so that a
speed win bought with a worse optimum shows.  (glmer's own logLik is computed with its
default PIRLS tolerance, which leaves it up to 0.35 below the converged Laplace value; the
yardstick converges PIRLS tightly, see ``glmm_bench.R``.)

Usage::

    python benchmarks/glmm_bench.py [--cases verbagg,cbpp,poisson_crossed,binary_slope]
                                    [--libraries multilevel,mixedlm,lme4] [--repeats N]
                                    [--budget SECONDS] [--threads 0,1] [--lme4-every-setting]
                                    [--json FILE] [--markdown FILE]

Only the standard library is needed to run this script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import glmm_cases
import run
from adapters import lme4_glmm_adapter

LIBRARIES: tuple[str, ...] = run.LIBRARIES
WORKER = glmm_cases.BENCH_DIR / "glmm_worker.py"
WORKER_TIMEOUT_S = 1800.0
DEFAULT_JSON = glmm_cases.BENCH_DIR / "results" / "glmm_latest.json"

Record = dict[str, Any]

# ----------------------------------------------------------------------------- running


def setting_label(threads: int) -> str:
    """``"default"`` for 0 (library defaults), else ``"<n> thread(s)"``."""
    return "default" if threads == 0 else f"{threads} thread" + ("s" if threads > 1 else "")


def run_worker(
    library: str, extra: list[str], threads: int, args: argparse.Namespace
) -> Record:
    """Run ``glmm_worker.py`` for a Python library and return its JSON record."""
    return run.run_worker_script(WORKER, library, extra, threads, args)


def check_library(library: str, args: argparse.Namespace) -> Record:
    """Availability and version of ``library`` in the interpreter that will run it."""
    if library == "lme4":
        ok, info = lme4_glmm_adapter.available()
        r_version = lme4_glmm_adapter.r_version() if ok else None
        return {"available": ok, "info": info, "version": info if ok else None, "r": r_version}
    python = run.python_for(library, args)
    if not Path(python).exists():
        return {"available": False, "info": f"interpreter {python} not found"}
    res = run_worker(library, ["--check"], 0, args)
    res["version"] = res.get("info") if res.get("available") else None
    return res


def estimates_of(record: Record) -> dict[str, list[float]] | None:
    """``{"theta": [...], "beta": [...]}`` of a successful fit, else ``None``."""
    if not record.get("times") or record.get("fixef") is None or record.get("theta") is None:
        return None
    return {"theta": list(record["theta"]), "beta": list(record["fixef"].values())}


def run_lme4(
    case_id: str, repeats: int, threads: int, evaluate: dict[str, Any], args: argparse.Namespace
) -> Record:
    """Time lme4 on ``case_id``; its devfun also evaluates the other libraries' ``evaluate``."""
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if evaluate:
            path = Path(tmp) / "estimates.json"
            path.write_text(json.dumps(evaluate))
            extra = ["--evaluate", str(path)]
        try:
            return lme4_glmm_adapter.time_case(
                case_id,
                repeats,
                args.budget,
                timeout_s=WORKER_TIMEOUT_S,
                env=run.thread_env(threads),
                extra=extra,
            )
        except Exception as exc:
            return {"library": "lme4", "error": f"{type(exc).__name__}: {exc}"}


def prepare_data(case_ids: list[str], args: argparse.Namespace) -> None:
    """Simulate the generated data sets that are missing (``glmm_data.py``)."""
    missing = [c for c in case_ids if glmm_cases.CASES[c].generated
               and not glmm_cases.CASES[c].data_path.exists()]
    if missing:
        print("simulating data (benchmarks/glmm_data.py) ...", flush=True)
        subprocess.run(
            [str(args.python_multilevel), str(glmm_cases.BENCH_DIR / "glmm_data.py")], check=True
        )


def progress_line(record: Record) -> str:
    """One line on a finished run."""
    med = median_of(record)
    if med is None:
        why = record.get("skip") or record.get("error") or record.get("info")
        return f"    failed: {str(why)[:300]}"
    return (
        f"    median {run._fmt_s(med)} (min {run._fmt_s(min(record['times']))}, "
        f"{len(record['times'])} fits), logLik {record.get('loglik')}, "
        f"converged {record.get('converged')}, spelling: {record.get('spelling')}"
    )


def bench_case(
    case_id: str, libs: list[str], active: set[str], checks: dict[str, Record],
    args: argparse.Namespace,
) -> Record:
    """All runs of one case: ``{"runs": {setting: {library: record}}, "lme4_setting": ...}``."""
    case = glmm_cases.get_case(case_id)
    repeats = args.repeats or case.default_repeats
    runs: dict[str, dict[str, Record]] = {}
    for threads in args.thread_settings:
        label = setting_label(threads)
        runs[label] = {}
        for lib in libs:
            if lib == "lme4":
                continue
            if lib not in active:
                runs[label][lib] = {"skip": checks[lib].get("info") or "not installed"}
                continue
            print(f"[{case_id}] {lib}, threads {label}: up to {repeats} fits ...", flush=True)
            extra = [case_id, "--repeats", str(repeats), "--budget", str(args.budget)]
            runs[label][lib] = run_worker(lib, extra, threads, args)
            print(progress_line(runs[label][lib]), flush=True)
    out: Record = {"runs": runs, "lme4_setting": None}
    if "lme4" not in libs:
        return out
    evaluate: dict[str, Any] = {}
    for by_lib in runs.values():
        for lib, record in by_lib.items():
            est = estimates_of(record)
            if est is not None and lib not in evaluate:
                evaluate[lib] = est
    lme4_settings = args.thread_settings if args.lme4_every_setting else args.thread_settings[:1]
    for threads in lme4_settings:
        label = setting_label(threads)
        if "lme4" not in active:
            record: Record = {"skip": checks["lme4"].get("info") or "not installed"}
        else:
            print(f"[{case_id}] lme4, threads {label}: up to {repeats} fits ...", flush=True)
            record = run_lme4(case_id, repeats, threads, evaluate, args)
            print(progress_line(record), flush=True)
        runs[label]["lme4"] = record
    if not args.lme4_every_setting:
        first = setting_label(args.thread_settings[0])
        out["lme4_setting"] = first
        for label in runs:
            runs[label].setdefault("lme4", runs[first]["lme4"])
    return out


# ----------------------------------------------------------------------------- report


def median_of(record: Record) -> float | None:
    """Median fit time of a record (``None`` when nothing was timed)."""
    times = record.get("times")
    return float(statistics.median(times)) if times else None


def cpu_median_of(record: Record) -> float | None:
    """Median CPU time of a record's fits (all threads; above the wall time when parallel)."""
    cpu = record.get("cpu_times")
    return float(statistics.median(cpu)) if cpu else None


def laplace_logliks(case_result: Record) -> dict[str, float]:
    """Each library's estimates evaluated by lme4's Laplace devfun: ``{library: logLik}``."""
    for by_lib in case_result["runs"].values():
        values = by_lib.get("lme4", {}).get("laplace_loglik_by_lme4")
        if values:
            return {k: float(v) for k, v in values.items() if v is not None}
    return {}


def reference_loglik(case_result: Record) -> tuple[str, float] | None:
    """The best log-likelihood reached (lme4's yardstick when available) and its library."""
    by_lme4 = laplace_logliks(case_result)
    if by_lme4:
        lib = max(by_lme4, key=lambda k: by_lme4[k])
        return lib, by_lme4[lib]
    own = {
        lib: float(rec["loglik"])
        for by_lib in case_result["runs"].values()
        for lib, rec in by_lib.items()
        if rec.get("loglik") is not None
    }
    if not own:
        return None
    lib = max(own, key=lambda k: own[k])
    return lib, own[lib]


def ratio_text(a: float | None, b: float | None) -> str:
    """``a / b`` as ``"0.25×"``, or ``"–"``."""
    return "–" if a is None or b is None or b <= 0 else f"{a / b:.2f}×"


def case_table(case_id: str, case_result: Record, libs: list[str]) -> list[str]:
    """Markdown lines of one case: the table and the target verdicts."""
    case = glmm_cases.get_case(case_id)
    by_lme4 = laplace_logliks(case_result)
    best = reference_loglik(case_result)
    lines = [
        f"### {case_id}",
        "",
        f"`{case.formula}` ({case.family}, Laplace); {case.description}.",
        "",
        "| library | threads | median | min | CPU | fits | vs lme4 | vs mixedlm | peak RSS (MiB) "
        "| logLik (own) | logLik by lme4's Laplace | Δ vs best | converged | spelling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
        "| --- |",
    ]
    shown_lme4 = False
    for label, by_lib in case_result["runs"].items():
        for lib in libs:
            record = by_lib.get(lib, {})
            if lib == "lme4" and case_result.get("lme4_setting"):
                if shown_lme4:
                    continue
                shown_lme4 = True
                label_shown = lme4_threads_label(record, case_result["lme4_setting"])
            else:
                label_shown = label
            med = median_of(record)
            if med is None:
                why = record.get("skip") or record.get("error") or record.get("info") or "–"
                why = str(why).splitlines()[0][:120]
                lines.append(f"| {lib} | {label_shown} | not measured ({why}) |"
                             " | | | | | | | | | | |")
                continue
            yard = by_lme4.get(lib)
            compared = yard if yard is not None else record.get("loglik")
            delta = "–" if best is None or compared is None else f"{compared - best[1]:+.2e}"
            lines.append(
                f"| {lib} | {label_shown} | {run._fmt_s(med)} | {run._fmt_s(min(record['times']))} "
                f"| {run._fmt_s(cpu_median_of(record))} | {len(record['times'])} "
                f"| {ratio_text(med, median_of(by_lib.get('lme4', {})))} "
                f"| {ratio_text(med, median_of(by_lib.get('mixedlm', {})))} "
                f"| {run._fmt_mib(record.get('peak_rss_mib'))} "
                f"| {_fmt_ll(record.get('loglik'))} | {_fmt_ll(yard)} | {delta} "
                f"| {record.get('converged')} | {record.get('spelling', '–')} |"
            )
    lines += ["", *target_lines(case, case_result), ""]
    return lines


def lme4_threads_label(record: Record, setting: str) -> str:
    """lme4's thread column: R's reference BLAS runs one thread whatever the setting."""
    blas = str(record.get("blas", ""))
    if "libRblas" in blas or "/blas/libblas" in blas:
        return "1 (R's reference BLAS)"
    return setting


def _fmt_ll(value: float | None) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def target_lines(case: glmm_cases.GlmmCase, case_result: Record) -> list[str]:
    """Whether ``multilevel`` met the case's target, per thread setting."""
    head = f"*Target for multilevel: {case.target_text()}* —"
    verdicts = []
    for label, by_lib in case_result["runs"].items():
        ours = median_of(by_lib.get("multilevel", {}))
        if ours is None:
            continue
        ok = case.target_seconds is None or ours <= case.target_seconds
        parts = [run._fmt_s(ours)]
        for lib, ratio in case.target_ratios:
            other = median_of(by_lib.get(lib, {}))
            if other is None:
                ok = False
                parts.append(f"{lib} not measured")
            else:
                ok = ok and ours / other <= ratio
                parts.append(f"{ours / other:.2f}× {lib}")
        verdicts.append(f"{label}: {'met' if ok else 'NOT met'} ({', '.join(parts)})")
    return [f"{head} {'; '.join(verdicts) if verdicts else 'not yet measured'}."]


def report_lines(report: Record, libs: list[str]) -> list[str]:
    """The whole report as Markdown lines."""
    m, v = report["machine"], report["versions"]
    lines = [
        "## GLMM benchmarks",
        "",
        f"Measured {report['date']} by `python benchmarks/glmm_bench.py` on {m['cpu_model']}, "
        f"{m['cores']} cores (load average at start {' '.join(m['loadavg'])}, at end "
        f"{' '.join(report.get('loadavg_end', []))}); Python {v.get('python')}, "
        f"R {v.get('r') or '–'}, lme4 {v.get('lme4') or '–'}, mixedlm {v.get('mixedlm') or '–'}, "
        f"multilevel {v.get('multilevel') or '–'}"
        + (f" (commit {report['commit']})" if report.get("commit") else "")
        + f". Median of up to the listed fits, stopping once a library's fits of a case took "
        f"{report['budget']:g} s. Threads: *default* = library defaults, *1 thread* = every "
        "BLAS/OpenMP/rayon pool limited to one. *vs lme4* / *vs mixedlm*: median time over that "
        "library's median in the same setting. *CPU*: median CPU time of a fit, all threads (on a "
        "loaded machine, wall time well above it means waiting for a core). *logLik by lme4's "
        "Laplace*: lme4's deviance function, with PIRLS converged tightly, at the library's "
        "estimates (to about 1e-5); *Δ vs best*: that minus the best one reached.",
        "",
    ]
    for case_id, case_result in report["results"].items():
        lines += case_table(case_id, case_result, libs)
    return lines


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(glmm_cases.CASES), help="comma-separated cases")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated libraries")
    p.add_argument("--repeats", type=int, default=None, help="fits per case (default: per case)")
    p.add_argument("--budget", type=float, default=60.0,
                   help="stop repeating a library's fits of a case after this many s (60)")
    p.add_argument("--lme4-every-setting", action="store_true",
                   help="measure lme4 under every thread setting, not only the first")
    run.add_report_options(p, DEFAULT_JSON, "GLMM")
    return run.parse_report_args(p, argv)


# BENCHMARKS.md keeps this script's report from this marker to the end of the file; run.py
# and inference_bench.py rewrite their sections above it and keep it.
MARKER = "<!-- glmm-benchmarks -->"


def main(argv: list[str] | None = None) -> int:
    """Run the GLMM benchmarks, print the report and write the raw results."""
    args = parse_args(argv)
    case_ids = run.split_list(args.cases)
    for c in case_ids:
        glmm_cases.get_case(c)
    libs = run.library_list(args.libraries)

    started = time.perf_counter()
    report: Record = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": run.machine_info(),
        "commit": run.git_commit(),
        "budget": args.budget,
        "thread_settings": args.thread_settings,
        "versions": {"python": platform.python_version()},
        "results": {},
    }
    checks = {lib: check_library(lib, args) for lib in libs}
    active = set(run.announce_checks(checks, report["versions"]))
    if checks.get("lme4", {}).get("r"):
        report["versions"]["r"] = checks["lme4"]["r"]
    prepare_data(case_ids, args)

    for case_id in case_ids:
        report["results"][case_id] = bench_case(case_id, libs, active, checks, args)

    report["loadavg_end"] = run._read("/proc/loadavg").split()[:3]
    report["elapsed_s"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    text = "\n".join(report_lines(report, libs))
    print("\n" + text, flush=True)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
        print(f"wrote {args.markdown}", flush=True)
    if not args.no_write and set(case_ids) == set(glmm_cases.CASES):
        run.replace_section(glmm_cases.REPO_ROOT / "BENCHMARKS.md", MARKER, text)
        print("wrote the GLMM section of BENCHMARKS.md", flush=True)
    print(f"total {report['elapsed_s']:.0f} s; raw results in {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
