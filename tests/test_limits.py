"""Limits that hold: the memory estimate against the measured peak of a real fit, refusal of a
model larger than the memory available, and Ctrl-C during a parallel bootstrap keeping every
finished replicate and stopping promptly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import multilevel as ml
from multilevel.models import memory

# Fit a crossed model in a fresh interpreter and print the peak-RSS increase of the fit and our
# estimate, in bytes. Data: seed 1, n rows, two crossed random intercepts with q0 and q1 levels
# and a real effect of each (so the fit is not singular and converges quickly).
_MEASURE = """
import sys, warnings
from pathlib import Path
import numpy as np, pandas as pd
import multilevel as ml
from multilevel.models import memory


def rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


n, q0, q1, tiled_order = map(int, sys.argv[1:5])
# the tiled path (multilevel.linalg.tiled_cholesky) from this many levels of g1
import multilevel.linalg.blocked_cholesky as bc
import multilevel.models.lmm as lmm
bc.TILED_ORDER = memory.TILED_ORDER = lmm.TILED_ORDER = tiled_order
rng = np.random.default_rng(1)
g0 = rng.integers(0, q0, n)
g1 = rng.integers(0, q1, n)
x = rng.normal(size=n)
y = x + rng.normal(size=q0)[g0] + rng.normal(size=q1)[g1] + rng.normal(size=n)
df = pd.DataFrame({"y": y, "x": x, "g0": g0.astype(str), "g1": g1.astype(str)})
# The process's peak so far (imports, data) must not hide the fit's: reset the high-water mark
# to the current RSS (Linux: clear_refs 5), so VmHWM afterwards is the peak during the fit.
Path("/proc/self/clear_refs").write_text("5")
before = rss_kib("VmRSS")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = ml.lmer("y ~ x + (1 | g0) + (1 | g1)", df)
after = rss_kib("VmHWM")
m = fit.model
est = memory.estimate_fit_bytes(m.A, m.nobs, m.n_fixed + 1 + sum(b.k for b in m.blocks))
print((after - before) * 1024, est)
"""


@pytest.mark.parametrize(("n", "q0", "q1", "tiled_order"), [
    (10_000, 1_500, 1_000, 8192),   # the dense 1000 x 1000 blocks dominate (8 MB each)
    (100_000, 1_000, 100, 8192),    # the rows dominate
    (40_000, 3_000, 2_500, 2000),   # the tiles of g1's block and its cells' pattern
])
def test_memory_estimate_is_within_half_of_the_measured_peak(n, q0, q1, tiled_order):
    """The estimate must track what a fit really allocates (the old one counted only the
    dense factor, 3.5x too little): within a factor 1.5 of the peak-RSS increase."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(n), str(q0), str(q1),
                          str(tiled_order)],
                         capture_output=True, text=True, timeout=600, check=True)
    peak, estimate = map(int, out.stdout.split())
    assert peak > 20 * 2**20, (peak, estimate)  # the fit did allocate something measurable
    assert peak / 1.5 <= estimate <= peak * 1.5, (peak, estimate)


def test_model_larger_than_available_memory_is_refused(monkeypatch):
    """Penicillin's crossed plate x sample model needs about 43 KiB; with 16 KiB available it must
    be refused before fitting, naming the estimate, the memory available and the factor."""
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 2**14)
    df = ml.datasets.load("Penicillin")
    with pytest.raises(ml.errors.ModelTooLargeError) as info:
        ml.LinearMixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", df)
    msg = str(info.value)
    assert "KiB of memory" in msg and "16.0 KiB available on this machine" in msg
    assert "sample (6 random effects)" in msg
    assert "ml.lmer_moments" in msg  # random intercepts only: the O(N) method is named


def test_unknown_available_memory_falls_back_to_the_fixed_cap(monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)
    monkeypatch.setattr(memory, "MAX_DENSE_BYTES", 100)
    df = ml.datasets.load("Penicillin")
    with pytest.raises(ml.errors.ModelTooLargeError, match="could not be read"):
        ml.LinearMixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", df)


def test_a_model_that_fits_is_not_refused():
    df = ml.datasets.load("Penicillin")
    model = ml.LinearMixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", df)
    need = memory.estimate_fit_bytes(model.A, model.nobs, 3)
    available = memory.available_memory_bytes()
    assert available is None or 0 < need < available


def test_available_memory_is_read_on_linux():
    """The test machines run Linux: the reading must be /proc/meminfo's MemAvailable."""
    text = Path("/proc/meminfo").read_text()
    kib = int(next(line for line in text.splitlines()
                   if line.startswith("MemAvailable:")).split()[1])
    available = memory.available_memory_bytes()
    assert available is not None
    # both readings move with the other processes on the machine: within 25 %
    assert abs(available - kib * 1024) <= 0.25 * kib * 1024


_BOOTSTRAP = """
import multilevel as ml
fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
print("ready", flush=True)
res = ml.bootstrap(fit, n=5000, seed=1, n_jobs=2, progress=False)
print(len(res.replicates), res.interrupted, int(res.replicates.notna().all(axis=1).sum()),
      flush=True)
"""


def test_ctrl_c_during_a_parallel_bootstrap_keeps_every_finished_replicate():
    """SIGINT 2 s into a 2-worker bootstrap of sleepstudy: the run must stop within a few
    seconds, report itself interrupted and keep the replicates finished so far (each takes a
    few ms, so there are dozens at least; the old chunked runner kept none at 3 s)."""
    proc = subprocess.Popen([sys.executable, "-c", _BOOTSTRAP], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    rows, interrupted, complete = out.split()
    assert interrupted == "True"
    assert int(rows) > 0 and int(complete) == int(rows)
    assert elapsed < 5.0


def test_parallel_and_serial_replicates_agree_after_the_rewrite():
    """One replicate per task must not change which random stream a replicate uses."""
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    a = ml.bootstrap(fit, n=7, seed=11, n_jobs=1, progress=False)
    b = ml.bootstrap(fit, n=7, seed=11, n_jobs=2, progress=False)
    np.testing.assert_array_equal(a.replicates.to_numpy(), b.replicates.to_numpy())
