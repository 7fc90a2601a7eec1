"""GLMM fits that must agree: rows permuted, grouping levels renamed and reordered, a
two-level factor response with its levels reversed; and adaptive Gauss-Hermite quadrature,
checked against an independent implementation and converging as the nodes grow.

Data: lme4's cbpp (``cbind(incidence, size - incidence) ~ period + (1 | herd)``) and mlmRev's
Contraception, as R holds them (tests/reference/data, written by make_glmm_refs.R);
``contraception_rev`` is Contraception with ``use`` re-levelled to (Y, N).
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import special

import multilevel as ml
from multilevel.models.pirls import agq_deviance, laplace_deviance

from reference_data import REF, load_data

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CONTRACEPTION = "use ~ age + urban + (1 | district)"
# lme4 1.1-31's cbpp nAGQ = 25 fit: the shared fixture (default tolerances) and this
# repository's tightly solved one (make_glmm_tight_refs.R, tolPwrss = 1e-12)
AGQ25_REFS = {"shared": REF / "glmm_shared" / "cbpp_agq25.json",
              "tight": REF / "glmm_tight" / "cbpp_agq25.json"}


def agq25_ref(which: str) -> dict:
    return dict(json.loads(AGQ25_REFS[which].read_text()))


@cache
def cbpp_fit(nagq: int = 1) -> ml.GeneralizedLinearMixedModelResult:
    return ml.glmer(CBPP, load_data("cbpp"), nagq=nagq)


def assert_same_fit(a: ml.GeneralizedLinearMixedModelResult,
                    b: ml.GeneralizedLinearMixedModelResult) -> None:
    assert a.nobs == b.nobs
    assert a.loglik == pytest.approx(b.loglik, rel=1e-8)
    np.testing.assert_allclose(a.beta, b.beta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(a.vcov)), np.sqrt(np.diag(b.vcov)), rtol=1e-4)


@pytest.mark.parametrize("nagq", [1, 9])
def test_row_order(nagq: int) -> None:
    df = load_data("cbpp")
    shuffled = df.iloc[np.random.default_rng(20).permutation(len(df))].reset_index(drop=True)
    assert_same_fit(cbpp_fit(nagq), ml.glmer(CBPP, shuffled, nagq=nagq))


def test_row_order_binary_with_weights_and_offset() -> None:
    # 0/1 responses, prior weights and an offset, two crossed factors, Laplace
    rng = np.random.default_rng(21)
    n = 400
    df = pd.DataFrame({"a": rng.integers(0, 15, n).astype(str), "b": rng.integers(0, 8, n),
                       "x": rng.normal(size=n), "off": rng.normal(0, 0.3, n)})
    eta = (0.3 + 0.8 * df["x"] + df["off"] + rng.normal(0, 0.7, 15)[df["a"].astype(int)]
           + np.array([-0.8, -0.5, -0.3, 0.0, 0.2, 0.4, 0.6, 0.9])[df["b"]])
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    df["b"] = df["b"].astype(str)
    formula = "y ~ x + (1 | a) + (1 | b)"
    base = ml.glmer(formula, df, offset="off")
    perm = rng.permutation(n)
    shuffled = ml.glmer(formula, df.iloc[perm].reset_index(drop=True),
                        offset=df["off"].to_numpy()[perm])
    assert_same_fit(base, shuffled)


def test_level_labels_renamed_and_reordered() -> None:
    df = load_data("cbpp")
    # new labels whose sorted order is a different permutation of the herds
    mapping = {h: f"herd_{(int(h) * 7) % 15:02d}" for h in df["herd"].cat.categories}
    renamed = df.assign(herd=df["herd"].astype(str).map(mapping))
    fit = ml.glmer(CBPP, renamed)
    assert_same_fit(cbpp_fit(), fit)
    base_modes = cbpp_fit().ranef["herd"]["(Intercept)"]
    new_modes = fit.ranef["herd"]["(Intercept)"]
    for old, new in mapping.items():
        assert new_modes[new] == pytest.approx(base_modes[old], abs=1e-6)
    # a Categorical whose category order is reversed: same fit again
    reversed_levels = df.assign(herd=df["herd"].cat.reorder_categories(
        list(reversed(df["herd"].cat.categories))))
    assert_same_fit(cbpp_fit(), ml.glmer(CBPP, reversed_levels))


def test_reversed_response_levels_flip_the_fixed_effects() -> None:
    # success is the second level: N/Y models "uses contraception", Y/N "does not"
    forward = ml.glmer(CONTRACEPTION, load_data("Contraception"))
    backward = ml.glmer(CONTRACEPTION, load_data("contraception_rev"))
    assert forward.model.design.response_levels == ("N", "Y")
    assert backward.model.design.response_levels == ("Y", "N")
    assert backward.loglik == pytest.approx(forward.loglik, rel=1e-8)
    np.testing.assert_allclose(backward.beta, -forward.beta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(backward.theta, forward.theta, rtol=0, atol=1e-6)
    # the covariance comes from a finite-difference Hessian: equal to its precision
    V = forward.vcov.to_numpy()
    np.testing.assert_allclose(backward.vcov.to_numpy(), V, rtol=0,
                               atol=1e-4 * float(np.max(np.diag(V))))
    np.testing.assert_allclose(backward.ranef["district"].to_numpy(),
                               -forward.ranef["district"].to_numpy(), atol=1e-5)


# -- adaptive Gauss-Hermite quadrature ----------------------------------------------------------

def _independent_agq(theta: float, beta: np.ndarray, nodes: int) -> float:
    """The cbpp log-likelihood by adaptive Gauss-Hermite quadrature written out from the
    textbook (Pinheiro & Bates 1995): each herd's integral over b ~ N(0, theta^2), centred at
    the mode of its integrand (Newton to machine precision), scaled by the exact curvature
    there, with scipy's Gauss-Hermite nodes; the binomial constants included."""
    df = load_data("cbpp")
    k = df["incidence"].to_numpy(float)
    n = df["size"].to_numpy(float)
    herd = df["herd"].cat.codes.to_numpy()
    X = ml.GeneralizedLinearMixedModel(CBPP, df).X
    eta0 = X @ beta
    const = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    z, w = special.roots_hermite(nodes)
    total = 0.0
    for j in range(herd.max() + 1):
        rows = herd == j

        def h(u: np.ndarray, rows: np.ndarray = rows) -> np.ndarray:
            e = eta0[rows, None] + theta * u[None, :]
            ll = const[rows, None] + k[rows, None] * e - n[rows, None] * np.logaddexp(0, e)
            return ll.sum(axis=0) - 0.5 * u * u

        u = 0.0
        for _ in range(100):
            p = special.expit(eta0[rows] + theta * u)
            grad = theta * np.sum(k[rows] - n[rows] * p) - u
            curv = theta ** 2 * np.sum(n[rows] * p * (1 - p)) + 1.0
            u += grad / curv
            if abs(grad) < 1e-14:
                break
        p = special.expit(eta0[rows] + theta * u)
        s = 1.0 / np.sqrt(theta ** 2 * np.sum(n[rows] * p * (1 - p)) + 1.0)
        nodes_u = u + np.sqrt(2.0) * s * z
        total += float(np.log(np.sqrt(2.0) * s * np.sum(w * np.exp(h(nodes_u) + z * z))
                              / np.sqrt(2.0 * np.pi)))
    return total


