"""How the inference layer fits a model it has built from a fitted one (through
``fit.model.replace(...)``, the one refit path): the result is of the same kind as the fit it
came from, linear or generalized. Also the two model edits that several tools share: a formula
written back from its parts, and a design with one fixed effect moved into the offset."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from multilevel.data.design import ModelDesign
from multilevel.errors import MultilevelError, MultilevelWarning
from multilevel.formula.parser import RandomTermSpec
from multilevel.models.glmm import GLMMFit
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


def fit_like(fit: MixedModelResult, model: Any) -> MixedModelResult:
    """``model`` (a copy of ``fit.model`` made by ``replace``) optimized, as a result of the
    same kind as ``fit``."""
    if isinstance(fit, GeneralizedLinearMixedModelResult):
        return GeneralizedLinearMixedModelResult.from_model(model, model.optimize())
    return LinearMixedModelResult.from_model(model, model.optimize())


def refit_formula(fit: MixedModelResult, formula: str, **settings: Any) -> MixedModelResult:
    """``formula`` fitted to the fit's data with every other setting of its model kept but
    the ``settings`` named (passed to ``model.replace``); the warnings of the refit, singular
    fits included, are the caller's to report."""
    if fit.model.data is None:
        raise MultilevelError("this fit does not keep its data (it was built from a design); "
                              "refit it with multilevel.lmer or multilevel.glmer(formula, data) "
                              "first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultilevelWarning)
        return fit_like(fit, fit.model.replace(formula=formula, **settings))


def random_text(spec: RandomTermSpec) -> str:
    """A random-effects term as lme4 writes it: ``(Days | Subject)``."""
    return f"({spec.lhs.replace('**', '^')} | {spec.group_text})"


def formula_text(response: str, fixed: Sequence[str], random: Sequence[RandomTermSpec],
                 offsets: Sequence[str] = ()) -> str:
    """An lme4 formula from its parts: fixed-effects term labels (``"0"`` / ``"1"`` for the
    intercept), random-effects terms and offset expressions."""
    rhs = [*fixed, *(f"offset({o.replace('**', '^')})" for o in offsets),
           *(random_text(r) for r in random)]
    return f"{response.replace('**', '^')} ~ {' + '.join(rhs)}"


def fixed_in_offset(design: ModelDesign, j: int, value: float) -> ModelDesign:
    """The design without fixed-effects column ``j``, with ``value`` times that column added
    to the offset: the model with beta_j held at ``value`` (profiles, likelihood-ratio tests
    of one coefficient)."""
    keep = np.ones(design.X.shape[1], dtype=bool)
    keep[j] = False
    offset = value * design.X[:, j] + (0.0 if design.offset is None else design.offset)
    return replace(design, X=np.ascontiguousarray(design.X[:, keep]),
                   fixed_names=tuple(n for n, k in zip(design.fixed_names, keep, strict=True)
                                     if k),
                   offset=offset, fixed_spec=None)


def glmm_at(fit: GeneralizedLinearMixedModelResult, model: Any,
            ) -> GeneralizedLinearMixedModelResult:
    """A GLMM result carrying ``fit``'s parameters on another model of the same family (a
    larger design, to simulate from): the conditional modes are solved there, nothing is
    estimated."""
    if fit.model.family.has_dispersion:
        log_param: float | None = float(np.log(fit.dispersion))
    elif fit.model.estimate_size and fit.nb_size is not None:
        log_param = float(np.log(fit.nb_size))
    else:
        log_param = None
    modes = model.modes(fit.theta, fit.beta, log_param)
    found = GLMMFit(opt=fit.optsum, theta=fit.theta.copy(), beta=fit.beta.copy(),
                    family=fit.family, dispersion=fit.dispersion, modes=modes, stage0=None)
    return GeneralizedLinearMixedModelResult.from_model(model, found)
