"""Every exception and warning a user of ``multilevel`` can meet.

Each error names what was wrong (the column, term, row or argument), where, and what to do.
All errors derive from :class:`MultilevelError`; each also derives from the closest built-in
exception so that ``except ValueError`` style handling keeps working.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar


class MultilevelError(Exception):
    """Base class of every error raised by ``multilevel`` for bad input or a failed fit."""


class FormulaError(MultilevelError, ValueError):
    """The model formula cannot be parsed or refers to something that is not allowed.

    Attributes
    ----------
    formula : str
        The formula as given.
    position : int or None
        0-based character offset of the problem in ``formula`` when known.
    """

    def __init__(self, message: str, formula: str = "", position: int | None = None) -> None:
        self.formula = formula
        self.position = position
        if formula and position is not None:
            caret = " " * (position + 4) + "^"
            message = f"{message} (at character {position + 1})\n    {formula}\n{caret}"
        super().__init__(message)


def _did_you_mean(name: str, candidates: list[str], cutoff: float) -> str:
    # Names that differ only in case come first (SUBJECT -> Subject scores low on similarity).
    same = [c for c in candidates if c.lower() == name.lower() and c != name]
    lowered = list(dict.fromkeys(c.lower() for c in candidates))
    similar = [c for low in difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=cutoff)
               for c in candidates if c.lower() == low]
    close = list(dict.fromkeys(same + similar))[:3]
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class _LookupMessageError(MultilevelError, KeyError):
    """A KeyError whose str() is its message (KeyError's own str() is the message's repr)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class ColumnNotFoundError(_LookupMessageError):
    """A formula names a column that is not in the data."""

    def __init__(self, column: str, available: Iterable[str], where: str = "formula") -> None:
        self.column = column
        avail = [str(a) for a in available]
        super().__init__(
            f"column {column!r} used in the {where} is not in the data."
            f"{_did_you_mean(column, avail, 0.6)} "
            f"Available columns: {', '.join(avail[:20])}{' ...' if len(avail) > 20 else ''}.")


class DataError(MultilevelError, ValueError):
    """The data cannot be used as given (wrong type, infinite values, no rows left, ...)."""


class IdentifiabilityError(MultilevelError, ValueError):
    """The random-effects structure cannot be estimated from these data
    (a grouping factor with one level, or as many levels as observations)."""


class OptimizerError(MultilevelError, ValueError):
    """An unknown optimizer name or an invalid starting value."""


class ModelComparisonError(MultilevelError, ValueError):
    """Models cannot be compared: fitted to different rows, not nested, or REML fits with
    different fixed effects compared without refitting."""


class ModelTooLargeError(MultilevelError, MemoryError):
    """The random-effects structure needs more memory than the dense blocks of the
    factorization allow (two or more grouping factors with very many levels each)."""


class ArgumentError(MultilevelError, ValueError, TypeError):
    """A function or method was called with an argument of the wrong type or value
    (``ddf=123``, ``seed=-1``, ``nsim="x"``); the message names the argument and what it takes.
    Derives from both ValueError and TypeError, the two built-ins Python uses for this."""


class NotApplicableError(MultilevelError, ValueError):
    """A method or test was asked of a model it does not apply to (Satterthwaite df for a
    generalized model, REML for a GLMM); the message says why and what applies instead."""


class NumericalError(MultilevelError, ArithmeticError):
    """The likelihood cannot be evaluated in floating point for these data (values so large or
    so small that the cross-products overflow or lose all precision); the message says which
    variable to rescale."""


class InternalError(MultilevelError, RuntimeError):
    """An unexpected failure inside ``multilevel`` (a bug, not bad input): the message names
    the original exception. Please report it with the call that raised it."""


class MissingExtraError(MultilevelError, ImportError):
    """An optional dependency is needed for this feature; the message names the pip install."""


class SavedFitError(MultilevelError, ValueError):
    """A saved fit cannot be read or does not reproduce itself: not a saved fit, damaged or
    changed after writing (a checksum that does not match), written by a newer format, or data
    given to ``multilevel.load`` on which the stored parameters do not give the stored
    likelihood. The message names the file, member or value concerned and what to do."""


class DistributedComputeError(MultilevelError, RuntimeError):
    """A pass over the partitions of Dask data failed on the cluster (workers lost more often
    than the retries allow); no fit is returned. The message says what to check."""


class DatasetNotFoundError(_LookupMessageError):
    """``multilevel.datasets.load`` was asked for a data set it does not ship."""

    def __init__(self, name: str, available: Iterable[str]) -> None:
        avail = sorted(available)
        super().__init__(
            f"no built-in data set named {name!r}.{_did_you_mean(name, avail, 0.5)} "
            f"Call multilevel.datasets.list() to see them all: {', '.join(avail)}.")


