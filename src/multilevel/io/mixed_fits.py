"""Saving and loading the lme4 kinds: ``lmer`` (LinearMixedModelResult) and ``glmer``
(GeneralizedLinearMixedModelResult).

A loaded fit is the model rebuilt from the stored call and data, with the result assembled at
the stored parameters -- theta for ``lmer`` (beta and sigma follow from it exactly, as in the
fit), theta, beta and the family's parameter for ``glmer`` -- and the stored optimizer record.
Nothing is optimized again. The objective there must reproduce the stored value.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from multilevel.data.frame import to_pandas
from multilevel.errors import MultilevelError, MultilevelWarning, SavedFitError
from multilevel.families import FAMILIES
from multilevel.families.family import Family
from multilevel.families.negative_binomial import NegativeBinomial
from multilevel.io.archive import ArchiveReader, ArchiveWriter
from multilevel.io.codec import (
    check_reproduced,
    from_json,
    read_optsum,
    to_json,
    write_optsum,
)
from multilevel.io.frames import read_frame, used_columns, write_frame
from multilevel.models.glmm import GLMMFit, GLMMStages
from multilevel.models.lmm import ModelStages
from multilevel.results.base import MODEL_CLASSES
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


# -- shared pieces: the data, the weights and offset arguments, the family -------------------
def write_source(w: ArchiveWriter, name: str, value: Any) -> Any:
    """A weights / offset argument as the call gave it: None, a column name, or values (one
    per data row, stored as an array member)."""
    if value is None or isinstance(value, str):
        return value
    arr = np.asarray(value, dtype=float)
    w.add_array(f"call/{name}.npy", arr)
    return {"array": f"call/{name}.npy"}


def read_source(r: ArchiveReader, value: Any) -> Any:
    """The argument written by :func:`write_source`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("array"), str):
        return r.array(value["array"])
    raise SavedFitError(f"a stored weights / offset argument is malformed ({value!r:.60}): "
                        "the file is damaged")


def write_data(w: ArchiveWriter, data: Any, texts: list[str]) -> None:
    """The columns of the fit's data that its formulas and arguments name, every row as the
    user gave them (rows the fit dropped for missing values included, so that the rebuilt
    model drops the same rows and the row labels stay the user's)."""
    if data is None:
        raise SavedFitError("this fit keeps no data (it was built from a design, not from "
                            "data): refit it with its formula and data, then save that fit")
    frame = to_pandas(data)
    write_frame(w, "data", frame[used_columns(frame, texts)])


def family_to_json(fam: Family) -> dict[str, Any]:
    """A family by its registry name, link and (negative binomial) fixed size."""
    for key, cls in FAMILIES.items():
        if type(fam) is cls:
            out: dict[str, Any] = {"name": key, "link": fam.link.name}
            if isinstance(fam, NegativeBinomial):
                out["theta"] = fam.theta
            return out
    raise SavedFitError(f"cannot save a fit of the custom family {type(fam).__name__}; only "
                        f"the built-in families ({', '.join(FAMILIES)}) are stored")


def family_from_json(spec: dict[str, Any]) -> Family:
    """The family written by :func:`family_to_json`."""
    try:
        cls = FAMILIES[spec["name"]]
        if cls is NegativeBinomial:
            return NegativeBinomial(link=spec["link"], theta=spec.get("theta"))
        return cls(link=spec["link"])
    except (KeyError, TypeError) as exc:
        raise SavedFitError(f"the stored family {spec!r:.80} is not known to this version: "
                            "the file is damaged or newer than this multilevel") from exc


def _quietly(build: Any) -> Any:
    # the warnings of building the model (scales, dropped rows) were the original fit's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultilevelWarning)
        return build()


def data_source(data: Any) -> str:
    """How a message names the data a model was rebuilt on."""
    return "the stored data" if data is None else "the data given to load"


# -- lmer ------------------------------------------------------------------------------------
def save_lmer(w: ArchiveWriter, fit: LinearMixedModelResult) -> None:
    """Store an ``lmer`` fit."""
    model = fit.model
    start = model.start
    call = {
        "formula": model.design.formula.text, "reml": bool(model.reml),
        "optimizer": model.optimizer, "optimizer_settings": to_json(model.optimizer_settings),
        "calc_derivs": bool(model.calc_derivs),
        "start": to_json(start) if start is not None else None,
        "weights": write_source(w, "weights", model.weights_source),
        "offset": write_source(w, "offset", model.offset_source),
    }
    w.add_json("call.json", call)
    write_data(w, model.data, [call["formula"], *(v for v in (call["weights"], call["offset"])
                                                 if isinstance(v, str))])
    w.add_array("estimates/theta.npy", fit.theta)
    w.add_array("estimates/beta.npy", fit.beta)
    write_optsum(w, "optsum", fit.optsum)
    w.add_json("estimates/objective.json", {"objective": to_json(model.objective(fit.theta)),
                                            "sigma": to_json(fit.sigma)})


