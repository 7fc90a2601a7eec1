"""Run the mixed-model benchmarks and write ``BENCHMARKS.md``.

Compares ``multilevel`` (this repository) with R's lme4 and the PyPI package
``mixedlm`` on the models defined in ``benchmarks/common.py``.  Every
(library, model) pair runs in its own fresh process: Python libraries through
``benchmarks/worker.py`` in the interpreter that has them installed, lme4
through ``Rscript benchmarks/lme4_bench.R``.  A library that is not installed
is skipped with a note.

Usage::

    python benchmarks/run.py [--models sleepstudy,hsb82,scotssec,chem97,insteval,crossed_1m]
                             [--libraries multilevel,mixedlm,lme4]
                             [--repeats N] [--budget SECONDS] [--threads N]
                             [--output BENCHMARKS.md] [--json FILE] [--no-write]
                             [--report-only]

Only the standard library is needed to run this script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
from adapters import lme4_adapter

LIBRARIES: tuple[str, ...] = ("multilevel", "mixedlm", "lme4")
WORKER = common.BENCH_DIR / "worker.py"
DEFAULT_MULTILEVEL_PY = common.REPO_ROOT / ".venv" / "bin" / "python"
DEFAULT_PEERS_PY = common.BENCH_DIR / ".venv-peers" / "bin" / "python"
WORKER_TIMEOUT_S = 1800.0
THREAD_VARIABLES: tuple[str, ...] = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
)

# ----------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def replace_section(path: Path, marker: str, text: str) -> None:
    """Replace (or append) one script's section of BENCHMARKS.md: from ``marker`` up to the
    next section marker (``<!-- ...-benchmarks -->``) or the end, the other sections kept."""
    old = path.read_text() if path.exists() else ""
    head, tail = old, ""
    if marker in old:
        at = old.index(marker)
        head, rest = old[:at], old[at + len(marker):]
        later = re.search(r"<!-- [\w-]+-benchmarks -->", rest)
        tail = rest[later.start():] if later else ""
    body = head.rstrip("\n") + "\n\n" + marker + "\n\n" + text.rstrip("\n") + "\n"
    path.write_text(body + ("\n" + tail if tail else ""))


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, kernel and the load average."""
    cpuinfo = _read("/proc/cpuinfo")
    cpu_model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        (
            int(ln.split()[1])
            for ln in _read("/proc/meminfo").splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    os_name = next(
        (
            ln.split("=", 1)[1].strip().strip('"')
            for ln in _read("/etc/os-release").splitlines()
            if ln.startswith("PRETTY_NAME=")
        ),
        platform.platform(),
    )
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gib": mem_kib / 2**20,
        "os": os_name,
        "kernel": platform.release(),
        "loadavg": _read("/proc/loadavg").split()[:3],
    }


def git_commit() -> str | None:
    """The checked-out commit of the repository (read-only ``git rev-parse``)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(common.REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() or None


# ----------------------------------------------------------------------------- running


def python_for(library: str, args: argparse.Namespace) -> str:
    """The interpreter that runs ``library``'s worker."""
    if library == "multilevel":
        return str(args.python_multilevel)
    return str(args.python_peers)


def thread_env(threads: int) -> dict[str, str]:
    """The environment with every BLAS/OpenMP/rayon pool limited to ``threads`` (0: as is)."""
    env = dict(os.environ)
    if threads > 0:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def worker_env(library: str, threads: int) -> dict[str, str]:
    """Environment of a worker: thread limits; ``multilevel`` is imported from ``src/``."""
    env = thread_env(threads)
    if library == "multilevel":
        src = str(common.REPO_ROOT / "src")
        env["PYTHONPATH"] = src + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else src
    return env


