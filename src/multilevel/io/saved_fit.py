"""``fit.save(path)`` and ``multilevel.load(path, data=None)``: which kind a fit is, and the
module that stores and rebuilds it (see docs/saved_fits.md for the format)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from multilevel.errors import (
    ArgumentError,
    ColumnNotFoundError,
    DataError,
    MultilevelError,
    MultilevelWarning,
    SavedFitError,
    public_api,
)
from multilevel.io import mixed_fits, structured_fits
from multilevel.io.archive import ArchiveReader, ArchiveWriter


def _kind(fit: Any) -> str:
    kind = getattr(type(fit), "kind", None)
    if kind not in ("lmer", "glmer", "lme", "gls", "nlme", "bayes"):
        raise SavedFitError(f"cannot save a {type(fit).__name__}: saving applies to fits of "
                            "lmer, glmer, lme, gls, nlme and bayes")
    return str(kind)


def _savers() -> dict[str, Any]:
    from multilevel.io import bayes_fits
    return {"lmer": mixed_fits.save_lmer, "glmer": mixed_fits.save_glmer,
            "lme": structured_fits.save_lme, "gls": structured_fits.save_gls,
            "nlme": structured_fits.save_nlme, "bayes": bayes_fits.save_bayes}


def _loaders() -> dict[str, Any]:
    from multilevel.io import bayes_fits
    return {"lmer": mixed_fits.load_lmer, "glmer": mixed_fits.load_glmer,
            "lme": structured_fits.load_lme, "gls": structured_fits.load_gls,
            "nlme": structured_fits.load_nlme, "bayes": bayes_fits.load_bayes}


def _path(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ArgumentError(f"path must be a file path (str or pathlib.Path), got "
                            f"{type(path).__name__}")
    return Path(path)


@public_api
def save(fit: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fit`` to ``path`` in multilevel's saved-fit format (a zip of JSON and NumPy
    ``.npy`` members with a checksummed manifest; never pickle). Returns the path.

    The call, the estimates, the optimizer record and the columns of the data the model uses
    are stored, so that :func:`load` alone gives back a fit that answers every method.
    """
    target = _path(path)
    kind = _kind(fit)
    writer = ArchiveWriter(kind)
    _savers()[kind](writer, fit)
    return writer.write(target)


@public_api
def load(path: str | os.PathLike[str], data: Any = None) -> Any:
    """Read a fit written by ``fit.save(path)``.

    The model is rebuilt from the stored call on the stored data (or on ``data``), and the
    result is assembled at the stored estimates without fitting again; the objective there must
    reproduce the stored value.

    Parameters
    ----------
    path : str or pathlib.Path
    data : pandas.DataFrame or polars.DataFrame, optional
        The data to rebuild the model on instead of the stored copy (the columns the model
        uses, the rows as when it was fitted).

    Returns
    -------
    The fit, of the kind that was saved (``LinearMixedModelResult``, ...).

    Raises
    ------
    SavedFitError
        No such file; not a saved fit; a member changed after writing (checksum); a format
        newer than this version reads; or ``data`` (or this multilevel version) on which the
        stored estimates do not give the stored objective.
    MissingExtraError
        A Bayesian fit without the ``bayes`` extra installed.

    Examples
    --------
    >>> sleep = ml.datasets.load("sleepstudy")
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    >>> path = fit.save("sleep.mlm")
    >>> again = ml.load(path)
    >>> bool((again.fixef == fit.fixef).all()), again.loglik == fit.loglik
    (True, True)
    >>> again = ml.load(path, data=sleep)      # rebuilt on your copy, checked against the file
    """
    source = _path(path)
    with ArchiveReader(source) as reader:
        loaders = _loaders()
        if reader.kind not in loaders:
            raise SavedFitError(f"{str(source)!r} holds a fit of kind {reader.kind!r}, which "
                                f"this version does not know (written by multilevel "
                                f"{reader.written_by}): upgrade multilevel")
        # every member the manifest names is checked against its checksum, whether this
        # kind's loader reads it or not (lmer's beta follows from theta): a file changed
        # after writing is refused whole
        for name in reader.manifest["members"]:
            reader.member(name)
        frame = mixed_fits.frame_or_none(data)
        with warnings.catch_warnings():
            # the fit's warnings were issued when it was fitted; its messages stay on record
            # (optsum.messages, the summary)
            warnings.simplefilter("ignore", MultilevelWarning)
            try:
                return loaders[reader.kind](reader, frame)
            except (DataError, ColumnNotFoundError) as exc:
                # the model's own checks of the data it is rebuilt on (a column missing from
                # data=, too few rows left)
                raise SavedFitError(f"the fit in {str(source)!r} cannot be rebuilt on "
                                    f"{mixed_fits.data_source(frame)}: {exc}") from exc
            except MultilevelError:
                raise
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                # members that pass their checksums but not their reader: a file written by
                # hand or by a broken writer, never one of ours
                raise SavedFitError(f"the saved fit {str(source)!r} cannot be read "
                                    f"({type(exc).__name__}: {exc}): the file is damaged or "
                                    "was not written by multilevel") from exc
