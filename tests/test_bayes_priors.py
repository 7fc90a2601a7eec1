"""The prior layer of the Bayesian models (multilevel.bayesian.priors).

- Parsing brms's prior texts (allow-listed ``ast``; never evaluated).
- Default priors against brms 2.18's ``get_prior`` on 18 models (gaussian identity / log,
  binomial logit / log, bernoulli, poisson log / sqrt / with an offset, negative binomial, Gamma
  log / inverse, lognormal, beta, two nonlinear models, a log link with NaNs and an offset):
  every parameter's default must be brms's string exactly. The R calls, the responses and
  R's outputs are in tests/reference/brms/default_priors.json, with the script that wrote it
  (its ``_script``).
- brms's precedence among user priors, against brms's validate_prior on 4 models, and the
  errors for priors that fit no parameter.
- Densities: numpyro's ``log_prob`` == our numpy ``log_density`` == scipy.stats (1e-10
  relative), with and without the truncation at 0 of a lower-bounded parameter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from multilevel.bayesian import priors as priors_module
from multilevel.bayesian.priors import (
    Distribution,
    Prior,
    ResolvedPrior,
    Slot,
    default_priors,
    log_density,
    numpyro_distribution,
    parse_distribution,
    prior,
    prior_summary_table,
    r_number,
    r_round1,
    resolve_priors,
)
from multilevel.errors import ArgumentError, shorten

from reference_data import REF

DEFAULTS = json.loads((REF / "brms" / "default_priors.json").read_text())
MODELS = sorted(name for name in DEFAULTS if not name.startswith("_"))


# --------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(("text", "name", "args", "spelled"), [
    ("normal(200, 50)", "normal", (200.0, 50.0), "normal(200, 50)"),
    ("student_t(3, 288.7, 59.3)", "student_t", (3.0, 288.7, 59.3), "student_t(3, 288.7, 59.3)"),
    ("cauchy(0, 2.5)", "cauchy", (0.0, 2.5), "cauchy(0, 2.5)"),
    ("exponential(1)", "exponential", (1.0,), "exponential(1)"),
    ("gamma(0.01, 0.01)", "gamma", (0.01, 0.01), "gamma(0.01, 0.01)"),
    ("lognormal(0, 1)", "lognormal", (0.0, 1.0), "lognormal(0, 1)"),
    ("beta(1, 1)", "beta", (1.0, 1.0), "beta(1, 1)"),
    ("uniform(-10, 10)", "uniform", (-10.0, 10.0), "uniform(-10, 10)"),
    ("lkj(2)", "lkj", (2.0,), "lkj(2)"),
    ("flat", "flat", (), "(flat)"),
    ("", "flat", (), "(flat)"),
    ("(flat)", "flat", (), "(flat)"),
    # whitespace, signs, float and exponent spellings
    ("  normal( -2.5 ,1e-3 )\n", "normal", (-2.5, 1e-3), "normal(-2.5, 0.001)"),
    ("student_t(3,-0.5,+2)", "student_t", (3.0, -0.5, 2.0), "student_t(3, -0.5, 2)"),
    ("normal(--1, 2.0)", "normal", (1.0, 2.0), "normal(1, 2)"),
    ("normal(100000, 1e-4)", "normal", (1e5, 1e-4), "normal(1e+05, 1e-04)"),  # as R prints
])
def test_parse_every_distribution(text: str, name: str, args: tuple[float, ...],
                                  spelled: str) -> None:
    d = parse_distribution(text)
    assert d == Distribution(name, args)
    assert d.text() == spelled
    assert str(d) == spelled
    assert parse_distribution(d.text()) == d  # brms's spelling reads back


@pytest.mark.parametrize(("text", "says"), [
    ("normal(0)", "normal takes 2 arguments (normal(mu, sigma)), got 1"),
    ("normal(0, 1, 2)", "got 3"),
    ("student_t(3, 0)", "student_t(nu, mu, sigma)"),
    ("normal(0, -1)", "normal's sigma must be positive, got -1"),
    ("normal(0, 0)", "sigma must be positive"),
    ("student_t(-3, 0, 1)", "nu must be positive"),
    ("gamma(1, 0)", "rate must be positive"),
    ("exponential(-1)", "rate must be positive"),
    ("lkj(0)", "eta must be positive"),
    ("uniform(1, 1)", "lower bound must be below its upper bound"),
    ("normal(0, 1e999)", "finite"),
    ("__import__('os')", "unknown distribution '__import__'"),
    ("__import__('os').system('true')", "not of the form"),
    ("normal(0, 1) + 1", "not of the form"),
    ("laplace(0, 1)", "unknown distribution 'laplace'"),
    ("Normal(0, 1)", "unknown distribution 'Normal'"),
    ("normal(0, sigma)", "argument 'sigma' is not a number"),
    ("normal(0, 1 + 1)", "argument '1 + 1' is not a number"),
    ("normal(0, True)", "argument 'True' is not a number"),
    ("normal(0, 1j)", "argument '1j' is not a number"),
    ("normal(mu=0, sigma=1)", "by position only"),
    ("normal(0, 1", "not of the form"),
    ("normal", "not of the form"),
    ("flat(1)", "unknown distribution 'flat'"),
    ("normal(0, " + "1" * 300 + ")", "longer than 200 characters"),
])
def test_parse_errors_name_the_text_and_the_valid_forms(text: str, says: str) -> None:
    with pytest.raises(ArgumentError) as err:
        parse_distribution(text)
    message = str(err.value)
    assert says in message
    assert "Valid forms: normal(mu, sigma), student_t(nu, mu, sigma)" in message
    assert message.startswith(f"prior {shorten(text)!r} is not a distribution")


def test_parse_takes_text_only() -> None:
    with pytest.raises(ArgumentError, match="given as text"):
        parse_distribution(3)  # type: ignore[arg-type]


def test_distribution_checks_itself_when_built_directly() -> None:
    with pytest.raises(ArgumentError, match="sigma must be positive"):
        Distribution("normal", (0.0, -1.0))
    with pytest.raises(ArgumentError, match="unknown distribution 'laplace'"):
        Distribution("laplace", (0.0, 1.0))
    with pytest.raises(ArgumentError, match="must be numbers"):
        Distribution("normal", ("a", 1.0))  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="the name must be text"):
        Distribution(["normal"], (0.0, 1.0))  # type: ignore[arg-type]
    assert Distribution("normal", (0, 1)).args == (0.0, 1.0)  # ints become floats


def test_r_number_and_r_round_match_r() -> None:
    """as.character() and round(x, 1) of R 4.2.2 on the numbers in default_priors.json."""
    checked = DEFAULTS["_r_numbers"]
    for entry in checked["as_character"]:
        assert r_number(float(entry["x"])) == entry["text"], entry
    for entry in checked["round1"]:
        assert r_round1(float(entry["x"])) == float(entry["rounded"]), entry
    assert len(checked["as_character"]) == 18 and len(checked["round1"]) == 15


# --------------------------------------------------------------------------------------------
# prior()


def test_prior_builds_what_the_user_writes() -> None:
    p = prior("normal(200, 50)", nlpar="Asym")
    assert p == Prior(Distribution("normal", (200.0, 50.0)), "b", "", "", "Asym")
    assert prior("lkj(2)", class_="cor").distribution == Distribution("lkj", (2.0,))
    assert prior(Distribution("exponential", (1.0,)), class_="sigma").class_ == "sigma"
    assert prior("student_t(3, 0, 1)", class_="sd", group="herd").describe() == (
        "prior student_t(3, 0, 1) on class 'sd' group 'herd'")


@pytest.mark.parametrize(("args", "says"), [
    (("lkj(2)",), "lkj is a prior on correlation matrices, for class 'cor' only"),
    (("lkj(2)", "sd"), "for class 'cor' only"),
    (("normal(0, 1)", "cor"), "correlations take an lkj prior"),
    (("normal(0, 1)", "beta"), "prior class 'beta' is not one multilevel knows"),
    (("normal(0, 1)", "sigma", "x"), "class 'sigma' takes none of coef, group, nlpar"),
    (("normal(0, 1)", "b", "", "Subject"), "class 'b' takes coef and nlpar, so group='Subject'"),
    (("lkj(2)", "cor", "Days"), "class 'cor' takes group and nlpar, so coef='Days'"),
    (("normal(0, 1)", "Intercept", "", "", "Asym"), "class 'Intercept' takes none"),
    (("normal(0, 1)", 3), "class_ must be text"),
    (("normal(0, 1)", "b", 3), "coef must be text"),
])
def test_prior_errors(args: tuple[Any, ...], says: str) -> None:
    with pytest.raises(ArgumentError, match=None) as err:
        prior(*args)
    assert says in str(err.value)


# --------------------------------------------------------------------------------------------
# Defaults against brms's get_prior


def _slots_and_expected(model: dict[str, Any]) -> dict[Slot, tuple[str, str, str]]:
    """The model's parameters as get_prior lists them (the rows naming one coefficient, one
    correlation block, one dispersion), each with its prior after brms's own inheritance
    (brms:::prepare_print_prior, the table print() shows), its lb, and where it came from
    ("user" or "default": the source of the row it was inherited from)."""
    printed = model["printed"]
    by_key = {(r["class"], r["coef"], r["group"], r["nlpar"]): r for r in printed}
    out = {}
    for r in printed:
        cls = r["class"]
        if (cls in ("b", "sd") and not r["coef"]) or (cls == "cor" and not r["group"]):
            continue  # a row that only carries a prior down to the parameters
        chain = [(cls, r["coef"], r["group"], r["nlpar"]), (cls, "", r["group"], r["nlpar"]),
                 (cls, "", "", r["nlpar"]), (cls, "", "", "")]
        origin = next(by_key[k] for k in chain
                      if k in by_key and by_key[k]["source"] != "(vectorized)")
        out[Slot(cls, r["coef"], r["group"], r["nlpar"])] = (r["prior"], r["lb"],
                                                             origin["source"])
    return out


def _floats(values: list[str]) -> np.ndarray:
    return np.array([float(v) for v in values])


def _resolve_like_brms(model: dict[str, Any]) -> tuple[list[Slot], list[ResolvedPrior]]:
    expected = _slots_and_expected(model)
    slots = list(expected)
    y = _floats(model["y"])
    trials = _floats(model["trials"]) if "trials" in model else None
    if trials is not None:
        y = y / trials  # a binomial response goes in as proportions with its trials
    defaults = default_priors(
        slots, model["family"], model["link"], y, trials=trials, nonlinear=model["nonlinear"],
        offset=_floats(model["offset"]) if "offset" in model else None)
    user = [prior(r["prior"], r["class"], r["coef"], r["group"], r["nlpar"])
            for r in model["prior"] if r["source"] == "user"]
    return slots, resolve_priors(slots, user, defaults)


@pytest.mark.parametrize("name", [m for m in MODELS if not m.endswith("_user")])
def test_defaults_equal_brms_get_prior(name: str) -> None:
    """Every parameter's default prior, lower bound and source as brms prints them."""
    model = DEFAULTS[name]
    assert model["call"].startswith("get_prior(")
    slots, resolved = _resolve_like_brms(model)
    expected = _slots_and_expected(model)
    table = prior_summary_table(resolved)
    assert list(zip(table["prior"], table["lb"], table["source"], strict=True)) == [
        expected[s] for s in slots]
    assert set(table["source"]) == {"default"}


