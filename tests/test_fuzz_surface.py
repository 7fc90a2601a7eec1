"""Fuzzing the entry points added with issues 10 and 11: ``ml.emmeans`` / ``.contrast``,
``ml.slopes``, ``ml.predictions``, ``ml.table``, ``fit.tidy``, ``fit.save`` / ``ml.load``,
``ml.lmer_moments`` and ``multilevel report``. Whatever a user passes, the answer is a result
or a ``multilevel.errors`` exception that is not the InternalError net (an unexpected
exception reaching the API boundary), and never a bare built-in exception.

Hypothesis, derandomized (CI sees the same examples every run), small ``max_examples``; the
fits are made once per module. The regression tests at the end pin the bugs this fuzzing found.
"""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml
from multilevel.cli.main import main
from multilevel.errors import (
    ArgumentError,
    ColumnNotFoundError,
    DataError,
    InternalError,
    MultilevelError,
    SavedFitError,
)

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

ORTHODONT = ml.datasets.load("Orthodont")
CBPP = ml.datasets.load("cbpp")


@functools.cache
def fits() -> dict[str, Any]:
    """One fit of each kind the new entry points take (each a few hundred ms)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "lmer": ml.lmer("distance ~ age * Sex + (1 | Subject)", ORTHODONT),
            "glmer": ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                              CBPP, family="binomial"),
            "lme": ml.lme("distance ~ age + Sex", ORTHODONT, random="~ 1 | Subject"),
            "gls": ml.gls("distance ~ age + Sex", ORTHODONT),
        }


def answers(call: Callable[[], Any]) -> Any:
    """The call's result, or None when it raised a named multilevel error; any other
    exception (the InternalError net included) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except InternalError as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"unexpected exception reached the API: {exc}")
        except MultilevelError:
            return None
        except (KeyboardInterrupt, SystemExit):  # pragma: no cover
            raise
        except Exception as exc:  # pragma: no cover - escaped the API altogether
            pytest.fail(f"{type(exc).__name__} escaped the public API: {exc}")


NAMES = st.sampled_from(["Sex", "age", "Subject", "period", "herd", "size", "distance",
                         "nope", "", " ", "Sex:age", "(Intercept)", "estimate"])
TEXTS = st.one_of(NAMES, st.text(max_size=12),
                  st.sampled_from(["~ Sex", "pairwise ~ Sex", "pairwise ~ period", "~",
                                   "~ Sex | age", "consec ~ period", "x ~ Sex", "~ | Sex",
                                   "tukey", "holm", "none", "mvt", "link", "response",
                                   "equal", "proportional", "outer", "cells", "flat",
                                   "satterthwaite", "kenward-roger", "NA", "~0",
                                   "~ (1 | Subject)", "~ (1 | herd)", "fixed", "ran_pars",
                                   "ran_vals", "auto"]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 12),
                    st.floats(allow_nan=True, allow_infinity=True), TEXTS, st.binary(max_size=3))
ODD = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.tuples(TEXTS),
    st.dictionaries(NAMES, st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=2),
    st.builds(lambda v: pd.Series(v, dtype=object), st.lists(SCALARS, min_size=1, max_size=3)),
    st.builds(lambda v: np.array(v, dtype=object), st.lists(SCALARS, max_size=3)))
KINDS = st.sampled_from(["lmer", "glmer", "lme", "gls"])
FACTOR = {"lmer": "Sex", "glmer": "period", "lme": "Sex", "gls": "Sex"}
COVARIATE = {"lmer": "age", "glmer": "size", "lme": "age", "gls": "age"}


# -- marginal means, contrasts, slopes ---------------------------------------------------------

@FUZZ
@given(KINDS, st.one_of(ODD, NAMES), ODD, ODD, ODD, ODD, ODD)
def test_emmeans_answers_any_argument(kind: str, specs: Any, by: Any, at: Any, weights: Any,
                                      type_: Any, level: Any) -> None:
    fit = fits()[kind]
    answers(lambda: str(ml.emmeans(fit, specs, by=by)))
    answers(lambda: ml.emmeans(fit, FACTOR[kind], at=at))
    answers(lambda: ml.emmeans(fit, FACTOR[kind], weights=weights, type=type_, level=level))
    answers(lambda: ml.emmeans(fit, f"pairwise ~ {FACTOR[kind]}", adjust=type_))
    answers(lambda: ml.emmeans(fit, specs, by=by, at=at, weights=weights, type=type_))


