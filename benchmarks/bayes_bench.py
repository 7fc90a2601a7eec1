"""Time Bayesian fits of ``ml.bayes`` / ``ml.bayes_nlme`` side by side with brms and bambi.

Issue 9's speed target: each full fit, compilation included, at least 4x faster than brms end
to end (and under ~10 s here), with the same number of draws and at least the same bulk ESS per
second, and faster than bambi on the linear model.  Three cases, each 4 chains x (1000 warmup +
1000 draws), seed 1, the same priors in every library (bambi: its own defaults):

- ``sleepstudy``: ``Reaction ~ Days + (Days | Subject)``, brms's default priors;
- ``orange``: the three-stage logistic growth model of ``tests/reference/brms`` (``orange_nl``);
- ``cbpp``: ``cbind(incidence, size - incidence) ~ period + (1 | herd)``, binomial, defaults.

Every fit runs in a FRESH process (``benchmarks/bayes_worker.py`` for multilevel and bambi,
``Rscript benchmarks/bayes_bench.R`` for brms), with no thread variables set (what users get):

- ``multilevel cold``: an empty JAX compilation cache (``XDG_CACHE_HOME`` pointed at a new
  temporary folder); ``total`` runs from before ``import multilevel`` to the fit's return;
- ``multilevel warm``: a second process on the cache the cold run filled;
- ``brms``: ``compile`` = ``brm(..., chains = 0)``, ``sampling`` = ``update(fit0, recompile =
  FALSE, ...)``, ``total`` = their sum, as in ``tests/reference/brms/make_brms_refs.R``; rstan
  keeps no compiled model between R processes, so there is no warm brms;
- ``bambi`` (sleepstudy and cbpp; a nonlinear model is no bambi formula): ``bmb.Model(...)
  .fit(draws=1000, tune=1000, chains=4, cores=2, random_seed=1)``, PyMC's NUTS, ``total`` from
  before ``import bambi`` to the fit's return; *cold* with an empty PyTensor compile folder,
  *warm* on the folder the cold run filled; and once through numpyro
  (``inference_method="numpyro"``).

Bulk ESS is the minimum over the scalar posterior variables (population-level effects, group-
level SDs and correlations, sigma): the same variables in brms and multilevel.  Each record keeps
the load average at its start.  Repeats run round-robin over the cases (repeat 1 of every case,
then repeat 2, ...), so that ``--stop-by`` (a UTC time) leaves a median over what was done.

Usage::

    python benchmarks/bayes_bench.py [--cases sleepstudy,orange,cbpp]
                                     [--libraries multilevel,brms,bambi] [--repeats 3]
                                     [--brms-repeats 1] [--bambi-repeats 1] [--stop-by HH:MM]
                                     [--draws 1000] [--warmup 1000] [--merge]
                                     [--json FILE] [--markdown FILE] [--no-write]
                                     [--report-only]

``--merge`` keeps the records of the previous ``--json`` for the (case, variant) pairs not run
now, so that the libraries can be measured at different times (each record's time and load are
shown).  Only the standard library is needed to run this script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import run

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORKER = BENCH_DIR / "bayes_worker.py"
R_SCRIPT = BENCH_DIR / "bayes_bench.R"
DEFAULT_JSON = BENCH_DIR / "results" / "bayes_latest.json"
DEFAULT_BAMBI_PY = Path("/tmp/bambi-venv/bin/python")
WORKER_TIMEOUT_S = 1800.0
LIBRARIES: tuple[str, ...] = ("multilevel", "brms", "bambi")
CASES: dict[str, str] = {
    "sleepstudy": "`Reaction ~ Days + (Days | Subject)`, gaussian, brms's default priors "
                  "(180 rows, 18 subjects)",
    "orange": "`circumference ~ Asym / (1 + exp((xmid - age) / scal))`, `Asym ~ 1 + (1 | Tree)`, "
              "`xmid ~ 1`, `scal ~ 1`, priors normal(200, 50), normal(700, 200), "
              "normal(350, 100), sd student_t(3, 0, 40), sigma student_t(3, 0, 20) (35 rows, "
              "5 trees)",
    "cbpp": "`cbind(incidence, size - incidence) ~ period + (1 | herd)` (brms: `incidence | "
            "trials(size) ~ ...`), binomial, default priors (56 rows, 15 herds)",
}
BAMBI_CASES: tuple[str, ...] = ("sleepstudy", "cbpp")
# the variants of one case, in the order of the report's rows
VARIANTS: tuple[str, ...] = ("multilevel_cold", "multilevel_warm", "brms", "bambi_pymc_cold",
                             "bambi_pymc_warm", "bambi_numpyro")
VARIANT_LABELS: dict[str, str] = {
    "multilevel_cold": "multilevel, cold cache",
    "multilevel_warm": "multilevel, warm cache",
    "brms": "brms (rstan)",
    "bambi_pymc_cold": "bambi (PyMC NUTS), cold",
    "bambi_pymc_warm": "bambi (PyMC NUTS), warm",
    "bambi_numpyro": "bambi (numpyro NUTS)",
}
# variables that set threads, devices or caches: removed from the workers' environment, so
# that every library runs as a user's fresh session would (the report says so)
CLEARED_ENV = (*run.THREAD_VARIABLES, "XLA_FLAGS", "MULTILEVEL_JAX_CACHE", "PYTENSOR_FLAGS",
               "JAX_PLATFORMS", "JAX_ENABLE_X64")
REQUIRED_GAP_S = 70.0  # a repeat is not started when --stop-by is closer than this

Record = dict[str, Any]

# ----------------------------------------------------------------------------- running


def base_env() -> dict[str, str]:
    """This process's environment without thread / device / cache settings."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    return env


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_process(cmd: list[str], env: dict[str, str]) -> Record:
    """Run one worker in a fresh process; its last JSON line, the process's wall time kept."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              cwd=str(REPO_ROOT), timeout=WORKER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "error": repr(exc)}
    wall = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"available": False, "info": f"exited {proc.returncode}: {' | '.join(tail)}",
                "error": proc.stderr[-3000:]}
    record: Record = json.loads(lines[-1])
    record["process_wall_s"] = wall  # interpreter start and the off-clock summary included
    return record


def python_worker(python: Path, library: str, case: str, args: argparse.Namespace,
                  env: dict[str, str], extra: list[str] | None = None) -> Record:
    cmd = [str(python), str(WORKER), library, case, "--draws", str(args.draws),
           "--warmup", str(args.warmup), *(extra or [])]
    return run_process(cmd, env)


def multilevel_pair(case: str, args: argparse.Namespace) -> dict[str, Record]:
    """A cold and then a warm fit of ``case``, on one new compilation cache."""
    cache = Path(tempfile.mkdtemp(prefix="ml-bayes-bench-cache-"))
    env = base_env()
    env["XDG_CACHE_HOME"] = str(cache)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        out = {}
        for variant in ("multilevel_cold", "multilevel_warm"):
            at = now_utc()
            rec = python_worker(args.python_multilevel, "multilevel", case, args, env)
            rec["measured_at"] = at
            out[variant] = rec
            print(progress_line(case, variant, rec), flush=True)
        return out
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def bambi_runs(case: str, args: argparse.Namespace) -> dict[str, Record]:
    """bambi with PyMC's NUTS, cold then warm PyTensor compile folder, then numpyro's NUTS."""
    compiledir = Path(tempfile.mkdtemp(prefix="pytensor-bench-"))
    env = base_env()
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    try:
        out = {}
        for variant, sampler in (("bambi_pymc_cold", "pymc"), ("bambi_pymc_warm", "pymc"),
                                 ("bambi_numpyro", "numpyro")):
            if sampler not in args.bambi_samplers:
                continue
            at = now_utc()
            rec = python_worker(args.python_bambi, "bambi", case, args, env,
                                ["--sampler", sampler])
            rec["measured_at"] = at
            out[variant] = rec
            print(progress_line(case, variant, rec), flush=True)
        return out
    finally:
        shutil.rmtree(compiledir, ignore_errors=True)


def brms_run(case: str, args: argparse.Namespace) -> Record:
    at = now_utc()
    rec = run_process(["Rscript", str(R_SCRIPT), case, "--draws", str(args.draws),
                       "--warmup", str(args.warmup)], base_env())
    rec["measured_at"] = at
    print(progress_line(case, "brms", rec), flush=True)
    return rec


def check_python(python: Path, library: str) -> Record:
    if not python.exists():
        return {"available": False, "info": f"interpreter {python} not found"}
    env = base_env()
    if library == "multilevel":
        env["PYTHONPATH"] = str(REPO_ROOT / "src")
    rec = run_process([str(python), str(WORKER), library, "--check"], env)
    if not rec.get("available"):
        rec["info"] = f"{library} not importable in {python}: {rec.get('info')}"
    return rec


def check_libraries(libs: list[str], args: argparse.Namespace) -> dict[str, Record]:
    """Versions of each library, or why it is not measured."""
    checks: dict[str, Record] = {}
    for lib in libs:
        if lib == "multilevel":
            checks[lib] = check_python(args.python_multilevel, lib)
        elif lib == "bambi":
            checks[lib] = check_python(args.python_bambi, lib)
        else:
            checks[lib] = run_process(["Rscript", str(R_SCRIPT), "--check"], base_env())
        ok = checks[lib].get("available")
        print(f"{lib}: {'available' if ok else 'NOT available'} "
              f"{checks[lib].get('versions') or checks[lib].get('info') or ''}", flush=True)
    return checks


def progress_line(case: str, variant: str, rec: Record) -> str:
    if not rec.get("available") or rec.get("total_s") is None:
        return f"[{case}] {variant}: failed: {str(rec.get('info') or rec.get('error'))[:300]}"
    return (f"[{case}] {variant}: total {rec['total_s']:.1f} s (compile "
            f"{_num(rec.get('compile_s'))}, sampling {_num(rec.get('sampling_s'))}), min bulk "
            f"ESS {rec.get('min_ess_bulk', float('nan')):.0f}, divergences "
            f"{rec.get('divergences')}, load {' '.join(rec.get('loadavg_start') or [])}")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def past_stop(args: argparse.Namespace) -> bool:
    """Whether ``--stop-by`` is closer than a repeat needs."""
    if args.stop_by is None:
        return False
    return time.time() + REQUIRED_GAP_S > args.stop_by.timestamp()


def measure(case_ids: list[str], libs: list[str], args: argparse.Namespace,
            results: dict[str, dict[str, list[Record]]]) -> None:
    """Run every (case, variant) asked for; repeats round-robin over the cases."""
    fresh: set[tuple[str, str]] = set()

    def keep(case: str, variant: str, rec: Record) -> None:
        if (case, variant) not in fresh:  # first record of this run replaces the merged ones
            results.setdefault(case, {})[variant] = []
            fresh.add((case, variant))
        results[case][variant].append(rec)

    rounds = max(args.repeats if "multilevel" in libs else 0,
                 args.brms_repeats if "brms" in libs else 0,
                 args.bambi_repeats if "bambi" in libs else 0)
    for r in range(rounds):
        for case in case_ids:
            if past_stop(args):
                print(f"stopping: --stop-by {args.stop_by:%H:%M} UTC is near", flush=True)
                return
            if "brms" in libs and r < args.brms_repeats:
                keep(case, "brms", brms_run(case, args))
            if "multilevel" in libs and r < args.repeats:
                for variant, rec in multilevel_pair(case, args).items():
                    keep(case, variant, rec)
            if "bambi" in libs and r < args.bambi_repeats and case in BAMBI_CASES:
                for variant, rec in bambi_runs(case, args).items():
                    keep(case, variant, rec)


# ----------------------------------------------------------------------------- report


def ok_runs(runs: list[Record] | None) -> list[Record]:
    return [r for r in runs or [] if r.get("available") and r.get("total_s") is not None]


def med(runs: list[Record], key: str) -> float | None:
    values = [float(r[key]) for r in runs if r.get(key) is not None]
    return float(statistics.median(values)) if values else None


def ess_per_s(runs: list[Record], time_key: str) -> float | None:
    """Median over the runs of (min bulk ESS / that run's ``time_key``)."""
    values = [float(r["min_ess_bulk"]) / float(r[time_key]) for r in runs
              if r.get("min_ess_bulk") is not None and r.get(time_key)]
    return float(statistics.median(values)) if values else None


def summary_of(runs: list[Record]) -> Record:
    """Medians of one variant's runs (``{}`` when none succeeded)."""
    good = ok_runs(runs)
    if not good:
        return {}
    return {
        "n": len(good),
        "total_s": med(good, "total_s"), "compile_s": med(good, "compile_s"),
        "sampling_s": med(good, "sampling_s"), "import_s": med(good, "import_s"),
        "load_s": med(good, "load_s"), "other_fit_s": med(good, "other_fit_s"),
        "min_ess_bulk": med(good, "min_ess_bulk"),
        "ess_per_total_s": ess_per_s(good, "total_s"),
        "ess_per_sampling_s": ess_per_s(good, "sampling_s"),
        "divergences": [r.get("divergences") for r in good],
        "max_rhat": max(float(r.get("max_rhat", float("nan"))) for r in good),
        "loadavg_start": [(r.get("loadavg_start") or ["?"])[0] for r in good],
        "measured_at": sorted({str(r.get("measured_at", "?"))[11:16] for r in good}),
        "times": [round(float(r["total_s"]), 2) for r in good],
    }


def _s(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b <= 0 else f"{a / b:.2f}×"


def _day(by_variant: dict[str, list[Record]]) -> str:
    days = sorted({str(r.get("measured_at", ""))[:10] for runs in by_variant.values()
                   for r in runs if r.get("measured_at")})
    return ", ".join(days) or "?"


def _diff(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a - b:.1f} s"


def _f(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def case_lines(case: str, by_variant: dict[str, list[Record]]) -> list[str]:
    """The table of one case."""
    sums = {v: summary_of(by_variant.get(v, [])) for v in VARIANTS}
    brms = sums["brms"]
    lines = [
        f"### {case}",
        "",
        CASES[case] + ".",
        "",
        "| library | runs | total (median) | import / load | compile | sampling | other "
        "| min bulk ESS "
        "| ESS/s (total) | ESS/s (sampling) | brms total / total | ESS/s (total) vs brms "
        f"| divergences | max R-hat | load at start | measured (UTC, {_day(by_variant)}) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- | ---: | --- | --- |",
    ]
    for v in VARIANTS:
        runs = by_variant.get(v)
        if runs is None:
            continue
        s = sums[v]
        if not s:
            why = next((str(r.get("info") or r.get("error") or r.get("skip")) for r in runs),
                       "no run")
            lines.append(f"| {VARIANT_LABELS[v]} | 0 | not measured ({why.splitlines()[0][:120]})"
                         " | | | | | | | | | | | | | |")
            continue
        imp = s.get("import_s") if s.get("import_s") is not None else s.get("load_s")
        compile_text = "in sampling" if v.startswith("bambi") else _s(s["compile_s"])
        lines.append(
            f"| {VARIANT_LABELS[v]} | {s['n']} | {_s(s['total_s'])} | {_s(imp)} | {compile_text} "
            f"| {_s(s['sampling_s'])} | {_s(s['other_fit_s'])} | {_f(s['min_ess_bulk'])} "
            f"| {_f(s['ess_per_total_s'], 1)} "
            f"| {_f(s['ess_per_sampling_s'], 1)} | {_ratio(brms.get('total_s'), s['total_s'])} "
            f"| {_ratio(s['ess_per_total_s'], brms.get('ess_per_total_s'))} "
            f"| {', '.join(str(d) for d in s['divergences'])} | {s['max_rhat']:.3f} "
            f"| {', '.join(s['loadavg_start'])} | {', '.join(s['measured_at'])} |")
    lines.append("")
    return lines


def verdict_lines(results: dict[str, dict[str, list[Record]]]) -> list[str]:
    """The summary table against the issue's target."""
    lines = [
        "| case | brms total | multilevel cold | multilevel warm | cold − warm | brms / cold "
        "| brms / warm "
        "| ESS/s (total) cold vs brms | warm vs brms | ESS/s (sampling) warm vs brms | bambi PyMC "
        "cold / warm | target (4× brms, ≤ ~10 s, ESS/s ≥ brms, < bambi) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case, by_variant in results.items():
        s = {v: summary_of(by_variant.get(v, [])) for v in VARIANTS}
        brms, cold, warm = s["brms"], s["multilevel_cold"], s["multilevel_warm"]
        bc, bw = s["bambi_pymc_cold"], s["bambi_pymc_warm"]
        bambi_text = "–" if not bc and not bw else f"{_s(bc.get('total_s'))} / " \
            f"{_s(bw.get('total_s'))}"
        lines.append(
            f"| {case} | {_s(brms.get('total_s'))} | {_s(cold.get('total_s'))} "
            f"| {_s(warm.get('total_s'))} | {_diff(cold.get('total_s'), warm.get('total_s'))} "
            f"| {_ratio(brms.get('total_s'), cold.get('total_s'))} "
            f"| {_ratio(brms.get('total_s'), warm.get('total_s'))} "
            f"| {_ratio(cold.get('ess_per_total_s'), brms.get('ess_per_total_s'))} "
            f"| {_ratio(warm.get('ess_per_total_s'), brms.get('ess_per_total_s'))} "
            f"| {_ratio(warm.get('ess_per_sampling_s'), brms.get('ess_per_sampling_s'))} "
            f"| {bambi_text} | {target_text(case, s)} |")
    return lines


def target_text(case: str, s: dict[str, Record]) -> str:
    """Which parts of the target each multilevel variant meets."""
    brms = s["brms"]
    if not brms:
        return "brms not measured"
    parts = []
    for v, label in (("multilevel_cold", "cold"), ("multilevel_warm", "warm")):
        ours = s[v]
        if not ours:
            parts.append(f"{label}: not measured")
            continue
        fast = brms["total_s"] / ours["total_s"] >= 4.0
        small = ours["total_s"] <= 10.0
        ess = (ours["ess_per_total_s"] or 0.0) >= (brms["ess_per_total_s"] or float("inf"))
        bambi = s["bambi_pymc_cold" if label == "cold" else "bambi_pymc_warm"]
        checks = [f"4×: {'yes' if fast else 'no'}", f"≤10 s: {'yes' if small else 'no'}",
                  f"ESS/s: {'yes' if ess else 'no'}"]
        if bambi:
            checks.append(f"< bambi: {'yes' if ours['total_s'] < bambi['total_s'] else 'no'}")
        parts.append(f"{label}: " + ", ".join(checks))
    return "; ".join(parts)


def report_lines(report: Record) -> list[str]:
    """The BENCHMARKS.md section."""
    m, v = report["machine"], report["versions"]
    results = report["results"]
    lines = [
        "## Bayesian models (issue 9)",
        "",
        f"Measured by `python benchmarks/bayes_bench.py` (report written {report['date']}) on "
        f"{m['cpu_model']}, {m['cores']} cores, shared with other jobs (load average at the "
        f"start of each run in the tables; at the start of the last invocation "
        f"{' '.join(m['loadavg'])}, at its end {' '.join(report.get('loadavg_end', []))}). "
        f"Versions: {versions_text(v)}"
        + (f"; multilevel at commit {report['commit']}" if report.get("commit") else "") + ".",
        "",
        f"Every fit: {report['settings']['chains']} chains × ({report['settings']['warmup']} "
        f"warmup + {report['settings']['draws']} draws), seed 1, the same priors in brms and "
        "multilevel (bambi: its own default priors, and its `(Days | Subject)` has no "
        "correlation between the group effects), each in a fresh process with no thread "
        "variables set (the default thread environment: "
        f"{thread_text(results)}; multilevel itself sets XLA's host device count to "
        "max(4, cores) when it first imports jax, so that its chains run as CPU devices). "
        "brms samples its 4 chains on 2 cores (`cores = 2`), bambi "
        "with `cores=2`; multilevel runs its chains in one process as it does by default.",
        "",
        "- **total**: multilevel and bambi: from before `import multilevel` / `import bambi` "
        "(and jax / PyMC) to the fit's return, measured inside the process, so what a user "
        "waits in a new Python session; brms: compile + sampling, as in "
        "`tests/reference/brms/make_brms_refs.R` (`brm(..., chains = 0)`, then "
        "`update(fit0, recompile = FALSE, ...)`); loading brms (*import / load*) is extra.",
        "- **multilevel cold**: an empty JAX compilation cache (`XDG_CACHE_HOME` pointed at a "
        "new folder); **warm**: a second process on the cache the cold run filled (the "
        "default `~/.cache/multilevel/jax`, so every fit of a model after the first). "
        "*compile* and *sampling* are the fit's own `compile_s` / `sampling_s`: compile_s "
        "is the time to compile and run the chains' initialiser (starting points included) "
        "and to trace and compile the NUTS chunk runner ahead of time (or load it from the "
        "cache); sampling_s the warmup and sampling chunks; *other* is total minus import, "
        "compile and sampling (importing jax, numpyro and arviz, model building, the "
        "posterior's named draws and pointwise log-likelihood, the InferenceData). "
        "*cold − warm* in the first table is what the cache saves. rstan keeps nothing "
        "compiled between R processes, so brms compiles every time.",
        "- **brms sampling** is `update()`'s elapsed time: with `cores = 2` it starts R "
        "worker processes that load rstan, so it is more than Stan's own chain times "
        "(`chain_warmup_s` / `chain_sample_s` in the JSON, from `rstan::get_elapsed_time`).",
        "- **bambi**: cold = an empty PyTensor compile folder, warm = the one the cold run "
        "filled; bambi compiles inside `fit()`, so its compile time is in *sampling*.",
        "- **min bulk ESS**: the smallest bulk ESS over the scalar variables (population-level "
        "effects, group-level SDs and correlations, sigma); ESS/s divides it by the run's "
        "total or sampling time. Ratios: brms's median total over the row's median total; "
        "the row's ESS/s over brms's (> 1 favours the row).",
        f"- Repeats: multilevel median of up to {report['settings']['repeats']} (cold, warm "
        f"pairs), brms {report['settings']['brms_repeats']} run per case (a compile is over a "
        f"minute), bambi {report['settings']['bambi_repeats']}; the *runs* column says how "
        "many succeeded" + ("; records measured at different times (see *measured*) were "
                            "merged with `--merge`." if report.get("merged") else "."),
        "",
        "### Against the issue's target",
        "",
        *verdict_lines(results),
        "",
    ]
    for case, by_variant in results.items():
        lines += case_lines(case, by_variant)
    notes = report.get("notes") or []
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    lines += ["Raw records: `benchmarks/results/bayes_latest.json`.", ""]
    return lines


def versions_text(v: Record) -> str:
    ml = v.get("multilevel") or {}
    br = v.get("brms") or {}
    bb = v.get("bambi") or {}
    parts = [f"Python {v.get('python')}"]
    if ml:
        parts.append(f"multilevel {ml.get('multilevel')} (jax {ml.get('jax')}, numpyro "
                     f"{ml.get('numpyro')}, arviz {ml.get('arviz')})")
    if br:
        parts.append(f"{br.get('r')}, brms {br.get('brms')}, rstan {br.get('rstan')}")
    if bb:
        parts.append(f"bambi {bb.get('bambi')} (PyMC {bb.get('pymc')}, numpyro "
                     f"{bb.get('numpyro')})")
    return ", ".join(parts)


def thread_text(results: dict[str, dict[str, list[Record]]]) -> str:
    seen: set[str] = set()
    for by_variant in results.values():
        for runs in by_variant.values():
            for r in runs:
                env = {k: v for k, v in (r.get("thread_env") or {}).items()
                       if k not in ("XDG_CACHE_HOME", "PYTENSOR_FLAGS")}
                seen.add(", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "none set")
    return "; ".join(sorted(seen)) or "none set"


# ----------------------------------------------------------------------------- main


def parse_stop_by(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    hour, minute = (int(x) for x in text.split(":"))
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated libraries")
    p.add_argument("--repeats", type=int, default=3, help="multilevel cold/warm pairs per case")
    p.add_argument("--brms-repeats", type=int, default=1)
    p.add_argument("--bambi-repeats", type=int, default=1)
    p.add_argument("--bambi-samplers", default="pymc,numpyro")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--stop-by", default=None,
                   help="UTC time HH:MM: start no repeat that could run past it")
    p.add_argument("--merge", action="store_true",
                   help="keep the previous --json records of the (case, variant)s not run now")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: write the report of the existing --json")
    p.add_argument("--python-bambi", type=Path, default=DEFAULT_BAMBI_PY,
                   help="interpreter that has bambi (default /tmp/bambi-venv)")
    run.add_report_options(p, DEFAULT_JSON, "Bayesian")
    p.set_defaults(threads="0")
    args = run.parse_report_args(p, argv)
    if args.thread_settings != [0]:
        p.error("the Bayesian benchmark measures the default thread environment only")
    args.stop_by = parse_stop_by(args.stop_by)
    args.bambi_samplers = run.split_list(args.bambi_samplers)
    return args


MARKER = "<!-- bayes-benchmarks -->"


def main(argv: list[str] | None = None) -> int:
    """Run the Bayesian benchmark, print the report, write the JSON and BENCHMARKS.md."""
    args = parse_args(argv)
    case_ids = run.split_list(args.cases)
    unknown = [c for c in case_ids if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {list(CASES)}")
    libs = run.split_list(args.libraries)
    if set(libs) - set(LIBRARIES):
        raise SystemExit(f"unknown libraries; known: {LIBRARIES}")

    if args.report_only:
        write_report(json.loads(args.json.read_text()), args)
        return 0
    previous: Record = {}
    if args.merge and args.json.exists():
        previous = json.loads(args.json.read_text())
    started = time.perf_counter()
    report: Record = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": run.machine_info(),
        "commit": run.git_commit(),
        "settings": {"chains": 4, "draws": args.draws, "warmup": args.warmup, "seed": 1,
                     "repeats": args.repeats, "brms_repeats": args.brms_repeats,
                     "bambi_repeats": args.bambi_repeats},
        "versions": dict(previous.get("versions", {}), python=platform.python_version()),
        "notes": previous.get("notes", []),
        "merged": bool(previous),
        "results": previous.get("results", {}),
    }
    if previous and previous.get("settings", {}).get("draws") != args.draws:
        raise SystemExit("--merge with records of another --draws / --warmup")
    checks = check_libraries(libs, args)
    for lib, chk in checks.items():
        if chk.get("available"):
            report["versions"][lib] = chk.get("versions")
    active = [lib for lib in libs if checks[lib].get("available")]
    for lib in libs:
        if lib not in active:
            note = f"{lib} not measured: {checks[lib].get('info') or checks[lib].get('error')}"
            if lib == "bambi":
                note = f"bambi not installable here ({checks[lib].get('info')})"
            if note not in report["notes"]:
                report["notes"].append(note)
    results: dict[str, dict[str, list[Record]]] = report["results"]
    measure(case_ids, active, args, results)
    # cases in the report's order, whatever order the merged records came in
    report["results"] = {c: results[c] for c in CASES if c in results}

    report["loadavg_end"] = run._read("/proc/loadavg").split()[:3]
    report["elapsed_s"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    write_report(report, args)
    print(f"total {report['elapsed_s']:.0f} s; raw results in {args.json}", flush=True)
    return 0


def write_report(report: Record, args: argparse.Namespace) -> None:
    """Print the report; write it to ``--markdown`` and (unless ``--no-write``) BENCHMARKS.md."""
    text = "\n".join(report_lines(report))
    print("\n" + text, flush=True)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    if not args.no_write:
        run.replace_section(REPO_ROOT / "BENCHMARKS.md", MARKER, text)
        print("wrote the Bayesian section of BENCHMARKS.md", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
