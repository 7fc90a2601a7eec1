"""Time ``multilevel``'s ``gls``, ``lme`` and ``nlme`` side by side with R's nlme.

The cases are defined in ``benchmarks/nlme_cases.py``: every gls / lme / nlme call recorded in
``tests/reference/{gls,lme,nlme}/`` (issue 8: at least as fast as nlme on each) and two large
simulated cases with absolute targets (``lme`` with CorAR1 on 10,000 subjects x 10 times under
5 s; a logistic-growth ``nlme`` of 2,000 subjects with two random parameters under 10 s and at
least 5x faster than nlme).

Each library runs in fresh processes of its own: ``multilevel`` through
``benchmarks/nlme_worker.py``, nlme through ``Rscript benchmarks/nlme_bench.R``.  The reference
cases (milliseconds each) share one process per library and thread setting; each large case
gets its own.  ``multilevel`` is measured with default threads and then limited to one thread
(``--threads``); nlme runs on R's single-threaded reference BLAS, so it is measured once
(``--nlme-every-setting`` to measure it under each setting).  The log-likelihood each library
reached is kept beside its time, so that a speed win bought with a worse optimum shows.

Usage::

    python benchmarks/nlme_bench.py [--cases all|reference|large|gls|lme|nlme|ID,...]
                                    [--libraries multilevel,nlme] [--repeats N]
                                    [--budget SECONDS] [--threads 0,1] [--nlme-every-setting]
                                    [--json FILE] [--markdown FILE] [--no-write]

Only the standard library is needed to run this script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nlme_cases
import run

LIBRARIES: tuple[str, ...] = ("multilevel", "nlme")
WORKER = nlme_cases.BENCH_DIR / "nlme_worker.py"
R_SCRIPT = nlme_cases.BENCH_DIR / "nlme_bench.R"
WORKER_TIMEOUT_S = 3600.0
DEFAULT_JSON = nlme_cases.BENCH_DIR / "results" / "nlme_latest.json"
WARMUP = ("gls/orthodont_ar1", "lme/orthodont_ar1", "nlme/orange_logistic")
# BENCHMARKS.md keeps this script's report from this marker to the end of the file.
MARKER = "<!-- nlme-benchmarks -->"

Record = dict[str, Any]

# ----------------------------------------------------------------------------- running


def setting_label(threads: int) -> str:
    """``"default"`` for 0 (library defaults), else ``"<n> thread(s)"``."""
    return "default" if threads == 0 else f"{threads} thread" + ("s" if threads > 1 else "")


def process_groups(case_ids: list[str]) -> list[list[str]]:
    """The cases one process runs: all reference cases together, each large case alone."""
    reference = [c for c in case_ids if not nlme_cases.get_case(c).generated]
    large = [[c] for c in case_ids if nlme_cases.get_case(c).generated]
    return ([reference] if reference else []) + large


def check_multilevel(args: argparse.Namespace) -> Record:
    """Availability and version of ``multilevel`` in the interpreter that runs it."""
    if not Path(run.python_for("multilevel", args)).exists():
        return {"available": False, "info": "interpreter not found"}
    res = run.run_worker_script(WORKER, "multilevel", ["--check"], 0, args)
    res["version"] = res.get("info") if res.get("available") else None
    return res


def _r_eval(expr: str) -> str | None:
    if shutil.which("Rscript") is None:
        return None
    proc = subprocess.run(["Rscript", "-e", expr], capture_output=True, text=True, timeout=120,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_nlme() -> Record:
    """Availability and version of R's nlme."""
    if shutil.which("Rscript") is None:
        return {"available": False, "info": "Rscript not found"}
    version = _r_eval('cat(as.character(packageVersion("nlme")))')
    if not version:
        return {"available": False, "info": "R package nlme is not installed"}
    return {"available": True, "info": version, "version": version,
            "r": _r_eval('cat(R.version$major, R.version$minor, sep = ".")')}


def run_multilevel(group: list[str], threads: int, args: argparse.Namespace) -> dict[str, Record]:
    """Time ``group`` in one fresh ``multilevel`` process: ``{case_id: record}``."""
    extra = [",".join(group), "--repeats", str(args.repeats or 10**6),
             "--budget", str(args.budget)]
    res = run.run_worker_script(WORKER, "multilevel", extra, threads, args)
    if "cases" not in res:
        why = res.get("error") or res.get("info") or "worker failed"
        return {c: {"error": str(why)[-500:]} for c in group}
    return dict(res["cases"])


