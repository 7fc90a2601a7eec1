"""Immutable fit results, summaries and tables."""

from multilevel.results.lmm_result import LinearMixedModelResult

__all__ = ["LinearMixedModelResult"]