@pytest.mark.parametrize("name", [m for m in MODELS if m.endswith("_user")])
def test_precedence_equals_brms_validate_prior(name: str) -> None:
    """User priors at class, group, coef and nlpar level over the defaults, resolved as brms's
    validate_prior() resolves them (sleepstudy, Orthodont, cbpp binomial, Orange nonlinear)."""
    model = DEFAULTS[name]
    assert model["call"].startswith("validate_prior(")
    slots, resolved = _resolve_like_brms(model)
    expected = _slots_and_expected(model)
    table = prior_summary_table(resolved)
    assert list(zip(table["prior"], table["lb"], table["source"], strict=True)) == [
        expected[s] for s in slots]
    assert "user" in set(table["source"])


def test_defaults_cover_the_classes_the_brief_names() -> None:
    """The reference set holds what the defaults depend on: a centred Intercept with a
    data-dependent location, a log-link location, the 2.5 floor, an offset, shape, phi, cor,
    nonlinear parameters."""
    texts = {name: {r["prior"] for r in DEFAULTS[name]["printed"]} for name in MODELS}
    assert "student_t(3, 288.7, 59.3)" in texts["sleepstudy_gaussian"]
    assert "student_t(3, 5.7, 2.5)" in texts["sleepstudy_gamma_log"]
    assert "student_t(3, 0, 2.5)" in texts["cbpp_binomial"]
    assert "student_t(3, -2.53787755909775, 2.5)" in texts["cbpp_poisson_offset"]
    assert "gamma(0.01, 0.01)" in texts["cbpp_negbinomial"]
    assert "gamma(0.01, 0.01)" in texts["sleepstudy_beta"]
    assert "lkj(1)" in texts["orange_nonlinear_slope"]
    classes = {r["class"] for r in DEFAULTS["orange_nonlinear"]["prior"]}
    assert "Intercept" not in classes  # nonlinear: no centred intercept


