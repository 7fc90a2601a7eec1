"""Saving and loading Bayesian fits (``ml.bayes``, ``ml.bayes_nlme``): the draws on the
sampler's unconstrained scale with the per-draw statistics, the priors, the sampler settings,
the call and the data.

Loading samples nothing: the log posterior is rebuilt from the model and priors (JAX, the
``bayes`` extra, is needed for that), the draws are mapped to the named parameters and the
pointwise log-likelihood as after sampling, and the total log-likelihood over all draws must
reproduce the stored one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from multilevel.errors import SavedFitError
from multilevel.io.archive import ArchiveReader, ArchiveWriter
from multilevel.io.codec import check_reproduced, from_json, to_json
from multilevel.io.frames import read_frame, used_columns, write_frame
from multilevel.io.mixed_fits import data_source, family_from_json, family_to_json


def save_bayes(w: ArchiveWriter, fit: Any) -> None:
    """Store a Bayesian fit of ``ml.bayes``."""
    model = fit.model
    params = None
    if model.nonlinear is not None:
        if model.nonlinear.functions:
            raise SavedFitError(
                "a Bayesian nonlinear fit whose model calls Python functions (functions=) "
                f"cannot be saved: {sorted(model.nonlinear.functions)} are code, and a saved "
                "fit stores no code; save its draws with fit.posterior.to_netcdf(path)")
        # ml.bayes_nlme: the model expression and one linear formula per parameter
        params = {part.nlpar: part.formula for part in model.parts}
    priors = [{"class": p.slot.class_, "coef": p.slot.coef, "group": p.slot.group,
               "nlpar": p.slot.nlpar, "distribution": p.distribution.text(),
               "source": p.source} for p in fit.priors]
    w.add_json("call.json", {
        "formula": model.formula, "params": params,
        "family": family_to_json(model.family.family),
        "settings": to_json(dataclasses.asdict(fit.settings)), "priors": priors,
        "data_name": fit.data_name, "compile_s": fit.compile_s, "sampling_s": fit.sampling_s,
        "interrupted": bool(fit.interrupted)})
    w.add_array("model/wt.npy", model.wt)
    w.add_array("model/y.npy", model.y)
    if model.offset is not None:
        w.add_array("model/offset.npy", model.offset)
    rows = model.rows
    formulas = [model.formula, *(params or {}).values()]
    write_frame(w, "data", rows[used_columns(rows, formulas)])
    z = fit.unconstrained_draws
    z_names = sorted(z)
    for i, name in enumerate(z_names):
        w.add_array(f"draws/z{i}.npy", np.asarray(z[name]))
    stats = fit.posterior.sample_stats
    stat_names = [str(s) for s in stats.data_vars]
    for i, name in enumerate(stat_names):
        w.add_array(f"draws/stat{i}.npy", np.asarray(stats[name].values))
    loglik = float(np.sum(fit.posterior.log_likelihood["y"].values))
    w.add_json("draws/index.json", {"z": z_names, "stats": stat_names,
                                    "loglik_sum": to_json(loglik)})


def load_bayes(r: ArchiveReader, data: Any) -> Any:
    """Rebuild a Bayesian fit from its stored draws (no sampling)."""
    from multilevel.bayesian import require
    require()
    from multilevel.bayesian.density import build_density
    from multilevel.bayesian.fit import model_priors
    from multilevel.bayesian.likelihood import response_family
    from multilevel.bayesian.model_spec import linear_model, nonlinear_model
    from multilevel.bayesian.posterior import inference_data, posterior_draws
    from multilevel.bayesian.priors import prior
    from multilevel.bayesian.result import BayesResult
    from multilevel.bayesian.sampler import Draws, NutsSettings

    call = r.json("call.json")
    frame = read_frame(r, "data") if data is None else data
    family = response_family(family_from_json(call["family"]))
    wt, y = r.array("model/wt.npy"), r.array("model/y.npy")
    offset = r.array("model/offset.npy") if r.has("model/offset.npy") else None
    source = data_source(data)
    params = call.get("params")
    model = (linear_model(call["formula"], frame, family) if params is None
             else nonlinear_model(call["formula"], frame, params, family))
    if model.nobs != y.shape[0]:
        raise SavedFitError(f"the model rebuilt on {source} has {model.nobs} observations, the "
                            f"saved fit {y.shape[0]}: the data or the multilevel version differ")
    # the prior weights and offset the call gave (not stored as such): what the stored model
    # has beyond what the formula alone gives
    if params is None and (not np.array_equal(model.wt, wt) or not _same(model.offset, offset)):
        extra_offset = None if offset is None else offset - (
            0.0 if model.offset is None else model.offset)
        model = linear_model(call["formula"], frame, family,
                             weights=None if np.array_equal(model.wt, wt) else wt / model.wt,
                             offset=extra_offset)
    if not (np.array_equal(model.y, y) and np.allclose(model.wt, wt, rtol=1e-12)
            and _same(model.offset, offset, close=True)):
        raise SavedFitError(f"the response, weights or offset of the model rebuilt on {source} "
                            "are not those of the saved fit: the data or the multilevel "
                            "version differ")
    user = [prior(p["distribution"], class_=p["class"], coef=p["coef"], group=p["group"],
                  nlpar=p["nlpar"]) for p in call["priors"] if p["source"] == "user"]
    resolved = model_priors(model, user)
    got = [(p.slot.class_, p.slot.coef, p.slot.group, p.distribution.text()) for p in resolved]
    want = [(p["class"], p["coef"], p["group"], p["distribution"]) for p in call["priors"]]
    if got != want:
        raise SavedFitError(f"the priors rebuilt on {source} are not the saved fit's (brms's "
                            "default priors depend on the data): the data or the multilevel "
                            "version differ")
    density = build_density(model, resolved)
    index = r.json("draws/index.json")
    z = {name: r.array(f"draws/z{i}.npy") for i, name in enumerate(index["z"])}
    stats = {name: r.array(f"draws/stat{i}.npy") for i, name in enumerate(index["stats"])}
    draws = Draws(z=z, stats=stats, compile_s=float(call["compile_s"]),
                  sampling_s=float(call["sampling_s"]), interrupted=bool(call["interrupted"]))
    named, loglik = posterior_draws(density, z)
    assert loglik is not None
    check_reproduced("log-likelihood summed over the draws",
                     float(from_json(index["loglik_sum"])), float(np.sum(loglik)), source)
    settings = NutsSettings(**from_json(call["settings"]))
    idata = inference_data(density, draws, named, loglik)
    return BayesResult(density, draws, idata, settings, data_name=call["data_name"])


def _same(a: np.ndarray | None, b: np.ndarray | None, close: bool = False) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(a, b, rtol=1e-12, atol=0) if close else np.array_equal(a, b))
