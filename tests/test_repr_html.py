"""Every result object a notebook shows has a ``_repr_html_`` that is well-formed HTML (parsed
with html.parser, every element closed in order) and holds the object's own numbers: fits of
each kind, anova tables, profiles, bootstrap and power results, power curves, marginal means
and model tables.
"""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser

import pytest

import multilevel as ml

from reference_data import load_data

VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class _Checker(HTMLParser):
    """Collects the text and checks that elements nest and close."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(obj) -> tuple[str, list[str]]:
    """The text of ``obj``'s HTML and its tags, after checking that it is well formed."""
    out = obj._repr_html_()
    assert isinstance(out, str) and out.strip()
    checker = _Checker()
    checker.feed(out)
    checker.close()
    assert not checker.stack, f"unclosed: {checker.stack}"
    return " ".join(checker.text), checker.tags


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


def _holds(text: str, value: float, rel: float = 1e-3) -> bool:
    """``value`` is printed in ``text`` (to the precision the view prints it)."""
    return any(abs(x - value) <= rel * abs(value) + 1e-12 for x in _numbers(text))


@pytest.fixture(scope="module")
def sleep():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"), reml=False)


@pytest.fixture(scope="module")
def sleep0():
    return ml.lmer("Reaction ~ Days + (1 | Subject)", load_data("sleepstudy"), reml=False)


def _check_fit(fit, table=True) -> None:
    text, tags = _parse(fit)
    if table:
        assert "table" in tags
    for value in fit.fixef:
        assert _holds(text, float(value)), value
    assert _holds(text, float(fit.sigma))


def test_linear_and_generalized_fits(sleep):
    _check_fit(sleep)
    g = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 load_data("cbpp"), family="binomial")
    text, _ = _parse(g)
    for value in g.fixef:
        assert _holds(text, float(value))


def test_nlme_kinds_show_tables():
    orth = load_data("Orthodont")
    lme = ml.lme("distance ~ age", orth, random="~ age | Subject")
    _check_fit(lme)
    text, _ = _parse(lme)
    assert _holds(text, lme.loglik) and "Subject (27)" in text
    gls = ml.gls("distance ~ age", orth, correlation=ml.CorAR1(form="~ 1 | Subject"))
    _check_fit(gls)
    n = ml.nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))", load_data("Orange"),
                fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree",
                start={"Asym": 170, "xmid": 700, "scal": 350})
    _check_fit(n)
    text, _ = _parse(n)
    assert _holds(text, float(n.varcorr["sd"].iloc[0])) and "Tree (5)" in text


def test_inference_results(sleep, sleep0):
    table = ml.anova(sleep0, sleep)
    text, tags = _parse(table)
    assert "table" in tags and _holds(text, float(table["aic"].iloc[1]))
    prof = sleep0.profile()
    text, _ = _parse(prof)
    assert _holds(text, float(prof["zeta"].iloc[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = ml.bootstrap(sleep0, n=5, seed=1)
        power = ml.power(sleep0, "Days", nsim=3, seed=1)
        curve = ml.power_curve(sleep0, "Days", n_groups=[6, 8], nsim=3, seed=1)
    text, _ = _parse(boot)
    assert _holds(text, float(boot.estimate.iloc[-1]))
    text, _ = _parse(power)
    assert _holds(text, 100 * power.power)
    text, _ = _parse(curve)
    assert _holds(text, float(curve["power"].iloc[0]))


def test_marginal_means_and_tables(sleep0, sleep):
    fit = ml.lmer("distance ~ Sex + age + (1 | Subject)", load_data("Orthodont"))
    means = ml.emmeans(fit, "Sex")
    text, _ = _parse(means)
    assert _holds(text, float(means.frame.iloc[0, 1]))
    table = ml.table([sleep0, sleep], stars=True)
    text, tags = _parse(table)
    assert "table" in tags
    assert _holds(text, float(sleep.fixef["Days"])) and _holds(text, sleep.aic)


@pytest.mark.slow
def test_bayesian_fit():
    pytest.importorskip("jax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.bayes("Reaction ~ Days + (1 | Subject)", load_data("sleepstudy"), chains=2,
                       draws=200, warmup=200, seed=1, progress=False)
    text, _ = _parse(fit)
    for value in fit.fixef:
        assert _holds(text, float(value), rel=1e-2)


@pytest.mark.parametrize("name", ml.datasets.available())
def test_describe_gives_every_column_its_meaning(name):
    """ml.datasets.describe names each column of the loaded frame with a description."""
    text = " ".join(ml.datasets.describe(name).split())
    columns = {c["name"]: c for c in ml.datasets.metadata(name)["columns"]}
    assert list(columns) == list(ml.datasets.load(name).columns)
    for col, meta in columns.items():
        description = " ".join(meta["description"].split())
        assert len(description) >= 10, (name, col)
        assert f"{col} {description}" in text, (name, col)