def run_worker(library: str, extra: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Run ``worker.py`` for a Python library and return its JSON output."""
    return run_worker_script(WORKER, library, extra, args.threads, args)


def run_worker_script(
    worker: Path, library: str, extra: list[str], threads: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Run the worker script ``worker`` for a Python library (``threads`` as in ``thread_env``)
    in a fresh process and return the last JSON line it printed (or why there is none)."""
    cmd = [python_for(library, args), str(worker), library, *extra]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=worker_env(library, threads),
            cwd=str(common.REPO_ROOT),
            timeout=WORKER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"library": library, "available": False, "error": repr(exc)}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {
            "library": library,
            "available": False,
            "info": f"worker exited {proc.returncode}: {' | '.join(tail)}",
            "error": proc.stderr[-2000:],
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def check_library(library: str, args: argparse.Namespace) -> dict[str, Any]:
    """Availability and version of ``library`` (in the interpreter that will run it)."""
    if library == "lme4":
        ok, info = lme4_adapter.available()
        return {
            "available": ok,
            "info": info,
            "version": info if ok else None,
            "r_version": lme4_adapter.r_version() if ok else None,
        }
    if not Path(python_for(library, args)).exists():
        return {"available": False, "info": f"interpreter {python_for(library, args)} not found"}
    res = run_worker(library, ["--check"], args)
    res["version"] = res.get("info") if res.get("available") else None
    return res


def run_one(
    library: str, model_id: str, repeats: int, budget: float | None, args: argparse.Namespace
) -> dict[str, Any]:
    """Timed fits of ``model_id`` by ``library`` in a fresh process."""
    if library == "lme4":
        try:
            return lme4_adapter.time_model(
                model_id, repeats, budget, timeout_s=WORKER_TIMEOUT_S, env=thread_env(args.threads)
            )
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
    extra = [model_id, "--repeats", str(repeats)]
    if budget is not None:
        extra += ["--budget", str(budget)]
    return run_worker(library, extra, args)


def prepare_data(model_ids: list[str], args: argparse.Namespace) -> None:
    """Export the R data sets if missing and generate the synthetic data if needed."""
    missing_r = [
        m
        for m in model_ids
        if not common.MODELS[m].generated and not common.MODELS[m].path.exists()
    ]
    if missing_r:
        print("exporting data from R (benchmarks/export_data.R) ...", flush=True)
        subprocess.run(["Rscript", str(common.BENCH_DIR / "export_data.R")], check=True)
    for m in model_ids:
        spec = common.MODELS[m]
        if spec.generated and not spec.path.exists():
            print(f"generating {spec.path.name} (benchmarks/data_synthetic.py) ...", flush=True)
            subprocess.run(
                [str(args.python_multilevel), str(common.BENCH_DIR / "data_synthetic.py")],
                check=True,
            )


def announce_checks(checks: dict[str, dict[str, Any]], versions: dict[str, Any]) -> list[str]:
    """Print each library's version (kept in ``versions``) or why it is skipped; return the
    available libraries, in order."""
    active = []
    for lib, chk in checks.items():
        if chk.get("available"):
            print(f"{lib}: {chk.get('version')}", flush=True)
            versions[lib] = chk.get("version")
            active.append(lib)
        else:
            print(f"note: skipping {lib} — {chk.get('info') or chk.get('error')}", flush=True)
    return active


# ----------------------------------------------------------------------------- report


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 0.1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def _fmt_mib(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def _median(res: dict[str, Any]) -> float | None:
    if "times" in res and res["times"]:
        return float(statistics.median(res["times"]))
    return None


def _min(res: dict[str, Any]) -> float | None:
    return float(min(res["times"])) if res.get("times") else None


def loglik_reference(results: dict[str, dict[str, Any]]) -> tuple[str | None, float | None]:
    """The library whose log-likelihood is the reference: lme4, else mixedlm."""
    for lib in ("lme4", "mixedlm", "multilevel"):
        ll = results.get(lib, {}).get("loglik")
        if ll is not None:
            return lib, float(ll)
    return None, None


def fixef_difference(res: dict[str, Any], ref: dict[str, Any]) -> float | None:
    """Largest absolute fixed-effect difference, matched by position (names differ by library)."""
    a, b = res.get("fixef"), ref.get("fixef")
    if not a or not b or len(a) != len(b):
        return None
    return max(abs(float(x) - float(y)) for x, y in zip(a.values(), b.values(), strict=True))


def agreement_line(results: dict[str, dict[str, Any]]) -> str | None:
    """One sentence on the fixed-effect agreement with the reference library."""
    ref_lib, _ = loglik_reference(results)
    if ref_lib is None:
        return None
    parts = []
    for lib, res in results.items():
        if lib == ref_lib:
            continue
        diff = fixef_difference(res, results[ref_lib])
        if diff is not None:
            parts.append(f"{lib} {diff:.1e}")
    if not parts:
        return None
    return f"Largest fixed-effect difference from {ref_lib}: {', '.join(parts)}."


def target_status(spec: common.ModelSpec, res: dict[str, Any] | None) -> str:
    """Whether ``multilevel`` met the model's target."""
    parts = []
    if spec.target_seconds is not None:
        parts.append(f"≤ {_fmt_s(spec.target_seconds)}")
    if spec.target_memory_mib is not None:
        parts.append(f"≤ {spec.target_memory_mib / 1024:g} GiB peak memory")
    goal = " and ".join(parts)
    med = _median(res) if res else None
    if med is None:
        return f"target for multilevel: {goal} — not yet measured"
    ok = spec.target_seconds is None or med <= spec.target_seconds
    peak = res.get("peak_rss_mib") if res else None
    if spec.target_memory_mib is not None:
        ok = ok and peak is not None and peak <= spec.target_memory_mib
    return f"target for multilevel: {goal} — {'met' if ok else 'NOT met'}"


def model_table(spec: common.ModelSpec, results: dict[str, dict[str, Any]], libs: list[str]) -> str:
    """Markdown table of one model's results."""
    ref_lib, ref_ll = loglik_reference(results)
    lme4_med = _median(results.get("lme4", {}))
    mixed_med = _median(results.get("mixedlm", {}))
    rows = [
        "| library | median | min | fits | vs lme4 | vs mixedlm | peak RSS in fit (MiB) "
        "| fit increment (MiB) | log-likelihood | Δ logLik vs " + (ref_lib or "ref") + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lib in libs:
        res = results.get(lib, {})
        med = _median(res)
        if med is None:
            why = res.get("skip") or res.get("error") or res.get("info") or "not measured"
            why = str(why).splitlines()[0][:120]
            rows.append(f"| {lib} | not yet measured ({why}) | | | | | | | | |")
            continue
        ll = res.get("loglik")
        dll = "–" if ll is None or ref_ll is None else f"{float(ll) - ref_ll:+.2e}"
        rows.append(
            f"| {lib} | {_fmt_s(med)} | {_fmt_s(_min(res))} | {len(res['times'])} "
            f"| {_fmt_ratio(med, lme4_med)} | {_fmt_ratio(med, mixed_med)} "
            f"| {_fmt_mib(res.get('peak_rss_mib'))} | {_fmt_mib(res.get('fit_increment_mib'))} "
            f"| {'–' if ll is None else f'{float(ll):.4f}'} | {dll} |"
        )
    return "\n".join(rows)


def threads_line(threads: int) -> str:
    """The report's line on thread settings."""
    if threads > 0:
        names = ", ".join(f"`{n}`" for n in THREAD_VARIABLES)
        return (
            f"- Threads: every library limited to {threads} thread(s) ({names} set to "
            f"{threads}; run.py's default is 1), so that the libraries compare like for like "
            "(lme4 runs on R's single-threaded reference BLAS) and do not oversubscribe the "
            "shared cores; `--threads 0` keeps library defaults."
        )
    return "- Threads: library defaults (`--threads 0`); each library may use both cores."


def write_markdown(path: Path, report: dict[str, Any], libs: list[str]) -> None:
    """Write the ``BENCHMARKS.md`` report."""
    m = report["machine"]
    v = report["versions"]
    lines = [
        "# Benchmarks",
        "",
        "Linear mixed-model fits of `multilevel` (this repository) side by side with R's",
        "[lme4](https://cran.r-project.org/package=lme4) and the PyPI package `mixedlm`",
        "(Rust core), measured in one run on one machine by `python benchmarks/run.py`",
        "(see `benchmarks/README.md` for what is measured and how).",
        "",
        "**Read the ratios, not the absolute times.** This is a shared 2-core machine on",
        "which other jobs were running during the benchmark (load average at start/end:",
        f"{' '.join(m['loadavg'])} / {' '.join(report['loadavg_end'])}), so absolute",
        "times are noisy (compare *min* with *median*) and would differ on another",
        "machine, while ratios between libraries measured in the same run are meaningful.",
        "",
        "## Machine and versions",
        "",
        f"- Date: {report['date']}",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; memory {m['memory_gib']:.1f} GiB",
        f"- OS: {m['os']} (Linux {m['kernel']})",
        f"- Python: {v.get('python') or '–'}",
        f"- R: {v.get('r') or '–'}; lme4 {v.get('lme4') or '–'} "
        "(R's reference BLAS, single-threaded)",
        f"- mixedlm: {v.get('mixedlm') or '–'}",
        f"- multilevel: {v.get('multilevel') or 'not yet measured'}"
        + (f" (commit {report['commit']})" if report.get("commit") else ""),
        threads_line(report["threads"]),
        f"- Repeats: per model as listed under *fits*, stopping early once a library's fits "
        f"of a model took {report['budget']:g} s in total.",
        "",
        "Columns: *median*/*min* wall time of one fit call; *vs lme4*/*vs mixedlm*: median",
        "time divided by that library's median (< 1 is faster); *peak RSS in fit*: peak",
        "resident memory of the whole process during a fit (interpreter, libraries and",
        "data included); *fit increment*: that peak minus the resident memory just",
        "before the fit (the memory the fit itself needed); *Δ logLik*: difference of",
        "the maximised (REML or ML) log-likelihood from the reference library.",
        "",
    ]
    for model_id, results in report["results"].items():
        spec = common.MODELS[model_id]
        fit = "REML" if spec.reml else "ML"
        lines += [
            f"## {model_id}",
            "",
            f"`{spec.formula}` ({fit}); {spec.description}.",
            "",
            model_table(spec, results, libs),
            "",
            f"*{target_status(spec, results.get('multilevel'))}.*",
            "",
        ]
        agreement = agreement_line(results)
        if agreement:
            lines += [agreement, ""]
    lines += ["## Raw timings (seconds)", ""]
    for model_id, results in report["results"].items():
        for lib in libs:
            times = results.get(lib, {}).get("times")
            if times:
                shown = ", ".join(f"{t:.4g}" for t in times)
                lines.append(f"- {model_id} / {lib}: {shown}")
    lines.append("")
    # keep the inference section that benchmarks/inference_bench.py maintains
    marker = "<!-- inference-benchmarks -->"
    kept = ""
    if path.exists() and marker in path.read_text():
        kept = "\n" + path.read_text()[path.read_text().index(marker):]
    path.write_text("\n".join(lines) + kept)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(common.MODELS), help="comma-separated model ids")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated libraries")
    p.add_argument("--repeats", type=int, default=None, help="fits per model (default: per model)")
    p.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop repeating a library's fits of a model after this many seconds (default 60)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="limit BLAS/OpenMP/rayon threads of every library (default 1; 0 = library defaults)",
    )
    p.add_argument("--output", type=Path, default=common.REPO_ROOT / "BENCHMARKS.md")
    p.add_argument(
        "--json",
        type=Path,
        default=common.BENCH_DIR / "results" / "latest.json",
        help="raw results",
    )
    p.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="do not fit: rewrite BENCHMARKS.md from the raw results in --json",
    )
    add_interpreter_options(p)
    return p.parse_args(argv)