def test_sigma_reads_the_response_scale_and_sd_the_link_scale() -> None:
    """gaussian(log) on sleepstudy: brms gives sigma the identity-scale MAD (59.3) but sd and
    Intercept the log scale (2.5, 5.7) -- sigma has no link of its own."""
    y = _floats(DEFAULTS["sleepstudy_gaussian_log"]["y"])
    slots = [Slot("Intercept"), Slot("sigma"), Slot("sd", "Intercept", "Subject")]
    got = default_priors(slots, "gaussian", "log", y)
    assert [got[s].text() for s in slots] == [
        "student_t(3, 5.7, 2.5)", "student_t(3, 0, 59.3)", "student_t(3, 0, 2.5)"]


def test_defaults_factor_like_response_and_names() -> None:
    y = np.array([True, False, True, True])
    got = default_priors([Slot("Intercept")], "bernoulli", "identity", y)
    assert got[Slot("Intercept")].text() == "student_t(3, 0, 2.5)"  # R: logical y untouched
    # the family's R spelling and brms's spelling give the same defaults
    y = _floats(DEFAULTS["cbpp_negbinomial"]["y"])
    a = default_priors([Slot("shape"), Slot("Intercept")], "negative.binomial", "log", y)
    b = default_priors([Slot("shape"), Slot("Intercept")], "negbinomial", "log", y)
    assert a == b