@pytest.mark.parametrize("nodes", [1, 2, 3, 5, 9, 25])
def test_quadrature_against_an_independent_implementation(nodes: int) -> None:
    # at the Laplace estimates, and at a point away from them
    fit = cbpp_fit(1)
    for theta, beta in ((fit.theta, fit.beta), (1.5 * fit.theta, fit.beta + 0.2)):
        model = ml.GeneralizedLinearMixedModel(CBPP, load_data("cbpp"), nagq=nodes)
        ours = -0.5 * model.objective(theta, beta)
        assert ours == pytest.approx(_independent_agq(float(theta[0]), beta, nodes),
                                     rel=1e-10, abs=0)


def test_one_node_is_the_laplace_approximation() -> None:
    fit = cbpp_fit(1)
    model = fit.model
    modes = model.modes(fit.theta, fit.beta)
    resp = model.response_at(None)
    laplace = laplace_deviance(resp, modes)
    assert agq_deviance(model.predictor, resp, modes, fit.theta, 1) == pytest.approx(
        laplace, rel=1e-12)
    assert fit.objective == pytest.approx(laplace, rel=1e-12)
    # and the quadrature model with one node is the Laplace model (nagq = 1 is Laplace)
    assert model.objective(fit.theta, fit.beta) == pytest.approx(laplace, rel=1e-12)


def test_log_likelihood_converges_as_the_nodes_grow() -> None:
    nodes = [1, 3, 5, 9, 15, 25]
    loglik = {k: cbpp_fit(k).loglik for k in nodes}
    gaps = [abs(loglik[k] - loglik[25]) for k in nodes[:-1]]
    # each rule is closer to the 25-node value than the one before
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[0] > 1e-2  # Laplace is visibly off for cbpp (0.043)
    assert gaps[-1] < 1e-6  # 15 and 25 nodes agree
    # quadrature improves on Laplace: the quadrature optimum's likelihood is higher
    assert loglik[25] > loglik[1]


@pytest.mark.parametrize("which", list(AGQ25_REFS))
def test_quadrature_log_likelihood_includes_the_saturated_term(which: str) -> None:
    # lme4's logLik for nAGQ > 1 leaves out the saturated binomial constants (-50.005 for
    # cbpp); the complete marginal log-likelihood at lme4's estimates, by stats::integrate,
    # is marginal_quadrature.logLik_marginal_quadrature (README.md of shared/reference).
    ref = agq25_ref(which)
    complete = ref["marginal_quadrature"]["logLik_marginal_quadrature"]
    saturated = ref["marginal_quadrature"].get("saturated_loglik", ref.get("saturated_loglik"))
    assert ref["logLik"] == pytest.approx(complete - saturated, rel=1e-9)
    fit = cbpp_fit(25)
    # our optimum is lme4's to its optimizer tolerance: the log-likelihood agrees to 1e-8
    assert fit.loglik == pytest.approx(complete, rel=1e-8)
    assert fit.loglik >= complete - 1e-9  # and is not below it (we maximise the same thing)
    assert fit.deviance == pytest.approx(-2 * complete, rel=1e-8)
    assert fit.aic == pytest.approx(-2 * complete + 2 * 5, rel=1e-8)
    # at lme4's own estimates, our 25-node value is the integral itself
    theta = np.array(list(ref["theta"].values()))
    beta = np.array(list(ref["fixef"].values()))
    assert -0.5 * fit.model.objective(theta, beta) == pytest.approx(complete, rel=1e-11)
