"""multilevel.families: links, families and Gauss-Hermite rules against R.

Reference numbers: tests/reference/families/family_refs.json, written by
``Rscript tests/reference/make_family_refs.R`` (R 4.2.2: ``make.link``, ``binomial()``,
``poisson()``, ``gaussian()``, ``Gamma(link = "log")``, ``inverse.gaussian()``,
``MASS::negative.binomial(theta = 2)``, ``dbinom`` / ``dpois`` / ``dnorm`` / ``dgamma`` /
``dnbinom`` and the inverse-Gaussian density written out, ``lme4::GHrule(k)``). Simulation
checks use fixed seeds and Monte-Carlo bounds of 6 standard errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from multilevel.errors import ArgumentError, DataError
from multilevel.families import (
    FAMILIES,
    LINKS,
    Binomial,
    Family,
    Gamma,
    Gaussian,
    InverseGaussian,
    Logit,
    NegativeBinomial,
    Poisson,
    Probit,
    family,
    gauss_hermite,
    make_link,
)

REFS = json.loads((Path(__file__).parent / "reference" / "families" / "family_refs.json")
                  .read_text())
EPS = np.finfo(float).eps


def _family_of(case: dict) -> Family:
    """The Python family for an R case (R's family name and link)."""
    names = {"binomial": Binomial, "poisson": Poisson, "gaussian": Gaussian, "Gamma": Gamma,
             "inverse.gaussian": InverseGaussian}
    if case["family"].startswith("Negative Binomial"):
        return NegativeBinomial(case["link"], theta=case["theta"])
    return names[case["family"]](case["link"])


# -- links ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(REFS["links"]))
def test_link_matches_r(name):
    ref = REFS["links"][name]
    link = make_link(name)
    assert link.name == name
    mu, linkfun = np.asarray(ref["mu"]), np.asarray(ref["linkfun"])
    if name == "cloglog":
        # R computes log(-log(1 - mu)), which loses digits for mu < ~1e-4 (1 - 1e-12 keeps
        # only 4 of them); ours is log(-log1p(-mu)), checked against the series
        # log(mu + mu^2/2 + mu^3/3 + ...) = log(mu) + log1p(mu/2 + mu^2/3 + ...)
        tiny = mu < 1e-4
        series = np.log(mu[tiny]) + np.log1p(mu[tiny] / 2 + mu[tiny] ** 2 / 3)
        np.testing.assert_allclose(link.link(mu[tiny]), series, rtol=1e-15)
        mu, linkfun = mu[~tiny], linkfun[~tiny]
    np.testing.assert_allclose(link.link(mu), linkfun, rtol=1e-13, atol=0)
    np.testing.assert_allclose(link.inverse(ref["eta"]), ref["linkinv"], rtol=1e-13, atol=0)
    np.testing.assert_allclose(link.mu_eta(ref["eta"]), ref["mu_eta"], rtol=1e-12, atol=0)
    assert link.valid_eta(ref["eta"]) is ref["valideta"]
    if "invalid_eta" in ref:
        assert link.valid_eta(ref["invalid_eta"]) is ref["invalid_valideta"] is False


def test_every_r_link_is_checked():
    assert set(LINKS) == set(REFS["links"])


@pytest.mark.parametrize("name", ["logit", "probit", "cauchit", "cloglog"])
def test_binomial_links_never_reach_zero_or_one(name):
    # PIRLS can try any eta: mu must stay strictly inside (0, 1) and dmu/deta positive
    link = make_link(name)
    eta = np.concatenate([np.linspace(-1e4, 1e4, 2001), [-np.inf, np.inf]])
    mu = link.inverse(eta)
    assert np.all((mu > 0) & (mu < 1))
    assert np.all(link.mu_eta(eta) >= EPS)


@pytest.mark.parametrize("name", list(LINKS))
def test_link_inverse_and_derivative_are_consistent(name):
    link = make_link(name)
    mu = {"logit": 0.3, "probit": 0.3, "cauchit": 0.3, "cloglog": 0.3}.get(name, 2.5)
    mu = np.array([mu, mu / 2])
    eta = link.link(mu)
    np.testing.assert_allclose(link.inverse(eta), mu, rtol=1e-12)
    h = 1e-6
    numeric = (link.inverse(eta + h) - link.inverse(eta - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_eta(eta), numeric, rtol=1e-7)


def test_make_link_names_and_errors():
    assert make_link("LOGIT") == Logit()
    assert make_link(Probit()) == Probit()
    assert make_link("inverse_squared").name == "1/mu^2"
    with pytest.raises(ArgumentError, match=r"'logti' is not known.*'logit'"):
        make_link("logti")
    with pytest.raises(ArgumentError, match="link must be a link name"):
        make_link(3)  # type: ignore[arg-type]


# -- families against R -----------------------------------------------------------------------

CASES = list(REFS["families"])


@pytest.mark.parametrize("case_id", CASES)
def test_family_matches_r(case_id):
    ref = REFS["families"][case_id]
    fam = _family_of(ref)
    y, mu, wt = (np.asarray(ref[k], dtype=float) for k in ("y", "mu", "wt"))
    np.testing.assert_allclose(fam.variance(mu), ref["variance"], rtol=1e-14)
    assert fam.valid_mu(mu) is ref["validmu"]
    np.testing.assert_allclose(fam.dev_resids(y, mu, wt), ref["dev_resids"], rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(fam.mustart(y, wt), ref["mustart"], rtol=1e-14)
    np.testing.assert_allclose(fam.log_likelihood(y, mu, wt, ref["dispersion"]), ref["loglik"],
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case_id", CASES)
def test_loglik_sums_to_r_aic(case_id):
    # R's family$aic with unit prior weights (trials for the binomial) is -2 log-likelihood
    # (+ 2 for the dispersion, taken at its ML estimate deviance / n): the terms here add up
    # to the log-likelihood that glm and glmer report.
    ref = REFS["families"][case_id]
    fam = _family_of(ref)
    y, mu, wt = (np.asarray(ref[k], dtype=float) for k in ("y", "mu", "aic_wt"))
    dev = fam.dev_resids(y, mu, wt).sum()
    assert dev == pytest.approx(ref["aic_deviance"], rel=1e-12)
    phi = dev / len(y) if fam.has_dispersion else None
    expected = -(ref["aic"] - 2 * fam.has_dispersion) / 2
    assert fam.log_likelihood(y, mu, wt, phi).sum() == pytest.approx(expected, rel=1e-12)


def test_every_family_is_checked_against_r():
    checked = {_family_of(REFS["families"][c]).name for c in CASES}
    assert checked == {cls.name for cls in FAMILIES.values()}


def test_has_dispersion():
    assert {name: cls.has_dispersion for name, cls in FAMILIES.items()} == {
        "gaussian": True, "binomial": False, "poisson": False, "gamma": True,
        "inverse_gaussian": True, "negative_binomial": False}


def test_zero_weights_contribute_nothing():
    y, mu, wt = np.array([1.0, 3.0]), np.array([2.0, 2.5]), np.array([0.0, 1.0])
    for fam, phi in [(Poisson(), None), (Gamma(), 0.5), (Gaussian(), 2.0),
                     (InverseGaussian(), 0.5), (NegativeBinomial(theta=3), None)]:
        assert fam.log_likelihood(y, mu, wt, phi)[0] == 0.0
        assert fam.dev_resids(y, mu, wt)[0] == 0.0
    assert Binomial().log_likelihood([0.5, 0.5], [0.4, 0.4], [0.0, 2.0])[0] == 0.0


def test_dispersion_is_required_where_the_family_has_one():
    with pytest.raises(ArgumentError, match="Gamma family needs a positive, finite dispersion"):
        Gamma().log_likelihood([1.0], [1.0])
    with pytest.raises(ArgumentError, match="dispersion=-1"):
        Gaussian().simulate([0.0], dispersion=-1, rng=np.random.default_rng(1))
    # and ignored where it has none
    assert Poisson().log_likelihood([2.0], [2.0], dispersion=5.0) == pytest.approx(
        2 * math.log(2) - 2 - math.log(2))


def test_link_not_allowed_names_family_and_links():
    with pytest.raises(ArgumentError, match=r"poisson family does not take the 'logit' link; "
                                            r"allowed links: 'log', 'identity', 'sqrt'"):
        Poisson(link="logit")
    with pytest.raises(ArgumentError, match="inverse.gaussian family does not take the 'probit'"):
        InverseGaussian("probit")
    assert Binomial(link="probit").link == Probit()
    assert str(Gamma("log")) == "Gamma(log)"


def test_negative_binomial_theta():
    nb = NegativeBinomial()
    assert nb.theta is None and nb.link.name == "log"
    with pytest.raises(ArgumentError, match="theta is not set"):
        nb.variance([1.0])
    assert nb.with_theta(2).variance([2.0])[0] == pytest.approx(4.0)
    assert NegativeBinomial(theta=2) == nb.with_theta(2.0)
    for bad in (0, -1.5, np.inf, "2", True):
        with pytest.raises(ArgumentError, match="theta must be a positive, finite number"):
            NegativeBinomial(theta=bad)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"NegativeBinomial\(theta=2\)"):
        NegativeBinomial(2)  # type: ignore[arg-type]


def test_negative_binomial_tends_to_poisson():
    # theta -> infinity: NB2 is the Poisson. The naive lgamma(theta + y) - lgamma(theta)
    # would be off by ~1e-3 at theta = 1e12; the differences left are O(y^2 / theta).
    y, mu = np.array([0.0, 1.0, 4.0, 12.0]), np.array([0.5, 2.0, 3.0, 10.0])
    nb = NegativeBinomial(theta=1e12)
    np.testing.assert_allclose(nb.log_likelihood(y, mu), Poisson().log_likelihood(y, mu),
                               rtol=1e-10)
    np.testing.assert_allclose(nb.dev_resids(y, mu), Poisson().dev_resids(y, mu), rtol=1e-9,
                               atol=1e-12)


# -- validation before fitting ----------------------------------------------------------------

def test_counts_must_be_non_negative_integers():
    for fam in (Poisson(), NegativeBinomial()):
        with pytest.raises(DataError, match=r"'n' .* negative values: row 2 \(-1.0\)"):
            fam.validate([0, 3, -1, 2], column="n")
        with pytest.raises(DataError, match=r"non-integer values: row 1 \(2.5\), row 3 \(0.1\)"):
            fam.validate([0, 2.5, 1, 0.1], column="n")
    Poisson().validate([0, 1, 2, 1e6])


def test_binomial_response_and_trials():
    with pytest.raises(DataError, match=r"'y' of a binomial model must be 0/1 values or "
                                        r"proportions in \[0, 1\]: row 1 \(2.0\)"):
        Binomial().validate([0, 2, 1], column="y")
    with pytest.raises(DataError, match=r"must be proportions in \[0, 1\]: row 0 \(-0.5\)"):
        Binomial().validate([-0.5, 0.5], wt=[2, 2], column="y")
    with pytest.raises(DataError, match=r"numbers of trials and must be positive: "
                                        r"row b \(0.0\)"):
        Binomial().validate([0.5, 0.5], wt=[2, 0], labels=["a", "b"])
    Binomial().validate([0, 0.5, 1], wt=[1, 2, 3])


def test_positive_responses():
    with pytest.raises(DataError, match=r"'time' of a Gamma model must be positive: "
                                        r"row 1 \(0.0\), row 2 \(-2.0\)"):
        Gamma().validate([1.0, 0.0, -2.0], column="time")
    with pytest.raises(DataError, match=r"inverse Gaussian model must be positive: "
                                        r"row 0 \(-1.0\), row 1 \(-1.0\), row 2 \(-1.0\) "
                                        r"and 2 more"):
        InverseGaussian().validate([-1.0] * 5)


def test_non_finite_response_and_weights():
    with pytest.raises(DataError, match=r"must be finite for the gaussian family: row 1"):
        Gaussian().validate([1.0, np.nan])
    with pytest.raises(DataError, match=r"weights must be finite and non-negative: row 0"):
        Poisson().validate([1, 2], wt=[-1, 1])


# -- simulation -------------------------------------------------------------------------------

def _moments_agree(draws: np.ndarray, mean: float, var: float) -> None:
    """Sample mean and variance within 6 Monte-Carlo standard errors of the truth."""
    n = draws.size
    assert abs(draws.mean() - mean) < 6 * math.sqrt(var / n)
    fourth = np.mean((draws - draws.mean()) ** 4)
    assert abs(draws.var(ddof=1) - var) < 6 * math.sqrt((fourth - var ** 2) / n)


SIMULATIONS = [
    # family, mu, weight, dispersion, variance of one draw
    (Gaussian(), 1.5, 2.0, 3.0, 3.0 / 2.0),
    (Binomial(), 0.3, 1.0, None, 0.3 * 0.7),
    (Binomial("probit"), 0.3, 7.0, None, 0.3 * 0.7 / 7.0),
    (Poisson(), 4.0, 1.0, None, 4.0),
    (Gamma("log"), 2.0, 1.0, 0.5, 0.5 * 4.0),
    (Gamma(), 2.0, 4.0, 0.5, 0.5 * 4.0 / 4.0),
    (InverseGaussian(), 1.5, 2.0, 0.4, 0.4 * 1.5 ** 3 / 2.0),
    (NegativeBinomial(theta=2.0), 3.0, 1.0, None, 3.0 + 9.0 / 2.0),
]


@pytest.mark.parametrize("fam, mu, wt, phi, var", SIMULATIONS, ids=lambda v: str(v))
def test_simulation_moments(fam, mu, wt, phi, var):
    n = 200_000
    draws = fam.simulate(np.full(n, mu), np.full(n, wt), phi, rng=np.random.default_rng(20261126))
    assert draws.shape == (n,)
    _moments_agree(draws, mu, var)


def test_simulation_is_reproducible_and_needs_theta():
    mu = np.array([1.0, 5.0, 20.0])
    a = Poisson().simulate(mu, rng=np.random.default_rng(7))
    b = Poisson().simulate(mu, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ArgumentError, match="theta is not set"):
        NegativeBinomial().simulate(mu, rng=np.random.default_rng(7))


def test_simulated_data_pass_validation():
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.1, 5, 500)
    for fam, phi in [(Poisson(), None), (Gamma(), 0.3), (InverseGaussian(), 0.3),
                     (NegativeBinomial(theta=1.5), None)]:
        fam.validate(fam.simulate(mu, dispersion=phi, rng=rng))
    Binomial().validate(Binomial().simulate(mu / 6, np.full(500, 5.0), rng=rng), wt=np.full(500, 5))


# -- latent-scale residual variance (Nakagawa, Johnson & Schielzeth 2017, Table 1) -----------

def test_latent_variance_closed_forms():
    assert Binomial().latent_variance() == pytest.approx(math.pi ** 2 / 3)
    assert Binomial("probit").latent_variance() == 1.0
    assert Binomial("cloglog").latent_variance() == pytest.approx(math.pi ** 2 / 6)
    lam = 2.5
    assert Poisson().latent_variance(lam) == pytest.approx(math.log(1 + 1 / lam))
    assert Poisson().latent_variance(lam, method="delta") == pytest.approx(1 / lam)
    assert Poisson().latent_variance(lam, method="trigamma") == pytest.approx(
        float(special.polygamma(1, lam)))
    assert Poisson("sqrt").latent_variance() == 0.25
    nb = NegativeBinomial(theta=4.0)
    assert nb.latent_variance(lam) == pytest.approx(math.log(1 + 1 / lam + 1 / 4))
    assert nb.latent_variance(lam, method="trigamma") == pytest.approx(
        float(special.polygamma(1, 1 / (1 / lam + 1 / 4))))
    assert Gamma("log").latent_variance(dispersion=0.5) == pytest.approx(math.log(1.5))
    assert Gaussian().latent_variance(dispersion=2.0) == 2.0


def test_latent_variance_errors():
    with pytest.raises(ArgumentError, match="not defined for the binomial family with the "
                                            "'cauchit' link"):
        Binomial("cauchit").latent_variance()
    with pytest.raises(ArgumentError, match="needs the mean mu > 0"):
        Poisson().latent_variance()
    with pytest.raises(ArgumentError, match="method must be one of"):
        Poisson().latent_variance(2.0, method="exact")
    with pytest.raises(ArgumentError, match="not defined for the Gamma family"):
        Gamma().latent_variance(dispersion=1.0)


# -- the resolver -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, cls", [
    ("binomial", Binomial), ("Poisson", Poisson), ("GAMMA", Gamma), ("Gamma", Gamma),
    ("inverse_gaussian", InverseGaussian), ("inverse.gaussian", InverseGaussian),
    ("negative_binomial", NegativeBinomial), ("gaussian", Gaussian), (Binomial, Binomial)])