def test_binomial_counts_or_proportions() -> None:
    """binomial(log) on cbpp: brms reads the counts (median of log counts 0, MAD 2.2 -> 2.5);
    the proportions with their trials give the same, the proportions alone would not."""
    model = DEFAULTS["cbpp_binomial_log"]
    counts, size = _floats(model["y"]), _floats(model["trials"])
    slots = [Slot("Intercept")]
    by_counts = default_priors(slots, "binomial", "log", counts)
    assert by_counts == default_priors(slots, "binomial", "log", counts / size, trials=size)
    assert by_counts[slots[0]].text() == "student_t(3, 0, 2.5)"
    assert default_priors(slots, "binomial", "log", counts / size) != by_counts


def test_defaults_errors() -> None:
    y = np.arange(10.0)
    with pytest.raises(ArgumentError, match="nonlinear models have no centred Intercept"):
        default_priors([Slot("Intercept")], "gaussian", "identity", y, nonlinear=True)
    with pytest.raises(ArgumentError, match="class 'nu' has no default prior"):
        default_priors([Slot("nu")], "student", "identity", y)


def test_r_median_of_an_even_count_and_nan() -> None:
    assert priors_module._median(np.array([1.0, 3.0, 2.0, 10.0])) == 2.5
    assert math.isnan(priors_module._median(np.array([1.0, np.nan])))
    # a NaN response (negative values under a log link) keeps brms's fallback 0 and 2.5
    got = default_priors([Slot("Intercept")], "gaussian", "sqrt", np.array([-1.0, 4.0, 9.0]))
    assert got[Slot("Intercept")].text() == "student_t(3, 0, 2.5)"


