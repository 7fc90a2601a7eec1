"""Encoding the parts of a fit that are not data frames: plain values as strict JSON (numbers
that JSON cannot spell, +-Infinity and NaN, and small arrays tagged), arrays as ``.npy``
members, and the optimizer record (:class:`~multilevel.optim.optsummary.OptSummary`) restored
field by field so that ``optsum``, ``converged`` and the messages on record are the same.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np

from multilevel.errors import SavedFitError
from multilevel.io.archive import ArchiveReader, ArchiveWriter
from multilevel.optim.optsummary import OptSummary

_FLOAT_TAG = "__float__"
_ARRAY_TAG = "__array__"


def to_json(value: Any) -> Any:
    """``value`` as strict JSON: dicts with string keys, lists, strings, bools, None, finite
    numbers; non-finite floats and NumPy arrays as tagged objects (read back by
    :func:`from_json` to the same values)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else {_FLOAT_TAG: repr(v)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise SavedFitError(f"cannot save an array of dtype {value.dtype} in JSON")
        return {_ARRAY_TAG: [to_json(v) for v in value.ravel().tolist()],
                "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SavedFitError(f"cannot save a setting keyed by {k!r} (not a string)")
            out[k] = to_json(v)
        return out
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    raise SavedFitError(f"cannot save a value of type {type(value).__name__} ({value!r:.60}): "
                        "only numbers, text, booleans, lists, dicts and numeric arrays are "
                        "stored")


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json` (tuples come back as lists)."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_FLOAT_TAG}:
            text = value[_FLOAT_TAG]
            if text not in ("inf", "-inf", "nan"):
                raise SavedFitError(f"bad tagged number {text!r}: the file is damaged")
            return float(text)
        if _ARRAY_TAG in value:
            dtype = np.dtype(value["dtype"])
            if dtype.kind not in "biuf":
                raise SavedFitError(f"bad array dtype {dtype}: the file is damaged")
            flat = [from_json(v) for v in value[_ARRAY_TAG]]
            return np.array(flat, dtype=dtype).reshape(value["shape"])
        return {k: from_json(v) for k, v in value.items()}
    return value


def write_optsum(w: ArchiveWriter, prefix: str, opt: OptSummary) -> None:
    """Store the optimizer record: arrays as ``.npy`` (exact), the rest as JSON."""
    arrays = {"initial": opt.initial, "final": opt.final, "lower": opt.lower,
              "gradient": opt.gradient, "hessian": opt.hessian}
    for name, arr in arrays.items():
        if arr is not None:
            w.add_array(f"{prefix}/{name}.npy", np.asarray(arr, dtype=float))
    log_x = [np.asarray(x, dtype=float) for x, _ in opt.fitlog]
    same = len({x.shape for x in log_x}) <= 1
    if log_x and same:
        w.add_array(f"{prefix}/fitlog_x.npy", np.stack(log_x))
        w.add_array(f"{prefix}/fitlog_f.npy", np.array([f for _, f in opt.fitlog], dtype=float))
    record = {
        "backend": opt.backend, "fmin": to_json(opt.fmin), "feval": opt.feval,
        "elapsed": opt.elapsed, "return_code": opt.return_code, "converged": opt.converged,
        "messages": list(opt.messages), "settings": to_json(dict(opt.settings)),
        "polished": opt.polished, "restarts": opt.restarts,
        "arrays": [k for k, v in arrays.items() if v is not None],
        "fitlog": "npy" if (log_x and same) else to_json([[x, f] for x, f in opt.fitlog]),
    }
    w.add_json(f"{prefix}/record.json", record)


def read_optsum(r: ArchiveReader, prefix: str) -> OptSummary:
    """The optimizer record stored by :func:`write_optsum`."""
    rec = r.json(f"{prefix}/record.json")
    try:
        arrays = {k: r.array(f"{prefix}/{k}.npy") for k in rec["arrays"]}
        if rec["fitlog"] == "npy":
            xs, fs = r.array(f"{prefix}/fitlog_x.npy"), r.array(f"{prefix}/fitlog_f.npy")
            fitlog = tuple((x.copy(), float(f)) for x, f in zip(xs, fs, strict=True))
        else:
            fitlog = tuple((np.asarray(x, dtype=float), float(f))
                           for x, f in from_json(rec["fitlog"]))
        known = {f.name for f in fields(OptSummary)}
        values = dict(
            backend=str(rec["backend"]), initial=arrays["initial"], final=arrays["final"],
            lower=arrays["lower"], fmin=float(from_json(rec["fmin"])), feval=int(rec["feval"]),
            elapsed=float(rec["elapsed"]), return_code=str(rec["return_code"]),
            converged=bool(rec["converged"]), messages=tuple(str(m) for m in rec["messages"]),
            fitlog=fitlog, settings=from_json(rec["settings"]),
            gradient=arrays.get("gradient"), hessian=arrays.get("hessian"),
            polished=bool(rec["polished"]), restarts=int(rec["restarts"]))
        return OptSummary(**{k: v for k, v in values.items() if k in known})
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SavedFitError):
            raise
        raise SavedFitError(f"the optimizer record {prefix!r} cannot be read ({exc}): the "
                            "file is damaged") from exc


def check_reproduced(what: str, stored: float, value: float, source: str,
                     rtol: float = 1e-8) -> None:
    """Refuse a rebuilt model whose objective at the stored parameters is not the stored one:
    the data (``source`` says which) or the multilevel version differ."""
    if math.isfinite(stored) and math.isfinite(value) \
            and abs(value - stored) <= rtol * max(1.0, abs(stored)):
        return
    raise SavedFitError(
        f"the {what} at the stored parameters is {value!r} on {source}, but the saved fit "
        f"records {stored!r}: the data or the multilevel version differ. Load with the data "
        "the model was fitted to (or without data=, to use the stored copy)")
