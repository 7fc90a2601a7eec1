"""Saved fits: ``fit.save(path)`` and ``ml.load(path, data=None)`` (issue 10, item 4).

Each kind is fitted once, saved and loaded; the loaded fit must answer the result methods with
the same numbers as the original (exactly, or to 1e-12 where a method iterates again, such as a
GLMM's penalized least squares) without fitting again, and saving it again must give the same
members. Tampered files, files of a future format, other data and missing files are refused
with SavedFitError. No R numbers are involved: the reference is the fit itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import SavedFitError
from multilevel.io.archive import FORMAT_VERSION, ArchiveReader, ArchiveWriter
from multilevel.io.frames import read_frame, write_frame

RTOL = 1e-12


def same(a: Any, b: Any, rtol: float = RTOL) -> None:
    """Equal values (numbers to ``rtol``), recursing into frames, arrays and containers."""
    if isinstance(a, pd.DataFrame | pd.Series):
        assert type(a) is type(b)
        pd.testing.assert_index_equal(a.index, b.index)
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_index_equal(a.columns, b.columns)
            for col in a.columns:
                same(a[col], b[col], rtol)
            return
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=rtol, atol=1e-300,
                                       equal_nan=True)
        else:
            pd.testing.assert_series_equal(a, b)
        return
    if isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300, equal_nan=True)
        return
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k], rtol)
        return
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y, rtol)
        return
    if isinstance(a, float):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300, equal_nan=True)
        return
    assert a == b


def round_trip(fit: Any, path: Path, **load_options: Any) -> Any:
    saved = fit.save(path)
    assert saved == path and path.exists()
    return ml.load(path, **load_options)


def members(path: Path) -> dict[str, Any]:
    """A saved file's manifest entries (checksums of every member)."""
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))["members"]


def assert_resaved_same(loaded: Any, first: Path, tmp_path: Path) -> None:
    again = loaded.save(tmp_path / "again.mlm")
    assert members(again) == members(first)


def check_mixed(fit: Any, loaded: Any, other: Any, rtol: float = RTOL,
                newdata: pd.DataFrame | None = None) -> None:
    """lmer / glmer: the vocabulary of MixedModelResult and the inference on top."""
    assert type(loaded) is type(fit)
    for name in ("fixef", "vcov", "varcorr", "sdcor", "ranef", "ranef_condvar", "theta",
                 "beta", "sigma", "loglik", "aic", "bic", "nobs", "ngroups", "n_dropped",
                 "is_singular", "converged"):
        same(getattr(fit, name), getattr(loaded, name), rtol)
    assert fit.optsum.to_dict() == loaded.optsum.to_dict()
    same(fit.fitted(), loaded.fitted(), rtol)
    same(fit.residuals(), loaded.residuals(), rtol)
    same(fit.coef_table(), loaded.coef_table(), rtol)
    same(fit.confint(), loaded.confint(), rtol)
    same(fit.predict(newdata), loaded.predict(newdata), rtol)
    same(fit.simulate(2, seed=3), loaded.simulate(2, seed=3), rtol)
    same(fit.tidy(), loaded.tidy(), rtol)
    same(fit.tidy(effects="ran_pars"), loaded.tidy(effects="ran_pars"), rtol)
    same(fit.model_matrix(newdata), loaded.model_matrix(newdata), rtol)
    assert str(fit.summary()) == str(loaded.summary())
    same(fit.to_dict(), loaded.to_dict(), rtol)
    same(ml.anova(other, fit), ml.anova(other, loaded), 1e-9)


# -- lmer ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sleepstudy() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def lmer_fit(sleepstudy: pd.DataFrame) -> Any:
    return ml.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)