def split_list(text: str) -> list[str]:
    """The items of a comma-separated option, stripped, empty ones left out."""
    return [item.strip() for item in text.split(",") if item.strip()]


def library_list(text: str) -> list[str]:
    """The libraries of ``--libraries``; exits on one not in ``LIBRARIES``."""
    libs = split_list(text)
    unknown = sorted(set(libs) - set(LIBRARIES))
    if unknown:
        raise SystemExit(f"unknown libraries: {unknown}; known: {LIBRARIES}")
    return libs


def add_report_options(p: argparse.ArgumentParser, default_json: Path, section: str) -> None:
    """The options every side-by-side benchmark shares after its own: ``--threads``,
    ``--json``, ``--markdown``, ``--no-write`` and the workers' interpreters."""
    p.add_argument("--threads", default="0,1",
                   help="thread settings in order, 0 = library defaults (default '0,1')")
    p.add_argument("--json", type=Path, default=default_json, help="raw results")
    p.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    p.add_argument("--no-write", action="store_true",
                   help=f"do not write the {section} section of BENCHMARKS.md")
    add_interpreter_options(p)


def parse_report_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, and read ``--threads`` into ``thread_settings`` (non-negative integers)."""
    args = p.parse_args(argv)
    args.thread_settings = [int(t) for t in args.threads.split(",") if t.strip()]
    if not args.thread_settings or min(args.thread_settings) < 0:
        p.error("--threads needs one or more non-negative integers")
    return args


def add_interpreter_options(p: argparse.ArgumentParser) -> None:
    """``--python-multilevel`` and ``--python-peers``: the interpreters of the workers."""
    p.add_argument(
        "--python-multilevel",
        type=Path,
        default=DEFAULT_MULTILEVEL_PY if DEFAULT_MULTILEVEL_PY.exists() else Path(sys.executable),
        help="interpreter for multilevel (run with PYTHONPATH=src)",
    )
    p.add_argument(
        "--python-peers",
        type=Path,
        default=DEFAULT_PEERS_PY if DEFAULT_PEERS_PY.exists() else Path(sys.executable),
        help="interpreter that has mixedlm installed (default benchmarks/.venv-peers)",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the report."""
    args = parse_args(argv)
    model_ids = split_list(args.models)
    for m in model_ids:
        common.get_model(m)
    libs = library_list(args.libraries)

    if args.report_only:
        saved = json.loads(args.json.read_text())
        libs = [lib for lib in libs if any(lib in r for r in saved["results"].values())]
        write_markdown(args.output, saved, libs)
        print(f"wrote {args.output} from {args.json}", flush=True)
        return 0

    started = time.perf_counter()
    machine = machine_info()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "commit": git_commit(),
        "budget": args.budget,
        "threads": args.threads,
        "versions": {"python": platform.python_version()},
        "results": {},
    }

    checks = {lib: check_library(lib, args) for lib in libs}
    active = announce_checks(checks, report["versions"])
    if "lme4" in checks and checks["lme4"].get("r_version"):
        report["versions"]["r"] = checks["lme4"]["r_version"]

    prepare_data(model_ids, args)

    for model_id in model_ids:
        spec = common.MODELS[model_id]
        repeats = args.repeats or spec.default_repeats
        results: dict[str, dict[str, Any]] = {}
        for lib in libs:
            if lib not in active:
                results[lib] = {"skip": checks[lib].get("info") or "not installed"}
                continue
            print(f"[{model_id}] {lib}: up to {repeats} fits ...", flush=True)
            res = run_one(lib, model_id, repeats, args.budget, args)
            results[lib] = res
            med = _median(res)
            if med is None:
                print(f"    failed: {str(res.get('error') or res.get('info'))[:300]}", flush=True)
            else:
                n_fits = len(res["times"])
                print(
                    f"    median {_fmt_s(med)} (min {_fmt_s(_min(res))}, {n_fits} fits), "
                    f"peak RSS {_fmt_mib(res.get('peak_rss_mib'))} MiB, "
                    f"logLik {res.get('loglik')}",
                    flush=True,
                )
        ref_lib, ref_ll = loglik_reference(results)
        for lib, res in results.items():
            if lib != ref_lib and res.get("loglik") is not None and ref_ll is not None:
                diff = float(res["loglik"]) - ref_ll
                fe_diff = fixef_difference(res, results[ref_lib])
                fe_text = "–" if fe_diff is None else f"{fe_diff:.2e}"
                print(
                    f"    logLik {lib} - {ref_lib} = {diff:+.3e}; max |Δ fixef| = {fe_text}",
                    flush=True,
                )
        report["results"][model_id] = results

    report["loadavg_end"] = _read("/proc/loadavg").split()[:3]
    report["elapsed_s"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    if not args.no_write:
        write_markdown(args.output, report, libs)
        print(f"wrote {args.output}", flush=True)
    print(f"total {report['elapsed_s']:.0f} s; raw results in {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
