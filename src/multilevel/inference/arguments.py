"""Checks of the arguments of the public inference functions: each raises
:class:`~multilevel.errors.ArgumentError` naming the argument, what it got and what it takes,
before any work is done (so a bad ``seed`` or ``nsim`` never reaches numpy as a cryptic error)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from multilevel.errors import ArgumentError, NotApplicableError
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_fit(fit: Any, name: str = "fit") -> MixedModelResult:
    """``fit`` must be a fitted model (what :func:`multilevel.lmer` or
    :func:`multilevel.glmer` returns)."""
    if not isinstance(fit, MixedModelResult):
        raise ArgumentError(f"{name} must be a fitted model (the result of multilevel.lmer, "
                            f"multilevel.glmer or a model's .fit()), got {type(fit).__name__} "
                            f"{_shown(fit)}")
    return fit


def check_linear(fit: Any, what: str, instead: str, name: str = "fit",
                 ) -> LinearMixedModelResult:
    """``fit`` must be a linear mixed model: ``what`` (a method defined for the linear model's
    Gaussian response only) raises :class:`~multilevel.errors.NotApplicableError` for any
    other kind, with ``instead`` (what applies there) in its message."""
    check_fit(fit, name)
    if not isinstance(fit, LinearMixedModelResult):
        raise NotApplicableError(f"{what} does not apply to {model_kind(fit)}: it is defined "
                                 f"for the linear mixed model (lmer) only. {instead}")
    return fit


def model_kind(fit: MixedModelResult) -> str:
    """The kind of a fit in words, for messages."""
    if isinstance(fit, GeneralizedLinearMixedModelResult):
        return f"a generalized linear mixed model (glmer, {fit.family_title} family)"
    if isinstance(fit, LinearMixedModelResult):
        return "a linear mixed model (lmer)"
    return f"a {type(fit).__name__}"


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """A whole number of at least ``minimum`` (bool is refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be a whole number (at least {minimum}), got "
                            f"{type(value).__name__} {_shown(value)}")
    if value < minimum:
        raise ArgumentError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_seed(value: Any, name: str = "seed") -> int | None:
    """None or a non-negative whole number (numpy's seeds are non-negative)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be None or a non-negative whole number, got "
                            f"{type(value).__name__} {_shown(value)}")
    if value < 0:
        raise ArgumentError(f"{name} must be a non-negative whole number, got {value}; use "
                            "for example seed=1")
    return int(value)


def check_n_jobs(value: Any, name: str = "n_jobs") -> int | None:
    """None (all cores) or a positive whole number of worker processes."""
    return None if value is None else check_count(value, name, 1)


def check_probability(value: Any, name: str) -> float:
    """A number strictly between 0 and 1 (a confidence level, a significance level)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number between 0 and 1, got "
                            f"{type(value).__name__} {_shown(value)}")
    if not 0 < float(value) < 1:
        raise ArgumentError(f"{name} must be strictly between 0 and 1, got {value}")
    return float(value)


def check_finite(value: Any, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number, got {type(value).__name__} "
                            f"{_shown(value)}")
    if not math.isfinite(float(value)):
        raise ArgumentError(f"{name} must be a finite number, got {value}")
    return float(value)


def check_flag(value: Any, name: str) -> bool:
    """True or False (numpy booleans accepted)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ArgumentError(f"{name} must be True or False, got {type(value).__name__} "
                            f"{_shown(value)}")
    return bool(value)


def check_text(value: Any, name: str, choices: Sequence[str] | None = None) -> str:
    """A string, one of ``choices`` when given."""
    if not isinstance(value, str):
        wanted = f"one of {', '.join(map(repr, choices))}" if choices else "a string"
        raise ArgumentError(f"{name} must be {wanted}, got {type(value).__name__} "
                            f"{_shown(value)}")
    if choices is not None and value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(map(repr, choices))}, got "
                            f"{_shown(value)}")
    return value


def check_ddf(value: Any, name: str = "ddf") -> str | None:
    """None (z tests) or the name of a denominator-df method (checked by name later)."""
    if value is not None and not isinstance(value, str):
        raise ArgumentError(f"{name} must be the name of a denominator-df method (for example "
                            f"'satterthwaite' or 'kenward-roger') or None, got "
                            f"{type(value).__name__} {_shown(value)}")
    return value