def test_lmer_round_trip(lmer_fit: Any, sleepstudy: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "sleep.mlm"
    loaded = round_trip(lmer_fit, path)
    other = ml.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    new = sleepstudy.head(12).assign(Subject=["new"] * 6 + list(sleepstudy.Subject[:6]))
    check_mixed(lmer_fit, loaded, other)
    same(lmer_fit.predict(new, allow_new_levels=True),
         loaded.predict(new, allow_new_levels=True))
    same(lmer_fit.predict(new, re_form="NA"), loaded.predict(new, re_form="NA"))
    for ddf in ("satterthwaite", "kenward-roger", None):
        same(lmer_fit.coef_table(ddf=ddf), loaded.coef_table(ddf=ddf))
    same(ml.bootstrap(lmer_fit, n=4, seed=2, progress=False).replicates,
         ml.bootstrap(loaded, n=4, seed=2, progress=False).replicates, 1e-9)
    same(lmer_fit.tidy(effects="ran_vals"), loaded.tidy(effects="ran_vals"))
    assert_resaved_same(loaded, path, tmp_path)


@pytest.mark.slow
def test_lmer_profile_after_loading(lmer_fit: Any, tmp_path: Path) -> None:
    # profiles refit the loaded model along each parameter (about 5 s a profile here)
    loaded = round_trip(lmer_fit, tmp_path / "sleep.mlm")
    same(lmer_fit.profile(n=4), loaded.profile(n=4), 1e-9)
    same(lmer_fit.confint(method="profile"), loaded.confint(method="profile"), 1e-9)


def test_lmer_ml_weights_offset(sleepstudy: pd.DataFrame, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = sleepstudy.assign(w=rng.uniform(0.5, 2.0, len(sleepstudy)),
                             off=rng.normal(0, 5, len(sleepstudy)))
    # one missing value: the row is dropped by the fit, and by the loaded fit the same way
    data.loc[7, "Reaction"] = np.nan
    with pytest.warns(ml.errors.MissingDataWarning, match="1 row"):
        fit = ml.lmer("Reaction ~ Days + (1 | Subject)", data, reml=False, weights="w",
                      offset=data["off"].to_numpy())
    loaded = round_trip(fit, tmp_path / "w.mlm")
    assert loaded.n_dropped == 1 and not loaded.reml
    with pytest.warns(ml.errors.MissingDataWarning):
        other = ml.lmer("Reaction ~ 1 + (1 | Subject)", data, reml=False, weights="w",
                        offset=data["off"].to_numpy())
    check_mixed(fit, loaded, other)
    assert_resaved_same(loaded, tmp_path / "w.mlm", tmp_path)


# -- glmer --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return ml.datasets.load("cbpp")


@pytest.mark.parametrize("nagq", [1, 5])
def test_glmer_binomial_round_trip(cbpp: pd.DataFrame, nagq: int, tmp_path: Path) -> None:
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    fit = ml.glmer(formula, cbpp, family="binomial", nagq=nagq)
    loaded = round_trip(fit, tmp_path / "cbpp.mlm")
    assert loaded.nagq == nagq and loaded.family == fit.family
    other = ml.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp,
                     family="binomial", nagq=nagq)
    # the conditional modes are solved again by PIRLS at the stored parameters: equal to
    # its convergence, ~1e-13 here
    check_mixed(fit, loaded, other, rtol=1e-9)
    same(fit.fitted(type="response"), loaded.fitted(type="response"), 1e-9)
    same(fit.predict(cbpp.head(6), type="response"),
         loaded.predict(cbpp.head(6), type="response"), 1e-9)
    assert_resaved_same(loaded, tmp_path / "cbpp.mlm", tmp_path)


def test_glmer_poisson_offset(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(15), 8)
    exposure = rng.uniform(1, 4, g.size)
    x = rng.normal(size=g.size)
    mu = exposure * np.exp(0.3 + 0.5 * x + rng.normal(0, 0.5, 15)[g])
    data = pd.DataFrame({"y": rng.poisson(mu), "x": x, "g": [f"g{i}" for i in g],
                         "exposure": exposure})
    fit = ml.glmer("y ~ x + offset(log(exposure)) + (1 | g)", data, family="poisson")
    loaded = round_trip(fit, tmp_path / "pois.mlm")
    other = ml.glmer("y ~ 1 + offset(log(exposure)) + (1 | g)", data, family="poisson")
    check_mixed(fit, loaded, other, rtol=1e-9, newdata=data.head(5))


# -- lme, gls, nlme -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def orthodont() -> pd.DataFrame:
    return ml.datasets.load("Orthodont")


def check_nlme_kind(fit: Any, loaded: Any, rtol: float = RTOL) -> None:
    """The nlme vocabulary shared by lme, gls and nlme fits."""
    assert type(loaded) is type(fit)
    for name in ("fixef", "vcov", "sigma", "loglik", "aic", "bic", "variance_parameters",
                 "correlation_parameters"):
        same(getattr(fit, name), getattr(loaded, name), rtol)
    same(fit.fitted(), loaded.fitted(), rtol)
    for kind in ("response", "pearson", "normalized"):
        same(fit.residuals(type=kind), loaded.residuals(type=kind), rtol)
    same(fit.predict(), loaded.predict(), rtol)
    same(fit.simulate(2, seed=5), loaded.simulate(2, seed=5), rtol)
    same(fit.intervals(), loaded.intervals(), rtol)
    assert str(fit.summary()) == str(loaded.summary())
    same(fit.tidy(), loaded.tidy(), rtol)


def test_lme_varident_ar1(orthodont: pd.DataFrame, tmp_path: Path) -> None:
    fit = ml.lme("distance ~ age + Sex", orthodont, random="~ 1 | Subject",
                 weights=ml.VarIdent(form="~ 1 | Sex"), correlation=ml.CorAR1())
    loaded = round_trip(fit, tmp_path / "lme.mlm")
    check_nlme_kind(fit, loaded)
    for name in ("ranef", "varcorr", "deviance", "psi"):
        same(getattr(fit, name), getattr(loaded, name))
    same(fit.predict(orthodont.head(8), level=[0, 1]), loaded.predict(orthodont.head(8),
                                                                      level=[0, 1]))
    same(fit.fit.optsum.to_dict(), loaded.fit.optsum.to_dict())
    smaller = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject",
                     weights=ml.VarIdent(form="~ 1 | Sex"), correlation=ml.CorAR1(),
                     method="ML")
    ml_fit = ml.lme("distance ~ age + Sex", orthodont, random="~ 1 | Subject",
                    weights=ml.VarIdent(form="~ 1 | Sex"), correlation=ml.CorAR1(),
                    method="ML")
    ml_loaded = round_trip(ml_fit, tmp_path / "lme_ml.mlm")
    same(ml.anova(smaller, ml_fit), ml.anova(smaller, ml_loaded))
    assert_resaved_same(loaded, tmp_path / "lme.mlm", tmp_path)


