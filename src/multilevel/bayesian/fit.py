"""Fitting a Bayesian multilevel model: priors resolved, the log posterior built, NUTS run,
the posterior named and wrapped. ``ml.bayes``, ``ml.bayes_nlme`` and ``ml.prior_predictive``
are thin layers over :func:`fit_model`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from multilevel.bayesian.likelihood import ResponseFamily
from multilevel.bayesian.model_spec import BayesModel
from multilevel.bayesian.priors import (
    Prior,
    ResolvedPrior,
    default_priors,
    resolve_priors,
)
from multilevel.bayesian.sampler import NutsSettings
from multilevel.errors import ArgumentError

# brms's family names, for its default priors
_BRMS_FAMILY = {"negative.binomial": "negbinomial", "inverse.gaussian": "inverse.gaussian"}


def as_prior_list(priors: Any) -> list[Prior]:
    """``priors=`` as a list: None, one ``ml.prior(...)``, or a sequence of them."""
    if priors is None:
        return []
    if isinstance(priors, Prior):
        return [priors]
    if isinstance(priors, Sequence) and not isinstance(priors, str):
        bad = [p for p in priors if not isinstance(p, Prior)]
        if not bad:
            return list(priors)
    raise ArgumentError("priors must be ml.prior(...) or a list of them, e.g. "
                        "[ml.prior('normal(0, 10)', class_='b'), "
                        "ml.prior('exponential(1)', class_='sigma')]")


def model_priors(model: BayesModel, priors: Any) -> list[ResolvedPrior]:
    """Every slot's prior: the user's where given (brms's precedence), else brms's default."""
    slots = model.slots()
    fam = model.family
    defaults = default_priors(
        slots, _BRMS_FAMILY.get(fam.name, fam.name), fam.link, model.y,
        trials=model.wt if fam.name == "binomial" else None,
        nonlinear=model.nonlinear is not None, offset=model.offset)
    return resolve_priors(slots, as_prior_list(priors), defaults)


def check_improper(priors: list[ResolvedPrior], what: str) -> None:
    """Sampling from the prior needs proper priors everywhere."""
    flat = [r.slot.label() for r in priors if r.distribution.name == "flat"]
    if flat:
        raise ArgumentError(f"{what} needs a proper prior on every parameter; these have "
                            f"brms's flat default: {', '.join(flat)}. Give them priors, e.g. "
                            "ml.prior('normal(0, 10)', class_='b')")


def fit_model(model: BayesModel, priors: Any, settings: NutsSettings,
              data_name: str | None = None, sample_prior: bool = False) -> Any:
    """Sample the posterior (or, with ``sample_prior``, the prior) of ``model``."""
    from multilevel.bayesian.sampler import prepare_jax
    prepare_jax()
    from multilevel.bayesian.density import build_density
    from multilevel.bayesian.posterior import inference_data, posterior_draws
    from multilevel.bayesian.result import BayesResult
    from multilevel.bayesian.sampler import run_nuts

    resolved = model_priors(model, priors)
    if sample_prior:
        check_improper(resolved, "sampling from the prior")
    density = build_density(model, resolved)
    draws = run_nuts(partial(density.potential_for, prior_only=sample_prior), density.data,
                     density.shapes, settings,
                     key=(density.structure_key(), sample_prior))
    named, loglik = posterior_draws(density, draws.z)
    assert loglik is not None
    idata = inference_data(density, draws, named, loglik)
    result = BayesResult(density, draws, idata, settings, data_name=data_name)
    if not sample_prior:
        result.warn()
    return result


def response_family(family: Any) -> ResponseFamily:
    """The sampler's family from what the user passed (a name, class or instance)."""
    from multilevel.bayesian.likelihood import response_family as sampler_family
    from multilevel.families.resolve import family as resolve
    return sampler_family(resolve(family))


def data_name(data: Any) -> str | None:
    """A name for the data in the summary: a data set's name attribute, if any."""
    name = getattr(data, "attrs", {}).get("name") if hasattr(data, "attrs") else None
    return str(name) if name else None

