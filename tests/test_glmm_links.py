"""Non-canonical links: every family and link glmer accepts fits without numpy warnings
leaking from trial points, recovers the simulated effects, and a link that lets the mean leave
the family's range fails with a message that says so."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel import families as F
from multilevel.errors import NumericalError


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n, groups = 600, 30
    g = rng.integers(0, groups, n)
    x = rng.standard_normal(n)
    b = rng.standard_normal(groups) * 0.5
    eta = 0.5 + 0.3 * x + b[g]
    out = pd.DataFrame({"g": g.astype(str), "x": x})
    out["yb"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    out["yp"] = rng.poisson(np.exp(eta))
    out["yg"] = rng.gamma(2.0, np.exp(eta) / 2.0)
    out["yn"] = rng.normal(np.exp(eta), 0.5)
    out["yig"] = rng.wald(np.exp(eta), 5.0)
    return out


# slope: the simulated one where the link is the simulated (log) one; else +1 or -1, the sign
# the slope must have on that link's scale (the mean increases with x: 1/mu^2 decreases)
@pytest.mark.parametrize("response, family, slope", [
    ("yb", F.Binomial(link="cauchit"), +1),
    ("yp", F.Poisson(link="sqrt"), +1),
    ("yg", F.Gamma(link="identity"), +1),
    ("yg", F.Gamma(link="log"), 0.3),
    ("yn", F.Gaussian(link="log"), 0.3),
    ("yig", F.InverseGaussian(), -1),
    ("yig", F.InverseGaussian(link="log"), 0.3),
])
def test_link_fits_cleanly(data, response, family, slope):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from trial points, no fit warning
        fit = ml.glmer(f"{response} ~ x + (1 | g)", data, family=family)
    assert fit.converged
    se = float(np.sqrt(fit.vcov.loc["x", "x"]))
    if abs(slope) != 1:  # the log link is the simulated one: the slope is recovered
        assert abs(fit.fixef["x"] - slope) < 4 * se
    else:  # another link: the slope has the expected sign and is clearly nonzero
        assert fit.fixef["x"] * slope / se > 3


def test_link_outside_the_mean_space_is_explained(data):
    with pytest.raises(NumericalError, match="link does not keep the poisson mean inside"):
        ml.glmer("yp ~ x + (1 | g)", data, family=F.Poisson(link="identity"))