def test_gls_fitted_variance(orthodont: pd.DataFrame, tmp_path: Path) -> None:
    # VarPower() of the fitted values: the loaded fit reads the fitted values it was fitted at
    fit = ml.gls("distance ~ age + Sex", orthodont, weights=ml.VarPower(),
                 correlation=ml.CorAR1(form="~ 1 | Subject"))
    loaded = round_trip(fit, tmp_path / "gls.mlm")
    check_nlme_kind(fit, loaded)
    same(fit.predict(orthodont.head(5)), loaded.predict(orthodont.head(5)))
    same(fit.bootstrap(n=3, seed=1, progress=False).replicates,
         loaded.bootstrap(n=3, seed=1, progress=False).replicates, 1e-9)
    assert_resaved_same(loaded, tmp_path / "gls.mlm", tmp_path)


def test_nlme_orange(tmp_path: Path) -> None:
    orange = ml.datasets.load("Orange")
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", orange,
                  fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree")
    loaded = round_trip(fit, tmp_path / "orange.mlm")
    check_nlme_kind(fit, loaded)
    same(fit.ranef, loaded.ranef)
    same(fit.deviance, loaded.deviance)
    same(fit.fitted(level=0), loaded.fitted(level=0))
    same(fit.predict(orange.head(4), level=[0, 1]), loaded.predict(orange.head(4),
                                                                   level=[0, 1]))
    assert loaded.iterations == fit.iterations
    assert_resaved_same(loaded, tmp_path / "orange.mlm", tmp_path)
    # a PdDiag random part with groups=, a fitted-value variance function and AR(1) errors
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", orange,
                  random=ml.PdDiag("Asym + xmid ~ 1"), groups="~ Tree", weights=ml.VarPower(),
                  correlation=ml.CorAR1())
    loaded = round_trip(fit, tmp_path / "orange2.mlm")
    check_nlme_kind(fit, loaded)
    same(fit.ranef, loaded.ranef)
    assert loaded.call["random"] == fit.call["random"]