# --------------------------------------------------------------------------------------------
# Precedence

SLEEP_SLOTS = [Slot("b", "Days"), Slot("Intercept"), Slot("sd", "Intercept", "Subject"),
               Slot("sd", "Days", "Subject"), Slot("cor", group="Subject"), Slot("sigma")]


def _sleep_defaults() -> dict[Slot, Distribution]:
    y = _floats(DEFAULTS["sleepstudy_gaussian"]["y"])
    return default_priors(SLEEP_SLOTS, "gaussian", "identity", y)


def _by_label(resolved: list[ResolvedPrior]) -> dict[str, tuple[str, str]]:
    return {r.slot.label(): (r.distribution.text(), r.source) for r in resolved}


def test_precedence_class_group_coef() -> None:
    user = [prior("student_t(3, 0, 10)", class_="sd"),
            prior("student_t(3, 0, 20)", class_="sd", group="Subject"),
            prior("normal(0, 5)", class_="sd", coef="Days", group="Subject"),
            prior("normal(0, 10)"),
            prior("lkj(2)", class_="cor")]
    got = _by_label(resolve_priors(SLEEP_SLOTS, user, _sleep_defaults()))
    assert got == {
        "b(Days)": ("normal(0, 10)", "user"),
        "Intercept": ("student_t(3, 288.7, 59.3)", "default"),
        "sd(Intercept | Subject)": ("student_t(3, 0, 20)", "user"),  # group beats class
        "sd(Days | Subject)": ("normal(0, 5)", "user"),  # coef beats group
        "cor(Subject)": ("lkj(2)", "user"),
        "sigma": ("student_t(3, 0, 59.3)", "default"),
    }
    # order of the user's list does not matter
    assert _by_label(resolve_priors(SLEEP_SLOTS, user[::-1], _sleep_defaults())) == got
    # a coef without group applies to that coefficient in every group, and beats a group one
    two_groups = [Slot("sd", "Intercept", "Subject"), Slot("sd", "Intercept", "Item")]
    got = _by_label(resolve_priors(
        two_groups, [prior("normal(0, 1)", class_="sd", group="Item"),
                     prior("normal(0, 2)", class_="sd", coef="Intercept")],
        dict.fromkeys(two_groups, Distribution("student_t", (3, 0, 2.5)))))
    assert got == {"sd(Intercept | Subject)": ("normal(0, 2)", "user"),
                   "sd(Intercept | Item)": ("normal(0, 2)", "user")}


