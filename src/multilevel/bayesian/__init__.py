"""Bayesian multilevel models (the ``bayes`` extra: numpyro, jax, arviz).

Nothing here is imported by ``import multilevel``: the public entry points in
:mod:`multilevel.api` import this package when they are called, and :func:`require` names the
``pip install`` to run when the extra is missing.
"""

from __future__ import annotations

from multilevel.errors import MissingExtraError

INSTALL_HINT = 'pip install "multilevel[bayes]"  (numpyro, jax, arviz)'


def require() -> None:
    """Import the ``bayes`` extra's packages or raise :class:`MissingExtraError` naming them."""
    missing = []
    for name in ("jax", "numpyro", "arviz"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"Bayesian fits need {', '.join(missing)}, which are not installed: run "
            f"{INSTALL_HINT}")