def r_case_entry(case_id: str, repeats: int, warmup: bool) -> Record:
    """One case as ``nlme_bench.R`` reads it."""
    case = nlme_cases.get_case(case_id)
    return {"case_id": case_id, "data": str(nlme_cases.ensure_data(case)),
            "levels": str(case.levels_path or ""), "factors": list(case.factors),
            "r_call": case.r_call, "repeats": repeats, "warmup": warmup}


def run_nlme(group: list[str], threads: int, args: argparse.Namespace) -> dict[str, Record]:
    """Time ``group`` in one fresh R process: ``{case_id: record}``."""
    entries = [r_case_entry(c, 1, True) for c in WARMUP]
    for c in group:
        default = nlme_cases.get_case(c).default_repeats
        entries.append(r_case_entry(c, min(default, args.repeats or default), False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.json"
        path.write_text(json.dumps(entries))
        cmd = ["Rscript", str(R_SCRIPT), "--cases", str(path), "--budget", str(args.budget)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                                  env=run.thread_env(threads), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {c: {"error": repr(exc)} for c in group}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {c: {"error": f"nlme_bench.R exited {proc.returncode}: {proc.stderr[-500:]}"}
                for c in group}
    res = json.loads(lines[-1])
    args.r_info = {k: res.get(k) for k in ("version", "r_version", "blas")}
    return {c: res.get("cases", {}).get(c) or {"error": "no result"} for c in group}


def progress_line(case_id: str, lib: str, label: str, record: Record) -> str:
    """One line on a finished case."""
    med = median_of(record)
    if med is None:
        return f"  {case_id:<40} {lib:<10} {label:<9} failed: {str(record.get('error'))[:200]}"
    return (f"  {case_id:<40} {lib:<10} {label:<9} median {run._fmt_s(med):>9} "
            f"({len(record['times'])} fits), logLik {record.get('loglik')}")


def bench(case_ids: list[str], libs: list[str], active: set[str],
          args: argparse.Namespace) -> dict[str, Record]:
    """All runs: ``{case_id: {"runs": {setting: {library: record}}, "nlme_setting": ...}}``."""
    results: dict[str, Record] = {c: {"runs": {}, "nlme_setting": None} for c in case_ids}
    groups = process_groups(case_ids)
    for threads in args.thread_settings:
        label = setting_label(threads)
        for c in case_ids:
            results[c]["runs"][label] = {}
        if "multilevel" in libs:
            for group in groups:
                if "multilevel" not in active:
                    out = {c: {"skip": args.checks["multilevel"].get("info")} for c in group}
                else:
                    print(f"multilevel, threads {label}: {len(group)} case(s) ...", flush=True)
                    out = run_multilevel(group, threads, args)
                for c in group:
                    results[c]["runs"][label]["multilevel"] = out[c]
                    print(progress_line(c, "multilevel", label, out[c]), flush=True)
    if "nlme" in libs:
        settings = args.thread_settings if args.nlme_every_setting else args.thread_settings[:1]
        for threads in settings:
            label = setting_label(threads)
            for group in groups:
                if "nlme" not in active:
                    out = {c: {"skip": args.checks["nlme"].get("info")} for c in group}
                else:
                    print(f"nlme, threads {label}: {len(group)} case(s) ...", flush=True)
                    out = run_nlme(group, threads, args)
                for c in group:
                    results[c]["runs"][label]["nlme"] = out[c]
                    print(progress_line(c, "nlme", label, out[c]), flush=True)
        if not args.nlme_every_setting:
            first = setting_label(args.thread_settings[0])
            for c in case_ids:
                results[c]["nlme_setting"] = first
                for by_lib in results[c]["runs"].values():
                    by_lib.setdefault("nlme", results[c]["runs"][first].get("nlme", {}))
    return results


# ----------------------------------------------------------------------------- report


def median_of(record: Record | None) -> float | None:
    """Median fit time of a record (``None`` when nothing was timed)."""
    times = (record or {}).get("times")
    return float(statistics.median(times)) if times else None


def ratio_of(record: Record, other: Record | None) -> float | None:
    """Our median over the other library's."""
    a, b = median_of(record), median_of(other)
    return None if a is None or b is None or b <= 0 else a / b


def _fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def _fmt_ll(value: Any) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def _delta(ours: Record, theirs: Record | None) -> str:
    a, b = ours.get("loglik"), (theirs or {}).get("loglik")
    return "–" if a is None or b is None else f"{float(a) - float(b):+.1e}"


def _why(record: Record) -> str:
    why = record.get("skip") or record.get("error") or "–"
    return str(why).splitlines()[0][:90].replace("|", "/")


def verdict(case: nlme_cases.NlmeCase, result: Record) -> tuple[bool | None, str]:
    """Whether ``multilevel`` met the case's target in every thread setting, and how."""
    ok: bool | None = None
    parts = []
    for label, by_lib in result["runs"].items():
        ours = median_of(by_lib.get("multilevel"))
        if ours is None:
            continue
        met = case.target_seconds is None or ours <= case.target_seconds
        ratio = ratio_of(by_lib.get("multilevel", {}), by_lib.get("nlme"))
        met = met and ratio is not None and ratio <= case.target_ratio
        ok = met if ok is None else ok and met
        parts.append(f"{label} {run._fmt_s(ours)}, {_fmt_ratio(ratio)} nlme")
    return ok, "; ".join(parts)


def summary_table(case_ids: list[str], results: dict[str, Record],
                  labels: list[str]) -> list[str]:
    """One row per case: medians, ratios, log-likelihoods, the target verdict."""
    head = ["case", "n", *[f"multilevel ({lab})" for lab in labels], "nlme",
            *[f"ratio ({lab})" for lab in labels], "logLik multilevel", "logLik nlme",
            "Δ logLik", "target met"]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | ---: | " + " | ".join(["---:"] * (len(head) - 3)) + " | --- |"]
    for c in case_ids:
        case, res = nlme_cases.get_case(c), results[c]
        runs = res["runs"]
        first = runs[labels[0]]
        ours = [runs[lab].get("multilevel", {}) for lab in labels]
        theirs = first.get("nlme", {})
        cells = [f"`{c}`", str(len((ours[0] or {}).get("times") or []))]
        for rec in ours:
            med = median_of(rec)
            cells.append(run._fmt_s(med) if med is not None else f"not measured ({_why(rec)})")
        med = median_of(theirs)
        cells.append(run._fmt_s(med) if med is not None else f"not measured ({_why(theirs)})")
        cells += [_fmt_ratio(ratio_of(runs[lab].get("multilevel", {}), runs[lab].get("nlme")))
                  for lab in labels]
        cells += [_fmt_ll(ours[0].get("loglik")), _fmt_ll(theirs.get("loglik")),
                  _delta(ours[0], theirs)]
        ok, _ = verdict(case, res)
        cells.append("–" if ok is None else ("yes" if ok else "**no**"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_table(case_id: str, result: Record) -> list[str]:
    """A large case in the GLMM section's layout: every run with min, CPU and memory."""
    case = nlme_cases.get_case(case_id)
    lines = [f"### {case_id}", "", f"{case.description}.", "",
             f"- nlme: `{case.r_call}`", f"- multilevel: `{case.py_call}`", "",
             "| library | threads | median | min | CPU | fits | vs nlme | peak RSS (MiB) "
             "| logLik | Δ vs nlme | warnings |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    shown_nlme = False
    for label, by_lib in result["runs"].items():
        for lib in LIBRARIES:
            rec = by_lib.get(lib)
            if rec is None:
                continue
            shown = label
            if lib == "nlme" and result.get("nlme_setting"):
                if shown_nlme:
                    continue
                shown_nlme = True
                shown = "1 (R's reference BLAS)"
            med = median_of(rec)
            if med is None:
                lines.append(f"| {lib} | {shown} | not measured ({_why(rec)}) "
                             "| | | | | | | | |")
                continue
            cpu = rec.get("cpu_times")
            warns = rec.get("warnings") or []
            lines.append(
                f"| {lib} | {shown} | {run._fmt_s(med)} | {run._fmt_s(min(rec['times']))} "
                f"| {run._fmt_s(statistics.median(cpu) if cpu else None)} | {len(rec['times'])} "
                f"| {_fmt_ratio(ratio_of(rec, by_lib.get('nlme')))} "
                f"| {run._fmt_mib(rec.get('peak_rss_mib'))} | {_fmt_ll(rec.get('loglik'))} "
                f"| {_delta(rec, by_lib.get('nlme')) if lib != 'nlme' else '–'} "
                f"| {len(warns)}{': ' + warns[0][:80] if warns else ''} |")
    ok, how = verdict(case, result)
    state = "not yet measured" if ok is None else ("met" if ok else "NOT met")
    lines += ["", f"*Target for multilevel: {case.target_text()}* — {state} ({how}).", ""]
    return lines


def report_lines(report: Record) -> list[str]:
    """The whole report as Markdown lines."""
    m, v = report["machine"], report["versions"]
    results = report["results"]
    labels = [setting_label(t) for t in report["thread_settings"]]
    lines = [
        "## nlme-territory benchmarks (gls, lme, nlme)",
        "",
        f"Measured {report['date']} by `python benchmarks/nlme_bench.py` on {m['cpu_model']}, "
        f"{m['cores']} cores (load average at start {' '.join(m['loadavg'])}, at end "
        f"{' '.join(report.get('loadavg_end', []))}); Python {v.get('python')}, "
        f"R {v.get('r') or '–'}, nlme {v.get('nlme') or '–'}, "
        f"multilevel {v.get('multilevel') or '–'}"
        + (f" (commit {report['commit']})" if report.get("commit") else "")
        + f". Median of up to the listed fits (at most {report['budget']:g} s of fits per "
        "library and case). Threads: *default* = library defaults, *1 thread* = every "
        "BLAS/OpenMP pool limited to one; nlme runs on R's single-threaded reference BLAS and "
        "is measured once. *ratio*: multilevel's median over nlme's. *Δ logLik*: multilevel's "
        "log-likelihood (restricted for REML fits) minus nlme's, each at its own optimum "
        "(positive: ours is higher). Calls: `benchmarks/nlme_cases.py`, from "
        "`tests/reference/{gls,lme,nlme}/`.",
        "",
    ]
    ref_ids = [c for c in results if not nlme_cases.get_case(c).generated]
    if ref_ids:
        met = [c for c in ref_ids if verdict(nlme_cases.get_case(c), results[c])[0]]
        missed = [c for c in ref_ids if verdict(nlme_cases.get_case(c), results[c])[0] is False]
        unmeasured = len(ref_ids) - len(met) - len(missed)
        lines += [
            "### Reference models (target: at least as fast as nlme on each)",
            "",
            f"Met on {len(met)} of {len(ref_ids)} in every thread setting"
            + (f"; not met: {', '.join(f'`{c}`' for c in missed)}" if missed else "")
            + (f"; {unmeasured} not measured (multilevel or nlme failed)" if unmeasured else "")
            + ".",
            "",
        ]
        for engine in ("gls", "lme", "nlme"):
            ids = [c for c in ref_ids if nlme_cases.get_case(c).engine == engine]
            if ids:
                lines += [f"`{engine}`:", "", *summary_table(ids, results, labels), ""]
    for c in results:
        if nlme_cases.get_case(c).generated:
            lines += detail_table(c, results[c])
    return lines


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="all",
                   help="comma-separated case ids, engines (gls, lme, nlme), 'reference', "
                        "'large' or 'all' (default)")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="multilevel,nlme")
    p.add_argument("--repeats", type=int, default=None,
                   help="at most this many fits per case (default: 11 per reference case, 3 "
                        "per large one)")
    p.add_argument("--budget", type=float, default=30.0,
                   help="stop repeating a library's fits of a case after this many s (30)")
    p.add_argument("--nlme-every-setting", action="store_true",
                   help="measure nlme under every thread setting, not only the first")
    run.add_report_options(p, DEFAULT_JSON, "nlme")
    return run.parse_report_args(p, argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the report, write the raw results and BENCHMARKS.md."""
    args = parse_args(argv)
    case_ids = nlme_cases.select(args.cases)
    libs = run.split_list(args.libraries)
    unknown = sorted(set(libs) - set(LIBRARIES))
    if unknown:
        raise SystemExit(f"unknown libraries: {unknown}; known: {LIBRARIES}")
    started = time.perf_counter()
    report: Record = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": run.machine_info(),
        "commit": run.git_commit(),
        "budget": args.budget,
        "thread_settings": args.thread_settings,
        "versions": {"python": platform.python_version()},
    }
    args.checks = {"multilevel": check_multilevel(args) if "multilevel" in libs else {},
                   "nlme": check_nlme() if "nlme" in libs else {}}
    active = set(run.announce_checks({k: v for k, v in args.checks.items() if k in libs},
                                     report["versions"]))
    if args.checks["nlme"].get("r"):
        report["versions"]["r"] = args.checks["nlme"]["r"]
    for c in case_ids:
        nlme_cases.ensure_data(nlme_cases.get_case(c))
    report["results"] = bench(case_ids, libs, active, args)
    report["nlme_session"] = getattr(args, "r_info", None)
    report["loadavg_end"] = run._read("/proc/loadavg").split()[:3]
    report["elapsed_s"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    text = "\n".join(report_lines(report))
    print("\n" + text, flush=True)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
        print(f"wrote {args.markdown}", flush=True)
    if not args.no_write and set(case_ids) == set(nlme_cases.CASES):
        run.replace_section(nlme_cases.REPO_ROOT / "BENCHMARKS.md", MARKER, text)
        print("wrote the nlme section of BENCHMARKS.md", flush=True)
    print(f"total {report['elapsed_s']:.0f} s; raw results in {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
