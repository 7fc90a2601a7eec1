"""Saving and loading nlme's kinds: ``lme`` (LmeResult), ``gls`` (GlsResult) and ``nlme``
(NlmeResult).

The residual structures (variance functions, correlation structures) are stored by class and
constructor arguments, and initialized again on the rebuilt rows; a fitted-value variance
function gets back the fitted values it was last evaluated at. The result is then assembled at
the stored parameters: theta and the structures' unconstrained parameters psi for ``lme``, psi
for ``gls`` (beta and sigma follow exactly), and for ``nlme`` the fixed and random effects of
the last linearization with theta and psi. Nothing is optimized again; the criterion there must
reproduce the stored one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np

import multilevel.structures as structures_module
from multilevel.covariance.pdmat import PdBlocked, PdDiag, PdSymm
from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, SavedFitError
from multilevel.io.archive import ArchiveReader, ArchiveWriter
from multilevel.io.codec import check_reproduced, from_json, read_optsum, to_json, write_optsum
from multilevel.io.frames import read_frame, used_columns, write_frame
from multilevel.io.mixed_fits import data_source
from multilevel.models.gls import gls_setup
from multilevel.models.lme import lme_setup
from multilevel.models.nlme_fit import NlmeControl, nlme_setup
from multilevel.models.nlme_spec import parse_spec, structure_columns
from multilevel.models.whitening import Whitening
from multilevel.results.gls_result import GlsResult
from multilevel.results.lme_result import LmeCall, LmeResult
from multilevel.results.nlme_result import NlmeResult
from multilevel.structures.variance import VarComb


# -- the residual structures ------------------------------------------------------------------
def structure_to_json(obj: Any) -> Any:
    """A variance function or correlation structure as its class and constructor arguments."""
    if obj is None:
        return None
    if isinstance(obj, VarComb):
        return {"class": "VarComb", "components": [structure_to_json(c) for c in obj.components]}
    name = type(obj).__name__
    if getattr(structures_module, name, None) is not type(obj) or not dataclasses.is_dataclass(
            obj):
        raise SavedFitError(f"cannot save a fit with the structure {name}: only multilevel's "
                            "own variance functions and correlation structures are stored")
    args = {f.name: _tuples_tagged(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if f.init}
    return {"class": name, "args": to_json(args)}


def _tuples_tagged(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_tuples_tagged(v) for v in value]}
    if isinstance(value, dict):
        return {k: _tuples_tagged(v) for k, v in value.items()}
    return value


def _tuples_back(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_tuples_back(v) for v in value["__tuple__"])
        return {k: _tuples_back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tuples_back(v) for v in value]
    return value


def structure_from_json(spec: Any) -> Any:
    """The structure written by :func:`structure_to_json`."""
    if spec is None:
        return None
    try:
        if spec["class"] == "VarComb":
            return VarComb(*(structure_from_json(c) for c in spec["components"]))
        cls = getattr(structures_module, spec["class"], None)
        if cls is None or not isinstance(cls, type):
            raise KeyError(spec["class"])
        return cls(**_tuples_back(from_json(spec["args"])))
    except (KeyError, TypeError) as exc:
        raise SavedFitError(f"the stored structure {spec!r:.80} is not known to this version: "
                            "the file is damaged or newer than this multilevel") from exc


def _structure_texts(*objs: Any) -> list[str]:
    # the forms name the structures' columns (repr shows every form, VarComb's included)
    return [repr(o) for o in objs if o is not None]


def _write_whitening(w: ArchiveWriter, whitening: Whitening | None, psi: Any) -> None:
    if psi is not None:
        w.add_array("estimates/psi.npy", np.asarray(psi, dtype=float))
    if whitening is not None and whitening.fitted is not None:
        w.add_array("estimates/structure_fitted.npy", whitening.fitted)


def _restored(r: ArchiveReader, structures: Whitening) -> Whitening:
    if r.has("estimates/structure_fitted.npy"):
        fitted = r.array("estimates/structure_fitted.npy")
        if fitted.shape != (len(structures.rows),):
            raise SavedFitError("the stored fitted values of the variance function do not "
                                "match the rows of the rebuilt model: the data or the "
                                "multilevel version differ")
        return structures.with_fitted(fitted)
    return structures


def _psi(r: ArchiveReader, structures: Whitening) -> np.ndarray:
    psi = r.array("estimates/psi.npy") if r.has("estimates/psi.npy") else np.empty(0)
    if psi.shape != structures.start.shape:
        raise SavedFitError(f"the stored structure parameters ({psi.size}) do not fit the "
                            f"structures rebuilt on the data ({structures.start.size}): the "
                            "data or the multilevel version differ")
    return psi


def _at_stored(build: Callable[[], Any]) -> Any:
    # a model's fit_at refuses parameters of other shapes than the model rebuilt on the data
    try:
        return build()
    except ArgumentError as exc:
        raise SavedFitError(f"the stored parameters do not fit the model rebuilt on the data "
                            f"({exc}): the data or the multilevel version differ") from exc


# -- lme ---------------------------------------------------------------------------------------
def save_lme(w: ArchiveWriter, fit: LmeResult) -> None:
    """Store an ``lme`` fit."""
    call = fit.call
    if call is None:
        raise SavedFitError("this lme fit keeps no call (it was built inside another "
                            "procedure); fit it with ml.lme(...) and save that fit")
    w.add_json("call.json", {"formula": call.formula, "random": call.random,
                             "weights": structure_to_json(call.weights),
                             "correlation": structure_to_json(call.correlation),
                             "method": fit.method})
    frame = to_pandas(call.data)
    write_frame(w, "data", frame[used_columns(frame, [call.formula, call.random or "",
                                                      *_structure_texts(call.weights,
                                                                        call.correlation)])])
    w.add_array("estimates/theta.npy", fit.fit.theta)
    _write_whitening(w, fit.whitening, fit.psi)
    write_optsum(w, "optsum", fit.fit.optsum)
    w.add_json("estimates/objective.json", {"deviance": to_json(fit.deviance)})


def load_lme(r: ArchiveReader, data: Any) -> LmeResult:
    """Rebuild an ``lme`` fit at its stored theta and psi
    (:func:`multilevel.models.lme.lme_setup`, then the fit there without optimizing)."""
    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else data
    weights = structure_from_json(call["weights"])
    correlation = structure_from_json(call["correlation"])
    setup = lme_setup(call["formula"], frame, call["random"], weights, correlation,
                      call["method"])
    setup = setup.with_structures(_restored(r, setup.structures))
    psi = _psi(r, setup.structures)
    fit = _at_stored(lambda: setup.fit_at(r.array("estimates/theta.npy"), psi,
                                          read_optsum(r, "optsum")))
    stored = from_json(r.json("estimates/objective.json")["deviance"])
    check_reproduced("criterion", float(stored), fit.deviance, data_source(data))
    return LmeResult.from_fit(fit, call["method"], LmeCall(call["formula"], frame,
                                                           call["random"], weights,
                                                           correlation))


# -- gls ---------------------------------------------------------------------------------------
def save_gls(w: ArchiveWriter, fit: GlsResult) -> None:
    """Store a ``gls`` fit (its data are the rows it used, which the result keeps)."""
    weights, correlation = fit.structures
    w.add_json("call.json", {"formula": fit.formula, "weights": structure_to_json(weights),
                             "correlation": structure_to_json(correlation),
                             "method": fit.method})
    frame = to_pandas(fit.rows)
    write_frame(w, "data", frame[used_columns(frame, [fit.formula,
                                                      *_structure_texts(weights,
                                                                        correlation)])])
    _write_whitening(w, fit.whitening, fit.psi)
    if fit.optsum is not None:
        write_optsum(w, "optsum", fit.optsum)
    w.add_json("estimates/objective.json", {"loglik": to_json(fit.loglik)})


def load_gls(r: ArchiveReader, data: Any) -> GlsResult:
    """Rebuild a ``gls`` fit at its stored psi (:func:`multilevel.models.gls.gls_setup`, then
    the fit there without optimizing)."""
    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else data
    setup = gls_setup(call["formula"], frame, structure_from_json(call["weights"]),
                      structure_from_json(call["correlation"]), call["method"])
    setup = setup.with_structures(_restored(r, setup.structures))
    optsum = read_optsum(r, "optsum") if r.has("optsum/record.json") else None
    fit = setup.fit_at(_psi(r, setup.structures), optsum)
    stored = from_json(r.json("estimates/objective.json")["loglik"])
    check_reproduced("log-likelihood", float(stored), fit.loglik, data_source(data))
    return GlsResult.from_fit(fit)


# -- nlme --------------------------------------------------------------------------------------
def save_nlme(w: ArchiveWriter, fit: NlmeResult) -> None:
    """Store an ``nlme`` fit."""
    call = fit.call
    if call.get("functions"):
        raise SavedFitError("cannot save an nlme fit whose model calls Python functions "
                            "(functions=): code is never stored in a saved fit")
    random = call.get("random")
    fixed = call.get("fixed")
    control = call.get("control")
    start = call.get("start")
    w.add_json("call.json", {
        "model": call["model"], "fixed": fixed, "random": random_to_json(random),
        "groups": call.get("groups"),
        "start": to_json(dict(start)) if isinstance(start, dict) else to_json(start),
        "method": call.get("method", "ML"),
        "weights": structure_to_json(call.get("weights")),
        "correlation": structure_to_json(call.get("correlation")),
        "control": None if control is None else to_json(dataclasses.asdict(control)),
        "iterations": fit.iterations})
    frame = to_pandas(call["data"])
    texts = [call["model"], *(fixed if isinstance(fixed, list) else [fixed or ""]),
             json.dumps(random_to_json(random)), call.get("groups") or "",
             *_structure_texts(call.get("weights"), call.get("correlation"))]
    write_frame(w, "data", frame[used_columns(frame, texts)])
    w.add_array("estimates/beta.npy", fit.fixef.to_numpy())
    for i, b in enumerate(fit.ranef.values()):
        w.add_array(f"estimates/b{i}.npy", b.to_numpy())
    w.add_array("estimates/theta.npy", fit.lme.theta)
    _write_whitening(w, fit.linear.whitening, fit.linear.psi)
    w.add_json("estimates/objective.json", {"deviance": to_json(fit.deviance),
                                            "levels": len(fit.ranef)})


def random_to_json(random: Any) -> Any:
    """nlme's random part: None, a formula string, PdSymm / PdDiag / PdBlocked, or a dict of
    these by grouping factor."""
    if random is None or isinstance(random, str):
        return random
    if isinstance(random, PdSymm | PdDiag):
        return {"pd": type(random).__name__, "formula": random.formula}
    if isinstance(random, PdBlocked):
        return {"pd": "PdBlocked", "blocks": [random_to_json(b) for b in random.blocks]}
    if isinstance(random, dict) and all(isinstance(k, str) for k in random):
        return {"by_group": {k: random_to_json(v) for k, v in random.items()}}
    raise SavedFitError(f"cannot save an nlme fit whose random part is a "
                        f"{type(random).__name__}; give it as a formula, PdSymm, PdDiag, "
                        "PdBlocked or a dict of these")


def random_from_json(spec: Any) -> Any:
    """The random part written by :func:`random_to_json`."""
    if spec is None or isinstance(spec, str):
        return spec
    try:
        if "by_group" in spec:
            return {k: random_from_json(v) for k, v in spec["by_group"].items()}
        kinds = {"PdSymm": PdSymm, "PdDiag": PdDiag}
        if spec["pd"] == "PdBlocked":
            return PdBlocked([random_from_json(b) for b in spec["blocks"]])
        return kinds[spec["pd"]](spec["formula"])
    except (KeyError, TypeError) as exc:
        raise SavedFitError(f"the stored random part {spec!r:.80} is not known to this "
                            "version: the file is damaged or newer than this multilevel") from exc


def load_nlme(r: ArchiveReader, data: Any) -> NlmeResult:
    """Rebuild an ``nlme`` fit at its last linearization: nlme's final LME model at the stored
    fixed and random effects, theta and psi (:func:`multilevel.models.nlme_fit.nlme_setup`,
    then the fit there without iterating)."""
    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else to_pandas(data)
    weights = structure_from_json(call["weights"])
    correlation = structure_from_json(call["correlation"])
    control = None if call["control"] is None else NlmeControl(**from_json(call["control"]))
    start = from_json(call["start"])
    est = r.json("estimates/objective.json")
    random = random_from_json(call["random"])
    spec = parse_spec(call["model"], frame, call["fixed"], random, call["groups"],
                      None, start, structure_columns(weights, correlation))
    beta = r.array("estimates/beta.npy")
    b = [r.array(f"estimates/b{i}.npy") for i in range(int(est["levels"]))]
    if beta.shape != (len(spec.fixed_names),) or len(b) != len(spec.levels):
        raise SavedFitError("the stored effects do not fit the model rebuilt on the data: the "
                            "data or the multilevel version differ")
    setup = nlme_setup(spec, weights, correlation)
    if setup.structures is not None:
        setup = setup.with_structures(_restored(r, setup.structures))
    psi = _psi(r, setup.structures) if setup.structures is not None else np.empty(0)
    fit = _at_stored(lambda: setup.fit_at(beta, b, r.array("estimates/theta.npy"), psi,
                                          call["method"] == "REML", int(call["iterations"])))
    check_reproduced("criterion", float(from_json(est["deviance"])), fit.deviance,
                     data_source(data))
    full_call = {"model": call["model"], "data": frame, "fixed": call["fixed"],
                 "random": random, "groups": call["groups"], "start": start,
                 "method": call["method"], "weights": weights, "correlation": correlation,
                 "functions": None, "control": control}
    return NlmeResult.from_fit(spec, fit, full_call)