class MultilevelWarning(UserWarning):
    """Base class of every warning issued by ``multilevel``."""


class RankDeficiencyWarning(MultilevelWarning):
    """Columns of the fixed-effects matrix were aliased and dropped (as lme4 does)."""


class SingularFitWarning(MultilevelWarning):
    """The fit is on the boundary of the parameter space (a variance of zero or a correlation
    of +-1): the random-effects structure is too rich for the data."""


class ConvergenceWarning(MultilevelWarning):
    """The optimizer did not report convergence, or a convergence check failed."""


class MissingDataWarning(MultilevelWarning):
    """Rows with missing values in used columns were dropped."""


def quote_rows(rows: Iterable[int], value_of: Callable[[int], object], limit: int = 3,
               label_of: Callable[[int], object] | None = None) -> str:
    """``row 3 ('a'), row 7 (-1.0) and 4 more``: the first ``limit`` offending rows of a
    message, each with its value (``value_of(row)``; numpy scalars shown as Python ones) and
    its label (``label_of(row)``, the 0-based position by default)."""
    rows = [int(r) for r in rows]

    def plain(value: object) -> object:
        return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value

    shown = ", ".join(f"row {r if label_of is None else label_of(r)} ({plain(value_of(r))!r})"
                      for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return shown + more


F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

# What a message quotes from elsewhere (an original exception's text, a header line, a file
# name) is cut to this many characters: a 100 MB header line must not become a 100 MB message.
MAX_QUOTED = 300


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` on one line (line breaks and runs of blanks become one space), cut to
    ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + " ..."


def public_api(func: F) -> F:
    """Mark ``func`` as part of the public API: any exception that is not one of ours leaves it
    as an :class:`InternalError` (chained to the original), so that callers only ever see
    ``multilevel.errors`` types. User errors are raised as typed errors where they are
    detected; this is the net under them, and the fuzz tests treat reaching it as a bug."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MultilevelError:
            raise
        except TypeError as exc:
            # a call that does not match the signature (a misspelt keyword such as lme4's
            # REML=, a missing argument) is the user's to fix, not our bug
            mismatch = _signature_mismatch(func, args, kwargs)
            if mismatch is None:
                raise InternalError(_internal_message(func, exc)) from exc
            raise ArgumentError(mismatch) from None
        except Exception as exc:  # the API boundary: everything else is our bug
            raise InternalError(_internal_message(func, exc)) from exc

    return guarded  # type: ignore[return-value]


def _internal_message(func: Callable[..., Any], exc: Exception) -> str:
    return (f"{func.__qualname__} failed unexpectedly with {type(exc).__name__}: "
            f"{shorten(str(exc))}. This is a bug in multilevel; please report it with the "
            "call that raised it")


def _signature_mismatch(func: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> str | None:
    """Why ``func(*args, **kwargs)`` does not match ``func``'s signature, naming the argument
    (and the parameter meant, for a keyword spelt another way); None when it matches."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        names = [n for n, p in sig.parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]
        unknown = [k for k in kwargs if k not in sig.parameters]
        if unknown:
            key = unknown[0]
            close = [n for n in names if n.lower() == key.lower()]
            close = close or difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return (f"{func.__name__}() has no argument {key!r}{hint} Its arguments are: "
                    f"{', '.join(names)}")
        return f"{func.__name__}(): {exc}"
    return None


def public_methods(cls: C) -> C:
    """Apply :func:`public_api` to every public method and property of ``cls``, inherited ones
    included (and to ``__init__``, ``__str__``, ``__repr__``, ``_repr_html_``); the wrappers
    are set on ``cls`` itself, so a base class stays as it was."""
    special = {"__init__", "__str__", "__repr__", "_repr_html_"}
    seen: set[str] = set()
    for klass in cls.__mro__[:-1]:  # object's own methods need no net
        for name, attr in vars(klass).items():
            if name in seen or (name.startswith("_") and name not in special):
                continue
            seen.add(name)
            if isinstance(attr, property):
                setattr(cls, name, property(
                    public_api(attr.fget) if attr.fget else None, attr.fset, attr.fdel,
                    attr.__doc__))
            elif isinstance(attr, functools.cached_property):
                wrapped = functools.cached_property(public_api(attr.func))
                wrapped.__set_name__(cls, name)
                setattr(cls, name, wrapped)
            elif isinstance(attr, classmethod | staticmethod):
                setattr(cls, name, type(attr)(public_api(attr.__func__)))
            elif callable(attr) and not isinstance(attr, type):
                setattr(cls, name, public_api(attr))
    return cls