def test_precedence_nlpar() -> None:
    slots = [Slot("b", "Intercept", nlpar="Asym"), Slot("b", "Intercept", nlpar="xmid"),
             Slot("b", "Intercept", nlpar="scal"), Slot("sd", "Intercept", "Tree", "Asym"),
             Slot("sigma")]
    y = _floats(DEFAULTS["orange_nonlinear"]["y"])
    defaults = default_priors(slots, "gaussian", "identity", y, nonlinear=True)
    user = [prior("normal(200, 50)", nlpar="Asym"), prior("normal(700, 200)", nlpar="xmid"),
            prior("normal(0, 1000)"),  # every nlpar's b not named more specifically
            prior("student_t(3, 0, 40)", class_="sd", nlpar="Asym"),
            prior("student_t(3, 0, 20)", class_="sigma")]
    resolved = resolve_priors(slots, user, defaults)
    assert _by_label(resolved) == {
        "b(Asym_Intercept)": ("normal(200, 50)", "user"),
        "b(xmid_Intercept)": ("normal(700, 200)", "user"),
        "b(scal_Intercept)": ("normal(0, 1000)", "user"),
        "sd(Asym_Intercept | Tree)": ("student_t(3, 0, 40)", "user"),
        "sigma": ("student_t(3, 0, 20)", "user"),
    }
    assert [r.lower for r in resolved] == [None, None, None, 0.0, 0.0]
    table = prior_summary_table(resolved)
    assert list(table.columns) == ["prior", "class", "coef", "group", "nlpar", "lb", "ub", "source"]
    assert table.iloc[3].to_dict() == {
        "prior": "student_t(3, 0, 40)", "class": "sd", "coef": "Intercept", "group": "Tree",
        "nlpar": "Asym", "lb": "0", "ub": "", "source": "user"}
    # without the user's priors every nlpar's b is flat, brms's default
    flat = resolve_priors(slots, [], defaults)
    assert [r.distribution.text() for r in flat[:3]] == ["(flat)"] * 3
    assert flat[3].distribution.text() == "student_t(3, 0, 77.1)"
    assert isinstance(prior_summary_table(flat), pd.DataFrame)


def test_unmatched_prior_lists_the_parameters() -> None:
    with pytest.raises(ArgumentError) as err:
        resolve_priors(SLEEP_SLOTS, [prior("normal(0, 1)", class_="sd", coef="Dayz",
                                           group="Subject")], _sleep_defaults())
    assert str(err.value) == (
        "prior normal(0, 1) on class 'sd' coef 'Dayz' group 'Subject' matches no parameter; "
        "the model's sd parameters are: sd(Intercept | Subject), sd(Days | Subject)")
    with pytest.raises(ArgumentError) as err:
        resolve_priors(SLEEP_SLOTS, [prior("gamma(0.01, 0.01)", class_="shape")],
                       _sleep_defaults())
    assert str(err.value) == (
        "prior gamma(0.01, 0.01) on class 'shape' matches no parameter: the model has no shape "
        "parameters; its parameters are: b(Days), Intercept, sd(Intercept | Subject), "
        "sd(Days | Subject), cor(Subject), sigma")
    with pytest.raises(ArgumentError, match="nlpar 'Asym' matches no parameter"):
        resolve_priors(SLEEP_SLOTS, [prior("normal(0, 1)", nlpar="Asym")], _sleep_defaults())


def test_resolve_errors() -> None:
    defaults = _sleep_defaults()
    with pytest.raises(ArgumentError, match="set the same parameters twice"):
        resolve_priors(SLEEP_SLOTS, [prior("normal(0, 1)"), prior("normal(0, 2)")], defaults)
    with pytest.raises(ArgumentError, match="correlations take an lkj prior"):
        resolve_priors(SLEEP_SLOTS, [Prior(Distribution("normal", (0, 1)), "cor")], defaults)
    with pytest.raises(ArgumentError, match="for class 'cor' only"):
        resolve_priors(SLEEP_SLOTS, [Prior(Distribution("lkj", (2,)), "b")], defaults)
    with pytest.raises(ArgumentError, match="support lies below 0, the lower bound of sigma"):
        resolve_priors(SLEEP_SLOTS, [prior("uniform(-2, -1)", class_="sigma")], defaults)
    with pytest.raises(ArgumentError, match=r"b\(Days\) is unbounded but gamma only has mass "
                                            r"on \[0, Inf\]; use normal, student_t"):
        resolve_priors(SLEEP_SLOTS, [prior("gamma(2, 1)", coef="Days")], defaults)
    with pytest.raises(ArgumentError, match=r"Intercept is unbounded but uniform only has mass "
                                            r"on \[0, 500\]"):
        resolve_priors(SLEEP_SLOTS, [prior("uniform(0, 500)", class_="Intercept")], defaults)
    with pytest.raises(ArgumentError, match="given with multilevel.prior"):
        resolve_priors(SLEEP_SLOTS, ["normal(0, 1)"], defaults)  # type: ignore[list-item]
    with pytest.raises(ArgumentError, match=r"no default prior for b\(Days\)"):
        resolve_priors(SLEEP_SLOTS, [], {})
    # positive distributions fit lower-bounded parameters: beta on sigma lives in (0, 1)
    ok = resolve_priors(SLEEP_SLOTS, [prior("beta(2, 2)", class_="sigma"),
                                      prior("uniform(-1, 100)", class_="sd")], defaults)
    assert {r.slot.label(): r.distribution.name for r in ok}["sigma"] == "beta"