# -- Bayesian -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bayes_fit(sleepstudy: pd.DataFrame) -> Any:
    pytest.importorskip("jax", reason="the bayes extra is not installed")
    with pytest.warns(ml.errors.MultilevelWarning):  # short chains: diagnostics warn
        return ml.bayes("Reaction ~ Days + (1 | Subject)", sleepstudy, chains=2, draws=100,
                        warmup=100, progress=False,
                        priors=ml.prior("normal(0, 50)", class_="b"))


def test_bayes_round_trip(bayes_fit: Any, sleepstudy: pd.DataFrame, tmp_path: Path) -> None:
    loaded = round_trip(bayes_fit, tmp_path / "bayes.mlm")
    assert type(loaded) is type(bayes_fit)
    for name in ("fixef", "varcorr", "ranef"):
        same(getattr(bayes_fit, name), getattr(loaded, name))
    same(bayes_fit.coef_table(), loaded.coef_table())
    same(bayes_fit.posterior_summary(), loaded.posterior_summary())
    same(bayes_fit.draws("b_Days"), loaded.draws("b_Days"))
    same(bayes_fit.predict(sleepstudy.head(6)), loaded.predict(sleepstudy.head(6)))
    same(bayes_fit.tidy(), loaded.tidy())
    assert str(bayes_fit.summary()) == str(loaded.summary())
    assert [p.source for p in loaded.priors] == [p.source for p in bayes_fit.priors]
    assert loaded.settings == bayes_fit.settings
    for group in ("posterior", "sample_stats", "log_likelihood"):
        a, b = bayes_fit.posterior[group], loaded.posterior[group]
        for var in a.data_vars:
            same(np.asarray(a[var].values), np.asarray(b[var].values))
    assert_resaved_same(loaded, tmp_path / "bayes.mlm", tmp_path)
    with pytest.raises(SavedFitError, match="data or the multilevel version differ"):
        ml.load(tmp_path / "bayes.mlm", data=sleepstudy.assign(Reaction=sleepstudy.Reaction + 1))


@pytest.mark.slow
def test_bayes_nlme_round_trip(tmp_path: Path) -> None:
    """ml.bayes_nlme: the expression and each parameter's formula are stored; a model calling
    Python functions cannot be saved (a saved fit stores no code)."""
    pytest.importorskip("jax", reason="the bayes extra is not installed")
    orange = ml.datasets.load("Orange")
    priors = [ml.prior("normal(200, 50)", nlpar="Asym"),
              ml.prior("normal(700, 200)", nlpar="xmid"),
              ml.prior("normal(350, 100)", nlpar="scal")]
    with pytest.warns(ml.errors.MultilevelWarning):  # short chains: diagnostics warn
        fit = ml.bayes_nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", orange,
                            params={"Asym": "1 + (1 | Tree)"}, priors=priors, chains=2,
                            draws=100, warmup=100, progress=False)
    loaded = round_trip(fit, tmp_path / "nlme.mlm")
    same(fit.fixef, loaded.fixef)
    same(fit.coef_table(), loaded.coef_table())
    same(fit.predict(orange.head(5)), loaded.predict(orange.head(5)))
    assert str(fit.summary()) == str(loaded.summary())
    with pytest.raises(SavedFitError, match="data or the multilevel version differ"):
        ml.load(tmp_path / "nlme.mlm", data=orange.assign(circumference=orange.circumference + 1))
    import jax.numpy as jnp

    def logistic(x: Any, a: Any, m: Any, s: Any) -> Any:
        return a / (1 + jnp.exp((m - x) / s))

    with pytest.warns(ml.errors.MultilevelWarning):
        own = ml.bayes_nlme("circumference ~ logistic(age, Asym, xmid, scal)", orange,
                            params={"Asym": "1 + (1 | Tree)", "xmid": "1", "scal": "1"},
                            priors=priors, chains=2, draws=50, warmup=50, progress=False,
                            functions={"logistic": logistic})
    with pytest.raises(SavedFitError, match="logistic"):
        own.save(tmp_path / "own.mlm")