def load_lmer(r: ArchiveReader, data: Any) -> LinearMixedModelResult:
    """Rebuild an ``lmer`` fit at its stored theta."""
    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else data
    try:
        # the public class (multilevel.api's, registered there), so that model.fit() works
        model_class = MODEL_CLASSES.get("lmer", ModelStages)
        model = _quietly(lambda: model_class(
            call["formula"], frame, reml=bool(call["reml"]),
            weights=read_source(r, call["weights"]), offset=read_source(r, call["offset"]),
            optimizer=call["optimizer"], start=from_json(call["start"]),
            optimizer_settings=from_json(call["optimizer_settings"]),
            calc_derivs=bool(call["calc_derivs"])))
    except KeyError as exc:
        if isinstance(exc, MultilevelError):  # a column the data lack (ColumnNotFoundError)
            raise
        raise SavedFitError(f"the stored call lacks {exc}: the file is damaged") from exc
    theta = r.array("estimates/theta.npy")
    stored = from_json(r.json("estimates/objective.json")["objective"])
    if theta.shape != (model.layout.n_theta,):
        raise SavedFitError(f"the stored theta has {theta.size} values, the model rebuilt on "
                            f"{data_source(data)} {model.layout.n_theta}: the data or the "
                            "multilevel version differ")
    check_reproduced("REML criterion" if model.reml else "deviance", float(stored),
                     model.objective(theta), data_source(data))
    opt = read_optsum(r, "optsum")
    return LinearMixedModelResult.from_model(model, opt)


# -- glmer -----------------------------------------------------------------------------------
def _family_parameter(fit: GeneralizedLinearMixedModelResult) -> float | None:
    model = fit.model
    if model.family.has_dispersion:
        return float(fit.dispersion)
    if model.estimate_size and fit.nb_size is not None:
        return float(fit.nb_size)
    return None


def save_glmer(w: ArchiveWriter, fit: GeneralizedLinearMixedModelResult) -> None:
    """Store a ``glmer`` fit."""
    model = fit.model
    s = model.settings
    call = {
        "formula": model.design.formula.text, "family": family_to_json(model.family),
        "nagq": s.nagq, "optimizer": s.optimizer,
        "optimizer_settings": to_json(s.optimizer_settings), "calc_derivs": s.calc_derivs,
        "laplace": s.curvature,
        "start": to_json({k: v for k, v in model.start.items()}) if model.start else None,
        "weights": write_source(w, "weights", model.weights_source),
        "offset": write_source(w, "offset", model.offset_source),
    }
    w.add_json("call.json", call)
    write_data(w, model.data, [call["formula"], *(v for v in (call["weights"], call["offset"])
                                                 if isinstance(v, str))])
    w.add_array("estimates/theta.npy", fit.theta)
    w.add_array("estimates/beta.npy", fit.beta)
    param = _family_parameter(fit)
    # the criterion at the optimum as the optimizer recorded it (not evaluated again here: the
    # penalized least-squares iteration starts from where it last stopped, so a fresh
    # evaluation may differ in the last bits, and a loaded fit saved again must give the same
    # file)
    w.add_json("estimates/objective.json", {
        "objective": to_json(fit.optsum.fmin), "family_parameter": to_json(param),
        "dispersion": to_json(fit.dispersion)})
    write_optsum(w, "optsum", fit.optsum)
    if fit.stage0 is not None:
        write_optsum(w, "stage0", fit.stage0)


def load_glmer(r: ArchiveReader, data: Any) -> GeneralizedLinearMixedModelResult:
    """Rebuild a ``glmer`` fit at its stored theta, beta and family parameter."""
    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else data
    try:
        start = from_json(call["start"])
        model_class = MODEL_CLASSES.get("glmer", GLMMStages)
        model = _quietly(lambda: model_class(
            call["formula"], frame, family=family_from_json(call["family"]),
            nagq=int(call["nagq"]), weights=read_source(r, call["weights"]),
            offset=read_source(r, call["offset"]), optimizer=call["optimizer"],
            start=start, optimizer_settings=from_json(call["optimizer_settings"]),
            calc_derivs=bool(call["calc_derivs"]), laplace=call["laplace"]))
    except KeyError as exc:
        if isinstance(exc, MultilevelError):  # a column the data lack (ColumnNotFoundError)
            raise
        raise SavedFitError(f"the stored call lacks {exc}: the file is damaged") from exc
    theta, beta = r.array("estimates/theta.npy"), r.array("estimates/beta.npy")
    est = r.json("estimates/objective.json")
    param = from_json(est["family_parameter"])
    source = data_source(data)
    if theta.shape != (model.layout.n_theta,) or beta.shape != (model.n_fixed,):
        raise SavedFitError(f"the stored parameters ({theta.size} theta, {beta.size} fixed "
                            f"effects) do not fit the model rebuilt on {source} "
                            f"({model.layout.n_theta}, {model.n_fixed}): the data or the "
                            "multilevel version differ")
    with_beta = model.nagq > 0
    check_reproduced("deviance", float(from_json(est["objective"])),
                     model.objective(theta, beta if with_beta else None, param), source)
    log_param = None if param is None else math.log(param)
    modes = model.modes(theta, beta if with_beta else None, log_param)
    resp = model.response_at(log_param)
    stage0 = read_optsum(r, "stage0") if r.has("stage0/record.json") else None
    found = GLMMFit(opt=read_optsum(r, "optsum"), theta=theta, beta=np.array(modes.beta),
                    family=resp.family, dispersion=resp.dispersion, modes=modes,
                    stage0=stage0)
    return GeneralizedLinearMixedModelResult.from_model(model, found)


def frame_or_none(value: Any) -> pd.DataFrame | None:
    """The ``data=`` of :func:`multilevel.load` as pandas (None stays None)."""
    return None if value is None else to_pandas(value)