# --------------------------------------------------------------------------------------------
# Densities: numpyro == numpy == scipy


@pytest.fixture
def x64() -> Iterator[None]:
    """Double precision for the 1e-10 comparisons; the global setting is restored after."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("numpyro")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


POINTS = np.array([-3.0, -0.4, 0.0, 0.2, 0.7, 1.5, 12.0, 240.0])


def _scipy(d: Distribution) -> Any:
    a = d.args
    return {
        "normal": lambda: stats.norm(a[0], a[1]),
        "student_t": lambda: stats.t(a[0], a[1], a[2]),
        "cauchy": lambda: stats.cauchy(a[0], a[1]),
        "exponential": lambda: stats.expon(scale=1 / a[0]),
        "gamma": lambda: stats.gamma(a[0], scale=1 / a[1]),
        "lognormal": lambda: stats.lognorm(a[1], scale=np.exp(a[0])),
        "beta": lambda: stats.beta(a[0], a[1]),
        "uniform": lambda: stats.uniform(a[0], a[1] - a[0]),
    }[d.name]()


def _scipy_logpdf(d: Distribution, x: np.ndarray, lower: float | None) -> np.ndarray:
    if d.name == "uniform" and lower is not None:
        d = Distribution("uniform", (max(d.args[0], lower), d.args[1]))
    frozen = _scipy(d)
    out = frozen.logpdf(x)
    if lower is not None:
        out = np.where(x >= lower, out - np.log(frozen.sf(lower)), -np.inf)
    return np.asarray(out)


DENSITIES = ["normal(1, 2)", "student_t(3, 288.7, 59.3)", "student_t(3, 0, 2.5)",
             "cauchy(-1, 0.5)", "exponential(2)", "gamma(2, 0.1)", "gamma(0.01, 0.01)",
             "lognormal(0, 1)", "beta(2, 3)", "uniform(-1, 2)"]


def _support(d: Distribution, lower: float | None) -> tuple[float, float]:
    low, high = priors_module._FORMS[d.name].support
    if d.name == "uniform":
        low, high = d.args
    return (low if lower is None else max(low, lower)), high


@pytest.mark.parametrize("lower", [None, 0.0])
@pytest.mark.parametrize("text", DENSITIES)
def test_log_density_equals_numpyro_and_scipy(text: str, lower: float | None, x64: None) -> None:
    d = parse_distribution(text)
    low, high = _support(d, lower)
    # numpyro's log_prob outside the support is not defined (validation off): compare inside.
    x = POINTS[(POINTS > low) & (POINTS < high)]
    ours = log_density(d, x, lower)
    assert ours == pytest.approx(_scipy_logpdf(d, x, lower), rel=1e-10, abs=1e-12)
    numpyro_log_prob = np.asarray(numpyro_distribution(d, lower).log_prob(x))
    assert numpyro_log_prob == pytest.approx(ours, rel=1e-10, abs=1e-12)
    # below the lower bound (or outside the support) the density is 0
    outside = POINTS[(POINTS < low) | (POINTS > high)]
    assert np.all(log_density(d, outside, lower) == -np.inf)


def test_truncation_is_a_proper_density(x64: None) -> None:
    """The truncated priors integrate to 1 over [0, inf): brms's normalising constant."""
    from scipy import integrate
    for text in ("normal(1, 2)", "student_t(3, 0, 59.3)", "cauchy(-1, 0.5)"):
        d = parse_distribution(text)
        total, _ = integrate.quad(lambda t, d=d: float(np.exp(log_density(d, np.array(t), 0.0))),
                                  0, np.inf)
        assert total == pytest.approx(1.0, rel=1e-7)
    # a student_t(3, 0, s) half on [0, inf) is twice the full density there
    d = parse_distribution("student_t(3, 0, 59.3)")
    assert log_density(d, np.array([10.0]), 0.0) == pytest.approx(
        stats.t.logpdf(10.0, 3, 0, 59.3) + np.log(2), rel=1e-12)