# -- data given to load -------------------------------------------------------------------------
def test_data_given_equal_is_accepted(lmer_fit: Any, sleepstudy: pd.DataFrame,
                                      tmp_path: Path) -> None:
    path = lmer_fit.save(tmp_path / "a.mlm")
    loaded = ml.load(path, data=sleepstudy.copy())
    same(lmer_fit.fixef, loaded.fixef)
    assert loaded.model.data is not None
    # more columns than the model uses are fine
    loaded = ml.load(path, data=sleepstudy.assign(extra=1.0))
    same(lmer_fit.ranef, loaded.ranef)


def test_changed_data_is_refused(lmer_fit: Any, sleepstudy: pd.DataFrame,
                                 tmp_path: Path) -> None:
    path = lmer_fit.save(tmp_path / "a.mlm")
    changed = sleepstudy.copy()
    changed.loc[3, "Reaction"] += 1.0
    with pytest.raises(SavedFitError, match="the data or the multilevel version differ"):
        ml.load(path, data=changed)
    with pytest.raises(SavedFitError, match="the data or the multilevel version differ"):
        ml.load(path, data=sleepstudy.iloc[:-10])


# -- damaged, foreign and future files ----------------------------------------------------------
def rewrite(path: Path, out: Path, change: dict[str, bytes]) -> Path:
    """A copy of the zip at ``path`` with some members' bytes replaced."""
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, change.get(item.filename, zin.read(item.filename)))
    return out


def test_tampered_member_is_refused(lmer_fit: Any, tmp_path: Path) -> None:
    path = lmer_fit.save(tmp_path / "a.mlm")
    with zipfile.ZipFile(path) as zf:
        call = json.loads(zf.read("call.json"))
    call["reml"] = False
    for text in (json.dumps(call), json.dumps(call, indent=8)):  # shorter, longer
        bad = rewrite(path, tmp_path / "bad.mlm", {"call.json": text.encode()})
        with pytest.raises(SavedFitError, match="'call.json' .*checksum"):
            ml.load(bad)
    with zipfile.ZipFile(path) as zf:
        theta = bytearray(zf.read("estimates/theta.npy"))
    theta[-1] ^= 1  # one bit of one estimate, same size
    bad = rewrite(path, tmp_path / "bad.mlm", {"estimates/theta.npy": bytes(theta)})
    with pytest.raises(SavedFitError, match="'estimates/theta.npy' .*checksum"):
        ml.load(bad)