@FUZZ
@given(KINDS, ODD, ODD, ODD, ODD)
def test_contrast_and_lookup_answer_any_argument(kind: str, method: Any, adjust: Any, by: Any,
                                                 key: Any) -> None:
    means = answers(lambda: ml.emmeans(fits()[kind], FACTOR[kind]))
    assert means is not None  # the plain call is a result
    pairs = answers(lambda: means.contrast(method))
    answers(lambda: means.contrast("pairwise", adjust=adjust, by=by, level=method))
    answers(lambda: means[key])
    answers(lambda: means.contrast("pairwise")[key])
    if pairs is not None:
        answers(lambda: (str(pairs), pairs._repr_html_(), len(pairs)))


@FUZZ
@given(KINDS, st.one_of(ODD, NAMES), ODD, ODD, ODD)
def test_slopes_answer_any_argument(kind: str, var: Any, by: Any, at: Any,
                                    weights: Any) -> None:
    fit = fits()[kind]
    answers(lambda: ml.slopes(fit, var))
    answers(lambda: str(ml.slopes(fit, COVARIATE[kind], by=by, at=at, weights=weights)))


# -- predictions on odd new data ---------------------------------------------------------------

COLUMN_VALUES = st.one_of(
    st.just(np.nan), st.just(None), st.just("x"), st.just(True), st.just(np.inf),
    st.just("ZZ"), st.just(pd.NaT), st.integers(-5, 30), st.floats(allow_nan=True),
    st.just([1, "a", None]), st.just(pd.Categorical(["Male", "Female", "Other"])))


@st.composite
def newdata(draw: st.DrawFn, base: pd.DataFrame) -> Any:
    """``base``'s first three rows with columns dropped, replaced by odd values, duplicated,
    emptied, or given as a dict of columns or scalars."""
    frame = base.head(3).copy()
    for col in draw(st.lists(st.sampled_from(list(frame.columns)), max_size=2, unique=True)):
        frame = frame.drop(columns=col)
    for col in draw(st.lists(st.sampled_from(list(frame.columns) or ["extra"]), max_size=2)):
        frame[col] = draw(COLUMN_VALUES)
    shape = draw(st.sampled_from(["frame", "empty", "dict", "scalars", "duplicated",
                                  "unequal"]))
    if shape == "empty":
        return frame.iloc[:0]
    if shape == "dict":
        return {c: list(frame[c]) for c in frame.columns}
    if shape == "scalars":
        return {c: frame[c].iloc[0] for c in frame.columns}
    if shape == "duplicated":
        return pd.concat([frame, frame], axis=1)
    if shape == "unequal":
        return {c: list(frame[c])[: i + 1] for i, c in enumerate(frame.columns)}
    return frame


@FUZZ
@given(KINDS, st.data(), ODD, ODD, ODD)
def test_predictions_answer_any_newdata(kind: str, data: st.DataObject, level: Any,
                                        scale: Any, re_form: Any) -> None:
    fit = fits()[kind]
    base = CBPP if kind == "glmer" else ORTHODONT
    nd = data.draw(newdata(base))
    for rf in ("NA", None):
        out = answers(lambda rf=rf: ml.predictions(fit, nd, re_form=rf))
        if out is not None:  # a result: one row per new row, finite where the input is
            assert len(out) == len(pd.DataFrame(nd))
    answers(lambda: ml.predictions(fit, base.head(3), level=level, scale=scale,
                                   re_form=re_form))
    answers(lambda: ml.predictions(fit, level))


# -- tables and tidy ---------------------------------------------------------------------------

@FUZZ
@given(st.lists(KINDS, min_size=1, max_size=2), ODD, ODD, ODD, ODD, ODD, ODD)
def test_table_and_tidy_answer_any_argument(kinds: list[str], names: Any, stats: Any, ci: Any,
                                            digits: Any, ddf: Any, effects: Any) -> None:
    models = [fits()[k] for k in kinds]
    answers(lambda: ml.table(models, names=names, stats=stats).to_text())
    answers(lambda: ml.table(models, ci=ci, digits=digits, conf_level=ddf).to_markdown())
    answers(lambda: ml.table(models, ddf=ddf, stars=ci, random=digits).to_latex())
    answers(lambda: ml.table(names))
    answers(lambda: ml.table(dict(zip(["a", "b"], models, strict=False)) if ci is True else models,
                             names=names).to_frame(numeric=True))
    answers(lambda: models[0].tidy(effects=effects))
    answers(lambda: models[0].tidy(effects=["fixed", effects], conf_level=digits))