def test_flat_and_lkj(x64: None) -> None:
    import numpyro.distributions as nd

    flat = parse_distribution("flat")
    assert numpyro_distribution(flat) is None
    assert list(log_density(flat, np.array([-1.0, 3.0]))) == [0.0, 0.0]
    assert list(log_density(flat, np.array([-1.0, 3.0]), 0.0)) == [-np.inf, 0.0]
    # lkj(eta) in 2 dimensions: the correlation r has (r + 1) / 2 ~ Beta(eta, eta)
    r = np.array([-0.6, 0.0, 0.3])
    chol = np.zeros((3, 2, 2))
    chol[:, 0, 0], chol[:, 1, 0], chol[:, 1, 1] = 1.0, r, np.sqrt(1 - r * r)
    for eta in (1.0, 2.0, 0.5):
        d = Distribution("lkj", (eta,))
        expected = stats.beta.logpdf((r + 1) / 2, eta, eta) - math.log(2)
        assert log_density(d, chol) == pytest.approx(expected, rel=1e-10, abs=1e-12)
        assert np.asarray(numpyro_distribution(d, dim=2).log_prob(chol)) == pytest.approx(
            expected, rel=1e-10, abs=1e-12)
    # and in 4 dimensions, on Cholesky factors of random correlation matrices: numpyro == numpy
    rng = np.random.default_rng(9)
    a = rng.normal(size=(5, 4, 6))
    cov = a @ np.swapaxes(a, -1, -2)
    scale = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    chols = np.linalg.cholesky(cov / scale[:, :, None] / scale[:, None, :])
    d = Distribution("lkj", (2.0,))
    dist = numpyro_distribution(d, dim=4)
    assert isinstance(dist, nd.LKJCholesky)
    assert log_density(d, chols) == pytest.approx(np.asarray(dist.log_prob(chols)), rel=1e-10)
    with pytest.raises(ArgumentError, match="dimension of the correlation matrix"):
        numpyro_distribution(d)


def test_numpyro_shapes_and_truncation_types(x64: None) -> None:
    import numpyro.distributions as nd

    d = parse_distribution("student_t(3, 0, 2.5)")
    half = numpyro_distribution(d, lower=0.0)
    assert float(half.support.lower_bound) == 0.0
    assert numpyro_distribution(d, dim=3).batch_shape == (3,)
    assert numpyro_distribution(d, lower=0.0, dim=3).batch_shape == (3,)
    assert isinstance(numpyro_distribution(parse_distribution("gamma(2, 0.1)"), 0.0), nd.Gamma)
    with pytest.raises(ArgumentError, match="cannot be truncated at 1"):
        numpyro_distribution(parse_distribution("gamma(2, 0.1)"), lower=1.0)
    with pytest.raises(ArgumentError, match="no mass above the lower bound 0"):
        log_density(parse_distribution("uniform(-2, -1)"), np.array([1.0]), 0.0)


def test_import_multilevel_does_not_import_jax() -> None:
    import subprocess
    import sys
    code = ("import sys, multilevel, multilevel.bayesian.priors; "
            "print('jax' in sys.modules, 'numpyro' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
