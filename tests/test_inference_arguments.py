"""Bad arguments to the public inference functions, the result's methods and the data sets:
each is a typed error (a ``multilevel.errors`` class, ArgumentError where no more specific one
fits) whose message names the argument -- never a numpy, LinAlgError or TypeError from deep
inside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import multilevel as ml
from multilevel.datasets import _reader
from multilevel.errors import ArgumentError, MultilevelError


@pytest.fixture(scope="module")
def fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


Q = {"progress": False, "n_jobs": 1}

# (label, call taking the fit, word the message must contain)
CASES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("power effect nan", lambda f: ml.power(f, "Days", effect=float("nan"), nsim=2, **Q),
     "effect"),
    ("power effect inf", lambda f: ml.power(f, "Days", effect=np.inf, nsim=2, **Q), "effect"),
    ("power effect str", lambda f: ml.power(f, "Days", effect="big", nsim=2, **Q), "effect"),
    ("power seed -1", lambda f: ml.power(f, "Days", nsim=2, seed=-1, **Q), "seed"),
    ("power seed float", lambda f: ml.power(f, "Days", nsim=2, seed=1.5, **Q), "seed"),
    ("power nsim 0", lambda f: ml.power(f, "Days", nsim=0, **Q), "nsim"),
    ("power nsim str", lambda f: ml.power(f, "Days", nsim="x", **Q), "nsim"),
    ("power alpha 2", lambda f: ml.power(f, "Days", nsim=2, alpha=2, **Q), "alpha"),
    ("power alpha nan", lambda f: ml.power(f, "Days", nsim=2, alpha=float("nan"), **Q),
     "alpha"),
    ("power test unknown", lambda f: ml.power(f, "Nights", nsim=2, **Q), "test"),
    ("power test None", lambda f: ml.power(f, None, nsim=2, **Q), "test"),
    ("power ddf 123", lambda f: ml.power(f, "Days", nsim=2, ddf=123, **Q), "ddf"),
    ("power n_jobs 0", lambda f: ml.power(f, "Days", nsim=2, progress=False, n_jobs=0),
     "n_jobs"),
    ("power progress str", lambda f: ml.power(f, "Days", nsim=2, n_jobs=1, progress="yes"),
     "progress"),
    ("power fit str", lambda f: ml.power("x", "Days", nsim=2, **Q), "fit"),
    ("power_curve n_groups int", lambda f: ml.power_curve(f, "Days", n_groups=5, nsim=2, **Q),
     "n_groups"),
    ("power_curve n_groups 1", lambda f: ml.power_curve(f, "Days", n_groups=[1], nsim=2, **Q),
     "n_groups"),
    ("extend n_groups str", lambda f: ml.inference.extend(f, n_groups="ten"), "n_groups"),
    ("bootstrap n 0", lambda f: ml.bootstrap(f, n=0, **Q), "n"),
    ("bootstrap n str", lambda f: ml.bootstrap(f, n="x", **Q), "n"),
    ("bootstrap n float", lambda f: ml.bootstrap(f, n=2.5, **Q), "n"),
    ("bootstrap seed -1", lambda f: ml.bootstrap(f, n=2, seed=-1, **Q), "seed"),
    ("bootstrap n_jobs -2", lambda f: ml.bootstrap(f, n=2, progress=False, n_jobs=-2),
     "n_jobs"),
    ("bootstrap fit None", lambda f: ml.bootstrap(None, n=2, **Q), "fit"),
    ("boot intervals level", lambda f: ml.bootstrap(f, n=3, seed=1, **Q).intervals(1.5),
     "level"),
    ("boot intervals kind", lambda f: ml.bootstrap(f, n=3, seed=1, **Q).intervals(0.9, "x"),
     "kind"),
    ("anova str", lambda f: ml.anova("x"), "model 1"),
    ("anova fit str", lambda f: ml.anova(f, "x"), "model 2"),
    ("anova none", lambda f: ml.anova(), "anova"),
    ("anova ddf", lambda f: ml.anova(f, ddf=123), "ddf"),
    ("anova type", lambda f: ml.anova(f, type="III"), "type"),
    ("anova refit", lambda f: ml.anova(f, f, refit="no"), "refit"),
    ("anova names", lambda f: ml.anova(f, f, names="ab"), "names"),
    ("compare one", lambda f: ml.compare(f), "two or more"),
    ("compare str", lambda f: ml.compare(f, 3), "model 2"),
    ("icc str", lambda f: ml.icc("x"), "fit"),
    ("r2 None", lambda f: ml.r2(None), "fit"),
    ("design_effect", lambda f: ml.design_effect(1), "fit"),
    ("step str", lambda f: ml.step("x"), "fit"),
    ("step alpha", lambda f: ml.step(f, alpha_random=5), "alpha_random"),
    ("step flag", lambda f: ml.step(f, reduce_fixed="no"), "reduce_fixed"),
    ("add_random_slopes str", lambda f: ml.inference.add_random_slopes(f, "Days"),
     "candidates"),
    ("mundlak str", lambda f: ml.mundlak("x"), "fit"),
    ("hausman by int", lambda f: ml.hausman(f, by=3), "by"),
    ("center no column", lambda f: ml.center(ml.datasets.load("sleepstudy"), "nocol",
                                             by="Subject"), "nocol"),
    ("center columns int", lambda f: ml.center(ml.datasets.load("sleepstudy"), 3), "columns"),
    ("center by int", lambda f: ml.center(ml.datasets.load("sleepstudy"), "Days", by=3), "by"),
    ("profile level", lambda f: ml.inference.profile(f, level=1.5), "level"),
    ("profile n", lambda f: ml.inference.profile(f, n="x"), "n"),
    ("profile_confint level", lambda f: ml.inference.profile_confint(f, level=0), "level"),
    ("contrast_test fit", lambda f: ml.inference.contrast_test("x", [[0, 1]]), "fit"),
    ("coef_table ddf 123", lambda f: f.coef_table(ddf=123), "ddf"),
    ("coef_table ddf banana", lambda f: f.coef_table(ddf="banana"), "ddf"),
    ("coef_table level", lambda f: f.coef_table(level=1.5), "level"),
    ("coef_table level str", lambda f: f.coef_table(level="95%"), "level"),
    ("confint method x", lambda f: f.confint(method="x"), "method"),
    ("confint method None", lambda f: f.confint(method=None), "method"),
    ("confint level", lambda f: f.confint(level=1.5), "level"),
    ("contrast wrong shape", lambda f: f.contrast([[1, 0, 0]]), "L"),
    ("contrast nan", lambda f: f.contrast([[np.nan, 1]]), "L"),
    ("contrast text", lambda f: f.contrast([["a", "b"]]), "L"),
    ("contrast empty", lambda f: f.contrast(np.empty((0, 2))), "L"),
    ("contrast zero", lambda f: f.contrast([[0, 0]]), "L"),
    ("contrast ddf", lambda f: f.contrast([[0, 1]], ddf=1.5), "ddf"),
    ("profile method level", lambda f: f.profile(level=2), "level"),
    ("simulate nsim 0", lambda f: f.simulate(0), "nsim"),
    ("simulate seed -1", lambda f: f.simulate(1, seed=-1), "seed"),
    ("simulate seed float", lambda f: f.simulate(1, seed=2.5), "seed"),
    ("datasets.load None", lambda f: ml.datasets.load(None), "name"),
    ("datasets.load 3", lambda f: ml.datasets.load(3), "name"),
    ("datasets.describe None", lambda f: ml.datasets.describe(None), "name"),
    ("datasets.metadata list", lambda f: ml.datasets.metadata(["sleepstudy"]), "name"),
]


@pytest.mark.parametrize(("label", "call", "word"), CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_a_typed_error_naming_it(fit, label, call, word):
    with pytest.raises(MultilevelError) as info:
        call(fit)
    assert word in str(info.value), str(info.value)


def test_argument_errors_are_also_value_and_type_errors(fit):
    """ArgumentError keeps ``except ValueError`` and ``except TypeError`` handlers working."""
    with pytest.raises(ValueError):
        fit.coef_table(ddf="banana")
    with pytest.raises(TypeError):
        ml.bootstrap(fit, n="x", **Q)
    with pytest.raises(ArgumentError):
        ml.power(fit, "Days", effect=float("nan"), nsim=2, **Q)


def test_valid_arguments_still_work(fit):
    """The checks accept what the functions always took: numpy integers and floats, ddf
    spellings with underscores, a seed of 0."""
    table = fit.coef_table(ddf="Kenward_Roger", level=np.float64(0.9))
    assert list(table.columns)[:2] == ["estimate", "std_error"]
    boot = ml.bootstrap(fit, n=np.int64(2), seed=0, **Q)
    assert len(boot.replicates) == 2
    res = ml.power(fit, "Days", nsim=2, effect=np.float32(5.0), seed=np.int64(3), **Q)
    assert res.nsim == 2
    assert fit.contrast(np.array([[0, 1]]))["num_df"] == 1


@pytest.mark.parametrize("damage", ["truncated", "wrong columns", "unknown level"])
def test_damaged_package_data_is_a_typed_error(tmp_path, damage):
    """Corrupt shipped data is an InternalError (a bug or broken install, not user input)
    that says to reinstall -- never a RuntimeError, gzip or CSV parser error."""
    meta = {"name": "toy", "file": "toy.csv.gz", "nrow": 2,
            "columns": [{"name": "g", "type": "factor", "levels": ["a", "b"]}]}
    path = tmp_path / "toy.csv.gz"
    if damage == "truncated":
        path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    else:
        import gzip
        body = "h\na\nb\n" if damage == "wrong columns" else "g\na\nc\n"
        path.write_bytes(gzip.compress(body.encode()))
    with pytest.raises(ml.errors.InternalError, match="reinstall"):
        _reader.read_frame(meta, tmp_path)
