"""Parametric bootstrap: reproducibility, agreement with the Wald standard errors within
Monte-Carlo error, intervals, interruption."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import multilevel as ml

# the module (the package exports a function of the same name)
boot_module = importlib.import_module("multilevel.inference.bootstrap")


@pytest.fixture(scope="module")
def fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def boot(fit):
    return ml.bootstrap(fit, n=300, seed=2026, progress=False)


def test_replicate_table(fit, boot):
    assert boot.replicates.shape == (300, 6)
    assert list(boot.replicates.columns) == [*fit.sdcor.index, "(Intercept)", "Days"]
    assert not boot.interrupted and boot.n_failed == 0
    np.testing.assert_allclose(boot.estimate[["(Intercept)", "Days"]], fit.beta)


def test_same_seed_same_replicates_whatever_the_workers(fit):
    a = ml.bootstrap(fit, n=24, seed=5, n_jobs=1, progress=False)
    b = ml.bootstrap(fit, n=24, seed=5, n_jobs=2, progress=False)
    c = ml.bootstrap(fit, n=24, seed=6, n_jobs=1, progress=False)
    np.testing.assert_array_equal(a.replicates.to_numpy(), b.replicates.to_numpy())
    assert not np.array_equal(a.replicates.to_numpy(), c.replicates.to_numpy())


def test_fixed_effects_spread_matches_the_standard_errors(fit, boot):
    """The replicates' SD estimates the sampling SD; with 300 replicates its Monte-Carlo
    relative error is about 1/sqrt(600) = 4%, so 15% is a generous bound. Their mean is the
    estimate within 4 Monte-Carlo standard errors."""
    se = fit.coef_table(ddf=None)["std_error"]
    sd = boot.replicates[["(Intercept)", "Days"]].std()
    np.testing.assert_allclose(sd.to_numpy(), se.to_numpy(), rtol=0.15)
    mean = boot.replicates[["(Intercept)", "Days"]].mean()
    assert np.all(np.abs(mean - fit.beta) < 4 * sd / np.sqrt(300))


def test_intervals(boot):
    pct = boot.intervals(0.9)
    short = boot.intervals(0.9, kind="shortest")
    assert (pct["lower"] < pct["upper"]).all()
    assert ((short["upper"] - short["lower"]) <= (pct["upper"] - pct["lower"]) + 1e-9).all()
    x = boot.replicates["Days"]
    inside = ((x >= short.loc["Days", "lower"]) & (x <= short.loc["Days", "upper"])).mean()
    assert inside >= 0.9
    with pytest.raises(ml.errors.MultilevelError, match="kind"):
        boot.intervals(kind="bca")


def test_confint_boot(fit):
    ci = fit.confint(method="boot", n=60, seed=3, progress=False, n_jobs=1)
    assert list(ci.index) == [*fit.sdcor.index, "(Intercept)", "Days"]
    assert (ci["lower"] < ci["upper"]).all()
    assert ci.loc["Days", "lower"] < fit.fixef["Days"] < ci.loc["Days", "upper"]


def test_interrupt_returns_what_is_done(fit, monkeypatch):
    calls = {"n": 0}
    real = boot_module._replicate

    def stop_after_five(f, seed):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(f, seed)

    monkeypatch.setattr(boot_module, "_replicate", stop_after_five)
    res = ml.bootstrap(fit, n=50, seed=1, n_jobs=1, progress=False)
    assert res.interrupted and len(res.replicates) == 5


def test_bad_arguments(fit):
    with pytest.raises(ml.errors.MultilevelError):
        ml.bootstrap(fit, n=0)
    with pytest.raises(ml.errors.MultilevelError, match="wald"):
        fit.confint(method="bayes")


def test_text_and_html_reports(boot):
    text = str(boot)
    assert text.startswith("Parametric bootstrap") and "boot_sd" in text
    assert "sd_Days|Subject" in text
    page = boot._repr_html_()
    assert "<table" in page and "sd_Days|Subject" in page