def test_family_resolves_names(spec, cls):
    fam = family(spec)
    assert type(fam) is cls and fam.link.name == cls.default_link


def test_family_passes_instances_through():
    probit = Binomial(link="probit")
    assert family(probit) is probit


def test_family_errors_name_the_value_and_the_choices():
    with pytest.raises(ArgumentError, match=r"family 'binomal' is not known. Did you mean "
                                            r"'binomial'\?.*'poisson'.*'negative_binomial'"):
        family("binomal")
    with pytest.raises(ArgumentError, match="family must be a family name .* got 3"):
        family(3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="got <class 'multilevel.families.family.Family'>"):
        family(Family)


# -- Gauss-Hermite rules ----------------------------------------------------------------------

@pytest.mark.parametrize("k", [int(k) for k in REFS["ghrule"]])
def test_gauss_hermite_matches_lme4(k):
    ref = {key: np.atleast_1d(v) for key, v in REFS["ghrule"][str(k)].items()}
    rule = gauss_hermite(k)
    assert rule.order == k
    np.testing.assert_allclose(rule.z, ref["z"], rtol=1e-13, atol=1e-14)
    # lme4's tabulated rules agree to ~2e-13 relative even in the 1e-79 tail weights of k = 100
    np.testing.assert_allclose(rule.w, ref["w"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(rule.log_density, ref["ldnorm"], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("k", [1, 3, 10, 25, 60, 100, 150, 300])
def test_gauss_hermite_integrates_normal_moments(k):
    rule = gauss_hermite(k)
    assert np.all(rule.w > 0) and np.all(np.diff(rule.z) > 0)
    assert rule.w.sum() == pytest.approx(1.0, abs=1e-14)
    # E Z^(2j) = (2j - 1)!! exactly for 2j <= 2k - 1
    for j in range(1, min(k, 6)):
        double_factorial = math.prod(range(1, 2 * j, 2))
        assert float(rule.w @ rule.z ** (2 * j)) == pytest.approx(double_factorial, rel=1e-11)
        assert abs(float(rule.w @ rule.z ** (2 * j - 1))) < 1e-12 * double_factorial
    if k >= 25:  # E cos(Z) = exp(-1/2)
        assert float(rule.w @ np.cos(rule.z)) == pytest.approx(math.exp(-0.5), rel=1e-13)


def test_gauss_hermite_is_cached_and_read_only():
    assert gauss_hermite(25) is gauss_hermite(25)
    with pytest.raises(ValueError):
        gauss_hermite(25).w[0] = 1.0


@pytest.mark.parametrize("k", [0, -1, 301, 2.5, "5", True])
def test_gauss_hermite_rejects_bad_orders(k):
    with pytest.raises(ArgumentError, match="number of quadrature nodes must be an integer"):
        gauss_hermite(k)  # type: ignore[arg-type]
