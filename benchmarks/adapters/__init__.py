"""One adapter module per benchmarked library.

Every adapter exposes the same small interface:

* ``NAME`` – the library's short name;
* ``available() -> tuple[bool, str]`` – whether the library can be used here, and
  why not (or its version) – checked in the interpreter that will run the fits;
* ``version() -> str | None``;
* ``fit(model_id) -> dict`` – one fit, ``{"loglik", "fixef", "seconds", "theta"}``;
* ``time_model(model_id, repeats, budget_s) -> dict`` – repeated timed fits with the
  data loaded (and an untimed warm-up fit done) outside the timed region; returns
  ``times``, ``median``, ``cpu_times``, ``peak_rss_mib``, ``fit_increment_mib``,
  ``loglik``, ``fixef``, ``theta``.

The Python adapters (``multilevel_adapter``, ``mixedlm_adapter``) are meant to be
run inside ``benchmarks/worker.py`` in a fresh subprocess per model, so that the
memory figures belong to one library and one model.  ``lme4_adapter`` only
needs the standard library: it runs ``benchmarks/lme4_bench.R`` with ``Rscript``.
"""

ADAPTERS: tuple[str, ...] = ("multilevel", "mixedlm", "lme4")
