"""lme4 formula language: parsing and column naming."""

from multilevel.formula.parser import ParsedFormula, RandomTermSpec, parse_formula

__all__ = ["ParsedFormula", "RandomTermSpec", "parse_formula"]