# -- saved fits: damaged files are SavedFitError -------------------------------------------------

@functools.cache
def saved(kind: str, folder: str) -> bytes:
    path = Path(folder) / f"{kind}.mlfit"
    fits()[kind].save(path)
    return path.read_bytes()


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` truncated, with bytes flipped, replaced by junk, or a zip of other members."""
    how = draw(st.sampled_from(["truncate", "flip", "junk", "zip", "empty"]))
    if how == "truncate":
        return raw[:draw(st.integers(0, len(raw) - 1))]
    if how == "flip":
        out = bytearray(raw)
        for i in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=3)):
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "junk":
        return draw(st.binary(max_size=64))
    if how == "empty":
        return b""
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = draw(st.sampled_from(sorted(members)))
    members[name] = draw(st.sampled_from([b"", b"{", b"[]", b'{"format": "multilevel-fit"}',
                                          members[name][:-1]]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


@FUZZ
@given(KINDS, st.data())
def test_load_of_a_damaged_file_is_saved_fit_error(tmp_path_factory: pytest.TempPathFactory,
                                                   kind: str, data: st.DataObject) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz_saved"
    folder.mkdir(exist_ok=True)
    raw = saved(kind, str(folder))
    bad = data.draw(damaged(raw))
    path = folder / "damaged.mlfit"
    path.write_bytes(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            again = ml.load(path)
        except SavedFitError:
            return
        except Exception as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{type(exc).__name__} instead of SavedFitError: {exc}")
    # a change the zip format ignores (a local header's duplicate size field) loads the fit
    # as it was saved
    fit = fits()[kind]
    assert again.loglik == pytest.approx(fit.loglik, rel=1e-10)
    np.testing.assert_allclose(again.fixef.to_numpy(), fit.fixef.to_numpy(), rtol=1e-10)


# -- lmer_moments on odd data ------------------------------------------------------------------

@st.composite
def moments_data(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n_g = draw(st.integers(1, 6))
    frame = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                          "g": rng.integers(0, n_g, size=n).astype(str),
                          "h": rng.integers(0, 3, size=n)})
    for col in draw(st.lists(st.sampled_from(["y", "x", "g", "h"]), max_size=2)):
        frame[col] = draw(st.sampled_from([np.nan, 1.0, "a", None, True, np.inf, 0]))
    return frame


@FUZZ
@given(moments_data(), st.sampled_from([
    "y ~ x + (1 | g)", "y ~ x + (1 | g) + (1 | h)", "y ~ x + (x | g)", "y ~ 1 + (1 | g/h)",
    "y ~ x", "y ~ 0 + (1 | g)", "log(y) ~ x + (1 | g)", "x ~ y + (1 | g:h)", "y ~ (1 | x)",
    "g ~ x + (1 | h)", "y ~ x + (1 | g", ""]), ODD)
def test_lmer_moments_answers_odd_data(frame: pd.DataFrame, formula: str, other: Any) -> None:
    fit = answers(lambda: ml.lmer_moments(formula, frame))
    if fit is not None:
        assert np.all(np.isfinite(fit.fixef.to_numpy()))
        answers(lambda: (str(fit.summary()), fit.tidy()))
    answers(lambda: ml.lmer_moments("y ~ x + (1 | g)", frame, rounds=other))
    answers(lambda: ml.lmer_moments("y ~ x + (1 | g)", frame, tol=other, max_sweeps=other))
    answers(lambda: ml.lmer_moments("y ~ x + (1 | g)", frame, offset=other))


# -- the report command: one error line, status 2 ----------------------------------------------

@pytest.mark.parametrize("argv", [
    ["report", "y ~ x + (1 | g)", "--data", "no_such_file.csv", "-o", "r.html"],
    ["report", "Reaction ~ Days + (1 |", "--data", "sleepstudy", "-o", "r.html"],
    ["report", "Reaction ~ Nope + (1 | Subject)", "--data", "sleepstudy", "-o", "r.html"],
    ["report", "", "--data", "sleepstudy", "-o", "r.html"],
    ["report", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy", "-o",
     "no_such_folder/r.html"],
    ["report", "Reaction ~ Days + (1 | Subject)", "--data", ".", "-o", "r.html"],
    ["report", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy"],
])
def test_report_command_user_error_is_one_line_and_status_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = main([*argv, "--no-plots"])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not (tmp_path / "r.html").exists()


def test_report_command_as_a_process(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "multilevel", "report", "y ~ x + (1 | g)",
                          "--data", str(tmp_path / "missing.csv"), "-o",
                          str(tmp_path / "r.html")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "missing.csv" in run.stderr


# -- regressions: what the fuzzing found ---------------------------------------------------------

def test_arguments_given_as_a_series_are_argument_errors() -> None:
    # each compared the Series element-wise ("truth value of a Series is ambiguous")
    fit, series = fits()["lmer"], pd.Series(["pairwise"])
    means = ml.emmeans(fit, "Sex")
    with pytest.raises(ArgumentError, match="method must be one of"):
        means.contrast(series)
    with pytest.raises(ArgumentError, match="adjust must be one of"):
        means.contrast("pairwise", adjust=series)
    with pytest.raises(ArgumentError, match="adjust must be one of"):
        ml.emmeans(fit, "pairwise ~ Sex", adjust=series)
    with pytest.raises(ArgumentError, match="scale must be"):
        ml.predictions(fit, ORTHODONT.head(2), scale=series)
    with pytest.raises(ArgumentError, match="ddf"):
        ml.table([fit], ddf=series)
    with pytest.raises(ArgumentError, match="effects must be"):
        fit.tidy(effects=["fixed", np.array([], dtype=object)])


def test_newdata_as_a_dict_that_makes_no_frame_is_a_data_error() -> None:
    fit = fits()["gls"]
    with pytest.raises(DataError, match="one length"):
        ml.predictions(fit, {"age": [8, 9], "Sex": ["Male"]})
    with pytest.raises(DataError, match="as a list or array"):
        ml.predictions(fit, {"age": 8, "Sex": "Male"})
    with pytest.raises(DataError, match="dict of columns"):
        ml.lmer("distance ~ age + (1 | Subject)", {"distance": 1.0, "age": 2.0})


def test_newdata_with_a_duplicated_column_name_is_a_data_error() -> None:
    nd = pd.concat([ORTHODONT.head(2), ORTHODONT.head(2)], axis=1)
    for kind in ("lmer", "glmer", "gls"):
        fit = fits()[kind]
        frame = pd.concat([CBPP.head(2), CBPP.head(2)], axis=1) if kind == "glmer" else nd
        with pytest.raises(DataError, match="several columns named"):
            fit.predict(frame)
        with pytest.raises(DataError, match="several columns named"):
            ml.predictions(fit, frame)
    # a duplicate the model does not use is still refused, by name
    with pytest.raises(DataError, match="'extra'"):
        fits()["lmer"].predict(pd.concat([ORTHODONT.head(2).assign(extra=1),
                                          pd.DataFrame({"extra": [2, 3]})], axis=1))


def test_a_damaged_member_that_the_loader_does_not_read_is_refused(tmp_path: Path) -> None:
    # lmer's beta follows from theta and is not read on loading; its damage went unnoticed
    path = fits()["lmer"].save(tmp_path / "fit.mlfit")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    assert "estimates/beta.npy" in members
    members["estimates/beta.npy"] = members["estimates/beta.npy"][:-8] + b"\0" * 8
    with zipfile.ZipFile(path, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    with pytest.raises(SavedFitError, match="'estimates/beta.npy'.*checksum"):
        ml.load(path)


def test_marginal_means_lookup_by_anything_but_names_is_typed() -> None:
    means = ml.emmeans(fits()["lmer"], "Sex")
    assert list(means[["Sex", "estimate"]].columns) == ["Sex", "estimate"]
    with pytest.raises(ArgumentError, match="by its name"):
        means[0]
    with pytest.raises(ArgumentError, match="by its name"):
        means[{"Sex": 1}]
    with pytest.raises(ColumnNotFoundError, match="'nope'"):
        means[["Sex", "nope"]]
    with pytest.raises(KeyError):  # still a KeyError for code that catches that
        means.contrast()["nope"]