def test_future_format_is_refused(lmer_fit: Any, tmp_path: Path) -> None:
    path = lmer_fit.save(tmp_path / "a.mlm")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest["multilevel_version"] = "9.0"
    future = rewrite(path, tmp_path / "future.mlm",
                     {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(SavedFitError, match=rf"written by multilevel 9.0 \(format "
                       rf"{FORMAT_VERSION + 1}\).*reads format <= {FORMAT_VERSION}: upgrade"):
        ml.load(future)


def test_unsafe_member_name_is_refused(lmer_fit: Any, tmp_path: Path) -> None:
    path = lmer_fit.save(tmp_path / "a.mlm")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["../evil.json"] = {"sha256": "0" * 64, "bytes": 2}
    bad = rewrite(path, tmp_path / "evil.mlm", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(SavedFitError, match="not a plain relative path"):
        ml.load(bad)


def test_not_a_saved_fit(tmp_path: Path) -> None:
    with pytest.raises(SavedFitError, match="does not exist"):
        ml.load(tmp_path / "missing.mlm")
    text = tmp_path / "text.mlm"
    text.write_text("hello")
    with pytest.raises(SavedFitError, match="not a zip archive"):
        ml.load(text)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(SavedFitError, match="no manifest.json"):
        ml.load(other)
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "something-else"}))
    with pytest.raises(SavedFitError, match="format is 'something-else'"):
        ml.load(other)


def test_no_pickle_in_arrays(lmer_fit: Any, tmp_path: Path) -> None:
    # an object array (which np.load could only read with pickle) is refused on reading
    path = lmer_fit.save(tmp_path / "a.mlm")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = buf.getvalue()
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["estimates/theta.npy"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                  "bytes": len(data)}
    bad = rewrite(path, tmp_path / "pickled.mlm",
                  {"estimates/theta.npy": data,
                   "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(SavedFitError, match="estimates/theta.npy"):
        ml.load(bad)


def test_stored_data_keeps_dtypes_and_levels(tmp_path: Path) -> None:
    # an ordered factor with an unused level, a nullable integer, text and the row labels
    rng = np.random.default_rng(3)
    n = 60
    data = pd.DataFrame({
        "y": rng.normal(size=n),
        "dose": pd.Categorical(rng.choice(["lo", "mid", "hi"], n),
                               categories=["lo", "mid", "hi", "none"], ordered=True),
        "g": rng.choice([f"s{i}" for i in range(8)], n),
        "count": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "unused": "x",
    }, index=pd.Index([f"r{i}" for i in range(n)], name="row"))
    fit = ml.lmer("y ~ count + (1 | g)", data)
    path = fit.save(tmp_path / "d.mlm")
    loaded = ml.load(path)
    assert list(loaded.model.data.columns) == ["y", "g", "count"]
    pd.testing.assert_frame_equal(loaded.model.data, data[["y", "g", "count"]])
    data = data.assign(
        when=pd.date_range("2020-01-01", periods=n, freq="h"),
        when_tz=pd.date_range("2020-01-01", periods=n, freq="D", tz="Europe/Berlin"),
        label=pd.array([f"x{i}" if i % 7 else None for i in range(n)], dtype="string"),
        flag=rng.random(n) > 0.5,
        mixed=np.array([None if i % 9 == 0 else f"m{i % 3}" for i in range(n)], dtype=object),
        codes=pd.Categorical(rng.integers(0, 3, n), categories=[2, 0, 1]))
    w = ArchiveWriter("frame")
    write_frame(w, "data", data)
    w.write(tmp_path / "frame.zip")
    with ArchiveReader(tmp_path / "frame.zip") as r:
        pd.testing.assert_frame_equal(read_frame(r, "data"), data)


def test_negative_binomial_size_and_nagq0(tmp_path: Path) -> None:
    # the family's own parameter (the size, estimated) and the nAGQ = 0 fit (beta from PIRLS)
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=g.size)
    mu = np.exp(1 + 0.4 * x + rng.normal(0, 0.4, 12)[g])
    data = pd.DataFrame({"y": rng.negative_binomial(3, 3 / (3 + mu)), "x": x,
                         "g": g.astype(str)})
    fit = ml.glmer("y ~ x + (1 | g)", data, family="negative_binomial")
    loaded = round_trip(fit, tmp_path / "nb.mlm")
    assert loaded.nb_size == fit.nb_size
    same(fit.fixef, loaded.fixef, 1e-9)
    same(fit.loglik, loaded.loglik, 1e-9)
    fast = ml.glmer("y ~ x + (1 | g)", data, family="poisson", nagq=0)
    loaded = round_trip(fast, tmp_path / "nagq0.mlm")
    assert loaded.nagq == 0
    same(fast.fixef, loaded.fixef, 1e-9)
    assert str(fast.summary()) == str(loaded.summary())


def test_changed_data_refused_for_nlme_kinds(orthodont: pd.DataFrame, tmp_path: Path) -> None:
    fit = ml.gls("distance ~ age + Sex", orthodont, weights=ml.VarIdent(form="~ 1 | Sex"))
    path = fit.save(tmp_path / "gls.mlm")
    same(fit.fixef, ml.load(path, data=orthodont).fixef)
    changed = orthodont.assign(distance=orthodont.distance * 1.01)
    with pytest.raises(SavedFitError, match="data or the multilevel version differ"):
        ml.load(path, data=changed)
    fit = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject")
    path = fit.save(tmp_path / "lme.mlm")
    same(fit.fixef, ml.load(path, data=orthodont).fixef)
    with pytest.raises(SavedFitError, match="data or the multilevel version differ"):
        ml.load(path, data=changed)


def test_malformed_member_with_valid_checksum(lmer_fit: Any, tmp_path: Path) -> None:
    # a file whose manifest was rewritten to match: still only a typed error, never code
    path = lmer_fit.save(tmp_path / "a.mlm")
    data = b'{"formula": 3}'
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["call.json"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                        "bytes": len(data)}
    bad = rewrite(path, tmp_path / "forged.mlm",
                  {"call.json": data, "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(SavedFitError, match="damaged"):
        ml.load(bad)


def test_bayes_without_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kind is read from the manifest before any Bayesian code: a missing extra is named
    import multilevel.bayesian as bayesian
    from multilevel.errors import MissingExtraError

    w = ArchiveWriter("bayes")
    w.add_json("call.json", {})
    path = w.write(tmp_path / "b.mlm")

    def missing() -> None:
        raise MissingExtraError('Bayesian fits need jax: run pip install "multilevel[bayes]"')

    monkeypatch.setattr(bayesian, "require", missing)
    with pytest.raises(MissingExtraError, match="multilevel\\[bayes\\]"):
        ml.load(path)


def test_unsaveable_fits_say_why(orthodont: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(SavedFitError, match="cannot save a DataFrame"):
        ml.io.save(orthodont, tmp_path / "x.mlm")
    with pytest.raises(ml.errors.ArgumentError, match="path must be a file path"):
        ml.load(3)


def test_damaged_bytes_give_saved_fit_error(lmer_fit: Any, tmp_path: Path) -> None:
    # bytes overwritten anywhere in the file (headers, compressed streams, the directory):
    # a SavedFitError, never another exception -- or, where the damage misses everything
    # read, the same fit
    path = lmer_fit.save(tmp_path / "a.mlm")
    raw = path.read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(raw), size=40, replace=False):
        damaged = bytearray(raw)
        damaged[pos:pos + 4] = b"\xff\x00\xaa\x55"[: len(damaged) - pos]
        bad = tmp_path / "damaged.mlm"
        bad.write_bytes(bytes(damaged))
        try:
            loaded = ml.load(bad)
        except SavedFitError:
            continue
        same(lmer_fit.fixef, loaded.fixef)


# -- the loaded model, and the model layer's fits at given parameters ---------------------------
def test_loaded_model_is_the_public_class(lmer_fit: Any, cbpp: pd.DataFrame,
                                          tmp_path: Path) -> None:
    # ml.load rebuilds the model as multilevel.api's class (registered in
    # results.base.MODEL_CLASSES), so that .fit() on it fits again and gives the same fit
    loaded = round_trip(lmer_fit, tmp_path / "sleep.mlm")
    assert type(loaded.model) is ml.LinearMixedModel
    refit = loaded.model.fit()
    for name in ("theta", "fixef", "sigma", "loglik", "vcov"):
        same(getattr(lmer_fit, name), getattr(refit, name), 1e-9)
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                   family="binomial")
    loaded = round_trip(fit, tmp_path / "cbpp.mlm")
    assert type(loaded.model) is ml.GeneralizedLinearMixedModel
    refit = loaded.model.fit()
    for name in ("theta", "fixef", "loglik"):
        same(getattr(fit, name), getattr(refit, name), 1e-9)


def test_fits_at_given_parameters(orthodont: pd.DataFrame) -> None:
    # the model layer's one way to build a fit without optimizing (what ml.load uses):
    # at the fitted parameters it gives the fit back
    from multilevel.models.gls import gls_setup
    from multilevel.models.lme import lme_setup

    weights, correlation = ml.VarIdent(form="~ 1 | Sex"), ml.CorAR1()
    fit = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject", weights=weights,
                 correlation=correlation)
    setup = lme_setup("distance ~ age", orthodont, "~ 1 | Subject", weights, correlation)
    at = setup.fit_at(fit.fit.theta, fit.psi, fit.fit.optsum)
    # the optimum's criterion as the optimizer recorded it, and evaluated again
    same(fit.deviance, at.deviance, 1e-12)
    same(fit.variance_parameters, at.variance_parameters)
    with pytest.raises(ml.errors.ArgumentError, match="psi has 1 values"):
        setup.fit_at(fit.fit.theta, fit.psi[:1], fit.fit.optsum)
    with pytest.raises(ml.errors.ArgumentError, match="theta has 2 values"):
        setup.fit_at(np.r_[fit.fit.theta, 1.0], fit.psi, fit.fit.optsum)
    fit = ml.gls("distance ~ age + Sex", orthodont, weights=weights)
    setup = gls_setup("distance ~ age + Sex", orthodont, weights)
    at = setup.fit_at(fit.psi, fit.optsum)
    assert at.loglik == fit.loglik
    same(fit.fixef, at.fixef)
    same(fit.vcov, at.vcov)


def test_stored_parameters_of_another_shape_are_refused(orthodont: pd.DataFrame,
                                                        tmp_path: Path) -> None:
    fit = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject")
    path = fit.save(tmp_path / "lme.mlm")
    buf = io.BytesIO()
    np.save(buf, np.r_[fit.fit.theta, 0.5], allow_pickle=False)
    data = buf.getvalue()
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["estimates/theta.npy"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                  "bytes": len(data)}
    bad = rewrite(path, tmp_path / "forged.mlm", {"estimates/theta.npy": data,
                                                  "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(SavedFitError, match="theta has 2 values.*version differ"):
        ml.load(bad)


def test_io_reads_no_private_names_of_other_modules() -> None:
    # STYLE.md: modules use each other's public names; io's own objects may use their own
    import ast

    import multilevel.io

    for path in Path(multilevel.io.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                assert isinstance(node.value, ast.Name) and node.value.id == "self", \
                    f"{path.name}:{node.lineno} reads {node.attr}"
            if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith(
                    "multilevel.io"):
                private = [a.name for a in node.names if a.name.startswith("_")
                           and not a.name.startswith("__")]
                assert not private, f"{path.name}:{node.lineno} imports {private}"


def test_data_lacking_a_column_is_refused(lmer_fit: Any, sleepstudy: pd.DataFrame,
                                          orthodont: pd.DataFrame, tmp_path: Path) -> None:
    # the rebuilt model's own check of data=, as a SavedFitError naming the column
    path = lmer_fit.save(tmp_path / "a.mlm")
    with pytest.raises(SavedFitError, match="rebuilt on the data given to load: .*'Days'"):
        ml.load(path, data=sleepstudy.drop(columns="Days"))
    fit = ml.gls("distance ~ age", orthodont, weights=ml.VarIdent(form="~ 1 | Sex"))
    path = fit.save(tmp_path / "gls.mlm")
    with pytest.raises(SavedFitError, match="rebuilt on the data given to load: .*'Sex'"):
        ml.load(path, data=orthodont.drop(columns="Sex"))
